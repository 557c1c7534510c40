//! A small general HTTP server for the control plane and the metrics endpoint: fixed routes,
//! a bearer token, `Host` and `Origin` checks, a per-client rate limit and capped requests in
//! front of one handler. HTTP itself is hyper's (`server.rs`, ADR 017).
//!
//! It knows nothing of runs or metrics: callers give it routes and a handler.

mod auth;
mod exchange;
mod origin;
mod server;
mod shared_rate;
mod tls;

pub(crate) use auth::{load_token, require_token_off_loopback};
pub(crate) use exchange::{Handler, Reply, Request, Route};
pub(crate) use server::{ApiStats, HttpOptions, HttpServer};
pub(crate) use shared_rate::SharedRate;
pub(crate) use tls::{acceptor as tls_acceptor, TlsFiles};
