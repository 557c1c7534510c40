//! The Kafka sink: an rdkafka `BaseProducer` owned and polled by the flush thread (no hidden
//! polling thread), with delivery accounting, produce-to-ack latency, the circuit breaker,
//! application retries (only with idempotence), a dead-letter topic and a dead-letter file.
//!
//! Outcomes: every record handed to librdkafka ends as exactly one of delivered,
//! dead-lettered (DLQ topic acked, or written to the DLQ file) or failed (not even the DLQ
//! file could take it). Until then it is in flight, and its bytes count against the in-flight
//! byte budget.
//!
//! The rooms: `config.rs` (settings), `embedded.rs` (the in-process mock cluster),
//! `delivery.rs` (the per-record opaque, delivery reports, error classification), `retry.rs`
//! (retries, the dead-letter paths, spilling, producer replacement), `ffi.rs` (every call into
//! librdkafka's C API). This file is the sink itself: open, write, poll, finish.

pub mod batcher;
pub mod config;
mod delivery;
mod embedded;
mod ffi;
pub mod inflight;
mod producer;
mod retry;
pub mod security;

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseProducer, Producer};

use crate::batch::Batch;
use crate::error::EngineError;
use crate::latency::LatencyStats;
use crate::run::RunShared;
use crate::sink::dlq::DlqFile;
use crate::sink::kafka::batcher::Aimd;
use crate::sink::{Outcomes, Sink};
use spate_core::backoff::Backoff;
use spate_core::breaker::{Breaker, BreakerReporter, BreakerWindow, State};
use spate_gen::hex;
use spate_gen::EventMeta;

pub use config::{KafkaConfig, KeyStrategy, RawKafka};
use delivery::{classify, ErrorClass, Held, Opaque, Reports, SinkContext};
pub use embedded::EmbeddedBroker;
use ffi::TopicHandles;
use producer::{handle_names, make_producer, probe};

/// Header names spate adds to every record (unless `sink.kafka.headers: false`).
pub use crate::sink::dlq::{H_SPATE_ID, H_TRACEPARENT};

/// The Kafka sink, owned and polled by the flush thread.
pub struct KafkaSink {
    /// librdkafka topic handles: one per source's topic, then the DLQ topic. First field:
    /// fields drop in order, and the handles must be released before the producer goes.
    rkts: TopicHandles,
    /// Wakes the flush thread when the producer has reports; before `producer` too.
    wake: ffi::QueueWake,
    producer: BaseProducer<SinkContext>,
    shared: Arc<RunShared>,
    cfg: KafkaConfig,
    /// Topic per source index; the DLQ topic's handle index is `topics.len()`.
    topics: Vec<String>,
    partitions: Vec<i32>,
    source_names: Vec<String>,
    /// Round-robin position per source (`key: round_robin`).
    rr: Vec<u64>,
    /// Avro keys: the source keys encoded (Confluent header, Avro string), and the header
    /// that trace-id keys start with.
    avro_source_keys: Vec<Vec<u8>>,
    key_header: Option<[u8; 5]>,
    run_id: String,
    in_flight: u64,
    retry: VecDeque<Held>,
    /// Application retries: full jitter below 100 ms × 2^attempt, at most 30 s.
    backoff: Backoff,
    window: BreakerWindow,
    breaker: Arc<Breaker>,
    reporter: BreakerReporter,
    lat: LatencyStats,
    warm_lat: LatencyStats,
    first_ack_seen: bool,
    last_tick_ns: u64,
    /// When a record was last acknowledged.
    last_ack_ns: u64,
    aimd: Aimd,
    /// Records allowed to wait in librdkafka for their ack (`inflight.rs`).
    inflight: inflight::InflightWindow,
    /// Traced batches written and waiting for their last record's delivery report.
    traced: Vec<crate::spans::SpanRecord>,
    /// Where the producer connects (kept for `rebuild`).
    bootstrap: String,
    /// Set when the broker no longer knows the producer id; cleared by `rebuild`.
    rebuild_pending: bool,
    /// The old producer's local queue was purged for the pending replacement.
    queue_purged: bool,
    /// Producers replaced by `rebuild` in this run.
    pub rebuilds: u64,
    /// Policy `spill`: while the breaker is OPEN, batches go to the DLQ file.
    pub spill_when_open: bool,
    dlq: DlqFile,
    /// The other half of the delivery outcomes' double buffer (see `settle`).
    spare: Reports,
    /// Keeps the embedded broker alive as long as the producer (dropped after it).
    _embedded: Option<Arc<EmbeddedBroker>>,
}

impl KafkaSink {
    /// Keys become Confluent-framed Avro strings with this header (None: plain text).
    pub fn set_key_header(&mut self, header: Option<[u8; 5]>) {
        self.key_header = header;
        self.avro_source_keys = match header {
            None => Vec::new(),
            Some(h) => self
                .source_names
                .iter()
                .map(|s| {
                    let mut k = h.to_vec();
                    spate_gen::avro::push_str(&mut k, s.as_bytes());
                    k
                })
                .collect(),
        };
    }

    /// The key of source `src`'s records (`key: source`).
    #[inline]
    fn source_key(&self, src: usize) -> &[u8] {
        match self.key_header {
            Some(_) => &self.avro_source_keys[src],
            None => self.source_names[src].as_bytes(),
        }
    }

    /// The key of a record with trace id `t` (`key: trace_id`): 32 hex digits, after the Avro
    /// key header and the string's length when keys are Avro. Returns the bytes and their count.
    #[inline]
    fn trace_key(&self, t: u128) -> ([u8; 38], usize) {
        let mut k = [0u8; 38];
        let at = match self.key_header {
            Some(h) => {
                k[..5].copy_from_slice(&h);
                k[5] = 64; // 32 as an Avro long
                6
            }
            None => 0,
        };
        hex::u128_into(&mut k[at..at + 32], t);
        (k, at + 32)
    }

    /// Creates the producer for `cfg` (on `embedded`, creating its topics, when no brokers are
    /// given), with each source's topic from `source_names`; `batch_max` caps the batch size.
    pub fn open(
        cfg: &KafkaConfig,
        shared: Arc<RunShared>,
        breaker: Arc<Breaker>,
        reporter: BreakerReporter,
        source_names: &[String],
        embedded: Option<Arc<EmbeddedBroker>>,
        batch_max: usize,
    ) -> Result<Self, EngineError> {
        let bootstrap = match (&cfg.brokers, &embedded) {
            (Some(b), _) => b.clone(),
            (None, Some(e)) => e.bootstrap().to_string(),
            (None, None) => {
                return Err(EngineError::Kafka("no brokers given and no embedded cluster".into()))
            }
        };
        let topics: Vec<String> =
            source_names.iter().map(|s| cfg.topic.replace("{source}", s)).collect();
        if let Some(e) = &embedded {
            let mut seen = std::collections::BTreeSet::new();
            for t in topics.iter().chain(std::iter::once(&cfg.dlq_topic)) {
                if seen.insert(t.clone()) {
                    e.create_topic(t, cfg.partitions)?;
                }
            }
        }
        for (i, w) in cfg.security.warnings().iter().enumerate() {
            spate_core::rate_log::warn(["kafka_security_0", "kafka_security_1"][i.min(1)], w);
        }
        let producer = make_producer(cfg, &bootstrap)?;
        probe(&producer, cfg, &bootstrap, topics.first().map(String::as_str))?;
        let mut partitions = vec![-1; topics.len()];
        if cfg.key == KeyStrategy::RoundRobin {
            for (i, t) in topics.iter().enumerate() {
                let md = producer
                    .client()
                    .fetch_metadata(Some(t), Duration::from_secs(10))
                    .map_err(|e| {
                        EngineError::Kafka(format!(
                            "cannot read metadata of topic `{t}` for round_robin keys: {e}"
                        ))
                    })?;
                let n = md.topics().first().map_or(0, |t| t.partitions().len());
                if n == 0 {
                    return Err(EngineError::Kafka(format!(
                        "topic `{t}` has no partitions (does it exist?)"
                    )));
                }
                partitions[i] = n as i32;
            }
        }
        let now = shared.clock.now_ns();
        let rkts = TopicHandles::new(&producer, &handle_names(&topics, cfg))?;
        let wake = ffi::QueueWake::new(&producer)
            .map_err(|e| EngineError::Kafka(format!("cannot make the wake-up pipe: {e}")))?;
        let mut sink = Self {
            rkts,
            wake,
            producer,
            run_id: shared.run_id.to_string(),
            shared,
            topics,
            partitions,
            source_names: source_names.to_vec(),
            rr: vec![0; source_names.len()],
            avro_source_keys: Vec::new(),
            key_header: None,
            in_flight: 0,
            retry: VecDeque::new(),
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(30), now | 1),
            window: BreakerWindow::new(cfg.breaker),
            breaker,
            reporter,
            lat: LatencyStats::new(),
            warm_lat: LatencyStats::new(),
            first_ack_seen: false,
            last_tick_ns: now,
            last_ack_ns: now,
            aimd: Aimd::new(batch_max, Duration::from_millis(cfg.latency_target_ms)),
            inflight: cfg
                .inflight_records
                .map_or_else(inflight::InflightWindow::new, inflight::InflightWindow::fixed),
            traced: Vec::new(),
            bootstrap,
            rebuild_pending: false,
            queue_purged: false,
            rebuilds: 0,
            spill_when_open: false,
            dlq: DlqFile::new(cfg.dlq_file.clone()),
            spare: Reports::default(),
            cfg: cfg.clone(),
            _embedded: embedded,
        };
        // The warm-up starts now that the sink is ready; both halves of the outcomes know it.
        let end = sink.shared.clock.now_ns().saturating_add(sink.shared.warmup_ns);
        sink.spare.warmup_end_ns = end;
        sink.ctx().outcomes.borrow_mut().warmup_end_ns = end;
        Ok(sink)
    }

    fn ctx(&self) -> &SinkContext {
        self.producer.context()
    }

    /// Serves the producer's callbacks and, when the producer must be replaced and its last
    /// delivery report is in, replaces it.
    fn poll_producer(&mut self, acct: &mut Outcomes, timeout: Duration) {
        if !self.serve_queue() && !timeout.is_zero() {
            self.wake.wait(timeout);
            self.serve_queue();
        }
        self.settle(acct);
        if self.rebuild_pending && self.producer.in_flight_count() > 0 && !self.queue_purged {
            // The old producer's local queue would hold the replacement up until its records
            // time out: take them back now (never sent, so never written); they come back as
            // retriable reports and go out through the new producer.
            ffi::purge_queued(&self.producer);
            self.queue_purged = true;
        }
        if self.rebuild_pending && self.producer.in_flight_count() == 0 {
            self.rebuild();
            self.queue_purged = false;
        }
    }

    /// Serves the events librdkafka has queued, without blocking (each `poll(ZERO)` serves one
    /// event, which holds many delivery reports). False when there were none.
    fn serve_queue(&mut self) -> bool {
        let mut served = false;
        // Bounded: a queue that never empties must not hold the flush thread here.
        for _ in 0..64 {
            if self.wake.pending() == 0 {
                break;
            }
            self.ctx().outcomes.borrow_mut().now_ns = self.shared.clock.now_ns();
            self.producer.poll(Duration::ZERO);
            served = true;
        }
        served
    }

    /// Folds what the delivery callback learned into the counters and queues. The outcomes
    /// are double-buffered: the filled half is swapped with the empty spare, so no poll
    /// allocates or clears a histogram.
    fn settle(&mut self, acct: &mut Outcomes) {
        let now = self.shared.clock.now_ns();
        let mut o = std::mem::take(&mut self.spare);
        std::mem::swap(&mut o, &mut *self.ctx().outcomes.borrow_mut());
        self.ctx().outcomes.borrow_mut().now_ns = o.now_ns;
        acct.delivered += o.delivered;
        acct.delivered_bytes += o.delivered_bytes;
        acct.dead_lettered += o.dead_lettered;
        self.in_flight -= o.settled;
        acct.release(o.released_bytes);
        if o.ok_fast + o.ok_slow > 0 {
            self.last_ack_ns = now;
        }
        self.window.record_successes(&self.breaker, o.ok_fast, o.ok_slow, now);
        for &(failed, took) in &o.calls {
            self.window.record(&self.breaker, failed, Duration::from_nanos(took), now);
        }
        self.log_breaker();
        self.lat.merge_from(&mut o.lat);
        self.warm_lat.merge_from(&mut o.warm);
        if o.delivered > 0 && !self.first_ack_seen {
            self.first_ack_seen = true;
            self.shared.first_ack_ns.store(now, Relaxed);
        }
        self.aimd.observe(o.lat_sum_ns, o.lat_n);
        self.inflight.observe(o.lat_sum_ns, o.lat_n);
        self.rebuild_pending |= o.pid_lost && self.cfg.idempotence;
        for (op, error) in o.traced.drain(..) {
            if let Some(i) = self.traced.iter().position(|r| op.same_schedule(r.sched_ns)) {
                let mut r = self.traced.swap_remove(i);
                r.acked_ns = Some(o.now_ns.max(r.written_ns));
                r.error = error;
                acct.end_span(r);
            }
        }
        let retries = std::mem::take(&mut o.retry);
        self.schedule_retries(retries, now, acct);
        for h in std::mem::take(&mut o.to_dlq) {
            self.in_flight += 1;
            self.send_dlq(h, acct);
        }
        let to_file = std::mem::take(&mut o.to_dlq_file);
        self.in_flight += to_file.len() as u64;
        self.write_dlq_file(&to_file, acct);
        o.reset();
        self.spare = o;
    }

    /// Logs a change of the breaker's state, once per change (rate-limited per state entered).
    fn log_breaker(&mut self) {
        self.reporter.take_and_report(&mut self.window, &self.breaker);
    }

    fn merge_latency(&mut self) {
        self.shared.latency.lock().merge_from(&mut self.lat);
        if !self.warm_lat.is_empty() {
            self.shared.warmup_latency.lock().merge_from(&mut self.warm_lat);
        }
    }

    /// Housekeeping a few times a second: breaker timers, latency merge, batch size.
    fn tick(&mut self) {
        let now = self.shared.clock.now_ns();
        // librdkafka also reports "all brokers down" for stale connections while it reconnects;
        // it opens the breaker only from CLOSED and only when no record was acked for a second
        // (in HALF_OPEN the trial calls decide).
        if self.ctx().all_brokers_down.swap(false, Relaxed)
            && self.breaker.state() == State::Closed
            && now.saturating_sub(self.last_ack_ns) > 1_000_000_000
        {
            self.window.force_open(
                &self.breaker,
                now,
                "librdkafka reports all brokers down and nothing was acked for 1 s",
            );
        }
        self.window.tick(&self.breaker, now);
        self.log_breaker();
        if now - self.last_tick_ns < 100_000_000 {
            return;
        }
        self.last_tick_ns = now;
        self.merge_latency();
        let queue = self.producer.in_flight_count().max(0) as u64;
        let size = self.aimd.decide(queue);
        self.shared.batch_target.store(size as u64, Relaxed);
        let limit = self.inflight.decide(self.breaker.state() == State::Closed);
        let f = &self.shared.counters.flush;
        f.inflight_limit.store(limit, Relaxed);
        f.batch_size.store(size as u64, Relaxed);
        f.producer_queue.store(queue, Relaxed);
    }
}

impl Sink for KafkaSink {
    fn write(
        &mut self,
        batch: &Batch,
        from: usize,
        acct: &mut Outcomes,
    ) -> Result<usize, EngineError> {
        if self.spill_when_open && self.breaker.state() == State::Open {
            self.spill(batch, from, acct, "circuit breaker open: spilled (backpressure: spill)");
            return Ok(batch.len() - from);
        }
        if self.rebuild_pending {
            return Ok(0); // held by the flush thread until the new producer is up
        }
        let mut tp = [0u8; 55];
        let mut id = [0u8; 64];

        let mut taken = 0;
        let limit = self.inflight.limit();
        for i in from..batch.len() {
            if self.in_flight >= limit {
                break; // the window is full: the rest waits in the ring (backpressure)
            }
            let m: &EventMeta = &batch.metas[i];
            let payload = batch.payload(i);
            let src = m.source as usize;
            let last_traced = batch.trace.sampled && i + 1 == batch.len();
            let op = Opaque { traced: last_traced, ..Opaque::new(batch.sched_ns, 0) };
            let with_ids;
            let headers: &[(&str, &[u8])] = if self.cfg.headers {
                // The payload already carries both texts in every format that has them: the
                // headers reuse its bytes; only formats without them are formatted here.
                let tpv = match m.traceparent_in(payload) {
                    Some(t) => t,
                    None => {
                        hex::traceparent(&mut tp, m.trace_id, m.span_id);
                        &tp[..]
                    }
                };
                let idv = match m.id_in(payload) {
                    Some(x) => x,
                    None => {
                        let n = hex::event_id(&mut id, &self.run_id, m.worker, m.seq);
                        &id[..n]
                    }
                };
                with_ids = [(H_TRACEPARENT, tpv), (H_SPATE_ID, idv)];
                &with_ids
            } else {
                &[]
            };
            let trace_key;
            let (mut key, mut partition): (Option<&[u8]>, i32) = (None, -1);
            match self.cfg.key {
                KeyStrategy::None => {}
                KeyStrategy::Source => key = Some(self.source_key(src)),
                KeyStrategy::TraceId => {
                    trace_key = self.trace_key(m.trace_id);
                    key = Some(&trace_key.0[..trace_key.1]);
                }
                KeyStrategy::RoundRobin => {
                    partition = (self.rr[src] % self.partitions[src] as u64) as i32;
                    self.rr[src] += 1;
                }
            }
            match self.rkts.produce(
                &self.producer,
                src,
                partition,
                payload,
                key,
                op.pack(),
                headers,
            ) {
                Ok(()) => {
                    self.in_flight += 1;
                    taken += 1;
                    if last_traced {
                        self.traced.push(batch.span_record(acct.now_ns(), None, None));
                    }
                }
                Err(RDKafkaErrorCode::QueueFull) => break, // keep the rest; backpressure
                Err(code) => {
                    // Refused before enqueueing (e.g. larger than message.max.bytes): its bytes
                    // were budgeted with the batch; the DLQ path releases them.
                    let (mut tp, mut id) = ([0u8; 55], [0u8; 64]);
                    let id_len = record_ids(&mut tp, &mut id, &self.run_id, m);
                    let held = Held {
                        topic: self.topics[src].clone(),
                        key: key.map(<[u8]>::to_vec),
                        payload: payload.to_vec(),
                        headers: vec![
                            (H_TRACEPARENT.into(), tp.to_vec()),
                            (H_SPATE_ID.into(), id[..id_len].to_vec()),
                        ],
                        sched_ns: batch.sched_ns,
                        attempt: 0,
                        due_ns: 0,
                        error: rdkafka::error::KafkaError::MessageProduction(code).to_string(),
                    };
                    self.in_flight += 1;
                    taken += 1;
                    match classify(Some(code)) {
                        ErrorClass::Poison => self.send_dlq(held, acct),
                        ErrorClass::Retriable | ErrorClass::Purged => {
                            self.write_dlq_file(std::slice::from_ref(&held), acct);
                        }
                    }
                }
            }
        }
        // Bytes of the part not taken stay budgeted with the batch; of the newline-less
        // payloads, librdkafka's acks release their length. Release the newlines now.
        acct.release(taken as u64);
        self.inflight.note_in_flight(self.in_flight);
        Ok(taken)
    }

    fn poll(&mut self, acct: &mut Outcomes, timeout_ms: u64) {
        self.poll_producer(acct, Duration::from_millis(timeout_ms));
        self.drain_retries(acct);
        self.tick();
    }

    fn finish(&mut self, acct: &mut Outcomes, timeout_ms: u64) -> Result<(), EngineError> {
        let deadline = self.shared.clock.now_ns() + timeout_ms * 1_000_000;
        while self.in_flight > 0 && self.shared.clock.now_ns() < deadline && !acct.is_aborting() {
            self.poll_producer(acct, Duration::from_millis(10));
            // At the end, do not wait out long backoffs: retry as soon as the breaker allows.
            let now = self.shared.clock.now_ns();
            for h in &mut self.retry {
                h.due_ns = h.due_ns.min(now);
            }
            self.drain_retries(acct);
            self.tick();
        }
        if self.in_flight > 0 {
            // Time is up: take every record back from librdkafka (queued and in flight). Their
            // delivery reports come back at once as purged; the retry queue and then the DLQ
            // file take them, so nothing stays in flight.
            let queued = self.producer.in_flight_count();
            if queued > 0 {
                spate_core::rate_log::warn(
                    "kafka_drain",
                    &format!(
                        "{queued} records unacknowledged when the drain time ran out: they go to the DLQ file {}",
                        self.dlq.path().display()
                    ),
                );
                self.ctx().draining.store(true, Relaxed);
                ffi::purge(&self.producer);
                let settle_by = self.shared.clock.now_ns() + 5_000_000_000;
                while self.producer.in_flight_count() > 0 && self.shared.clock.now_ns() < settle_by
                {
                    self.poll_producer(acct, Duration::from_millis(10));
                }
                self.poll_producer(acct, Duration::ZERO);
            }
        }
        // Whatever is still queued for retry goes to the DLQ file rather than being lost.
        let left: Vec<Held> = self.retry.drain(..).collect();
        self.write_dlq_file(&left, acct);
        self.merge_latency();
        if self.in_flight > 0 {
            return Err(EngineError::Kafka(format!(
                "{} records still unacknowledged after the drain and a purge (counted as in flight)",
                self.in_flight
            )));
        }
        Ok(())
    }

    /// The run is ending and these events were never produced: the DLQ file, with the reason.
    fn abandon(&mut self, batch: &Batch, from: usize, acct: &mut Outcomes, reason: &str) {
        self.spill(batch, from, acct, reason);
    }

    fn in_flight(&self) -> u64 {
        self.in_flight
    }
}

/// A record's `traceparent` and `spate-id` header values; returns the id's length.
#[inline]
fn record_ids(tp: &mut [u8; 55], id: &mut [u8; 64], run_id: &str, m: &EventMeta) -> usize {
    hex::traceparent(tp, m.trace_id, m.span_id);
    hex::event_id(id, run_id, m.worker, m.seq)
}
