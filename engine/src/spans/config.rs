//! The `tracing:` section: where spans go (an OTLP or a Zipkin collector) and how many batches
//! are traced.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The `tracing:` section of a config file: where spans go.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTracing {
    /// The collector: OTLP/HTTP, e.g. `http://127.0.0.1:4318/v1/traces` (a URL without a path
    /// gets `/v1/traces`), or Zipkin v2 for a URL ending in `/api/v2/spans` (or on port 9411
    /// without a path).
    pub endpoint: Option<String>,
    /// Fraction of batches traced, from 0.000001 to 1. Default 0.01.
    pub sample: Option<f64>,
}

impl RawTracing {
    /// `None` when no endpoint is set (tracing off).
    pub fn validate(&self) -> Result<Option<TracingConfig>, ConfigError> {
        let sample = self.sample.unwrap_or(0.01);
        if !(sample > 0.0 && sample <= 1.0) || sample < 1e-6 {
            return Err(ConfigError::new(
                "tracing.sample",
                format!("{sample} is not a sampling ratio"),
                "give the fraction of batches to trace, from 0.000001 to 1 (default 0.01)",
            ));
        }
        let Some(url) = &self.endpoint else { return Ok(None) };
        let endpoint = Endpoint::parse(url)?;
        Ok(Some(TracingConfig {
            endpoint,
            sample,
            sample_every: (1.0 / sample).round().max(1.0) as u64,
        }))
    }
}

/// The protocol spans are exported with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP over HTTP, protobuf (`/v1/traces`).
    Otlp,
    /// Zipkin v2 JSON (`/api/v2/spans`).
    Zipkin,
}

/// Where spans go, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The full URL posted to.
    pub url: String,
    /// The protocol spans are exported with.
    pub protocol: Protocol,
}

impl Endpoint {
    /// Parses an `http://HOST:PORT[/path]` URL; the protocol follows from the path (or port 9411),
    /// and a URL without a path gets the protocol's default one.
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let fix = "give an http:// URL of an OTLP collector (http://127.0.0.1:4318/v1/traces) or a Zipkin one (.../api/v2/spans)";
        let Some(rest) = url.strip_prefix("http://") else {
            let why = if url.starts_with("https://") {
                "https is not supported"
            } else {
                "the URL must start with http://"
            };
            return Err(ConfigError::new("tracing.endpoint", format!("`{url}`: {why}"), fix));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let port = authority
            .rsplit_once(':')
            .filter(|(h, _)| !h.is_empty())
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .filter(|p| *p > 0);
        let Some(port) = port else {
            return Err(ConfigError::new(
                "tracing.endpoint",
                format!("`{url}` has no host:port"),
                fix,
            ));
        };
        let (path, protocol) = match path {
            "" | "/" if port == 9411 => ("/api/v2/spans", Protocol::Zipkin),
            "" | "/" => ("/v1/traces", Protocol::Otlp),
            p if p.trim_end_matches('/').ends_with("/api/v2/spans") => (p, Protocol::Zipkin),
            p => (p, Protocol::Otlp),
        };
        Ok(Self { url: format!("http://{authority}{path}"), protocol })
    }
}

/// Validated tracing settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    /// Where spans go.
    pub endpoint: Endpoint,
    /// Fraction of batches traced, from 0.000001 to 1.
    pub sample: f64,
    /// Trace one batch in this many.
    pub sample_every: u64,
}
