//! The Prometheus exposition of the process and of the current or last run, encoded by
//! `prometheus-client` (the Prometheus project's crate) in the text format 0.0.4, which
//! `promtool check metrics` accepts and Prometheus scrapes (its OpenMetrics output fails
//! promtool 2.42's lint on counter names: ADR 017).
//!
//! The numbers stay where the engine publishes them once per batch (its atomics, the observer);
//! a [`Collector`] reads them at scrape time, so a scrape costs the workers nothing and the
//! crate only encodes.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use spate_core::breaker::State as BreakerState;

use super::catalogue::*;
use super::observer::BATCH_BOUNDS;
use super::view::{BreakerView, RunView};
use crate::http::ApiStats;

/// Content type of the Prometheus text format 0.0.4.
pub(crate) const PROM_CONTENT_TYPE: &str =
    prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// Upper bounds (seconds) of the ack-latency histogram: 0.5 ms to 30 s.
const LATENCY_BOUNDS_S: [f64; 15] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

type Result = std::result::Result<(), std::fmt::Error>;

/// Renders the whole exposition: process metrics, then the run's if there is one.
pub(crate) fn render(run: Option<Arc<RunView>>, api: Arc<ApiStats>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exposition { run, api }));
    let mut out = String::with_capacity(8 * 1024);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

#[derive(Debug)]
struct Exposition {
    run: Option<Arc<RunView>>,
    api: Arc<ApiStats>,
}

impl std::fmt::Debug for RunView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunView")
            .field("run_id", &self.shared.run_id.to_string())
            .finish_non_exhaustive()
    }
}

/// The family's name as the crate takes it: counters without `_total` (it appends it).
fn family(m: &MetricDef) -> &'static str {
    match m.kind {
        Kind::Counter => m.name.strip_suffix("_total").unwrap_or(m.name),
        _ => m.name,
    }
}

fn kind(m: &MetricDef) -> MetricType {
    match m.kind {
        Kind::Counter => MetricType::Counter,
        Kind::Gauge => MetricType::Gauge,
        Kind::Histogram => MetricType::Histogram,
    }
}

/// One family of samples, each with its labels.
fn samples(enc: &mut DescriptorEncoder, m: &MetricDef, rows: &[(&[(&str, &str)], f64)]) -> Result {
    let mut e = enc.encode_descriptor(family(m), m.help, None, kind(m))?;
    for (labels, v) in rows {
        value(e.encode_family(labels)?, m.kind, *v)?;
    }
    Ok(())
}

/// A sample's value: whole numbers as integers (`1`, not `1.0`), others as floats.
fn value(at: prometheus_client::encoding::MetricEncoder<'_>, k: Kind, v: f64) -> Result {
    let whole = v.fract() == 0.0 && v.abs() < 9.0e15;
    match (k, whole) {
        (Kind::Counter, true) if v >= 0.0 => ConstCounter::new(v as u64).encode(at),
        (Kind::Counter, _) => ConstCounter::new(v).encode(at),
        (_, true) => ConstGauge::new(v as i64).encode(at),
        (_, false) => ConstGauge::new(v).encode(at),
    }
}

/// A family of one sample without labels.
fn one(enc: &mut DescriptorEncoder, m: &MetricDef, v: f64) -> Result {
    value(enc.encode_descriptor(family(m), m.help, None, kind(m))?, m.kind, v)
}

/// A histogram from cumulative counts at `bounds`, a sum and a count.
fn histogram(
    enc: &mut DescriptorEncoder,
    m: &MetricDef,
    bounds: &[f64],
    cumulative: &[u64],
    sum: f64,
    count: u64,
) -> Result {
    // The encoder takes each bucket's own count and accumulates them itself.
    let mut buckets = Vec::with_capacity(bounds.len() + 1);
    let mut below = 0;
    for (b, c) in bounds.iter().zip(cumulative) {
        buckets.push((*b, c.saturating_sub(below)));
        below = (*c).max(below);
    }
    buckets.push((f64::INFINITY, count.saturating_sub(below)));
    let mut e = enc.encode_descriptor(family(m), m.help, None, MetricType::Histogram)?;
    e.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
}

impl Collector for Exposition {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result {
        samples(&mut enc, &BUILD_INFO, &[(&[("version", env!("CARGO_PKG_VERSION"))], 1.0)])?;
        one(
            &mut enc,
            &RUN_ACTIVE,
            f64::from(u8::from(self.run.as_ref().is_some_and(|r| r.active()))),
        )?;
        if let Some(r) = &self.run {
            run(&mut enc, r)?;
        }
        let codes: Vec<(String, u64)> = self.api.by_code().collect();
        let rows: Vec<([(&str, &str); 1], f64)> =
            codes.iter().map(|(c, n)| ([("code", c.as_str())], *n as f64)).collect();
        let rows: Vec<(&[(&str, &str)], f64)> = rows.iter().map(|(l, v)| (&l[..], *v)).collect();
        samples(&mut enc, &API_REQUESTS, &rows)?;
        if let Some(rss) = spate_engine::memory::rss() {
            one(&mut enc, &RSS, rss as f64)?;
        }
        Ok(())
    }
}

/// Reads one breaker metric off a breaker.
type BreakerValue = fn(&BreakerView<'_>) -> f64;

fn run(enc: &mut DescriptorEncoder, r: &RunView) -> Result {
    let s = &r.shared;
    let c = &r.config;
    let t = s.counters.totals();
    let run_id = s.run_id.to_string();
    // Only the sink kind: a file path would be unbounded cardinality.
    let sink_kind = c.sink.kind();
    let format = c.events.format.to_string();
    samples(
        enc,
        &RUN_INFO,
        &[(&[("run_id", &run_id), ("sink", sink_kind), ("format", &format)], 1.0)],
    )?;
    one(enc, &RUN_ELAPSED, s.started.elapsed().as_secs_f64())?;
    one(enc, &THREADS, c.threads.get() as f64)?;
    one(enc, &TARGET_RATE, s.current_rate().per_sec().unwrap_or(0) as f64)?;
    one(enc, &CURRENT_RATE, if r.active() { r.observer.current_rate() } else { 0.0 })?;
    for (m, v) in [
        (&GENERATED, t.generated),
        (&DELIVERED, t.delivered),
        (&SHED, t.shed),
        (&REJECTED, t.rejected),
        (&SHED_MEMORY, t.shed_memory),
        (&FAILED, t.failed),
        (&DEAD_LETTERED, t.dead_lettered),
        (&RETRIED, t.retried),
        (&IN_FLIGHT, t.in_flight),
        (&GENERATED_BYTES, t.bytes),
        (&DELIVERED_BYTES, t.delivered_bytes),
    ] {
        samples(enc, m, &[(&[("sink", sink_kind)], v as f64)])?;
    }
    let (mut blocked_ns, mut batches) = (0u64, 0u64);
    for w in &s.counters.workers {
        blocked_ns += w.blocked_ns.load(Relaxed);
        batches += w.batches_pushed.load(Relaxed);
    }
    one(enc, &BLOCKED, blocked_ns as f64 / 1e9)?;
    one(enc, &BATCHES, batches as f64)?;
    one(enc, &BATCH_TARGET, r.batch_target() as f64)?;
    {
        let bounds: Vec<f64> = BATCH_BOUNDS.iter().map(|b| *b as f64).collect();
        let (cumulative, sum, count) = r.observer.batch_histogram();
        histogram(enc, &BATCH_SIZE, &bounds, &cumulative, sum as f64, count)?;
    }
    {
        let depths = s.counters.ring_depths();
        let workers: Vec<String> = (0..depths.len()).map(|i| i.to_string()).collect();
        let labels: Vec<[(&str, &str); 1]> =
            workers.iter().map(|w| [("worker", w.as_str())]).collect();
        let rows: Vec<(&[(&str, &str)], f64)> =
            labels.iter().zip(&depths).map(|(l, d)| (&l[..], *d as f64)).collect();
        samples(enc, &RING_DEPTH, &rows)?;
    }
    one(enc, &PRODUCER_QUEUE, s.counters.flush.producer_queue.load(Relaxed) as f64)?;
    one(enc, &INFLIGHT_LIMIT, s.counters.flush.inflight_limit.load(Relaxed) as f64)?;
    one(enc, &PRODUCER_RESTARTS, s.counters.flush.producer_restarts.load(Relaxed) as f64)?;
    one(enc, &INFLIGHT_BYTES, s.budget.used() as f64)?;
    one(enc, &INFLIGHT_BUDGET, s.budget.max() as f64)?;
    one(enc, &MEMORY_BUDGET, s.memory.budget as f64)?;
    one(enc, &MEMORY_PRESSED, f64::from(u8::from(s.memory.pressed())))?;
    {
        // Hold the lock only to copy the numbers out: the flush thread merges into it.
        let lat = s.latency.lock();
        let cumulative = lat.cumulative(&LATENCY_BOUNDS_S);
        let (sum, count) = (lat.sum_s(), lat.len());
        drop(lat);
        histogram(enc, &ACK_LATENCY, &LATENCY_BOUNDS_S, &cumulative, sum, count)?;
    }
    let breakers = r.breakers();
    if !breakers.is_empty() {
        let mut rows: Vec<([(&str, &str); 2], f64)> = Vec::new();
        for b in &breakers {
            let cur = b.breaker.state();
            for st in [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen] {
                rows.push((
                    [("breaker", b.name), ("state", st.as_str())],
                    f64::from(u8::from(st == cur)),
                ));
            }
        }
        let rows: Vec<(&[(&str, &str)], f64)> = rows.iter().map(|(l, v)| (&l[..], *v)).collect();
        samples(enc, &BREAKER_STATE, &rows)?;
        // Same `breaker` label on all of them, so rules can compare them one to one.
        let values: [(&MetricDef, BreakerValue); 4] = [
            (&BREAKER_OPEN_SECONDS, |b| b.open_seconds),
            (&BREAKER_OPEN_WAIT, |b| b.open_wait_seconds),
            (&BREAKER_TRANSITIONS, |b| b.breaker.transitions() as f64),
            (&BREAKER_OPENED, |b| b.breaker.opened() as f64),
        ];
        for (m, v) in values {
            let labels: Vec<[(&str, &str); 1]> =
                breakers.iter().map(|b| [("breaker", b.name)]).collect();
            let rows: Vec<(&[(&str, &str)], f64)> =
                labels.iter().zip(&breakers).map(|(l, b)| (&l[..], v(b))).collect();
            samples(enc, m, &rows)?;
        }
    }
    let mode = s.limiter.mode_name();
    let modes: Vec<([(&str, &str); 1], f64)> = spate_limit::stats::MODES
        .iter()
        .map(|m| ([("mode", *m)], f64::from(u8::from(*m == mode))))
        .collect();
    let rows: Vec<(&[(&str, &str)], f64)> = modes.iter().map(|(l, v)| (&l[..], *v)).collect();
    samples(enc, &LIMITER_MODE, &rows)?;
    one(enc, &LIMITER_LEASE, s.limiter.lease_size.load(Relaxed) as f64)?;
    one(enc, &LIMITER_REDIS_CALLS, s.limiter.redis_calls.load(Relaxed) as f64)?;
    one(enc, &LIMITER_LEASE_WAITS, s.limiter.lease_waits.load(Relaxed) as f64)?;
    one(enc, &LIMITER_TRANSITIONS, s.limiter.transitions.load(Relaxed) as f64)?;
    if let Some(t) = &s.tracer {
        samples(
            enc,
            &SPANS,
            &[
                (&[("result", "exported")], t.stats.exported.load(Relaxed) as f64),
                (&[("result", "dropped")], t.stats.dropped.load(Relaxed) as f64),
            ],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_render_has_headers() {
        let s = render(None, Arc::new(ApiStats::default()));
        assert!(s.contains("# TYPE spate_run_active gauge\nspate_run_active 0\n"), "{s}");
        assert!(s.contains("spate_api_requests_total{code=\"200\"} 0"), "{s}");
        assert!(s.contains("# TYPE spate_api_requests_total counter"), "{s}");
    }
}
