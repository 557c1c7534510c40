//! HTTP/1.1 on one connection, read under limits: the head (request line and headers) at most
//! 16 KiB with a URL of at most 4 KiB, the body at most 1 MiB, and all of it within 5 s of the
//! connection being accepted. One request per connection (`Connection: close`).
//!
//! Why not tiny_http (0.12): it reads the request line and every header byte by byte into a
//! `Vec` that grows without bound, keeps every header, and sets no read timeout on its sockets,
//! with no way for a caller to set one (it accepts on its own listener and a `Request` does not
//! expose its stream). A single 64 MiB header line cost it over 200 MB of memory, and a client
//! that declares a body and stalls held the handler thread reading it forever. A guard in front
//! of it would have to proxy every request to hand it over; parsing the few small requests a
//! control plane gets is less code than that, and the limits are then enforced where the bytes
//! are read.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use serde_json::json;

use super::Reply;

/// Largest request head (request line and headers, with their line ends).
pub const HEAD_LIMIT: usize = 16 << 10;
/// Longest request target (path and query).
pub const URL_LIMIT: usize = 4 << 10;
/// Largest request body.
pub const BODY_LIMIT: usize = 1 << 20;
/// Time from accepting a connection to having read the whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a reply may take to be taken by a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// After refusing a request not read to its end, how much more of it is read and dropped (and
/// for how long) so that the client can finish sending and see the reply: closing a socket
/// with unread data resets the connection, which can destroy the reply in flight.
const DRAIN_LIMIT: usize = 4 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// Longest line of a chunked body's framing (chunk size, extensions, trailers).
const CHUNK_LINE_LIMIT: usize = 1024;

/// A parsed request head.
pub struct Head {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The value of the header `name` (the first, if repeated).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Why a request was not read.
pub enum ReadError {
    /// The client closed the connection before sending anything: nothing to answer.
    Closed,
    /// The answer to send instead.
    Refused(Reply),
}

impl From<Reply> for ReadError {
    fn from(r: Reply) -> Self {
        ReadError::Refused(r)
    }
}

/// One accepted connection.
pub struct Conn {
    stream: TcpStream,
    deadline: Instant,
    /// Bytes read and not yet consumed, from `pos`.
    buf: Vec<u8>,
    pos: usize,
    /// Whether the request was read to its end (otherwise the rest is drained before closing).
    complete: bool,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        Conn { stream, deadline: Instant::now() + REQUEST_TIMEOUT, buf: Vec::new(), pos: 0, complete: false }
    }

    /// Reads more bytes into the buffer; at most `max` more are kept. Errors with 408 once the
    /// request deadline has passed.
    fn fill(&mut self, max: usize) -> Result<usize, ReadError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timeout().into());
        }
        // A read timeout of the time left makes the deadline hold for a client that trickles
        // a byte at a time as well as for one that sends nothing.
        let _ = self.stream.set_read_timeout(Some(left));
        let mut chunk = [0u8; 8192];
        let want = chunk.len().min(max.max(1));
        match self.stream.read(&mut chunk[..want]) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Err(timeout().into()),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(1),
            Err(_) => Err(ReadError::Closed),
        }
    }

    /// Reads and parses the head.
    pub fn read_head(&mut self) -> Result<Head, ReadError> {
        let end = loop {
            if let Some(end) = head_end(&self.buf) {
                break end;
            }
            let line_done = self.buf.contains(&b'\n');
            // The request line alone: a URL too long is told apart from headers too large.
            if !line_done && self.buf.len() > URL_LIMIT + 64 {
                return Err(uri_too_long().into());
            }
            if self.buf.len() >= HEAD_LIMIT {
                return Err(if line_done { head_too_large() } else { uri_too_long() }.into());
            }
            let n = self.fill(HEAD_LIMIT - self.buf.len())?;
            if n == 0 {
                // Closed before the head ended.
                return Err(ReadError::Closed);
            }
        };
        let head = parse_head(&self.buf[..end.0])?;
        self.pos = end.1;
        // Nothing more to read unless a body is declared.
        self.complete = head.header("Transfer-Encoding").is_none() && matches!(content_length(&head)?, None | Some(0));
        Ok(head)
    }

    /// Tells a client that asked (`Expect: 100-continue`) to send its body.
    pub fn send_continue(&mut self) {
        let _ = self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    /// Reads the body (by `Content-Length` or chunked), refusing more than `limit` bytes.
    pub fn read_body(&mut self, head: &Head, limit: usize) -> Result<Vec<u8>, ReadError> {
        let body = match (head.header("Transfer-Encoding"), content_length(head)?) {
            (Some(_), Some(_)) => {
                return Err(bad_request("send either Content-Length or Transfer-Encoding, not both").into());
            }
            (Some(te), None) if te.trim().eq_ignore_ascii_case("chunked") => self.read_chunked(limit)?,
            (Some(te), None) => {
                return Err(Reply::error(
                    501,
                    format!("Transfer-Encoding `{te}` is not supported; send the body with Content-Length or chunked"),
                    json!({}),
                )
                .into())
            }
            (None, Some(n)) if n > limit as u64 => return Err(too_large(limit).into()),
            (None, Some(n)) => self.take(n as usize)?,
            (None, None) => Vec::new(),
        };
        self.complete = true;
        Ok(body)
    }

    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        while self.buf.len() - self.pos < n {
            let want = n - (self.buf.len() - self.pos);
            if self.fill(want)? == 0 {
                return Err(bad_request("the connection closed before the whole body arrived").into());
            }
        }
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(out)
    }

    /// The next line, without its line end.
    fn line(&mut self) -> Result<Vec<u8>, ReadError> {
        loop {
            if let Some(i) = self.buf[self.pos..].iter().position(|&b| b == b'\n') {
                let mut line = self.buf[self.pos..self.pos + i].to_vec();
                self.pos += i + 1;
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buf.len() - self.pos > CHUNK_LINE_LIMIT {
                return Err(bad_request("a chunk-size line of the chunked body is too long").into());
            }
            if self.fill(CHUNK_LINE_LIMIT)? == 0 {
                return Err(bad_request("the connection closed before the whole body arrived").into());
            }
        }
    }

    fn read_chunked(&mut self, limit: usize) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        loop {
            let line = self.line()?;
            let size = std::str::from_utf8(&line)
                .ok()
                .and_then(|l| usize::from_str_radix(l.split(';').next().unwrap_or("").trim(), 16).ok())
                .ok_or_else(|| bad_request("malformed chunk size in the chunked body"))?;
            if size == 0 {
                break;
            }
            if body.len().saturating_add(size) > limit {
                return Err(too_large(limit).into());
            }
            body.extend(self.take(size)?);
            if !self.line()?.is_empty() {
                return Err(bad_request("a chunk of the chunked body does not end where its size says").into());
            }
        }
        // Trailer fields, ignored; bounded like the head.
        let mut trailers = 0;
        loop {
            let line = self.line()?;
            if line.is_empty() {
                return Ok(body);
            }
            trailers += line.len();
            if trailers > HEAD_LIMIT {
                return Err(head_too_large().into());
            }
        }
    }

    /// Sends `reply` and closes the connection.
    pub fn respond(mut self, reply: &Reply) {
        let mut out = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status)).into_bytes();
        let mut header = |k: &str, v: &str| {
            // Values are ours, but a stray line end must never split a header.
            if !v.contains(['\r', '\n']) {
                out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
            }
        };
        header("Content-Type", reply.content_type);
        header("Content-Length", &reply.body.len().to_string());
        header("Connection", "close");
        header("Cache-Control", "no-store");
        for (k, v) in &reply.headers {
            header(k, v);
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&reply.body);
        let _ = self.stream.write_all(&out);
        let _ = self.stream.flush();
        let _ = self.stream.shutdown(Shutdown::Write);
        if !self.complete {
            self.drain();
        }
    }

    /// Reads and drops what the client still sends, within `DRAIN_LIMIT` and `DRAIN_TIME`.
    fn drain(&mut self) {
        let end = Instant::now() + DRAIN_TIME;
        let mut dropped = 0;
        let mut chunk = [0u8; 8192];
        while dropped < DRAIN_LIMIT {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                return;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => dropped += n,
            }
        }
    }
}

/// Where the head ends: (length of the head without the blank line, start of the body).
fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(off) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + off;
        match &buf[nl + 1..] {
            [b'\n', ..] => return Some((nl + 1, nl + 2)),
            [b'\r', b'\n', ..] => return Some((nl + 1, nl + 3)),
            _ => i = nl + 1,
        }
    }
    None
}

fn parse_head(raw: &[u8]) -> Result<Head, Reply> {
    let text = std::str::from_utf8(raw).map_err(|_| bad_request("the request head is not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad_request("malformed request line; send `METHOD /path HTTP/1.1`"));
    };
    if target.len() > URL_LIMIT {
        return Err(uri_too_long());
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) || !target.starts_with('/') {
        return Err(bad_request("malformed request line; send `METHOD /path HTTP/1.1`"));
    }
    match version {
        "HTTP/1.1" | "HTTP/1.0" => {}
        v if v.starts_with("HTTP/") => {
            return Err(Reply::error(505, format!("{v} is not supported; use HTTP/1.1"), json!({})));
        }
        _ => return Err(bad_request("malformed request line; send `METHOD /path HTTP/1.1`")),
    }
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        // A continuation line (obsolete folding) or a name with spaces could make two parsers
        // disagree on what the headers are.
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad_request(format!("malformed header line `{}`", line.chars().take(64).collect::<String>())));
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad_request(format!("malformed header name `{}`", name.chars().take(64).collect::<String>())));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let head = Head { method: method.to_ascii_uppercase(), target: target.to_string(), headers };
    if head.all("Host").count() > 1 {
        return Err(bad_request("more than one Host header"));
    }
    Ok(head)
}

/// The declared body length; repeated values must agree.
fn content_length(head: &Head) -> Result<Option<u64>, Reply> {
    let mut found = None;
    for v in head.all("Content-Length") {
        let n: u64 = v.trim().parse().map_err(|_| bad_request(format!("Content-Length `{v}` is not a number")))?;
        if found.is_some_and(|f| f != n) {
            return Err(bad_request("Content-Length headers that disagree"));
        }
        found = Some(n);
    }
    Ok(found)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

fn bad_request(msg: impl Into<String>) -> Reply {
    Reply::error(400, msg, json!({}))
}

fn timeout() -> Reply {
    Reply::error(
        408,
        format!("the request did not arrive within {} s of connecting; send the whole request at once", REQUEST_TIMEOUT.as_secs()),
        json!({"timeout_s": REQUEST_TIMEOUT.as_secs()}),
    )
}

fn uri_too_long() -> Reply {
    Reply::error(414, format!("the URL is longer than {URL_LIMIT} bytes; send a shorter one"), json!({"limit_bytes": URL_LIMIT}))
}

fn head_too_large() -> Reply {
    Reply::error(
        431,
        format!("the request headers are larger than {HEAD_LIMIT} bytes together; send fewer or shorter headers"),
        json!({"limit_bytes": HEAD_LIMIT}),
    )
}

pub fn too_large(limit: usize) -> Reply {
    Reply::error(
        413,
        format!("request body is larger than {limit} bytes ({} MiB); send a smaller config", limit >> 20),
        json!({"limit_bytes": limit}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_ends_at_the_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody"), Some((25, 27)));
        assert_eq!(head_end(b"GET / HTTP/1.1\nHost: a\n\nbody"), Some((23, 24)));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
    }

    #[test]
    fn heads_parse_strictly() {
        let h = parse_head(b"post /v1/start?x=1 HTTP/1.1\r\nHost: a:1\r\nContent-Length: 5\r\n").ok().unwrap();
        assert_eq!((h.method.as_str(), h.target.as_str()), ("POST", "/v1/start?x=1"));
        assert_eq!(h.header("content-length"), Some("5"));
        for bad in [
            &b"GET /\r\n"[..],
            b"GET / HTTP/1.1 x\r\n",
            b"GET x HTTP/1.1\r\n",
            b"GET / HTTP/1.1\r\n folded\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n",
        ] {
            assert_eq!(parse_head(bad).err().map(|r| r.status), Some(400), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_head(b"GET / HTTP/2.0\r\n").err().map(|r| r.status), Some(505));
    }
}
