//! The status document (`GET /v1/status`): one run as JSON, the same for `spate serve` and
//! `spate run --metrics-listen`. It reads the run's shared state at request time (atomics and,
//! briefly, the latency histogram), so it shows a rate changed with `PUT /v1/rate` at once.
//! Secrets of the config are masked throughout (`redact.rs`).

use std::sync::atomic::Ordering::Relaxed;

use serde_json::{json, Map, Value};

use crate::metrics::RunView;
use crate::redact::Secrets;

/// The status document of one run (without the control-plane state, which the caller adds).
pub(crate) fn document(run: &RunView) -> Map<String, Value> {
    let s = &run.shared;
    let t = s.counters.totals();
    let elapsed = s.started.elapsed().as_secs_f64().max(1e-9);
    let f = &s.counters.flush;
    let target = s.current_rate();
    let secrets = Secrets::of(&run.config.raw);
    let config = secrets.config(&run.config.raw);
    let breakers: Vec<Value> = run
        .breakers()
        .iter()
        .map(|b| {
            json!({
                "name": b.name,
                "state": b.breaker.state().as_str(),
                "transitions": b.breaker.transitions(),
                "opened": b.breaker.opened(),
                "open_seconds": b.open_seconds,
                "open_wait_seconds": b.open_wait_seconds,
            })
        })
        .collect();
    let latency = s.latency.lock().percentiles();
    let mut m = Map::new();
    m.insert("run_id".into(), json!(s.run_id.to_string()));
    m.insert("sink".into(), json!(run.config.sink.to_string()));
    m.insert("format".into(), json!(run.config.events.format.to_string()));
    m.insert("threads".into(), json!(run.config.threads.get()));
    m.insert("config".into(), config);
    m.insert("elapsed_s".into(), json!(elapsed));
    m.insert(
        "rate".into(),
        json!({
            "target": target.per_sec().map_or_else(|| json!("max"), Value::from),
            "current": if run.active() { run.observer.current_rate() } else { 0.0 },
            "average": t.generated as f64 / elapsed,
        }),
    );
    m.insert("totals".into(), serde_json::to_value(t).unwrap_or(Value::Null));
    m.insert(
        "seed".into(),
        json!({"value": run.config.events.seed, "given": run.config.seed_given}),
    );
    m.insert("pin_failures".into(), json!(s.pin_failures.load(Relaxed)));
    m.insert(
        "memory".into(),
        json!({
            "budget_bytes": s.memory.budget,
            "rss_bytes": s.memory.rss.load(Relaxed),
            "peak_rss_bytes": s.memory.peak_rss.load(Relaxed),
            "cgroup_limit_bytes": s.memory.cgroup_limit,
            "pressed": s.memory.pressed(),
        }),
    );
    m.insert("balanced".into(), json!(t.balanced()));
    m.insert(
        "batch_size".into(),
        json!({
            "max": run.config.batch_size.get(),
            "target": run.batch_target(),
            "sink": f.batch_size.load(Relaxed),
        }),
    );
    m.insert("ring_depths".into(), json!(s.counters.ring_depths()));
    m.insert("producer_queue".into(), json!(f.producer_queue.load(Relaxed)));
    m.insert("inflight_limit".into(), json!(f.inflight_limit.load(Relaxed)));
    m.insert("producer_restarts".into(), json!(f.producer_restarts.load(Relaxed)));
    m.insert("inflight_bytes".into(), json!(s.budget.used()));
    m.insert("inflight_bytes_budget".into(), json!(s.budget.max()));
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
    let warmup = s.warmup_latency.lock().percentiles();
    m.insert("warmup_latency_ms".into(), serde_json::to_value(warmup).unwrap_or(Value::Null));
    m.insert("error".into(), json!(*s.error.lock()));
    // Errors and the tracing endpoint may quote a secret of the config.
    secrets.scrub_map(&mut m);
    m
}
