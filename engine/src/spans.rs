//! Sampled batch spans, exported to a Zipkin v2 collector (`POST /api/v2/spans`, JSON).
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
//! for. The exporter thread batches spans and posts them about once a second with a plain
//! HTTP/1.1 client (connect, write and read time-outs of 2 s), so a slow or dead collector
//! costs spans, not events.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use spate_core::clock::WallAnchor;
use crate::error::{ConfigError, EngineError};

/// The `tracing:` section of a config file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTracing {
    /// Zipkin v2 collector, e.g. `http://127.0.0.1:9411/api/v2/spans`.
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

/// Where spans go, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    /// `host:port` for connecting and for the `Host` header.
    pub authority: String,
    pub path: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let fix = "give an http:// URL of a Zipkin v2 collector, e.g. http://127.0.0.1:9411/api/v2/spans";
        let Some(rest) = url.strip_prefix("http://") else {
            let why = if url.starts_with("https://") { "https is not supported" } else { "the URL must start with http://" };
            return Err(ConfigError::new("tracing.endpoint", format!("`{url}`: {why}"), fix));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/api/v2/spans"),
        };
        let port_ok = authority.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !port_ok {
            return Err(ConfigError::new("tracing.endpoint", format!("`{url}` has no host:port"), fix));
        }
        Ok(Self { url: url.to_string(), authority: authority.to_string(), path: path.to_string() })
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

/// Spans queued for export before new ones are dropped.
const QUEUE: usize = 4096;
/// Most spans in one POST.
const POST_MAX: usize = 1000;
const POST_EVERY: Duration = Duration::from_secs(1);
const IO_TIMEOUT: Duration = Duration::from_secs(2);

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
    /// Spans dropped: the queue was full or the POST failed.
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
        let mut pending: Vec<SpanRecord> = Vec::new();
        let mut last_post = Instant::now();
        loop {
            let stopping = self.stop.load(Relaxed);
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(r) => {
                    pending.push(r);
                    pending.extend(rx.try_iter().take(POST_MAX));
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if stopping {
                pending.extend(rx.try_iter());
            }
            if !pending.is_empty() && (pending.len() >= POST_MAX || last_post.elapsed() >= POST_EVERY || stopping) {
                for chunk in pending.chunks(POST_MAX) {
                    self.post(chunk);
                }
                pending.clear();
                last_post = Instant::now();
            }
            if stopping {
                break;
            }
        }
    }

    fn post(&self, batches: &[SpanRecord]) {
        let mut spans = Vec::with_capacity(batches.len() * 5);
        for b in batches {
            zipkin_spans(b, &self.wall, &self.sink, &self.run_id, &mut spans);
        }
        let body = serde_json::to_vec(&spans).expect("spans serialize");
        match http_post(&self.endpoint, &body) {
            Ok(()) => {
                self.stats.exported.fetch_add(spans.len() as u64, Relaxed);
            }
            Err(e) => {
                self.stats.posts_failed.fetch_add(1, Relaxed);
                self.stats.dropped.fetch_add(spans.len() as u64, Relaxed);
                *self.stats.last_error.lock() = Some(format!("{}: {e}", self.endpoint.url));
            }
        }
    }
}

/// One Zipkin v2 span (the fields spate fills).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ZipkinSpan {
    pub trace_id: String,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub parent_id: Option<String>,
    pub name: String,
    pub kind: String,
    /// Epoch microseconds.
    pub timestamp: u64,
    /// Microseconds, at least 1.
    pub duration: u64,
    pub local_endpoint: LocalEndpoint,
    pub tags: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LocalEndpoint {
    pub service_name: String,
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

/// The spans of one traced batch: the root `batch` and a child per stage.
pub fn zipkin_spans(b: &SpanRecord, wall: &WallAnchor, sink: &str, run_id: &str, out: &mut Vec<ZipkinSpan>) {
    let trace_id = format!("{:032x}", b.trace_id);
    let root = span_id(b.trace_id, 0);
    let end = b.acked_ns.unwrap_or(b.written_ns);
    let us = |ns: u64| wall.unix_ns(ns) / 1000;
    let mut tags = std::collections::BTreeMap::new();
    tags.insert("events".to_string(), b.events.to_string());
    tags.insert("worker".to_string(), b.worker.to_string());
    tags.insert("sink".to_string(), sink.to_string());
    tags.insert("run_id".to_string(), run_id.to_string());
    if let Some(e) = &b.error {
        tags.insert("error".to_string(), e.clone());
    }
    let span = |id: u64, parent: Option<u64>, name: &str, from: u64, to: u64, tags| ZipkinSpan {
        trace_id: trace_id.clone(),
        id: format!("{id:016x}"),
        parent_id: parent.map(|p| format!("{p:016x}")),
        name: name.to_string(),
        kind: if name == "produce" || name == "ack" { "PRODUCER" } else { "CLIENT" }.to_string(),
        timestamp: us(from),
        duration: (to.saturating_sub(from) / 1000).max(1),
        local_endpoint: LocalEndpoint { service_name: "spate".to_string() },
        tags,
    };
    out.push(span(root, None, "batch", b.sched_ns, end, tags));
    let mut stages =
        vec![("generate", b.sched_ns, b.pushed_ns), ("ring", b.pushed_ns, b.popped_ns), ("produce", b.popped_ns, b.written_ns)];
    if let Some(a) = b.acked_ns {
        stages.push(("ack", b.written_ns, a));
    }
    for (k, (name, from, to)) in stages.into_iter().enumerate() {
        out.push(span(span_id(b.trace_id, k as u64 + 1), Some(root), name, from, to.max(from), Default::default()));
    }
}

/// A minimal HTTP/1.1 POST: one connection per post, `Connection: close`, 2xx is success.
fn http_post(ep: &Endpoint, body: &[u8]) -> Result<(), String> {
    let addr = ep
        .authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", ep.authority))?
        .next()
        .ok_or_else(|| format!("{} resolves to nothing", ep.authority))?;
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    s.set_write_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        ep.path,
        ep.authority,
        body.len()
    );
    s.write_all(head.as_bytes()).and_then(|()| s.write_all(body)).map_err(|e| format!("write: {e}"))?;
    let mut buf = [0u8; 256];
    let mut got = 0;
    while got < 12 {
        match s.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&buf[..got]);
    let code = line.split_whitespace().nth(1).and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(c) if (200..300).contains(&c) => Ok(()),
        Some(c) => Err(format!("collector answered {c}")),
        None => Err("no HTTP status line in the answer".into()),
    }
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
        assert_eq!(on.endpoint.path, "/api/v2/spans");
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
        let mut out = Vec::new();
        zipkin_spans(&r, &wall, "kafka", "run", &mut out);
        let names: Vec<&str> = out.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["batch", "generate", "ring", "produce", "ack"]);
        assert_eq!(out[0].duration, 8000);
        assert_eq!(out[0].trace_id, format!("{:032x}", 0xabc));
        let root = out[0].id.clone();
        assert!(out[1..].iter().all(|s| s.parent_id.as_deref() == Some(root.as_str())));
        let ids: std::collections::BTreeSet<_> = out.iter().map(|s| s.id.clone()).collect();
        assert_eq!(ids.len(), 5, "span ids are distinct");
        assert_eq!(out[4].duration, 7400);
    }
}
