//! The server proper: listening, a thread per connection (at most `MAX_CONNECTIONS`), and the
//! gate every request passes before its handler (per-client rate limit, the `Host` check, the
//! bearer token, routing and methods, content type and `Origin` for state changes, the body
//! cap), plus its own reply counters.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use parking_lot::Mutex;
use serde_json::json;

use super::origin::Names;
use super::wire::{self, Conn, Head, ReadError};
use super::{auth, Handler, Reply, Request, Route};

/// Connections served at once. Each holds a thread for at most the request deadline (5 s) plus
/// its handler (`POST /v1/stop` waits for a drain); more are answered 503 at once, so a crowd
/// of slow clients costs threads and memory within a fixed bound.
const MAX_CONNECTIONS: usize = 64;
/// Status codes counted apart in `spate_api_requests_total` (others count as "other").
const CODES: [u16; 17] = [200, 202, 400, 401, 403, 404, 405, 408, 409, 413, 414, 415, 421, 429, 431, 500, 503];
/// Content types a state change may carry: a run config or rate as JSON or YAML. Browsers send
/// others (forms, text/plain) across origins without asking first.
const CONFIG_TYPES: [&str; 4] = ["application/json", "application/yaml", "application/x-yaml", "text/yaml"];

/// Counters of the HTTP server itself.
#[derive(Debug, Default)]
pub struct ApiStats {
    by_code: [AtomicU64; CODES.len() + 1],
}

impl ApiStats {
    fn count(&self, status: u16) {
        let i = CODES.iter().position(|&c| c == status).unwrap_or(CODES.len());
        self.by_code[i].fetch_add(1, Relaxed);
    }

    /// Replies so far by status code label ("200", ..., "other"), for the exposition.
    pub fn by_code(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        self.by_code
            .iter()
            .enumerate()
            .map(|(i, c)| (CODES.get(i).map(|c| c.to_string()).unwrap_or_else(|| "other".into()), c.load(Relaxed)))
    }
}

pub struct HttpOptions {
    pub routes: &'static [Route],
    /// Bearer token required on every non-open route.
    pub token: Option<String>,
    /// Requests per second per client IP (token bucket, burst of one second's worth).
    pub api_rate: Option<f64>,
    /// Further names the server answers to in `Host` (`name` or `name:port`).
    pub allowed_hosts: Vec<String>,
    /// Further origins (`scheme://host[:port]`) allowed to change state.
    pub allowed_origins: Vec<String>,
}

/// The HTTP server; stops accepting (and joins its acceptor) when dropped. Requests already
/// accepted finish on their own threads.
pub struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl HttpServer {
    pub fn start(listen: &str, opts: HttpOptions, api: Arc<ApiStats>, handler: Handler) -> Result<HttpServer> {
        let addr = resolve(listen)?;
        let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}; pick a free port or another address"))?;
        let addr = listener.local_addr().unwrap_or(addr);
        let stop = Arc::new(AtomicBool::new(false));
        let names = Names::new(addr, &opts.allowed_hosts, &opts.allowed_origins);
        let gate = Arc::new(Gate { opts, names, limiter: Mutex::new(HashMap::new()), api, handler });
        let active = Arc::new(AtomicUsize::new(0));
        let stop2 = stop.clone();
        let acceptor = std::thread::Builder::new()
            .name("spate-http".into())
            .spawn(move || {
                // Blocks in accept: an idle server costs no CPU. `Drop` wakes it with a
                // connection of its own.
                for conn in listener.incoming() {
                    if stop2.load(Relaxed) {
                        break;
                    }
                    match conn {
                        Ok(s) => gate.clone().dispatch(s, &active),
                        // Out of descriptors and the like: let them free up instead of spinning.
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
            .context("cannot spawn the http thread")?;
        Ok(HttpServer { addr, stop, acceptor: Some(acceptor) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        let wake = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from((Ipv4Addr::LOCALHOST, self.addr.port())),
            IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::from((Ipv6Addr::LOCALHOST, self.addr.port())),
            _ => self.addr,
        };
        if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
            if let Some(t) = self.acceptor.take() {
                let _ = t.join();
            }
        }
        // Otherwise the acceptor stays blocked until the process exits; it holds nothing else.
    }
}

/// Resolves `host:port` to one address (the first).
pub fn resolve(listen: &str) -> Result<SocketAddr> {
    listen
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve listen address `{listen}`; write host:port, e.g. 127.0.0.1:8080"))?
        .next()
        .with_context(|| format!("listen address `{listen}` resolves to nothing; write host:port, e.g. 127.0.0.1:8080"))
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Everything between the socket and a handler: limits, names, auth, routing, the body cap.
struct Gate {
    opts: HttpOptions,
    names: Names,
    limiter: Mutex<HashMap<IpAddr, Bucket>>,
    api: Arc<ApiStats>,
    handler: Handler,
}

/// Gives a connection slot back when its thread ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl Gate {
    /// Serves `stream` on a thread of its own, or answers 503 at once when too many are open.
    fn dispatch(self: Arc<Self>, stream: TcpStream, active: &Arc<AtomicUsize>) {
        if active.fetch_add(1, Relaxed) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Relaxed);
            let busy =
                Reply::error(503, format!("the server is serving {MAX_CONNECTIONS} connections already; retry in a moment"), json!({}))
                    .with_header("Retry-After", "1");
            self.api.count(busy.status);
            let _ = stream.set_nonblocking(true);
            Conn::new(stream).respond(&busy);
            return;
        }
        let slot = Slot(active.clone());
        let spawned = std::thread::Builder::new().name("spate-http-conn".into()).spawn(move || {
            let _slot = slot;
            self.serve(stream);
        });
        // A failed spawn drops the closure, and with it the slot and the connection.
        drop(spawned);
    }

    fn serve(&self, stream: TcpStream) {
        let peer = stream.peer_addr().ok().map(|a| a.ip());
        let mut conn = Conn::new(stream);
        let reply = match conn.read_head() {
            Ok(head) => self.decide(&mut conn, &head, peer),
            Err(ReadError::Refused(r)) => r,
            Err(ReadError::Closed) => return,
        };
        self.api.count(reply.status);
        conn.respond(&reply);
    }

    fn decide(&self, conn: &mut Conn, head: &Head, peer: Option<IpAddr>) -> Reply {
        let (path, query) = head.target.split_once('?').unwrap_or((&head.target, ""));
        let method = head.method.as_str();
        let route = self.opts.routes.iter().find(|r| r.path == path);
        let open = route.is_some_and(|r| r.open);
        if !open {
            if let (Some(rate), Some(peer)) = (self.opts.api_rate, peer) {
                if let Err(wait) = self.take_token(peer, rate) {
                    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                    return Reply::error(
                        429,
                        format!("too many requests from {peer}; retry after {secs} s (limit {rate} requests/s per client)"),
                        json!({"retry_after_s": secs}),
                    )
                    .with_header("Retry-After", secs.to_string());
                }
            }
        }
        // Before the token: a page on another site, reaching this server through a name it
        // controls (DNS rebinding), is refused whatever it sends.
        if let Err(denied) = self.names.check_host(head.header("Host")) {
            return denied;
        }
        if !open {
            if let Some(token) = &self.opts.token {
                if let Err(denied) = auth::check_bearer(token, head.header("Authorization")) {
                    return denied;
                }
            }
        }
        let Some(route) = route else {
            let known: Vec<&str> = self.opts.routes.iter().map(|r| r.path).collect();
            return Reply::error(404, format!("no such path `{path}`; the paths are {}", known.join(", ")), json!({"paths": known}));
        };
        if !route.methods.contains(&method) {
            let allow = route.methods.join(", ");
            return Reply::error(405, format!("method {method} is not allowed on {path}; use {allow}"), json!({"allow": route.methods}))
                .with_header("Allow", allow);
        }
        let content_type = head.header("Content-Type").unwrap_or("").to_ascii_lowercase();
        let mut body = Vec::new();
        if method == "POST" || method == "PUT" {
            let media = content_type.split(';').next().unwrap_or("").trim();
            if !CONFIG_TYPES.contains(&media) {
                let sent = if media.is_empty() { "no Content-Type".to_string() } else { format!("Content-Type `{media}`") };
                return Reply::error(
                    415,
                    format!("{method} {path} with {sent}; send `Content-Type: application/json` (or application/yaml)"),
                    json!({"accepted": CONFIG_TYPES}),
                );
            }
            if let Err(denied) = self.names.check_origin(head.header("Origin"), head.header("Host")) {
                return denied;
            }
            match head.header("Expect") {
                None => {}
                Some(e) if e.eq_ignore_ascii_case("100-continue") => conn.send_continue(),
                Some(e) => return Reply::error(417, format!("`Expect: {e}` is not supported; send the request without it"), json!({})),
            }
            body = match conn.read_body(head, wire::BODY_LIMIT) {
                Ok(b) => b,
                Err(ReadError::Refused(r)) => return r,
                Err(ReadError::Closed) => return Reply::error(400, "the connection closed while the body was read", json!({})),
            };
        }
        let req = Request { remote: peer, path: path.to_string(), query: query.to_string(), content_type, body };
        (self.handler)(&req)
    }

    /// Token bucket per client IP: `rate` per second, burst of `rate` (at least 1).
    fn take_token(&self, ip: IpAddr, rate: f64) -> Result<(), Duration> {
        let now = Instant::now();
        let cap = rate.max(1.0);
        let mut m = self.limiter.lock();
        if m.len() > 10_000 {
            // Bound the table: forget clients whose bucket has refilled anyway.
            m.retain(|_, b| now.duration_since(b.at).as_secs_f64() * rate < cap);
        }
        let b = m.entry(ip).or_insert(Bucket { tokens: cap, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(cap);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }
}
