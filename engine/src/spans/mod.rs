//! Sampled batch spans, exported through the OpenTelemetry SDK: OTLP over HTTP (protobuf, the
//! convention of today's collectors: `http://HOST:4318/v1/traces`) or, for a URL ending in
//! `/api/v2/spans`, to a Zipkin v2 collector (`export.rs`).
//!
//! One batch in every `1/sample` is traced; a traced batch yields a root span `batch` (from the
//! time its first event was scheduled to its end) with children for each stage it crossed:
//! `generate` (worker) → `ring` (waiting for the flush thread) → `produce` (handed to the sink)
//! → `ack` (Kafka: until the delivery report of the batch's last record). The trace id is the
//! first event's W3C trace id, so the batch span sits in the same trace as that event's
//! `traceparent` header downstream.
//!
//! Cost: when tracing is off nothing is started and a worker pays one integer compare per batch
//! (`Sampler::hit` with `every == 0`). When on, a sampled batch costs three clock reads and one
//! `try_send` on a bounded channel; spans that do not fit are dropped and counted, never waited
//! for. The exporter thread turns records into SDK spans; the SDK's batch processor posts them
//! about twice a second, each request bounded by 2 s, so a slow or dead collector costs spans,
//! not events.

mod export;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use spate_core::clock::WallAnchor;
use crate::error::{ConfigError, EngineError};

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
        Ok(Some(TracingConfig { endpoint, sample, sample_every: (1.0 / sample).round().max(1.0) as u64 }))
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
    pub protocol: Protocol,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let fix = "give an http:// URL of an OTLP collector (http://127.0.0.1:4318/v1/traces) or a Zipkin one (.../api/v2/spans)";
        let Some(rest) = url.strip_prefix("http://") else {
            let why = if url.starts_with("https://") { "https is not supported" } else { "the URL must start with http://" };
            return Err(ConfigError::new("tracing.endpoint", format!("`{url}`: {why}"), fix));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let port = authority.rsplit_once(':').filter(|(h, _)| !h.is_empty()).and_then(|(_, p)| p.parse::<u16>().ok()).filter(|p| *p > 0);
        let Some(port) = port else {
            return Err(ConfigError::new("tracing.endpoint", format!("`{url}` has no host:port"), fix));
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
    pub endpoint: Endpoint,
    pub sample: f64,
    /// Trace one batch in this many.
    pub sample_every: u64,
}

/// Per-batch stage times of a sampled batch (monotonic ns); all zero when not sampled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchTrace {
    pub sampled: bool,
    /// The worker pushed it into its ring.
    pub pushed_ns: u64,
    /// The flush thread took it out.
    pub popped_ns: u64,
}

/// A worker's sampling decision: every `every`-th batch (0 = tracing off). Deterministic on
/// purpose: no random draw on the hot path, and the spacing is even.
#[derive(Debug, Clone, Copy)]
pub struct Sampler {
    every: u64,
    n: u64,
}

impl Sampler {
    /// `phase` spreads workers so they do not all sample the same batch number.
    pub fn new(every: u64, phase: u64) -> Self {
        Self { every, n: if every == 0 { 0 } else { phase % every } }
    }

    #[inline]
    pub fn hit(&mut self) -> bool {
        if self.every == 0 {
            return false;
        }
        self.n += 1;
        if self.n >= self.every {
            self.n = 0;
            true
        } else {
            false
        }
    }
}

/// A finished batch's timeline, sent to the exporter.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    pub trace_id: u128,
    pub worker: u16,
    pub events: u32,
    pub sched_ns: u64,
    pub pushed_ns: u64,
    pub popped_ns: u64,
    /// The sink took the batch's last event.
    pub written_ns: u64,
    /// The last event's acknowledgement (Kafka); `None` for sinks without acks.
    pub acked_ns: Option<u64>,
    /// `None` when delivered; the error otherwise.
    pub error: Option<String>,
}

/// Batches queued for export (and spans in the SDK's queue) before new ones are dropped.
const QUEUE: usize = 4096;
/// Records turned into spans per wake-up of the exporter thread.
const POST_MAX: usize = 1000;
/// How long the last spans may take to be posted at the end of a run.
const SHUTDOWN: Duration = Duration::from_secs(3);

/// The run's span exporter. Its counters are shown by status and metrics.
pub struct Tracer {
    pub config: TracingConfig,
    tx: SyncSender<SpanRecord>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    pub stats: Arc<SpanStats>,
}

#[derive(Debug, Default)]
pub struct SpanStats {
    /// Spans (not batches) accepted by the collector.
    pub exported: AtomicU64,
    /// Spans dropped: a queue was full or the POST failed.
    pub dropped: AtomicU64,
    pub posts_failed: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

impl Tracer {
    pub fn start(config: TracingConfig, wall: WallAnchor, sink: String, run_id: String) -> Result<Arc<Self>, EngineError> {
        let (tx, rx) = sync_channel(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(SpanStats::default());
        let exporter = Exporter { endpoint: config.endpoint.clone(), wall, sink, run_id, stats: stats.clone(), stop: stop.clone() };
        let thread = std::thread::Builder::new()
            .name("spate-spans".into())
            .spawn(move || exporter.run(rx))
            .map_err(|source| EngineError::Spawn { name: "spate-spans".into(), source })?;
        Ok(Arc::new(Self { config, tx, stop, thread: Mutex::new(Some(thread)), stats }))
    }

    pub fn sampler(&self, phase: u64) -> Sampler {
        Sampler::new(self.config.sample_every, phase)
    }

    /// Queues a finished batch; never blocks.
    pub fn submit(&self, rec: SpanRecord) {
        match self.tx.try_send(rec) {
            Ok(()) => {}
            Err(TrySendError::Full(r)) | Err(TrySendError::Disconnected(r)) => {
                self.stats.dropped.fetch_add(spans_of(&r), Relaxed);
            }
        }
    }

    /// Posts what is queued and stops the exporter (bounded by its I/O time-outs).
    pub fn finish(&self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

struct Exporter {
    endpoint: Endpoint,
    wall: WallAnchor,
    sink: String,
    run_id: String,
    stats: Arc<SpanStats>,
    stop: Arc<AtomicBool>,
}

impl Exporter {
    fn run(self, rx: Receiver<SpanRecord>) {
        let sdk = export::Sdk::new(&self.endpoint, QUEUE, self.stats.clone());
        loop {
            let stopping = self.stop.load(Relaxed);
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(r) => {
                    self.emit(&sdk, &r);
                    for r in rx.try_iter().take(POST_MAX) {
                        self.emit(&sdk, &r);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if stopping {
                for r in rx.try_iter() {
                    self.emit(&sdk, &r);
                }
                break;
            }
        }
        // Posts what is left, within the export time-out.
        sdk.shutdown(SHUTDOWN);
    }

    fn emit(&self, sdk: &export::Sdk, r: &SpanRecord) {
        sdk.emit(&stages(r, &self.wall, &self.sink, &self.run_id), r.error.as_deref());
    }
}

/// One span of a traced batch, ready for any protocol: ids, name, wall-clock times (Unix ns).
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub trace_id: u128,
    pub span_id: u64,
    /// None for the root.
    pub parent: Option<u64>,
    pub name: &'static str,
    pub start_unix_ns: u64,
    pub end_unix_ns: u64,
    /// (key, value) attributes: the root carries the batch's.
    pub attributes: Vec<(&'static str, String)>,
}

/// Spans a traced batch yields: the root and one per stage.
fn spans_of(r: &SpanRecord) -> u64 {
    if r.acked_ns.is_some() {
        5
    } else {
        4
    }
}

/// Span ids derived from the trace id through splitmix64, distinct per stage and never zero.
fn span_id(trace_id: u128, stage: u64) -> u64 {
    let x = (trace_id as u64) ^ ((trace_id >> 64) as u64).rotate_left(17) ^ stage.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    spate_core::rng::splitmix64(x).max(1)
}

/// The spans of one traced batch: the root `batch` and a child per stage it crossed.
pub fn stages(b: &SpanRecord, wall: &WallAnchor, sink: &str, run_id: &str) -> Vec<Stage> {
    let root = span_id(b.trace_id, 0);
    let end = b.acked_ns.unwrap_or(b.written_ns);
    let mut attributes = vec![("events", b.events.to_string()), ("worker", b.worker.to_string()), ("sink", sink.to_string()), ("run_id", run_id.to_string())];
    if let Some(e) = &b.error {
        attributes.push(("error", e.clone()));
    }
    let at = |ns: u64| wall.unix_ns(ns);
    let mut out = vec![Stage {
        trace_id: b.trace_id,
        span_id: root,
        parent: None,
        name: "batch",
        start_unix_ns: at(b.sched_ns),
        end_unix_ns: at(end.max(b.sched_ns)),
        attributes,
    }];
    let mut steps = vec![("generate", b.sched_ns, b.pushed_ns), ("ring", b.pushed_ns, b.popped_ns), ("produce", b.popped_ns, b.written_ns)];
    if let Some(a) = b.acked_ns {
        steps.push(("ack", b.written_ns, a));
    }
    for (k, (name, from, to)) in steps.into_iter().enumerate() {
        out.push(Stage {
            trace_id: b.trace_id,
            span_id: span_id(b.trace_id, k as u64 + 1),
            parent: Some(root),
            name,
            start_unix_ns: at(from),
            end_unix_ns: at(to.max(from)),
            attributes: Vec::new(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_hits_every_nth_and_off_never() {
        let mut s = Sampler::new(4, 0);
        let hits: Vec<bool> = (0..8).map(|_| s.hit()).collect();
        assert_eq!(hits, [false, false, false, true, false, false, false, true]);
        let mut off = Sampler::new(0, 3);
        assert!((0..100).all(|_| !off.hit()));
        let mut all = Sampler::new(1, 0);
        assert!((0..10).all(|_| all.hit()));
    }

    #[test]
    fn config_errors_name_the_key() {
        let bad = RawTracing { endpoint: Some("https://x:1".into()), sample: None }.validate().unwrap_err();
        assert_eq!(bad.key, "tracing.endpoint");
        assert!(bad.message.contains("https"));
        let bad = RawTracing { endpoint: Some("http://nohost".into()), sample: None }.validate().unwrap_err();
        assert!(bad.message.contains("host:port"));
        let bad = RawTracing { endpoint: Some("http://a:9411".into()), sample: Some(1.5) }.validate().unwrap_err();
        assert_eq!(bad.key, "tracing.sample");
        let off = RawTracing { endpoint: None, sample: Some(0.5) }.validate().unwrap();
        assert!(off.is_none());
        let on = RawTracing { endpoint: Some("http://127.0.0.1:9411".into()), sample: Some(0.25) }.validate().unwrap().unwrap();
        assert_eq!(on.sample_every, 4);
        assert_eq!((on.endpoint.url.as_str(), on.endpoint.protocol), ("http://127.0.0.1:9411/api/v2/spans", Protocol::Zipkin));
        let otlp = Endpoint::parse("http://127.0.0.1:4318").unwrap();
        assert_eq!((otlp.url.as_str(), otlp.protocol), ("http://127.0.0.1:4318/v1/traces", Protocol::Otlp));
        assert_eq!(Endpoint::parse("http://c:80/otlp/v1/traces").unwrap().protocol, Protocol::Otlp);
    }

    #[test]
    fn a_kafka_batch_gives_a_root_and_four_stages() {
        let wall = WallAnchor::new(&spate_core::clock::FakeClock::new());
        let r = SpanRecord {
            trace_id: 0xabc,
            worker: 1,
            events: 64,
            sched_ns: 1_000_000,
            pushed_ns: 1_200_000,
            popped_ns: 1_500_000,
            written_ns: 1_600_000,
            acked_ns: Some(9_000_000),
            error: None,
        };
        let out = stages(&r, &wall, "kafka", "run");
        let names: Vec<&str> = out.iter().map(|s| s.name).collect();
        assert_eq!(names, ["batch", "generate", "ring", "produce", "ack"]);
        assert_eq!(out[0].end_unix_ns - out[0].start_unix_ns, 8_000_000);
        assert!(out.iter().all(|s| s.trace_id == 0xabc));
        let root = out[0].span_id;
        assert!(out[1..].iter().all(|s| s.parent == Some(root)));
        let ids: std::collections::BTreeSet<_> = out.iter().map(|s| s.span_id).collect();
        assert_eq!(ids.len(), 5, "span ids are distinct");
        assert_eq!(out[4].end_unix_ns - out[4].start_unix_ns, 7_400_000);
    }
}
