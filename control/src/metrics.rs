//! Observability at the edge: Prometheus text exposition (format 0.0.4), the status document,
//! and the small HTTP server that serves them for `spate serve` and `spate run --metrics-listen`.
//!
//! Nothing here touches the hot path. Every number is read at scrape time from the per-thread
//! counters the engine already publishes once per batch (`stats.rs`), or from a 4 Hz observer
//! thread that derives rates and the batch-size histogram from those same counters. No metric
//! is updated per event.
//!
//! Request handling runs on its own threads (tiny_http accepts and parses on its pool, a few
//! handler threads here), so the control plane keeps answering while the workers run flat out.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use spate_engine::breaker::State as BreakerState;
use spate_engine::run::RunShared;
use spate_engine::RunConfig;

/// Content type of the Prometheus text format.
pub const PROM_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Largest request body accepted (1 MiB).
pub const BODY_LIMIT: usize = 1 << 20;
/// How often the observer samples the counters (rates, batch-size histogram, breaker timer).
pub const TICK: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric family: its name, type and help text.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

const fn def(name: &'static str, kind: Kind, help: &'static str) -> MetricDef {
    MetricDef { name, kind, help }
}

// The catalogue: every metric spate exports, in exposition order. Names and help texts live
// only here, so the dashboard, the alert rules and the docs have one place to look.
pub const BUILD_INFO: MetricDef = def("spate_build_info", Kind::Gauge, "Always 1; the version label is the spate version.");
pub const RUN_ACTIVE: MetricDef = def("spate_run_active", Kind::Gauge, "1 while a run is generating or draining, 0 otherwise.");
pub const RUN_INFO: MetricDef = def("spate_run_info", Kind::Gauge, "Always 1 for the current or last run; labels identify it.");
pub const RUN_ELAPSED: MetricDef = def("spate_run_elapsed_seconds", Kind::Gauge, "Seconds since the current or last run started.");
pub const THREADS: MetricDef = def("spate_worker_threads", Kind::Gauge, "Worker threads of the run.");
pub const TARGET_RATE: MetricDef =
    def("spate_target_rate", Kind::Gauge, "Target generation rate in events per second; 0 means max (no limit).");
pub const CURRENT_RATE: MetricDef = def("spate_current_rate", Kind::Gauge, "Events generated per second over the last second.");
pub const GENERATED: MetricDef = def("spate_events_generated_total", Kind::Counter, "Events generated.");
pub const DELIVERED: MetricDef = def("spate_events_delivered_total", Kind::Counter, "Events the sink confirmed (Kafka: acknowledged).");
pub const SHED: MetricDef =
    def("spate_events_shed_total", Kind::Counter, "Events dropped on purpose under backpressure policy shed (includes rejected).");
pub const REJECTED: MetricDef =
    def("spate_events_rejected_total", Kind::Counter, "Events rejected because the circuit breaker was open (part of shed).");
pub const FAILED: MetricDef = def("spate_events_failed_total", Kind::Counter, "Events that could not be delivered nor dead-lettered.");
pub const DEAD_LETTERED: MetricDef =
    def("spate_events_dead_lettered_total", Kind::Counter, "Events written to the dead-letter topic or file.");
pub const RETRIED: MetricDef = def("spate_events_retried_total", Kind::Counter, "Send attempts retried by spate after a retriable error.");
pub const IN_FLIGHT: MetricDef =
    def("spate_events_in_flight", Kind::Gauge, "Events generated without an outcome yet (in rings or awaiting an ack).");
pub const GENERATED_BYTES: MetricDef = def("spate_generated_bytes_total", Kind::Counter, "Bytes of events generated.");
pub const DELIVERED_BYTES: MetricDef = def("spate_delivered_bytes_total", Kind::Counter, "Bytes of events delivered.");
pub const BLOCKED: MetricDef =
    def("spate_worker_blocked_seconds_total", Kind::Counter, "Time workers spent waiting on backpressure, summed over workers.");
pub const BATCHES: MetricDef = def("spate_batches_total", Kind::Counter, "Batches workers pushed into their rings.");
pub const BATCH_TARGET: MetricDef =
    def("spate_batch_target_events", Kind::Gauge, "Events per batch the workers currently aim for (the adaptive batcher moves it).");
pub const BATCH_SIZE: MetricDef = def(
    "spate_batch_size_events",
    Kind::Histogram,
    "Events per batch. Count and sum are exact; each 250 ms interval's batches are bucketed at that interval's mean size.",
);
pub const RING_DEPTH: MetricDef = def("spate_ring_depth_batches", Kind::Gauge, "Batches waiting in a worker's ring for the flush thread.");
pub const PRODUCER_QUEUE: MetricDef = def("spate_producer_queue", Kind::Gauge, "Messages in the Kafka producer's queue awaiting delivery.");
pub const PRODUCER_RESTARTS: MetricDef = def(
    "spate_kafka_producer_restarts_total",
    Kind::Counter,
    "Kafka producers replaced because the broker no longer knew the producer id (UnknownProducerId).",
);
pub const INFLIGHT_BYTES: MetricDef = def("spate_inflight_bytes", Kind::Gauge, "Bytes held in rings and the sink's queue.");
pub const INFLIGHT_BUDGET: MetricDef =
    def("spate_inflight_bytes_budget", Kind::Gauge, "Cap on spate_inflight_bytes (kafka.max_inflight_bytes); 0 means no cap.");
pub const ACK_LATENCY: MetricDef =
    def("spate_ack_latency_seconds", Kind::Histogram, "Produce-to-acknowledgement latency of Kafka deliveries.");
pub const BREAKER_STATE: MetricDef =
    def("spate_breaker_state", Kind::Gauge, "1 for the circuit breaker's current state, 0 for the others.");
pub const BREAKER_OPEN_SECONDS: MetricDef = def(
    "spate_breaker_open_seconds",
    Kind::Gauge,
    "Seconds the breaker has been out of closed (open or half-open) without recovering; 0 when closed.",
);
pub const BREAKER_OPEN_WAIT: MetricDef =
    def("spate_breaker_open_wait_seconds", Kind::Gauge, "The breaker's recovery window: time in open before a half-open trial.");
pub const BREAKER_TRANSITIONS: MetricDef = def("spate_breaker_transitions_total", Kind::Counter, "Circuit breaker state changes.");
pub const BREAKER_OPENED: MetricDef = def("spate_breaker_opened_total", Kind::Counter, "Times the circuit breaker opened.");
pub const LIMITER_MODE: MetricDef = def("spate_limiter_mode", Kind::Gauge, "1 for the rate limiter's current mode, 0 for the others.");
pub const LIMITER_LEASE: MetricDef = def("spate_limiter_lease_size", Kind::Gauge, "Tokens in the current Redis lease; 0 when not leasing.");
pub const LIMITER_REDIS_CALLS: MetricDef = def("spate_limiter_redis_calls_total", Kind::Counter, "Calls the leased limiter made to Redis.");
pub const LIMITER_LEASE_WAITS: MetricDef =
    def("spate_limiter_lease_waits_total", Kind::Counter, "Times a worker found its lease empty and waited for the next one.");
pub const LIMITER_TRANSITIONS: MetricDef =
    def("spate_limiter_transitions_total", Kind::Counter, "Limiter mode changes (redis and fallback).");
pub const SPANS: MetricDef = def(
    "spate_trace_spans_total",
    Kind::Counter,
    "Tracing: batch spans accepted by the collector (result=exported) or dropped because the queue was full or the POST failed (result=dropped).",
);
pub const API_REQUESTS: MetricDef =
    def("spate_api_requests_total", Kind::Counter, "HTTP requests answered by this process, by status code.");
pub const RSS: MetricDef = def("process_resident_memory_bytes", Kind::Gauge, "Resident memory of the spate process.");

/// Every family above, for the catalogue test (each name once, counters end in `_total`) and
/// for anyone listing what spate exports; the renderer uses the constants directly.
#[allow(dead_code)]
pub const CATALOGUE: &[MetricDef] = &[
    BUILD_INFO,
    RUN_ACTIVE,
    RUN_INFO,
    RUN_ELAPSED,
    THREADS,
    TARGET_RATE,
    CURRENT_RATE,
    GENERATED,
    DELIVERED,
    SHED,
    REJECTED,
    FAILED,
    DEAD_LETTERED,
    RETRIED,
    IN_FLIGHT,
    GENERATED_BYTES,
    DELIVERED_BYTES,
    BLOCKED,
    BATCHES,
    BATCH_TARGET,
    BATCH_SIZE,
    RING_DEPTH,
    PRODUCER_QUEUE,
    PRODUCER_RESTARTS,
    INFLIGHT_BYTES,
    INFLIGHT_BUDGET,
    ACK_LATENCY,
    BREAKER_STATE,
    BREAKER_OPEN_SECONDS,
    BREAKER_OPEN_WAIT,
    BREAKER_TRANSITIONS,
    BREAKER_OPENED,
    LIMITER_MODE,
    LIMITER_LEASE,
    LIMITER_REDIS_CALLS,
    LIMITER_LEASE_WAITS,
    LIMITER_TRANSITIONS,
    SPANS,
    API_REQUESTS,
    RSS,
];

/// Upper bounds (seconds) of the ack-latency histogram: 0.5 ms to 30 s.
const LATENCY_BOUNDS_S: [f64; 15] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Upper bounds of the batch-size histogram (events).
const BATCH_BOUNDS: [u64; 12] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];
/// Status codes counted apart in `spate_api_requests_total` (others count as "other").
const CODES: [u16; 11] = [200, 202, 400, 401, 404, 405, 409, 413, 429, 500, 503];

/// Values derived from successive counter snapshots, sampled by one thread at `TICK`.
#[derive(Default)]
pub struct Observer {
    inner: Mutex<ObserverInner>,
}

#[derive(Default)]
struct ObserverInner {
    /// (time, generated) over the last ~1.5 s, for the current rate.
    samples: VecDeque<(Instant, u64)>,
    batches_seen: u64,
    events_seen: u64,
    batch_buckets: [u64; BATCH_BOUNDS.len()],
    batch_count: u64,
    batch_sum: u64,
    /// When the breaker was last seen leaving closed (None while closed).
    not_closed_since: Option<Instant>,
}

impl Observer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one sample of the run's counters. Called a few times a second, never per event.
    pub fn tick(&self, shared: &RunShared) {
        let now = Instant::now();
        let (mut batches, mut events, mut generated) = (0u64, 0u64, 0u64);
        for w in shared.counters.workers.iter() {
            batches += w.batches_pushed.load(Relaxed);
            events += w.events_pushed.load(Relaxed);
            generated += w.generated.load(Relaxed);
        }
        let breaker_closed = shared.breaker.as_ref().map_or(true, |b| b.state() == BreakerState::Closed);
        let mut g = self.inner.lock();
        g.samples.push_back((now, generated));
        while g.samples.len() > 2 && now.duration_since(g.samples[0].0) > Duration::from_millis(1500) {
            g.samples.pop_front();
        }
        let (db, de) = (batches.saturating_sub(g.batches_seen), events.saturating_sub(g.events_seen));
        if db > 0 {
            // The interval's batches all land in the bucket of the interval's mean size: exact
            // count and sum, approximate shape, at no cost to the workers.
            let mean = de.div_ceil(db);
            if let Some(i) = BATCH_BOUNDS.iter().position(|&b| mean <= b) {
                g.batch_buckets[i] += db;
            }
            g.batch_count += db;
            g.batch_sum += de;
        }
        g.batches_seen = batches;
        g.events_seen = events;
        g.not_closed_since = match (breaker_closed, g.not_closed_since) {
            (true, _) => None,
            (false, None) => Some(now),
            (false, s) => s,
        };
    }

    /// Events per second over the last second or so (0 before two samples exist).
    pub fn current_rate(&self) -> f64 {
        let g = self.inner.lock();
        match (g.samples.front(), g.samples.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => (b.1.saturating_sub(a.1)) as f64 / b.0.duration_since(a.0).as_secs_f64(),
            _ => 0.0,
        }
    }

    fn breaker_open_seconds(&self) -> f64 {
        self.inner.lock().not_closed_since.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0)
    }
}

/// One run as the metrics and status code see it.
pub struct RunView {
    pub shared: Arc<RunShared>,
    pub config: RunConfig,
    pub observer: Observer,
}

impl RunView {
    pub fn new(shared: Arc<RunShared>, config: RunConfig) -> Self {
        Self { shared, config, observer: Observer::new() }
    }

    fn active(&self) -> bool {
        !self.shared.flush_done.load(Relaxed)
    }

    /// The status document of this run (without the control-plane state).
    pub fn status(&self) -> Map<String, Value> {
        let s = &self.shared;
        let t = s.counters.totals();
        let elapsed = s.started.elapsed().as_secs_f64().max(1e-9);
        let f = &s.counters.flush;
        let target = s.current_rate();
        let mut config = serde_json::to_value(&self.config.raw).unwrap_or(Value::Null);
        redact(&mut config);
        let breakers: Vec<Value> = s
            .breaker
            .iter()
            .map(|b| {
                json!({
                    "name": "kafka",
                    "state": b.state().as_str(),
                    "transitions": b.transitions(),
                    "opened": b.opened(),
                    "open_seconds": self.observer.breaker_open_seconds(),
                    "open_wait_seconds": self.config.kafka.breaker.open_wait.as_secs_f64(),
                })
            })
            .collect();
        let latency = s.latency.lock().percentiles();
        let mut m = Map::new();
        m.insert("run_id".into(), json!(s.run_id.to_string()));
        m.insert("sink".into(), json!(self.config.sink.to_string()));
        m.insert("format".into(), json!(self.config.events.format.to_string()));
        m.insert("threads".into(), json!(self.config.threads.get()));
        m.insert("config".into(), config);
        m.insert("elapsed_s".into(), json!(elapsed));
        m.insert(
            "rate".into(),
            json!({
                "target": target.per_sec().map(Value::from).unwrap_or_else(|| json!("max")),
                "current": if self.active() { self.observer.current_rate() } else { 0.0 },
                "average": t.generated as f64 / elapsed,
            }),
        );
        m.insert("totals".into(), serde_json::to_value(t).unwrap_or(Value::Null));
        m.insert("balanced".into(), json!(t.balanced()));
        m.insert(
            "batch_size".into(),
            json!({
                "max": self.config.batch_size.get(),
                "target": batch_target(s, &self.config),
                "sink": f.batch_size.load(Relaxed),
            }),
        );
        m.insert("ring_depths".into(), json!(s.counters.ring_depths()));
        m.insert("producer_queue".into(), json!(f.producer_queue.load(Relaxed)));
        m.insert("producer_restarts".into(), json!(f.producer_restarts.load(Relaxed)));
        m.insert("inflight_bytes".into(), json!(s.inflight_bytes.load(Relaxed)));
        m.insert("inflight_bytes_budget".into(), json!(s.max_inflight_bytes));
        m.insert("breakers".into(), Value::Array(breakers));
        if let Some(t) = &s.tracer {
            m.insert(
                "tracing".into(),
                json!({
                    "endpoint": t.config.endpoint.url,
                    "sample": t.config.sample,
                    "spans_exported": t.stats.exported.load(Relaxed),
                    "spans_dropped": t.stats.dropped.load(Relaxed),
                    "posts_failed": t.stats.posts_failed.load(Relaxed),
                    "last_error": *t.stats.last_error.lock(),
                }),
            );
        }
        m.insert(
            "limiter".into(),
            json!({
                "mode": s.limiter.mode_name(),
                "lease_size": s.limiter.lease_size.load(Relaxed),
                "redis_calls": s.limiter.redis_calls.load(Relaxed),
                "lease_waits": s.limiter.lease_waits.load(Relaxed),
                "transitions": s.limiter.transitions.load(Relaxed),
            }),
        );
        m.insert("latency_ms".into(), serde_json::to_value(latency).unwrap_or(Value::Null));
        m.insert("error".into(), json!(*s.error.lock()));
        m
    }
}

fn batch_target(s: &RunShared, c: &RunConfig) -> u64 {
    s.batch_target.load(Relaxed).clamp(1, c.batch_size.get() as u64)
}

/// Hides secrets a config may carry in librdkafka options (SASL passwords and the like).
fn redact(v: &mut Value) {
    if let Some(opts) = v.pointer_mut("/kafka/options").and_then(Value::as_object_mut) {
        for (k, val) in opts.iter_mut() {
            let k = k.to_ascii_lowercase();
            if ["password", "secret", "token", "key"].iter().any(|s| k.contains(s)) {
                *val = json!("<redacted>");
            }
        }
    }
}

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
}

/// Prometheus text writer: one HELP/TYPE header per family, then its samples.
struct Prom<'a> {
    out: &'a mut String,
}

impl Prom<'_> {
    fn head(&mut self, m: &MetricDef) {
        let _ = writeln!(self.out, "# HELP {} {}", m.name, m.help);
        let _ = writeln!(self.out, "# TYPE {} {}", m.name, m.kind.as_str());
    }

    fn sample(&mut self, name: &str, suffix: &str, labels: &[(&str, &str)], v: f64) {
        self.out.push_str(name);
        self.out.push_str(suffix);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                for c in val.chars() {
                    match c {
                        '\\' => self.out.push_str("\\\\"),
                        '"' => self.out.push_str("\\\""),
                        '\n' => self.out.push_str("\\n"),
                        c => self.out.push(c),
                    }
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        if v.is_nan() {
            self.out.push_str("NaN");
        } else if v.is_infinite() {
            self.out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(self.out, "{v}");
        }
        self.out.push('\n');
    }

    fn one(&mut self, m: &MetricDef, v: f64) {
        self.head(m);
        self.sample(m.name, "", &[], v);
    }

    /// A histogram from cumulative counts at `bounds` (already cumulative), a sum and a count.
    fn histogram(&mut self, m: &MetricDef, bounds: &[String], cumulative: &[u64], sum: f64, count: u64) {
        self.head(m);
        for (b, c) in bounds.iter().zip(cumulative) {
            self.sample(m.name, "_bucket", &[("le", b)], *c as f64);
        }
        self.sample(m.name, "_bucket", &[("le", "+Inf")], count as f64);
        self.sample(m.name, "_sum", &[], sum);
        self.sample(m.name, "_count", &[], count as f64);
    }
}

/// Renders the whole exposition: process metrics, then the run's if there is one.
pub fn render(run: Option<&RunView>, api: &ApiStats) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let mut p = Prom { out: &mut out };
    p.head(&BUILD_INFO);
    p.sample(BUILD_INFO.name, "", &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    p.one(&RUN_ACTIVE, run.is_some_and(|r| r.active()) as u8 as f64);
    if let Some(r) = run {
        render_run(&mut p, r);
    }
    p.head(&API_REQUESTS);
    for (i, c) in api.by_code.iter().enumerate() {
        let code = CODES.get(i).map(|c| c.to_string()).unwrap_or_else(|| "other".into());
        p.sample(API_REQUESTS.name, "", &[("code", &code)], c.load(Relaxed) as f64);
    }
    if let Some(rss) = resident_bytes() {
        p.one(&RSS, rss as f64);
    }
    out
}

fn render_run(p: &mut Prom<'_>, r: &RunView) {
    let s = &r.shared;
    let c = &r.config;
    let t = s.counters.totals();
    let run_id = s.run_id.to_string();
    let sink = c.sink.to_string();
    // Only the sink kind: a file path would be unbounded cardinality.
    let sink_kind = sink.split(':').next().unwrap_or("file");
    let format = c.events.format.to_string();
    p.head(&RUN_INFO);
    p.sample(RUN_INFO.name, "", &[("run_id", &run_id), ("sink", sink_kind), ("format", &format)], 1.0);
    p.one(&RUN_ELAPSED, s.started.elapsed().as_secs_f64());
    p.one(&THREADS, c.threads.get() as f64);
    p.one(&TARGET_RATE, s.current_rate().per_sec().unwrap_or(0) as f64);
    p.one(&CURRENT_RATE, if r.active() { r.observer.current_rate() } else { 0.0 });
    for (m, v) in [
        (&GENERATED, t.generated),
        (&DELIVERED, t.delivered),
        (&SHED, t.shed),
        (&REJECTED, t.rejected),
        (&FAILED, t.failed),
        (&DEAD_LETTERED, t.dead_lettered),
        (&RETRIED, t.retried),
        (&IN_FLIGHT, t.in_flight),
        (&GENERATED_BYTES, t.bytes),
        (&DELIVERED_BYTES, t.delivered_bytes),
    ] {
        p.head(m);
        p.sample(m.name, "", &[("sink", sink_kind)], v as f64);
    }
    let (mut blocked_ns, mut batches) = (0u64, 0u64);
    for w in s.counters.workers.iter() {
        blocked_ns += w.blocked_ns.load(Relaxed);
        batches += w.batches_pushed.load(Relaxed);
    }
    p.one(&BLOCKED, blocked_ns as f64 / 1e9);
    p.one(&BATCHES, batches as f64);
    p.one(&BATCH_TARGET, batch_target(s, c) as f64);
    {
        let g = r.observer.inner.lock();
        let bounds: Vec<String> = BATCH_BOUNDS.iter().map(|b| b.to_string()).collect();
        let mut acc = 0;
        let cumulative: Vec<u64> = g
            .batch_buckets
            .iter()
            .map(|n| {
                acc += n;
                acc
            })
            .collect();
        let (sum, count) = (g.batch_sum as f64, g.batch_count);
        drop(g);
        p.histogram(&BATCH_SIZE, &bounds, &cumulative, sum, count);
    }
    p.head(&RING_DEPTH);
    for (i, d) in s.counters.ring_depths().iter().enumerate() {
        p.sample(RING_DEPTH.name, "", &[("worker", &i.to_string())], *d as f64);
    }
    p.one(&PRODUCER_QUEUE, s.counters.flush.producer_queue.load(Relaxed) as f64);
    p.one(&PRODUCER_RESTARTS, s.counters.flush.producer_restarts.load(Relaxed) as f64);
    p.one(&INFLIGHT_BYTES, s.inflight_bytes.load(Relaxed) as f64);
    p.one(&INFLIGHT_BUDGET, s.max_inflight_bytes as f64);
    {
        // Hold the lock only to copy the numbers out: the flush thread merges into it.
        let lat = s.latency.lock();
        let cumulative = lat.cumulative(&LATENCY_BOUNDS_S);
        let (sum, count) = (lat.sum_s(), lat.len());
        drop(lat);
        let bounds: Vec<String> = LATENCY_BOUNDS_S.iter().map(|b| b.to_string()).collect();
        p.histogram(&ACK_LATENCY, &bounds, &cumulative, sum, count);
    }
    if let Some(b) = &s.breaker {
        let cur = b.state();
        p.head(&BREAKER_STATE);
        for st in [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen] {
            p.sample(BREAKER_STATE.name, "", &[("breaker", "kafka"), ("state", st.as_str())], (st == cur) as u8 as f64);
        }
        // Same `breaker` label on all of them, so rules can compare them one to one.
        for (m, v) in [
            (&BREAKER_OPEN_SECONDS, r.observer.breaker_open_seconds()),
            (&BREAKER_OPEN_WAIT, c.kafka.breaker.open_wait.as_secs_f64()),
            (&BREAKER_TRANSITIONS, b.transitions() as f64),
            (&BREAKER_OPENED, b.opened() as f64),
        ] {
            p.head(m);
            p.sample(m.name, "", &[("breaker", "kafka")], v);
        }
    }
    let mode = s.limiter.mode_name();
    p.head(&LIMITER_MODE);
    for m in spate_engine::limit::stats::MODES {
        p.sample(LIMITER_MODE.name, "", &[("mode", m)], (m == mode) as u8 as f64);
    }
    p.one(&LIMITER_LEASE, s.limiter.lease_size.load(Relaxed) as f64);
    p.one(&LIMITER_REDIS_CALLS, s.limiter.redis_calls.load(Relaxed) as f64);
    p.one(&LIMITER_LEASE_WAITS, s.limiter.lease_waits.load(Relaxed) as f64);
    p.one(&LIMITER_TRANSITIONS, s.limiter.transitions.load(Relaxed) as f64);
    if let Some(t) = &s.tracer {
        p.head(&SPANS);
        p.sample(SPANS.name, "", &[("result", "exported")], t.stats.exported.load(Relaxed) as f64);
        p.sample(SPANS.name, "", &[("result", "dropped")], t.stats.dropped.load(Relaxed) as f64);
    }
}

/// Resident set size from /proc (Linux); None elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok().filter(|&p| p > 0).unwrap_or(4096))
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// A request as handlers see it: the body is already read (and capped).
pub struct Request {
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Request {
    /// Value of `name` in the query string (no percent-decoding: values here are plain words).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.split('&').filter_map(|kv| kv.split_once('=').or(Some((kv, "")))).find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, v: &Value) -> Reply {
        let mut body = serde_json::to_vec_pretty(v).unwrap_or_default();
        body.push(b'\n');
        Reply { status, content_type: "application/json", body, headers: Vec::new() }
    }

    /// `{"error": message, ...extra}`.
    pub fn error(status: u16, message: impl Into<String>, extra: Value) -> Reply {
        let mut m = Map::new();
        m.insert("error".into(), Value::String(message.into()));
        if let Value::Object(o) = extra {
            m.extend(o);
        }
        Reply::json(status, &Value::Object(m))
    }

    pub fn text(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
        Reply { status, content_type, body: body.into(), headers: Vec::new() }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// A path and the methods it answers. `open` paths need no token (liveness probes).
pub struct Route {
    pub path: &'static str,
    pub methods: &'static [&'static str],
    pub open: bool,
}

pub type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

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
                let ok =
                    given.as_deref().and_then(|v| v.strip_prefix("Bearer ")).is_some_and(|g| ct_eq(g.trim().as_bytes(), token.as_bytes()));
                if !ok {
                    let msg = if given.is_none() {
                        "missing bearer token; send the header `Authorization: Bearer <token>` given to --token"
                    } else {
                        "wrong bearer token; send the token given to --token"
                    };
                    return Reply::error(401, msg, json!({})).with_header("WWW-Authenticate", "Bearer realm=\"spate\"");
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

/// Compares in time that depends only on the lengths, not on where the bytes differ.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    std::hint::black_box(diff) == 0
}

/// What `spate run --metrics-listen` keeps alive: the server and the observer thread.
pub struct MetricsGuard {
    server: Option<HttpServer>,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl MetricsGuard {
    pub fn addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(|s| s.addr())
    }
}

impl Drop for MetricsGuard {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        self.server.take();
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

const RUN_ROUTES: &[Route] = &[
    Route { path: "/metrics", methods: &["GET"], open: false },
    Route { path: "/v1/status", methods: &["GET"], open: false },
    Route { path: "/healthz", methods: &["GET"], open: true },
];

/// Serves /metrics and /v1/status for one run (read-only: no control endpoints).
pub fn serve_run(listen: &str, shared: Arc<RunShared>, config: RunConfig) -> Result<MetricsGuard> {
    let view = Arc::new(RunView::new(shared, config));
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = spawn_ticker(stop.clone(), {
        let view = view.clone();
        move || view.observer.tick(&view.shared)
    })?;
    let api = Arc::new(ApiStats::default());
    let api2 = api.clone();
    let handler: Handler = Arc::new(move |rq: &Request| match rq.path.as_str() {
        "/metrics" => Reply::text(200, PROM_CONTENT_TYPE, render(Some(&view), &api2)),
        "/healthz" => Reply::json(200, &json!({"status": "ok"})),
        _ => {
            let mut m = view.status();
            m.insert("state".into(), json!(if view.active() { "running" } else { "finished" }));
            Reply::json(200, &Value::Object(m))
        }
    });
    let server = HttpServer::start(listen, HttpOptions { routes: RUN_ROUTES, token: None, api_rate: None, threads: 2 }, api, handler)?;
    Ok(MetricsGuard { server: Some(server), stop, ticker: Some(ticker) })
}

/// Runs `f` every `TICK` on its own thread until `stop` is set.
pub fn spawn_ticker(stop: Arc<AtomicBool>, f: impl Fn() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("spate-observer".into())
        .spawn(move || {
            while !stop.load(Relaxed) {
                f();
                std::thread::sleep(TICK);
            }
        })
        .context("cannot spawn the observer thread")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_well_formed() {
        let mut names = std::collections::HashSet::new();
        for m in CATALOGUE {
            assert!(names.insert(m.name), "duplicate {}", m.name);
            assert!(m.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{}", m.name);
            assert_eq!(m.kind == Kind::Counter, m.name.ends_with("_total"), "{}: counters and only counters end in _total", m.name);
            assert!(!m.help.is_empty() && !m.help.contains('\n'));
        }
    }

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"secret", b"secret2"));
        assert!(!ct_eq(b"", b"x"));
    }

    #[test]
    fn idle_render_has_headers() {
        let s = render(None, &ApiStats::default());
        assert!(s.contains("# TYPE spate_run_active gauge\nspate_run_active 0\n"), "{s}");
        assert!(s.contains("spate_api_requests_total{code=\"200\"} 0"), "{s}");
    }
}
