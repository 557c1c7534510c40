//! Prometheus text exposition (format 0.0.4) of the process and of the current or last run.
//! Every number is read at scrape time from the counters the engine already publishes once per
//! batch, or from the observer; a scrape costs the workers nothing.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use spate_engine::breaker::State as BreakerState;

use super::catalogue::*;
use super::observer::BATCH_BOUNDS;
use super::{BreakerView, RunView};
use crate::http::ApiStats;

/// Content type of the Prometheus text format.
pub const PROM_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Upper bounds (seconds) of the ack-latency histogram: 0.5 ms to 30 s.
const LATENCY_BOUNDS_S: [f64; 15] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

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
    for (code, n) in api.by_code() {
        p.sample(API_REQUESTS.name, "", &[("code", &code)], n as f64);
    }
    if let Some(rss) = resident_bytes() {
        p.one(&RSS, rss as f64);
    }
    out
}

/// Reads one breaker metric off a breaker.
type BreakerValue = fn(&BreakerView<'_>) -> f64;

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
    p.one(&BATCH_TARGET, r.batch_target() as f64);
    {
        let bounds: Vec<String> = BATCH_BOUNDS.iter().map(|b| b.to_string()).collect();
        let (cumulative, sum, count) = r.observer.batch_histogram();
        p.histogram(&BATCH_SIZE, &bounds, &cumulative, sum as f64, count);
    }
    p.head(&RING_DEPTH);
    for (i, d) in s.counters.ring_depths().iter().enumerate() {
        p.sample(RING_DEPTH.name, "", &[("worker", &i.to_string())], *d as f64);
    }
    p.one(&PRODUCER_QUEUE, s.counters.flush.producer_queue.load(Relaxed) as f64);
    p.one(&INFLIGHT_LIMIT, s.counters.flush.inflight_limit.load(Relaxed) as f64);
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
    let breakers = r.breakers();
    if !breakers.is_empty() {
        p.head(&BREAKER_STATE);
        for b in &breakers {
            let cur = b.breaker.state();
            for st in [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen] {
                p.sample(BREAKER_STATE.name, "", &[("breaker", b.name), ("state", st.as_str())], (st == cur) as u8 as f64);
            }
        }
        // Same `breaker` label on all of them, so rules can compare them one to one.
        let values: [(&MetricDef, BreakerValue); 4] = [
            (&BREAKER_OPEN_SECONDS, |b| b.open_seconds),
            (&BREAKER_OPEN_WAIT, |b| b.open_wait_seconds),
            (&BREAKER_TRANSITIONS, |b| b.breaker.transitions() as f64),
            (&BREAKER_OPENED, |b| b.breaker.opened() as f64),
        ];
        for (m, v) in values {
            p.head(m);
            for b in &breakers {
                p.sample(m.name, "", &[("breaker", b.name)], v(b));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_render_has_headers() {
        let s = render(None, &ApiStats::default());
        assert!(s.contains("# TYPE spate_run_active gauge\nspate_run_active 0\n"), "{s}");
        assert!(s.contains("spate_api_requests_total{code=\"200\"} 0"), "{s}");
    }
}
