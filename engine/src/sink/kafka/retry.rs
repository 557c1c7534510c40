//! What happens to records Kafka did not take: application retries with backoff, the
//! dead-letter topic and file, spilling under policy `spill`, and replacing a producer whose id
//! the broker forgot.
//!
//! Only a full local queue (`QueueFull`) keeps a record for the next poll; any other refusal is
//! classified at once and the record goes to the dead-letter topic (poison) or file, with the
//! reason, so no record can loop forever.

use std::sync::atomic::Ordering::Relaxed;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::delivery::{classify, ErrorClass, Held, Opaque};
use super::ffi::TopicHandles;
use super::producer::{handle_names, make_producer};
use super::{record_ids, KafkaSink, KeyStrategy, H_SPATE_ID, H_TRACEPARENT};
use crate::batch::Batch;
use crate::sink::dlq::DlqLineRef;
use crate::sink::Outcomes;
use spate_core::breaker::State;

impl KafkaSink {
    /// Queues records the delivery callback marked for another attempt.
    pub(super) fn schedule_retries(&mut self, held: Vec<Held>, now: u64, acct: &mut Outcomes) {
        for mut h in held {
            h.attempt += 1;
            acct.retried += 1;
            h.due_ns = now + self.backoff.next_ns(h.attempt);
            self.retry.push_back(h);
            self.in_flight += 1;
        }
    }

    /// Re-produces due retries while the breaker allows (HALF_OPEN: these are the trials).
    pub(super) fn drain_retries(&mut self, acct: &mut Outcomes) {
        if self.breaker.state() == State::Open || self.rebuild_pending {
            return;
        }
        let now = self.shared.clock.now_ns();
        while self.retry.front().is_some_and(|h| h.due_ns <= now) {
            let h = self.retry.pop_front().expect("front exists");
            let Some(topic) = self.topics.iter().position(|t| *t == h.topic) else {
                // Not one of this run's topics (cannot happen: records come from this sink).
                self.write_dlq_file(std::slice::from_ref(&h), acct);
                continue;
            };
            let pairs: Vec<(&str, &[u8])> =
                h.headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
            let op = Opaque::new(h.sched_ns, h.attempt).pack();
            match self.rkts.produce(
                &self.producer,
                topic,
                -1,
                &h.payload,
                h.key.as_deref(),
                op,
                &pairs,
            ) {
                Ok(()) => {}
                Err(RDKafkaErrorCode::QueueFull) => {
                    // The local queue is full: try again on the next poll.
                    self.retry.push_front(h);
                    break;
                }
                Err(code) => {
                    let mut h = h;
                    h.error = KafkaError::MessageProduction(code).to_string();
                    match classify(Some(code)) {
                        ErrorClass::Poison => self.send_dlq(h, acct),
                        ErrorClass::Retriable | ErrorClass::Purged => {
                            self.write_dlq_file(std::slice::from_ref(&h), acct);
                        }
                    }
                }
            }
        }
    }

    /// A poison record goes to the dead-letter topic with its error and original topic as
    /// headers; if even that is refused, to the file. The record counts as in flight here.
    pub(super) fn send_dlq(&mut self, h: Held, acct: &mut Outcomes) {
        let mut pairs: Vec<(&str, &[u8])> =
            h.headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        pairs.push(("spate-error", h.error.as_bytes()));
        pairs.push(("spate-original-topic", h.topic.as_bytes()));
        let op = Opaque { dlq: true, ..Opaque::new(h.sched_ns, h.attempt) }.pack();
        let dlq_topic = self.topics.len();
        if self
            .rkts
            .produce(&self.producer, dlq_topic, -1, &h.payload, h.key.as_deref(), op, &pairs)
            .is_err()
        {
            self.write_dlq_file(std::slice::from_ref(&h), acct);
        }
    }

    /// Last resort: JSON lines in the DLQ file (`spate dlq replay` re-sends them). Each record
    /// was counted in flight; it leaves as dead-lettered, or as failed if the file cannot take it.
    pub(super) fn write_dlq_file(&mut self, held: &[Held], acct: &mut Outcomes) {
        if held.is_empty() {
            return;
        }
        let n = held.len() as u64;
        self.in_flight -= n;
        acct.release(held.iter().map(|h| h.payload.len() as u64).sum());
        // Borrowed views of each record's headers for its line.
        let owned: Vec<Vec<(&str, &[u8])>> = held
            .iter()
            .map(|h| h.headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect())
            .collect();
        let lines = held.iter().zip(&owned).map(|(h, pairs)| DlqLineRef {
            topic: &h.topic,
            key: h.key.as_deref(),
            headers: pairs,
            payload: &h.payload,
            error: &h.error,
            attempts: u32::from(h.attempt) + 1,
        });
        self.dlq_append(lines, n, acct);
    }

    /// `batch[from..]` goes to the DLQ file, not Kafka, with `reason`: policy `spill` while the
    /// breaker is OPEN, or events never produced when the run ends (`abandon`).
    pub(super) fn spill(&mut self, batch: &Batch, from: usize, acct: &mut Outcomes, reason: &str) {
        let mut ids = Vec::with_capacity(batch.len() - from);
        let mut keys = Vec::with_capacity(batch.len() - from);
        for m in &batch.metas[from..] {
            let (mut tp, mut id) = ([0u8; 55], [0u8; 64]);
            let n = record_ids(&mut tp, &mut id, &self.run_id, m);
            ids.push((tp, id, n));
            // Owned (the DLQ path is rare): the lines borrow them while `self.dlq` writes.
            keys.push(match self.cfg.key {
                KeyStrategy::Source => Some(self.source_key(m.source as usize).to_vec()),
                KeyStrategy::TraceId => {
                    let (k, n) = self.trace_key(m.trace_id);
                    Some(k[..n].to_vec())
                }
                KeyStrategy::None | KeyStrategy::RoundRobin => None,
            });
        }
        let pairs: Vec<[(&str, &[u8]); 2]> = ids
            .iter()
            .map(|(tp, id, n)| [(H_TRACEPARENT, &tp[..]), (H_SPATE_ID, &id[..*n])])
            .collect();
        let lines = (from..batch.len()).map(|i| {
            let m = &batch.metas[i];
            let src = m.source as usize;
            let key = keys[i - from].as_deref();
            DlqLineRef {
                topic: &self.topics[src],
                key,
                headers: &pairs[i - from],
                payload: batch.payload(i),
                error: reason,
                attempts: 0,
            }
        });
        let lines: Vec<DlqLineRef<'_>> = lines.collect();
        let n = lines.len() as u64;
        let res = self.dlq.append(lines);
        self.count_dlq(res, n, acct);
        // Budgeted with the batch; no ack will release them.
        acct.taken(batch, from, batch.len() - from, Some(reason.to_string()));
    }

    fn dlq_append<'a>(
        &mut self,
        lines: impl IntoIterator<Item = DlqLineRef<'a>>,
        n: u64,
        acct: &mut Outcomes,
    ) {
        let res = self.dlq.append(lines);
        self.count_dlq(res, n, acct);
    }

    fn count_dlq(&mut self, res: std::io::Result<usize>, n: u64, acct: &mut Outcomes) {
        match res {
            Ok(_) => acct.dead_lettered += n,
            Err(e) => {
                spate_core::rate_log::warn(
                    "dlq_file",
                    &format!("cannot write the DLQ file {}: {e}", self.dlq.path().display()),
                );
                acct.failed += n;
            }
        }
    }

    /// Replaces the producer once the old one has nothing in flight. Needed when the broker
    /// answers `UnknownProducerId`: it lost the idempotent producer's state (a restarted
    /// in-memory broker does), librdkafka will not resend under that id, and every later record
    /// would be refused. The refused records wait in the retry queue (they were not written)
    /// and go out through the new producer, which gets a new id; nothing is duplicated.
    pub(super) fn rebuild(&mut self) {
        let names = handle_names(&self.topics, &self.cfg);
        let made = make_producer(&self.cfg, &self.bootstrap).and_then(|p| {
            let rkts = TopicHandles::new(&p, &names)?;
            let wake = super::ffi::QueueWake::new(&p).map_err(|e| {
                crate::error::EngineError::Kafka(format!("cannot make the wake-up pipe: {e}"))
            })?;
            Ok((p, rkts, wake))
        });
        match made {
            Ok((producer, rkts, wake)) => {
                // Handles and the queue reference before their producer (rd_kafka_destroy
                // expects its topics and queues released).
                drop(std::mem::replace(&mut self.rkts, rkts));
                drop(std::mem::replace(&mut self.wake, wake));
                drop(std::mem::replace(&mut self.producer, producer));
                self.rebuild_pending = false;
                self.rebuilds += 1;
                self.shared.counters.flush.producer_restarts.store(self.rebuilds, Relaxed);
                spate_core::rate_log::warn(
                    "kafka_rebuild",
                    "the broker no longer knows this producer's id (UnknownProducerId): started a new producer",
                );
            }
            Err(e) => spate_core::rate_log::warn(
                "kafka_rebuild",
                &format!("cannot start a new producer: {e} (retrying)"),
            ),
        }
    }
}
