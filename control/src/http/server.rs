//! The server proper, on hyper 1.x (ADR 017): listening, the connection limits, and the gate
//! every request passes before its handler (per-client rate limit, the `Host` check, the bearer
//! token, routing and methods, content type and `Origin` for state changes, the body cap), plus
//! its own reply counters.
//!
//! Limits, each enforced where the bytes are read:
//! - the head (request line and headers) at most 16 KiB (hyper answers 431 and closes), the
//!   request target at most 4 KiB (414), within 5 s of the connection being accepted (hyper
//!   closes a stalled head); the body at most 1 MiB (413), within the same 5 s (408);
//! - one request per connection; at most 64 connections, 8 per client address; 4 more slots
//!   serve only `/healthz` and `/readyz`, so probes are answered while slow clients hold every
//!   other slot; beyond that, 503 at once.
//!
//! The handlers are the callers' plain functions: each runs on a blocking thread of the
//! server's own small tokio runtime, which lives on one thread of its own, so the control plane
//! answers while the workers run flat out and never shares a thread with them.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::auth;
use super::exchange::{Handler, Reply, Request, Route};
use super::origin::Names;

/// Largest request head (request line and headers).
pub(super) const HEAD_LIMIT: usize = 16 << 10;
/// Longest request target (path and query).
pub(super) const URL_LIMIT: usize = 4 << 10;
/// Largest request body.
pub(super) const BODY_LIMIT: usize = 1 << 20;
/// How much of a body too large is read and dropped before answering 413.
const DRAIN_LIMIT: usize = 4 << 20;
/// Time from accepting a connection to having read the whole request.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once, and per client address.
const MAX_CONNECTIONS: usize = 64;
const MAX_PER_CLIENT: usize = 8;
/// Slots that only the probes (`open` routes) may use.
const PROBE_SLOTS: usize = 4;
/// Longest life of one connection, whatever its handler does (`POST /v1/stop` waits 1 s).
const CONNECTION_LIMIT: Duration = Duration::from_secs(30);
/// How long in-flight requests may finish when the server stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Status codes counted apart in `spate_api_requests_total` (others count as "other").
const CODES: [u16; 17] =
    [200, 202, 400, 401, 403, 404, 405, 408, 409, 413, 414, 415, 421, 429, 431, 500, 503];
/// Content types a state change may carry: a run config or rate as JSON or YAML. Browsers send
/// others (forms, text/plain) across origins without asking first.
const CONFIG_TYPES: [&str; 4] =
    ["application/json", "application/yaml", "application/x-yaml", "text/yaml"];

/// Counters of the HTTP server itself.
#[derive(Debug, Default)]
pub(crate) struct ApiStats {
    by_code: [AtomicU64; CODES.len() + 1],
}

impl ApiStats {
    fn count(&self, status: u16) {
        let i = CODES.iter().position(|&c| c == status).unwrap_or(CODES.len());
        self.by_code[i].fetch_add(1, Relaxed);
    }

    /// Replies so far by status code label ("200", ..., "other"), for the exposition.
    pub(crate) fn by_code(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        self.by_code.iter().enumerate().map(|(i, c)| {
            (
                CODES.get(i).map_or_else(|| "other".into(), std::string::ToString::to_string),
                c.load(Relaxed),
            )
        })
    }
}

pub(crate) struct HttpOptions {
    pub routes: &'static [Route],
    /// Bearer token required on every non-open route (the control token: every route).
    pub token: Option<String>,
    /// A second token that may only `GET` (status and metrics).
    pub read_token: Option<String>,
    /// Requests per second per client IP (token bucket, burst of one second's worth).
    pub api_rate: Option<f64>,
    /// The same limit shared with other instances through Redis (`shared_rate.rs`).
    pub shared_rate: Option<Arc<super::shared_rate::SharedRate>>,
    /// Further names the server answers to in `Host` (`name` or `name:port`).
    pub allowed_hosts: Vec<String>,
    /// Further origins (`scheme://host[:port]`) allowed to change state.
    pub allowed_origins: Vec<String>,
    /// Serve over TLS (`tls.rs`): the handshake is done within the request's 5 s.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// The HTTP server; stops (in-flight requests get up to 2 s) and joins its thread when dropped.
pub(crate) struct HttpServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    pub(crate) fn start(
        listen: &str,
        opts: HttpOptions,
        api: Arc<ApiStats>,
        handler: Handler,
    ) -> Result<HttpServer> {
        let addr = resolve(listen)?;
        // Bound here, so a taken port is the caller's error, not the server thread's.
        let listener = std::net::TcpListener::bind(addr).with_context(|| {
            format!("cannot listen on {addr}; pick a free port or another address")
        })?;
        listener.set_nonblocking(true).context("cannot make the listener non-blocking")?;
        let addr = listener.local_addr().unwrap_or(addr);
        let names =
            Names::new(addr, &opts.allowed_hosts, &opts.allowed_origins, opts.tls.is_some());
        let gate =
            Arc::new(Gate { opts, names, limiter: Mutex::new(HashMap::new()), api, handler });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            // A blocking thread for every request that can be in a handler: a probe never queues
            // behind slow handlers.
            .max_blocking_threads(MAX_CONNECTIONS + PROBE_SLOTS + 1)
            .thread_name("spate-http-handler")
            .build()
            .context("cannot start the HTTP runtime")?;
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("spate-http".into())
            .spawn(move || {
                rt.block_on(serve(listener, gate, stopped));
                // A handler still running (a drain) is not waited for past this.
                rt.shutdown_timeout(Duration::from_millis(100));
            })
            .context("cannot spawn the http thread")?;
        Ok(HttpServer { addr, stop, thread: Some(thread) })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            // Bounded: the accept loop stops at once, in-flight requests get SHUTDOWN_GRACE.
            let _ = t.join();
        }
    }
}

/// Resolves `host:port` to one address (the first).
pub(super) fn resolve(listen: &str) -> Result<SocketAddr> {
    listen
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve listen address `{listen}`; write host:port, e.g. 127.0.0.1:8080"))?
        .next()
        .with_context(|| format!("listen address `{listen}` resolves to nothing; write host:port, e.g. 127.0.0.1:8080"))
}

/// Connections per client address; a guard gives one back when dropped.
#[derive(Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

struct ClientGuard(Arc<PerClient>, IpAddr);

impl PerClient {
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<ClientGuard> {
        let mut m = self.0.lock();
        let n = m.entry(ip).or_insert(0);
        if *n >= MAX_PER_CLIENT {
            return None;
        }
        *n += 1;
        Some(ClientGuard(self.clone(), ip))
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let mut m = (self.0).0.lock();
        if let Some(n) = m.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

/// The slot a connection holds for its life: a full one, or a probe-only one.
enum Slot {
    Full(#[allow(dead_code)] OwnedSemaphorePermit, #[allow(dead_code)] ClientGuard),
    ProbesOnly(#[allow(dead_code)] OwnedSemaphorePermit),
}

async fn serve(
    listener: std::net::TcpListener,
    gate: Arc<Gate>,
    mut stopped: watch::Receiver<bool>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    let full = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let probes = Arc::new(Semaphore::new(PROBE_SLOTS));
    let clients = Arc::new(PerClient::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_TIMEOUT)
        // The read buffer and the head: beyond them hyper answers 431 and closes.
        .max_buf_size(HEAD_LIMIT)
        .max_headers(100)
        .keep_alive(false);
    let builder = Arc::new(builder);
    loop {
        let (stream, peer) = tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of descriptors and the like: let them free up instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        // A client at its own cap is refused; the probe slots are for when every full slot is
        // held, so that one client cannot take them too.
        let slot = match full.clone().try_acquire_owned() {
            Ok(p) => clients.take(peer.ip()).map(|g| Slot::Full(p, g)),
            Err(_) => probes.clone().try_acquire_owned().ok().map(Slot::ProbesOnly),
        };
        let Some(slot) = slot else {
            gate.api.count(503);
            // Over TLS nothing can be said before a handshake: the connection is closed.
            if gate.opts.tls.is_none() {
                // Every slot is held: say so at once, without reading the request.
                let busy =
                    format!("{MAX_CONNECTIONS} connections are served already; retry in a moment");
                let body = Reply::error(503, busy, json!({})).body;
                let head = format!(
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                // An empty socket buffer takes this small write whole.
                let _ = stream.try_write(&[head.as_bytes(), &body].concat());
            }
            continue;
        };
        let probes_only = matches!(slot, Slot::ProbesOnly(_));
        let accepted = Instant::now();
        let g = gate.clone();
        // The slot is freed as soon as the reply is made (one request per connection), not when
        // the connection's task ends a moment after the client has read it: a client that
        // probes again at once must not meet its own last slot still held.
        let held = Arc::new(std::sync::Mutex::new(Some(slot)));
        let in_service = held.clone();
        let svc = service_fn(move |req| {
            let g = g.clone();
            let held = in_service.clone();
            async move {
                let reply = g.answer(req, peer.ip(), probes_only, accepted).await;
                drop(held.lock().ok().and_then(|mut s| s.take()));
                Ok::<_, Infallible>(reply)
            }
        });
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let tls = gate.opts.tls.clone();
        tokio::spawn(async move {
            let served = async {
                match tls {
                    None => {
                        let _ = watcher
                            .watch(builder.serve_connection(TokioIo::new(stream), svc))
                            .await;
                    }
                    Some(tls) => {
                        // The handshake shares the request's deadline: a client that stalls in
                        // it holds its slot no longer than one that stalls in its head.
                        let left = REQUEST_TIMEOUT.saturating_sub(accepted.elapsed());
                        if let Ok(Ok(s)) = tokio::time::timeout(left, tls.accept(stream)).await {
                            let _ =
                                watcher.watch(builder.serve_connection(TokioIo::new(s), svc)).await;
                        }
                    }
                }
            };
            let _ = tokio::time::timeout(CONNECTION_LIMIT, served).await;
            drop(held);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
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

fn response(reply: Reply) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::from(reply.body)));
    *r.status_mut() = hyper::StatusCode::from_u16(reply.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    h.insert(CONNECTION, HeaderValue::from_static("close"));
    for (k, v) in reply.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(&v)) {
            h.insert(k, v);
        }
    }
    r
}

impl Gate {
    async fn answer(
        self: Arc<Self>,
        req: hyper::Request<Incoming>,
        peer: IpAddr,
        probes_only: bool,
        accepted: Instant,
    ) -> hyper::Response<Full<Bytes>> {
        let reply = self.clone().decide(req, peer, probes_only, accepted).await;
        self.api.count(reply.status);
        response(reply)
    }

    async fn decide(
        self: Arc<Self>,
        req: hyper::Request<Incoming>,
        peer: IpAddr,
        probes_only: bool,
        accepted: Instant,
    ) -> Reply {
        let target_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
        if target_len > URL_LIMIT {
            return Reply::error(
                414,
                format!(
                    "the request target is {target_len} bytes; at most {URL_LIMIT} are accepted"
                ),
                json!({}),
            );
        }
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let method = req.method().as_str().to_string();
        let header =
            |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let route = self.opts.routes.iter().find(|r| r.path == path);
        let open = route.is_some_and(|r| r.open);
        if probes_only && !open {
            return Reply::error(
                503,
                format!("{MAX_CONNECTIONS} connections are served already; retry in a moment"),
                json!({}),
            )
            .with_header("Retry-After", "1");
        }
        if !open {
            if let Some(rate) = self.opts.api_rate {
                let shared = match self.opts.shared_rate.clone() {
                    Some(s) => {
                        tokio::task::spawn_blocking(move || s.take(peer)).await.ok().flatten()
                    }
                    None => None,
                };
                if let Err(wait) = shared.unwrap_or_else(|| self.take_token(peer, rate)) {
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
        // controls (DNS rebinding), is refused whatever it sends. An absolute-form target
        // names the host itself.
        let host = header("Host").or_else(|| req.uri().authority().map(|a| a.as_str().to_string()));
        if let Err(denied) = self.names.check_host(host.as_deref()) {
            return denied;
        }
        if !open {
            let authz = header("Authorization");
            if let Err(denied) = auth::check_scoped(
                self.opts.token.as_deref(),
                self.opts.read_token.as_deref(),
                authz.as_deref(),
                method == "GET" || method == "HEAD",
            ) {
                return denied;
            }
        }
        let Some(route) = route else {
            let known: Vec<&str> = self.opts.routes.iter().map(|r| r.path).collect();
            return Reply::error(
                404,
                format!("no such path `{path}`; the paths are {}", known.join(", ")),
                json!({"paths": known}),
            );
        };
        if !route.methods.contains(&method.as_str()) {
            let allow = route.methods.join(", ");
            return Reply::error(
                405,
                format!("method {method} is not allowed on {path}; use {allow}"),
                json!({"allow": route.methods}),
            )
            .with_header("Allow", allow);
        }
        let content_type = header("Content-Type").unwrap_or_default().to_ascii_lowercase();
        let mut body = Vec::new();
        if method == "POST" || method == "PUT" {
            let media = content_type.split(';').next().unwrap_or("").trim();
            if !CONFIG_TYPES.contains(&media) {
                let sent = if media.is_empty() {
                    "no Content-Type".to_string()
                } else {
                    format!("Content-Type `{media}`")
                };
                return Reply::error(
                    415,
                    format!("{method} {path} with {sent}; send `Content-Type: application/json` (or application/yaml)"),
                    json!({"accepted": CONFIG_TYPES}),
                );
            }
            if let Err(denied) =
                self.names.check_origin(header("Origin").as_deref(), host.as_deref())
            {
                return denied;
            }
            if let Some(e) = header("Expect").filter(|e| !e.eq_ignore_ascii_case("100-continue")) {
                return Reply::error(
                    417,
                    format!("`Expect: {e}` is not supported; send the request without it"),
                    json!({}),
                );
            }
            body = match read_body(req.into_body(), accepted).await {
                Ok(b) => b,
                Err(r) => return r,
            };
        }
        let rq = Request { remote: Some(peer), path, query, content_type, body };
        let handler = self.handler.clone();
        match tokio::task::spawn_blocking(move || handler(&rq)).await {
            Ok(r) => r,
            Err(_) => Reply::error(500, "the handler failed", json!({})),
        }
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

/// The body, at most [`BODY_LIMIT`] bytes (hyper bounds chunked framing and extensions itself),
/// read by [`REQUEST_TIMEOUT`] after the connection was accepted. Frames are copied into one
/// buffer as they come: memory stays at the body's size whatever the framing. A body too large
/// is read on and dropped, up to [`DRAIN_LIMIT`], before the 413 is sent: closing a socket with
/// unread data resets the connection, which can destroy the answer in flight.
async fn read_body(mut body: Incoming, accepted: Instant) -> Result<Vec<u8>, Reply> {
    let declared = hyper::body::Body::size_hint(&body).exact();
    let left = REQUEST_TIMEOUT.saturating_sub(accepted.elapsed());
    let read = async {
        let mut out = Vec::new();
        let mut seen = 0u64;
        let keep = declared.is_none_or(|n| n <= BODY_LIMIT as u64);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                Reply::error(400, format!("the request body could not be read: {e}"), json!({}))
            })?;
            if let Some(d) = frame.data_ref() {
                seen += d.len() as u64;
                if keep && seen <= BODY_LIMIT as u64 {
                    out.extend_from_slice(d);
                } else if seen > DRAIN_LIMIT as u64 {
                    break;
                }
            }
        }
        Ok((out, seen))
    };
    match tokio::time::timeout(left, read).await {
        Ok(Ok((_, seen))) if seen > BODY_LIMIT as u64 => Err(too_large()),
        Ok(Ok(_)) if declared.is_some_and(|n| n > BODY_LIMIT as u64) => Err(too_large()),
        Ok(r) => r.map(|(out, _)| out),
        // Too large and too slow: the size is what the client can fix.
        Err(_) if declared.is_some_and(|n| n > BODY_LIMIT as u64) => Err(too_large()),
        Err(_) => Err(Reply::error(
            408,
            format!(
                "the request did not arrive within {} s of connecting; send it whole, promptly",
                REQUEST_TIMEOUT.as_secs()
            ),
            json!({}),
        )),
    }
}

fn too_large() -> Reply {
    Reply::error(
        413,
        format!("the body is larger than 1 MiB ({BODY_LIMIT} bytes); send a smaller config"),
        json!({"limit": BODY_LIMIT}),
    )
}
