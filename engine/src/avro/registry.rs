//! A Confluent Schema Registry client: registers (or looks up) a schema under a subject and
//! returns its id, once, at start, before any event is generated. The endpoints are those of
//! Confluent's REST API (`POST /subjects/{subject}/versions`, `POST /subjects/{subject}`);
//! errors keep the registry's `error_code` and message.
//!
//! One request per connection (`Connection: close`), plain HTTP/1.1 over `std::net` or rustls:
//! a few requests per run do not need a pooled client, and every step has a deadline.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;

use super::config::{RegistryAuth, RegistryConfig, SubjectStrategy};
use crate::error::EngineError;

/// Largest registry reply read.
const REPLY_LIMIT: usize = 4 << 20;

/// The subject of a value (or key) schema named `record` (full name) on `topic`.
pub fn subject(
    strategy: SubjectStrategy,
    topic: &str,
    record: Option<&str>,
    is_key: bool,
) -> Result<String, String> {
    let part = if is_key { "key" } else { "value" };
    match (strategy, record) {
        (SubjectStrategy::Topic, _) => Ok(format!("{topic}-{part}")),
        (SubjectStrategy::Record, Some(r)) => Ok(r.to_string()),
        (SubjectStrategy::TopicRecord, Some(r)) => Ok(format!("{topic}-{r}")),
        (_, None) => Err("the record and topic_record strategies need one named record, not a union of several sources".into()),
    }
}

/// Registers `schema` under `subject` (or, without `auto_register`, looks it up); returns
/// its id.
pub fn schema_id(cfg: &RegistryConfig, subject: &str, schema: &str) -> Result<u32, EngineError> {
    let body = json!({ "schema": schema }).to_string();
    let path = if cfg.auto_register {
        format!("/subjects/{subject}/versions")
    } else {
        format!("/subjects/{subject}")
    };
    let (status, reply) = request(cfg, "POST", &path, &body)?;
    let doc: serde_json::Value = serde_json::from_slice(&reply).unwrap_or(serde_json::Value::Null);
    let err = |what: String| EngineError::Registry { url: cfg.url.clone(), message: what };
    if status == 200 {
        return doc
            .get("id")
            .and_then(serde_json::Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| {
                err(format!(
                    "the reply to {path} has no schema id: {}",
                    String::from_utf8_lossy(&reply)
                ))
            });
    }
    let code =
        doc.get("error_code").and_then(serde_json::Value::as_i64).unwrap_or(i64::from(status));
    let msg = doc
        .get("message")
        .and_then(|m| m.as_str())
        .map_or_else(|| String::from_utf8_lossy(&reply).into_owned(), str::to_string);
    Err(err(match status {
        401 | 403 => format!(
            "the registry refused the credentials ({status}, error {code}: {msg}); check avro.schema_registry username/password or token"
        ),
        409 => format!(
            "the schema is incompatible with earlier versions of subject `{subject}` (409, error {code}: {msg}); register it under another subject (topic or subject_strategy), or change the subject's compatibility level"
        ),
        422 => format!("the registry rejected the schema as invalid (422, error {code}: {msg})"),
        404 if !cfg.auto_register => format!(
            "subject `{subject}` does not have this schema (404, error {code}: {msg}); register it first, or set avro.schema_registry.auto_register: true"
        ),
        _ => format!("{path} answered {status} (error {code}: {msg})"),
    }))
}

/// Parts of an `http(s)://host[:port][/base]` URL.
struct Url<'a> {
    tls: bool,
    host: &'a str,
    port: u16,
    base: &'a str,
}

fn parse_url(u: &str) -> Option<Url<'_>> {
    let (tls, rest) = match u.strip_prefix("https://") {
        Some(r) => (true, r),
        None => (false, u.strip_prefix("http://")?),
    };
    let (authority, base) = rest.find('/').map_or((rest, ""), |i| (&rest[..i], &rest[i..]));
    let default = if tls { 443 } else { 80 };
    let (host, port) = if let Some(h) = authority.strip_prefix('[') {
        let (h, p) = h.split_once(']')?;
        (h, if p.is_empty() { default } else { p.strip_prefix(':')?.parse().ok()? })
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (authority, default),
        }
    };
    (!host.is_empty()).then_some(Url { tls, host, port, base: base.trim_end_matches('/') })
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn tls_config(cfg: &RegistryConfig) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca_file {
        Some(p) => {
            use rustls::pki_types::pem::PemObject;
            for c in rustls::pki_types::CertificateDer::pem_file_iter(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
            {
                roots
                    .add(c.map_err(|e| format!("{}: {e}", p.display()))?)
                    .map_err(|e| format!("{}: {e}", p.display()))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let c = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(c))
}

/// One request; returns the status and the body.
fn request(
    cfg: &RegistryConfig,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, Vec<u8>), EngineError> {
    let err = |what: String| EngineError::Registry { url: cfg.url.clone(), message: what };
    let url = parse_url(&cfg.url).ok_or_else(|| err("not an http(s) URL".into()))?;
    let deadline = Instant::now() + cfg.timeout;
    let addrs: Vec<_> = (url.host, url.port)
        .to_socket_addrs()
        .map_err(|e| {
            err(format!("cannot resolve {}: {e}; check avro.schema_registry.url", url.host))
        })?
        .collect();
    let mut last = None;
    let mut tcp = None;
    for a in addrs {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        match TcpStream::connect_timeout(&a, left) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let tcp = tcp.ok_or_else(|| {
        err(format!(
            "unreachable ({}); check avro.schema_registry.url and that the registry is up",
            last.map_or("no address".to_string(), |e| e.to_string())
        ))
    })?;
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    tcp.set_read_timeout(Some(left))
        .and_then(|()| tcp.set_write_timeout(Some(left)))
        .map_err(|e| err(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let mut stream: Box<dyn Stream> = if url.tls {
        let tls = tls_config(cfg).map_err(|e| err(format!("TLS setup: {e}")))?;
        let name = rustls::pki_types::ServerName::try_from(url.host.to_string())
            .map_err(|e| err(format!("TLS server name: {e}")))?;
        let conn =
            rustls::ClientConnection::new(tls, name).map_err(|e| err(format!("TLS: {e}")))?;
        Box::new(rustls::StreamOwned::new(conn, tcp))
    } else {
        Box::new(tcp)
    };
    let auth = match &cfg.auth {
        RegistryAuth::None => String::new(),
        RegistryAuth::Basic { username, password } => format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{username}:{}", password.expose()))
        ),
        RegistryAuth::Bearer(t) => format!("Authorization: Bearer {}\r\n", t.expose()),
    };
    let host = if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    };
    let req = format!(
        "{method} {}{path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/vnd.schemaregistry.v1+json, application/json\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\n{auth}Connection: close\r\nUser-Agent: spate\r\n\r\n{body}",
        url.base,
        body.len()
    );
    let io = |e: std::io::Error| {
        if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
            err(format!("no reply within {:?} (avro.schema_registry.timeout)", cfg.timeout))
        } else {
            err(e.to_string())
        }
    };
    stream.write_all(req.as_bytes()).and_then(|()| stream.flush()).map_err(io)?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if Instant::now() >= deadline {
            return Err(err(format!(
                "no whole reply within {:?} (avro.schema_registry.timeout)",
                cfg.timeout
            )));
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A TLS peer that closes without close_notify: what was read is the reply.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e) => return Err(io(e)),
        }
        if raw.len() > REPLY_LIMIT {
            return Err(err(format!("reply larger than {REPLY_LIMIT} bytes")));
        }
        if let Some(done) = complete(&raw, false) {
            return done.map_err(err);
        }
    }
    complete(&raw, true).unwrap_or_else(|| Err("the reply ended early".into())).map_err(err)
}

/// The status and body of `raw` once it holds a whole reply (None: read more); `eof`: the
/// connection has ended.
fn complete(raw: &[u8], eof: bool) -> Option<Result<(u16, Vec<u8>), String>> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status =
        lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse::<u16>().ok());
    let Some(status) = status else {
        return Some(Err(format!("not an HTTP reply: {:?}", head.lines().next().unwrap_or(""))));
    };
    let mut length = None;
    let mut chunked = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse::<usize>().ok();
            } else if k.eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            }
        }
    }
    let body = &raw[end + 4..];
    if chunked {
        let mut out = Vec::new();
        let mut rest = body;
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n")?;
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&rest[..nl]).split(';').next()?.trim(),
                16,
            )
            .ok()?;
            rest = &rest[nl + 2..];
            if size == 0 {
                return Some(Ok((status, out)));
            }
            if rest.len() < size + 2 {
                return None;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
    }
    match length {
        Some(n) if body.len() >= n => Some(Ok((status, body[..n].to_vec()))),
        Some(_) => None,
        // Without a length the reply ends with the connection.
        None => eof.then(|| Ok((status, body.to_vec()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_subjects() {
        let u = parse_url("https://reg.example:8443/base/").unwrap();
        assert!(u.tls && u.host == "reg.example" && u.port == 8443 && u.base == "/base");
        let u = parse_url("http://[::1]:8081").unwrap();
        assert!(!u.tls && u.host == "::1" && u.port == 8081 && u.base.is_empty());
        assert_eq!(parse_url("http://h").unwrap().port, 80);
        assert!(parse_url("ftp://h").is_none() && parse_url("http://h:x").is_none());
        assert_eq!(subject(SubjectStrategy::Topic, "t", None, false).unwrap(), "t-value");
        assert_eq!(subject(SubjectStrategy::Topic, "t", None, true).unwrap(), "t-key");
        assert_eq!(
            subject(SubjectStrategy::Record, "t", Some("spate.web"), false).unwrap(),
            "spate.web"
        );
        assert_eq!(
            subject(SubjectStrategy::TopicRecord, "t", Some("spate.web"), false).unwrap(),
            "t-spate.web"
        );
        assert!(subject(SubjectStrategy::Record, "t", None, false).is_err());
    }

    #[test]
    fn replies_are_read_whole() {
        assert_eq!(
            complete(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"id\":1}", false)
                .unwrap()
                .unwrap(),
            (200, b"{\"id\":1}".to_vec())
        );
        assert!(
            complete(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"id\":1}", false).is_none()
        );
        let c = b"HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(complete(c, false).unwrap().unwrap(), (409, b"{\"a\":1}".to_vec()));
        assert!(complete(b"HTTP/1.0 200 OK\r\n\r\n{}", false).is_none());
        assert_eq!(
            complete(b"HTTP/1.0 200 OK\r\n\r\n{}", true).unwrap().unwrap(),
            (200, b"{}".to_vec())
        );
    }
}
