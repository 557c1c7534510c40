//! What librdkafka tells the sink about each record: the opaque every record carries, how a
//! delivery report is decoded and classified, and the outcomes the sink folds in after a poll.
//!
//! Delivery reports are served only inside `poll`/`flush`, which only the flush thread calls,
//! so the context's `RefCell` is never touched by two threads (see the `Sync` impl below).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::ClientContext;

use super::ffi;
use crate::latency::LatencyStats;

// The opaque is a pointer-sized integer librdkafka hands back untouched.
const _: () = assert!(usize::BITS == 64, "the Kafka opaque layout needs a 64-bit usize");

/// Per-record opaque, packed into librdkafka's `void *` so it travels for free.
///
/// Bit layout (one definition, used by `pack` and `unpack` alike):
/// - bits 0..48: the schedule time, ns since the run started, **modulo 2^48** (~78 hours);
///   ages are computed modulo 2^48 too (`age_ns`), so a run of any length measures correctly
///   as long as one record's age stays under 78 hours;
/// - bits 48..56: the attempt number (0 = first produce);
/// - bit 62: the last record of a traced batch (its report ends the batch's span);
/// - bit 63: a record sent to the dead-letter topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Opaque {
    pub sched_ns: u64,
    pub attempt: u8,
    pub traced: bool,
    pub dlq: bool,
}

const SCHED_BITS: u32 = 48;
const SCHED_MASK: u64 = (1 << SCHED_BITS) - 1;
const ATTEMPT_SHIFT: u32 = SCHED_BITS;
const ATTEMPT_MASK: u64 = 0xff;
const TRACE_BIT: u64 = 1 << 62;
const DLQ_BIT: u64 = 1 << 63;

impl Opaque {
    pub(super) fn new(sched_ns: u64, attempt: u8) -> Self {
        Self { sched_ns: sched_ns & SCHED_MASK, attempt, traced: false, dlq: false }
    }

    pub(super) fn pack(self) -> usize {
        let mut v = (self.sched_ns & SCHED_MASK)
            | ((u64::from(self.attempt) & ATTEMPT_MASK) << ATTEMPT_SHIFT);
        if self.traced {
            v |= TRACE_BIT;
        }
        if self.dlq {
            v |= DLQ_BIT;
        }
        v as usize
    }

    pub(super) fn unpack(op: usize) -> Self {
        let v = op as u64;
        Self {
            sched_ns: v & SCHED_MASK,
            attempt: ((v >> ATTEMPT_SHIFT) & ATTEMPT_MASK) as u8,
            traced: v & TRACE_BIT != 0,
            dlq: v & DLQ_BIT != 0,
        }
    }

    /// Nanoseconds from this record's schedule time to `now_ns` (a full monotonic time),
    /// modulo 2^48: exact whatever the run's length, for ages under ~78 hours.
    pub(super) fn age_ns(self, now_ns: u64) -> u64 {
        now_ns.wrapping_sub(self.sched_ns) & SCHED_MASK
    }

    /// True when `sched_ns` (a full monotonic time) is this record's schedule time.
    pub(super) fn same_schedule(self, sched_ns: u64) -> bool {
        self.sched_ns == sched_ns & SCHED_MASK
    }
}

/// A record kept by the sink for a later attempt (retry queue) or for the dead-letter queue.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub sched_ns: u64,
    pub attempt: u8,
    pub due_ns: u64,
    pub error: String,
}

/// How a failed record is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    /// Kafka may take it later: retry (idempotent producer) or dead-letter to the file.
    Retriable,
    /// Retrying cannot help (too large, not authorised, invalid): the dead-letter topic.
    Poison,
    /// Taken back from librdkafka by the sink's own purge when the drain time ran out: the
    /// dead-letter file. (librdkafka also purges by itself while it recovers an idempotent
    /// producer; those records are retriable: see `SinkContext::draining`.)
    Purged,
}

pub(crate) fn classify(code: Option<RDKafkaErrorCode>) -> ErrorClass {
    use RDKafkaErrorCode::*;
    match code {
        Some(
            MessageTimedOut
            | RequestTimedOut
            | NotEnoughReplicas
            | NotEnoughReplicasAfterAppend
            | LeaderNotAvailable
            | NotLeaderForPartition
            | BrokerTransportFailure
            | AllBrokersDown
            | NetworkException
            | QueueFull
            | UnknownTopicOrPartition
            | PreferredLeaderNotAvailable
            // The broker lost this producer's state (e.g. a restarted in-memory broker): the
            // record was refused, not written; the sink starts a new producer (`rebuild`).
            | UnknownProducerId,
        ) => ErrorClass::Retriable,
        Some(PurgeQueue | PurgeInflight) => ErrorClass::Purged,
        // MessageSizeTooLarge, InvalidMessageSize, TopicAuthorizationFailed, InvalidRecord,
        // RecordListTooLarge, and anything unknown: retrying cannot help.
        _ => ErrorClass::Poison,
    }
}

/// What the delivery callback learned; swapped out and folded in by the sink after each poll.
/// Two of these alternate (`SinkContext::outcomes` and the sink's spare), so a poll allocates
/// nothing: `reset` keeps every buffer's capacity.
#[derive(Default)]
pub(crate) struct Reports {
    pub delivered: u64,
    pub delivered_bytes: u64,
    pub dead_lettered: u64,
    pub released_bytes: u64,
    pub settled: u64,
    /// Set by the sink before each poll: delivery reports read the clock once per poll, not
    /// once per record.
    pub now_ns: u64,
    /// Successful calls, fast and slow, for the breaker (counted, not listed).
    pub ok_fast: u64,
    pub ok_slow: u64,
    /// (failed, took_ns) per failed call, for the breaker.
    pub calls: Vec<(bool, u64)>,
    pub retry: Vec<Held>,
    pub to_dlq: Vec<Held>,
    pub to_dlq_file: Vec<Held>,
    pub lat: LatencyStats,
    /// Acks of records scheduled before `warmup_end_ns` (clock ns) go here instead of `lat`.
    pub warm: LatencyStats,
    pub warmup_end_ns: u64,
    pub lat_sum_ns: u128,
    pub lat_n: u64,
    /// Delivery reports of traced records: (schedule opaque, error).
    pub traced: Vec<(Opaque, Option<String>)>,
    /// A record was refused with `UnknownProducerId`: the producer needs replacing.
    pub pid_lost: bool,
}

impl Reports {
    /// Zeroes the counters and empties the lists, keeping their capacity. The latency
    /// histogram is emptied by `LatencyStats::merge_from` when the sink folds it in.
    pub(super) fn reset(&mut self) {
        let now_ns = self.now_ns;
        self.delivered = 0;
        self.delivered_bytes = 0;
        self.dead_lettered = 0;
        self.released_bytes = 0;
        self.settled = 0;
        self.ok_fast = 0;
        self.ok_slow = 0;
        self.calls.clear();
        self.retry.clear();
        self.to_dlq.clear();
        self.to_dlq_file.clear();
        self.lat_sum_ns = 0;
        self.lat_n = 0;
        self.traced.clear();
        self.pid_lost = false;
        self.now_ns = now_ns;
    }
}

/// The producer context: delivery reports and client errors.
pub(super) struct SinkContext {
    pub(crate) outcomes: RefCell<Reports>,
    pub(crate) slow_ns: u64,
    pub(crate) max_attempts: u8,
    pub(crate) app_retries: bool,
    pub(crate) all_brokers_down: AtomicBool,
    pub(crate) errors: AtomicU64,
    /// Set by the sink just before it purges at the end of the drain: only then does a purged
    /// record go straight to the DLQ file.
    pub(crate) draining: AtomicBool,
    /// The last client errors' text, for the start-time probe to read (`security::explain`).
    pub(crate) trap: super::security::ErrorTrap,
}

// SAFETY: the only non-Sync field is `outcomes`, a RefCell touched solely from
// `ProducerContext::delivery` and by the sink between polls. rdkafka invokes `delivery` only
// from `BaseProducer::poll` and `flush` (it dispatches RD_KAFKA_EVENT_DR events from the main
// queue it polls); the producer lives inside `KafkaSink`, which is owned by the flush thread and
// never shared, so every access happens on that one thread. The other fields are atomics or
// immutable, and `trap` locks its own Mutex.
unsafe impl Sync for SinkContext {}

impl SinkContext {
    pub(crate) fn new(slow_ns: u64, max_attempts: u8, app_retries: bool) -> Self {
        Self {
            outcomes: RefCell::new(Reports::default()),
            slow_ns,
            max_attempts,
            app_retries,
            all_brokers_down: AtomicBool::new(false),
            errors: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            trap: Default::default(),
        }
    }
}

impl ClientContext for SinkContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, line: &str) {
        self.trap.log(level, fac, line);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.fetch_add(1, Relaxed);
        if matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::AllBrokersDown)) {
            self.all_brokers_down.store(true, Relaxed);
        }
        self.trap.error(error.clone(), reason);
        spate_core::rate_log::warn("kafka_client_error", &format!("kafka: {error}: {reason}"));
    }
}

/// Where a failed record goes, from its error class, whether it may already be in the log,
/// and how many attempts it had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Retry,
    DlqTopic,
    DlqFile,
}

pub(crate) fn route(
    class: ErrorClass,
    possibly_persisted: bool,
    app_retries: bool,
    attempt: u8,
    max_attempts: u8,
) -> Route {
    match class {
        // A record that may already be in the log (its request was sent, the answer was lost)
        // is not produced again: that could duplicate it. The DLQ file keeps it instead, where
        // nothing is lost and the user decides.
        ErrorClass::Retriable if possibly_persisted => Route::DlqFile,
        ErrorClass::Retriable if app_retries && attempt < max_attempts => Route::Retry,
        // Retries exhausted (or not allowed without idempotence): Kafka is not taking records,
        // so the DLQ topic would fail too.
        ErrorClass::Retriable => Route::DlqFile,
        ErrorClass::Poison => Route::DlqTopic,
        ErrorClass::Purged => Route::DlqFile,
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, op: usize) {
        let mut o = self.outcomes.borrow_mut();
        let now = o.now_ns;
        let op = Opaque::unpack(op);
        let took = op.age_ns(now);
        if op.traced {
            o.traced.push((op, result.as_ref().err().map(|(e, _)| e.to_string())));
        }
        match result {
            Ok(m) => {
                let bytes = m.payload_len() as u64;
                o.released_bytes += bytes;
                o.settled += 1;
                if op.dlq {
                    o.dead_lettered += 1;
                } else {
                    o.delivered += 1;
                    o.delivered_bytes += bytes + 1;
                    if now.wrapping_sub(took) < o.warmup_end_ns {
                        o.warm.record_ns(took);
                    } else {
                        o.lat.record_ns(took);
                    }
                    o.lat_sum_ns += u128::from(took);
                    o.lat_n += 1;
                    if took >= self.slow_ns {
                        o.ok_slow += 1;
                    } else {
                        o.ok_fast += 1;
                    }
                }
            }
            Err((e, m)) => {
                let held = Held {
                    topic: m.topic().to_string(),
                    key: m.key().map(<[u8]>::to_vec),
                    payload: m.payload().unwrap_or_default().to_vec(),
                    headers: m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                                .collect()
                        })
                        .unwrap_or_default(),
                    sched_ns: op.sched_ns,
                    attempt: op.attempt,
                    due_ns: 0,
                    error: e.to_string(),
                };
                o.settled += 1;
                o.pid_lost |= e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownProducerId);
                if op.dlq {
                    // The DLQ topic itself failed: the file is the last resort.
                    o.to_dlq_file.push(held);
                    return;
                }
                let class = match classify(e.rdkafka_error_code()) {
                    // Purged by librdkafka itself (e.g. resetting an idempotent producer): not
                    // written, so it may be sent again.
                    ErrorClass::Purged if !self.draining.load(Relaxed) => ErrorClass::Retriable,
                    c => c,
                };
                if class != ErrorClass::Purged {
                    o.calls.push((class == ErrorClass::Retriable, took));
                }
                let persisted = ffi::possibly_persisted(m);
                match route(class, persisted, self.app_retries, op.attempt, self.max_attempts) {
                    Route::Retry => o.retry.push(held),
                    Route::DlqTopic => o.to_dlq.push(held),
                    Route::DlqFile if class == ErrorClass::Purged => {
                        let mut held = held;
                        held.error = format!(
                            "{} (not acknowledged when the drain timeout ran out)",
                            held.error
                        );
                        o.to_dlq_file.push(held);
                    }
                    Route::DlqFile if persisted => {
                        let mut held = held;
                        held.error = format!(
                            "{} (possibly persisted: not retried, to avoid a duplicate)",
                            held.error
                        );
                        o.to_dlq_file.push(held);
                    }
                    Route::DlqFile => o.to_dlq_file.push(held),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_round_trips_every_field() {
        for &(sched, attempt, traced, dlq) in &[
            (0u64, 0u8, false, false),
            (SCHED_MASK, 255, true, true),
            (123_456_789, 7, true, false),
            (1 << 47, 128, false, true),
        ] {
            let o = Opaque { sched_ns: sched, attempt, traced, dlq };
            assert_eq!(Opaque::unpack(o.pack()), o, "{o:?}");
        }
    }

    #[test]
    fn attempt_keeps_all_eight_bits() {
        // Written with 8 bits and read with 8: 128 and above must not lose the top bit.
        for a in [0u8, 1, 127, 128, 200, 255] {
            assert_eq!(Opaque::unpack(Opaque::new(5, a).pack()).attempt, a);
        }
    }

    #[test]
    fn age_is_exact_across_the_48_bit_wrap() {
        let wrap = 1u64 << 48; // ~78 hours of nanoseconds
                               // Scheduled 1 ms before the wrap, acknowledged 2 ms after it.
        let sched = wrap - 1_000_000;
        let now = wrap + 2_000_000;
        assert_eq!(Opaque::new(sched, 0).age_ns(now), 3_000_000);
        // Far into a year-long run.
        let year = 365 * 24 * 3600 * 1_000_000_000u64;
        assert_eq!(Opaque::new(year, 0).age_ns(year + 42), 42);
        assert!(Opaque::new(year, 0).same_schedule(year));
        assert!(!Opaque::new(year, 0).same_schedule(year + 1));
    }

    #[test]
    fn flags_do_not_touch_the_schedule() {
        let o = Opaque { sched_ns: SCHED_MASK, attempt: 255, traced: true, dlq: true };
        let p = o.pack() as u64;
        assert_eq!(p & SCHED_MASK, SCHED_MASK);
        assert_eq!(
            Opaque::unpack(p as usize & !(DLQ_BIT | TRACE_BIT) as usize),
            Opaque { traced: false, dlq: false, ..o }
        );
    }

    #[test]
    fn classification_of_known_codes() {
        use RDKafkaErrorCode::*;
        for c in [
            MessageTimedOut,
            RequestTimedOut,
            AllBrokersDown,
            QueueFull,
            NotLeaderForPartition,
            UnknownProducerId,
        ] {
            assert_eq!(classify(Some(c)), ErrorClass::Retriable, "{c:?}");
        }
        for c in [MessageSizeTooLarge, InvalidMessageSize, TopicAuthorizationFailed, InvalidRecord]
        {
            assert_eq!(classify(Some(c)), ErrorClass::Poison, "{c:?}");
        }
        assert_eq!(classify(None), ErrorClass::Poison);
        assert_eq!(classify(Some(PurgeQueue)), ErrorClass::Purged);
        assert_eq!(classify(Some(PurgeInflight)), ErrorClass::Purged);
    }

    #[test]
    fn routes() {
        use ErrorClass::*;
        // Possibly persisted: never retried, whatever the budget.
        assert_eq!(route(Retriable, true, true, 0, 5), Route::DlqFile);
        assert_eq!(route(Retriable, false, true, 0, 5), Route::Retry);
        assert_eq!(route(Retriable, false, true, 4, 5), Route::Retry);
        assert_eq!(route(Retriable, false, true, 5, 5), Route::DlqFile);
        // Without idempotence there are no application retries.
        assert_eq!(route(Retriable, false, false, 0, 5), Route::DlqFile);
        assert_eq!(route(Poison, false, true, 0, 5), Route::DlqTopic);
        assert_eq!(route(Poison, true, true, 0, 5), Route::DlqTopic);
        // Purged at the end of the drain: never retried.
        assert_eq!(route(Purged, false, true, 0, 5), Route::DlqFile);
    }

    #[test]
    fn reset_keeps_capacity_and_clock() {
        let mut o = Reports { delivered: 3, now_ns: 77, pid_lost: true, ..Default::default() };
        o.calls.reserve(100);
        o.reset();
        assert_eq!((o.delivered, o.now_ns, o.pid_lost), (0, 77, false));
        assert!(o.calls.capacity() >= 100);
    }
}
