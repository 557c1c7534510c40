//! What a handler sees and returns: a [`Request`] (its body read and capped), a [`Reply`]; the
//! [`Route`]s a server answers and the [`Handler`] behind them.

use std::sync::Arc;

use serde_json::{Map, Value};

/// A request as handlers see it: the body is already read (and capped).
pub(crate) struct Request {
    /// The client's address.
    pub remote: Option<std::net::IpAddr>,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Request {
    /// Value of `name` in the query string (no percent-decoding: values here are plain words).
    pub(crate) fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

pub(crate) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub(crate) fn json(status: u16, v: &Value) -> Reply {
        let mut body = serde_json::to_vec_pretty(v).unwrap_or_default();
        body.push(b'\n');
        Reply { status, content_type: "application/json", body, headers: Vec::new() }
    }

    /// `{"error": message, ...extra}`.
    pub(crate) fn error(status: u16, message: impl Into<String>, extra: Value) -> Reply {
        let mut m = Map::new();
        m.insert("error".into(), Value::String(message.into()));
        if let Value::Object(o) = extra {
            m.extend(o);
        }
        Reply::json(status, &Value::Object(m))
    }

    pub(crate) fn text(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
        Reply { status, content_type, body: body.into(), headers: Vec::new() }
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// A path and the methods it answers. `open` paths need no token (liveness probes).
pub(crate) struct Route {
    pub path: &'static str,
    pub methods: &'static [&'static str],
    pub open: bool,
}

pub(crate) type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;
