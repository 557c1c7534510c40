//! The server proper: listening, handler threads, and the gate every request passes before its
//! handler (per-client rate limit, the bearer token, routing and methods, the body cap), plus
//! its own reply counters.

use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use parking_lot::Mutex;
use serde_json::json;

use super::{auth, Handler, Reply, Request, Route};

/// Largest request body accepted (1 MiB).
const BODY_LIMIT: usize = 1 << 20;
/// Status codes counted apart in `spate_api_requests_total` (others count as "other").
const CODES: [u16; 11] = [200, 202, 400, 401, 404, 405, 409, 413, 429, 500, 503];

/// Counters of the HTTP server itself.
#[derive(Default)]
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
    /// Handler threads; a slow `POST /v1/stop` occupies one while the others keep answering.
    pub threads: usize,
}

/// The HTTP server; stops (and joins its threads) when dropped.
pub struct HttpServer {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl HttpServer {
    pub fn start(listen: &str, opts: HttpOptions, api: Arc<ApiStats>, handler: Handler) -> Result<HttpServer> {
        let addr = resolve(listen)?;
        let server = Arc::new(
            tiny_http::Server::http(addr)
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}; pick a free port or another address"))?,
        );
        let addr = server.server_addr().to_ip().unwrap_or(addr);
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Gate { opts, limiter: Mutex::new(HashMap::new()), api, handler });
        // Built first so that, if a spawn fails, dropping it releases the threads already up.
        let mut this = HttpServer { addr, server: server.clone(), stop: stop.clone(), threads: Vec::new() };
        for i in 0..shared.opts.threads.max(1) {
            let (server, stop, gate) = (server.clone(), stop.clone(), shared.clone());
            let h = std::thread::Builder::new()
                .name(format!("spate-http{i}"))
                .spawn(move || {
                    // Blocks without polling: an idle server costs no CPU. `Drop` wakes
                    // each thread with `unblock`.
                    while !stop.load(Relaxed) {
                        match server.recv() {
                            Ok(rq) => gate.serve(rq),
                            Err(_) if stop.load(Relaxed) => break,
                            Err(_) => std::thread::sleep(Duration::from_millis(10)),
                        }
                    }
                })
                .context("cannot spawn an http thread")?;
            this.threads.push(h);
        }
        Ok(this)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        // One wake-up per thread: each consumes one and sees `stop`.
        for _ in 0..self.threads.len() {
            self.server.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Resolves `host:port` to one address (the first).
fn resolve(listen: &str) -> Result<SocketAddr> {
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

/// Everything between the socket and a handler: limits, auth, routing, the body cap.
struct Gate {
    opts: HttpOptions,
    limiter: Mutex<HashMap<IpAddr, Bucket>>,
    api: Arc<ApiStats>,
    handler: Handler,
}

impl Gate {
    fn serve(&self, mut rq: tiny_http::Request) {
        let reply = self.decide(&mut rq);
        self.api.count(reply.status);
        let mut resp = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
        if let Ok(h) = tiny_http::Header::from_bytes("Content-Type", reply.content_type) {
            resp.add_header(h);
        }
        for (k, v) in reply.headers {
            if let Ok(h) = tiny_http::Header::from_bytes(k, v.as_bytes()) {
                resp.add_header(h);
            }
        }
        let _ = rq.respond(resp);
    }

    fn decide(&self, rq: &mut tiny_http::Request) -> Reply {
        let url = rq.url().to_string();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let method = rq.method().as_str().to_ascii_uppercase();
        let route = self.opts.routes.iter().find(|r| r.path == path);
        let open = route.is_some_and(|r| r.open);
        if !open {
            if let (Some(rate), Some(peer)) = (self.opts.api_rate, rq.remote_addr().map(|a| a.ip())) {
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
            if let Some(token) = &self.opts.token {
                let given = rq.headers().iter().find(|h| h.field.equiv("Authorization")).map(|h| h.value.as_str().to_string());
                if let Err(denied) = auth::check_bearer(token, given.as_deref()) {
                    return denied;
                }
            }
        }
        let Some(route) = route else {
            let known: Vec<&str> = self.opts.routes.iter().map(|r| r.path).collect();
            return Reply::error(404, format!("no such path `{path}`; the paths are {}", known.join(", ")), json!({"paths": known}));
        };
        if !route.methods.contains(&method.as_str()) {
            let allow = route.methods.join(", ");
            return Reply::error(405, format!("method {method} is not allowed on {path}; use {allow}"), json!({"allow": route.methods}))
                .with_header("Allow", allow);
        }
        let mut body = Vec::new();
        if method == "POST" || method == "PUT" {
            if rq.body_length().is_some_and(|n| n > BODY_LIMIT) {
                return too_large();
            }
            // Cap the read too: a chunked body has no declared length.
            match rq.as_reader().take(BODY_LIMIT as u64 + 1).read_to_end(&mut body) {
                Ok(_) if body.len() > BODY_LIMIT => return too_large(),
                Ok(_) => {}
                Err(e) => return Reply::error(400, format!("cannot read the request body: {e}; send it again"), json!({})),
            }
        }
        let content_type =
            rq.headers().iter().find(|h| h.field.equiv("Content-Type")).map(|h| h.value.as_str().to_ascii_lowercase()).unwrap_or_default();
        let req = Request { path: path.to_string(), query: query.to_string(), content_type, body };
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

fn too_large() -> Reply {
    Reply::error(
        413,
        format!("request body is larger than {BODY_LIMIT} bytes (1 MiB); send a smaller config"),
        json!({"limit_bytes": BODY_LIMIT}),
    )
}
