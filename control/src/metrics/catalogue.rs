//! The metric catalogue: every family spate exports, with its name, type and help text, in
//! exposition order. Names and help texts live only here, so the dashboard, the alert rules
//! and the docs have one place to look, and the renderer cannot drift from them.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric family: its name, type and help text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetricDef {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

const fn def(name: &'static str, kind: Kind, help: &'static str) -> MetricDef {
    MetricDef { name, kind, help }
}

pub(crate) const BUILD_INFO: MetricDef =
    def("spate_build_info", Kind::Gauge, "Always 1; the version label is the spate version.");
pub(crate) const RUN_ACTIVE: MetricDef =
    def("spate_run_active", Kind::Gauge, "1 while a run is generating or draining, 0 otherwise.");
pub(crate) const RUN_INFO: MetricDef =
    def("spate_run_info", Kind::Gauge, "Always 1 for the current or last run; labels identify it.");
pub(crate) const RUN_ELAPSED: MetricDef =
    def("spate_run_elapsed_seconds", Kind::Gauge, "Seconds since the current or last run started.");
pub(crate) const THREADS: MetricDef =
    def("spate_worker_threads", Kind::Gauge, "Worker threads of the run.");
pub(crate) const TARGET_RATE: MetricDef = def(
    "spate_target_rate",
    Kind::Gauge,
    "Target generation rate in events per second; 0 means max (no limit).",
);
pub(crate) const CURRENT_RATE: MetricDef =
    def("spate_current_rate", Kind::Gauge, "Events generated per second over the last second.");
pub(crate) const GENERATED: MetricDef =
    def("spate_events_generated_total", Kind::Counter, "Events generated.");
pub(crate) const DELIVERED: MetricDef = def(
    "spate_events_delivered_total",
    Kind::Counter,
    "Events the sink confirmed (Kafka: acknowledged).",
);
pub(crate) const SHED: MetricDef = def(
    "spate_events_shed_total",
    Kind::Counter,
    "Events dropped on purpose under backpressure policy shed (includes rejected).",
);
pub(crate) const REJECTED: MetricDef = def(
    "spate_events_rejected_total",
    Kind::Counter,
    "Events rejected because the circuit breaker was open (part of shed).",
);
pub(crate) const FAILED: MetricDef = def(
    "spate_events_failed_total",
    Kind::Counter,
    "Events that could not be delivered nor dead-lettered.",
);
pub(crate) const DEAD_LETTERED: MetricDef = def(
    "spate_events_dead_lettered_total",
    Kind::Counter,
    "Events written to the dead-letter topic or file.",
);
pub(crate) const RETRIED: MetricDef = def(
    "spate_events_retried_total",
    Kind::Counter,
    "Send attempts retried by spate after a retriable error.",
);
pub(crate) const IN_FLIGHT: MetricDef = def(
    "spate_events_in_flight",
    Kind::Gauge,
    "Events generated without an outcome yet (in rings or awaiting an ack).",
);
pub(crate) const GENERATED_BYTES: MetricDef =
    def("spate_generated_bytes_total", Kind::Counter, "Bytes of events generated.");
pub(crate) const DELIVERED_BYTES: MetricDef =
    def("spate_delivered_bytes_total", Kind::Counter, "Bytes of events delivered.");
pub(crate) const BLOCKED: MetricDef = def(
    "spate_worker_blocked_seconds_total",
    Kind::Counter,
    "Time workers spent waiting on backpressure, summed over workers.",
);
pub(crate) const BATCHES: MetricDef =
    def("spate_batches_total", Kind::Counter, "Batches workers pushed into their rings.");
pub(crate) const BATCH_TARGET: MetricDef = def(
    "spate_batch_target_events",
    Kind::Gauge,
    "Events per batch the workers currently aim for (the adaptive batcher moves it).",
);
pub(crate) const BATCH_SIZE: MetricDef = def(
    "spate_batch_size_events",
    Kind::Histogram,
    "Events per batch. Count and sum are exact; each 250 ms interval's batches are bucketed at that interval's mean size.",
);
pub(crate) const RING_DEPTH: MetricDef = def(
    "spate_ring_depth_batches",
    Kind::Gauge,
    "Batches waiting in a worker's ring for the flush thread.",
);
pub(crate) const PRODUCER_QUEUE: MetricDef = def(
    "spate_producer_queue",
    Kind::Gauge,
    "Messages in the Kafka producer's queue awaiting delivery.",
);
pub(crate) const INFLIGHT_LIMIT: MetricDef = def(
    "spate_kafka_inflight_limit_records",
    Kind::Gauge,
    "Records the Kafka sink lets wait for acks now: the in-flight window, grown while ack latency stays near its recent minimum and shrunk when it climbs.",
);
pub(crate) const PRODUCER_RESTARTS: MetricDef = def(
    "spate_kafka_producer_restarts_total",
    Kind::Counter,
    "Kafka producers replaced because the broker no longer knew the producer id (UnknownProducerId).",
);
pub(crate) const INFLIGHT_BYTES: MetricDef =
    def("spate_inflight_bytes", Kind::Gauge, "Bytes held in rings and the sink's queue.");
pub(crate) const INFLIGHT_BUDGET: MetricDef = def(
    "spate_inflight_bytes_budget",
    Kind::Gauge,
    "Cap on spate_inflight_bytes (kafka.max_inflight_bytes); 0 means no cap.",
);
pub(crate) const ACK_LATENCY: MetricDef = def(
    "spate_ack_latency_seconds",
    Kind::Histogram,
    "Produce-to-acknowledgement latency of Kafka deliveries, after the warm-up (warmup, default 1 s).",
);
pub(crate) const BREAKER_STATE: MetricDef = def(
    "spate_breaker_state",
    Kind::Gauge,
    "1 for the circuit breaker's current state, 0 for the others.",
);
pub(crate) const BREAKER_OPEN_SECONDS: MetricDef = def(
    "spate_breaker_open_seconds",
    Kind::Gauge,
    "Seconds the breaker has been out of closed (open or half-open) without recovering; 0 when closed.",
);
pub(crate) const BREAKER_OPEN_WAIT: MetricDef = def(
    "spate_breaker_open_wait_seconds",
    Kind::Gauge,
    "The breaker's recovery window: time in open before a half-open trial.",
);
pub(crate) const BREAKER_TRANSITIONS: MetricDef =
    def("spate_breaker_transitions_total", Kind::Counter, "Circuit breaker state changes.");
pub(crate) const BREAKER_OPENED: MetricDef =
    def("spate_breaker_opened_total", Kind::Counter, "Times the circuit breaker opened.");
pub(crate) const LIMITER_MODE: MetricDef = def(
    "spate_limiter_mode",
    Kind::Gauge,
    "1 for the rate limiter's current mode, 0 for the others.",
);
pub(crate) const LIMITER_LEASE: MetricDef = def(
    "spate_limiter_lease_size",
    Kind::Gauge,
    "Tokens in the current Redis lease; 0 when not leasing.",
);
pub(crate) const LIMITER_REDIS_CALLS: MetricDef = def(
    "spate_limiter_redis_calls_total",
    Kind::Counter,
    "Calls the leased limiter made to Redis.",
);
pub(crate) const LIMITER_LEASE_WAITS: MetricDef = def(
    "spate_limiter_lease_waits_total",
    Kind::Counter,
    "Times a worker found its lease empty and waited for the next one.",
);
pub(crate) const LIMITER_TRANSITIONS: MetricDef = def(
    "spate_limiter_transitions_total",
    Kind::Counter,
    "Limiter mode changes (redis and fallback).",
);
pub(crate) const SPANS: MetricDef = def(
    "spate_trace_spans_total",
    Kind::Counter,
    "Tracing: batch spans accepted by the collector (result=exported) or dropped because the queue was full or the POST failed (result=dropped).",
);
pub(crate) const API_REQUESTS: MetricDef = def(
    "spate_api_requests_total",
    Kind::Counter,
    "HTTP requests answered by this process, by status code.",
);
pub(crate) const RSS: MetricDef =
    def("process_resident_memory_bytes", Kind::Gauge, "Resident memory of the spate process.");
pub(crate) const MEMORY_BUDGET: MetricDef = def(
    "spate_memory_budget_bytes",
    Kind::Gauge,
    "The run's memory budget (memory_budget); generation is held back above 80 % of it.",
);
pub(crate) const MEMORY_PRESSED: MetricDef = def(
    "spate_memory_pressed",
    Kind::Gauge,
    "1 while memory is above the budget's high-water mark and generation is held back or shed.",
);
pub(crate) const SHED_MEMORY: MetricDef = def(
    "spate_events_shed_memory_total",
    Kind::Counter,
    "Events shed because memory was above the budget's high-water mark (part of shed).",
);

/// Every family above, for the catalogue test (each name once, counters end in `_total`) and
/// for anyone listing what spate exports; the renderer uses the constants directly.
#[allow(dead_code)]
pub(crate) const CATALOGUE: &[MetricDef] = &[
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
    INFLIGHT_LIMIT,
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
    MEMORY_BUDGET,
    MEMORY_PRESSED,
    SHED_MEMORY,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_well_formed() {
        let mut names = std::collections::HashSet::new();
        for m in CATALOGUE {
            assert!(names.insert(m.name), "duplicate {}", m.name);
            assert!(m.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{}", m.name);
            assert_eq!(
                m.kind == Kind::Counter,
                m.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                m.name
            );
            assert!(!m.help.is_empty() && !m.help.contains('\n'));
        }
    }
}
