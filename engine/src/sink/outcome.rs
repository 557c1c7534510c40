//! Where every sink reports what became of the events it took: one accounting component for all
//! of them. It counts the outcomes (the flush thread publishes them once per pass), releases
//! their bytes from the run's in-flight budget, ends traced batches' spans, and notes that the
//! reader of stdout went away. The flush thread reports its own outcomes (a dead sink's rest)
//! through it too, so no outcome is counted anywhere else.
//!
//! When a sink is done with a batch's bytes decides when they leave the budget: at once for the
//! sinks that copy or write them while taking the batch (null, file, stdout, TCP, PostgreSQL:
//! [`Outcomes::taken`] and the `*_from` reports), at each acknowledgement for Kafka, whose
//! producer holds the payloads until the broker answers ([`Outcomes::release`]).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use spate_core::clock::{Clock, MonotonicClock};

use crate::batch::Batch;
use crate::budget::ByteBudget;
use crate::lifecycle::Lifecycle;
use crate::spans::{SpanRecord, Tracer};
use crate::stats::LocalFlush;

/// The outcome accounting of one run's flush thread. Its counters (`delivered`, `failed`, ...)
/// are reachable through `Deref` for counts that carry no bytes or spans.
pub struct Outcomes {
    counts: LocalFlush,
    budget: Arc<ByteBudget>,
    tracer: Option<Arc<Tracer>>,
    clock: Arc<dyn Clock>,
    lifecycle: Arc<Lifecycle>,
    reader_gone: bool,
}

impl Outcomes {
    /// Outcomes released from `budget`, spans ended through `tracer`, timed by `clock`.
    pub fn new(
        budget: Arc<ByteBudget>,
        tracer: Option<Arc<Tracer>>,
        clock: Arc<dyn Clock>,
        lifecycle: Arc<Lifecycle>,
    ) -> Self {
        Self { counts: LocalFlush::default(), budget, tracer, clock, lifecycle, reader_gone: false }
    }

    /// Without a budget or a tracer: for a sink used on its own (tests, tools).
    pub fn detached() -> Self {
        Self::new(
            Arc::new(ByteBudget::new(0)),
            None,
            Arc::new(MonotonicClock::new()),
            Arc::new(Lifecycle::new(1)),
        )
    }

    /// The counts so far.
    pub fn counts(&self) -> &LocalFlush {
        &self.counts
    }

    /// Whether a hard stop was asked for: a sink waiting out its drain gives up at once.
    pub fn is_aborting(&self) -> bool {
        self.lifecycle.is_aborting()
    }

    /// The run's clock, for timestamps of spans and outcomes.
    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    /// The sink is done with events `from..from + n` of `batch` (written, copied into its own
    /// buffer, or settled): their bytes leave the budget, and when they end the batch, its span
    /// ends now, with `error` if the batch failed.
    pub fn taken(&mut self, batch: &Batch, from: usize, n: usize, error: Option<String>) {
        if n == 0 {
            return;
        }
        let end = from + n;
        self.budget.release(span_bytes(batch, from, end));
        if end == batch.len() && batch.trace.sampled {
            if let Some(t) = &self.tracer {
                t.submit(batch.span_record(self.clock.now_ns(), None, error));
            }
        }
    }

    /// Events `from..from + n` of `batch` were delivered as the sink took them.
    pub fn delivered_from(&mut self, batch: &Batch, from: usize, n: usize) {
        self.delivered_as(batch, from, n, span_bytes(batch, from, from + n));
    }

    /// As [`Outcomes::delivered_from`], for a sink that wrote `written` bytes for them in its
    /// own framing (an Avro container block).
    pub fn delivered_as(&mut self, batch: &Batch, from: usize, n: usize, written: u64) {
        self.counts.delivered += n as u64;
        self.counts.delivered_bytes += written;
        self.taken(batch, from, n, None);
    }

    /// Events `from..` of `batch` failed for good (the sink refused them, or is dead).
    pub fn failed_from(&mut self, batch: &Batch, from: usize, error: Option<String>) {
        let n = batch.len() - from;
        self.counts.failed += n as u64;
        self.taken(batch, from, n, error);
    }

    /// Events `from..` of `batch` were dropped on purpose and counted (the reader went away).
    pub fn shed_from(&mut self, batch: &Batch, from: usize) {
        let n = batch.len() - from;
        self.counts.shed += n as u64;
        self.taken(batch, from, n, None);
    }

    /// Bytes a sink held until now (Kafka: a record's payload, at its acknowledgement).
    pub fn release(&mut self, bytes: u64) {
        self.budget.release(bytes);
    }

    /// Ends a batch's span that the sink kept until its acknowledgement.
    pub fn end_span(&mut self, record: SpanRecord) {
        if let Some(t) = &self.tracer {
            t.submit(record);
        }
    }

    /// The reader of stdout went away (`spate | head`): not a failure; the run ends, quietly.
    pub fn reader_gone(&mut self) {
        self.reader_gone = true;
    }

    /// Whether the reader of stdout went away (see [`Outcomes::reader_gone`]).
    pub fn is_reader_gone(&self) -> bool {
        self.reader_gone
    }
}

impl Deref for Outcomes {
    type Target = LocalFlush;
    fn deref(&self) -> &LocalFlush {
        &self.counts
    }
}

impl DerefMut for Outcomes {
    fn deref_mut(&mut self) -> &mut LocalFlush {
        &mut self.counts
    }
}

/// Bytes of events `from..end` of `batch` (to the end of its buffer for the last part, as the
/// worker reserved the whole buffer).
fn span_bytes(batch: &Batch, from: usize, end: usize) -> u64 {
    if end <= from {
        return 0;
    }
    let start = if from == 0 { 0 } else { batch.ends[from - 1] as usize };
    let stop = if end == batch.len() { batch.buf.len() } else { batch.ends[end - 1] as usize };
    (stop - start) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use spate_gen::EventMeta;

    fn batch(lines: &[&str]) -> Batch {
        let mut b = Batch::with_capacity(0, lines.len(), 1024);
        for l in lines {
            b.buf.extend_from_slice(l.as_bytes());
            b.ends.push(b.buf.len() as u32);
            b.metas.push(EventMeta::default());
        }
        b
    }

    #[test]
    fn parts_release_exactly_the_batch() {
        let budget = Arc::new(ByteBudget::new(1 << 20));
        let b = batch(&["a\n", "bb\n", "ccc\n"]);
        assert!(budget.reserve(b.buf.len() as u64));
        let mut o = Outcomes::new(
            budget.clone(),
            None,
            Arc::new(MonotonicClock::new()),
            Arc::new(Lifecycle::new(1)),
        );
        // A sink that took nothing (full) reports nothing.
        o.delivered_from(&b, 0, 0);
        assert_eq!((budget.used(), o.delivered, o.delivered_bytes), (9, 0, 0));
        o.taken(&b, 0, 1, None);
        assert_eq!(budget.used(), 7);
        o.delivered_from(&b, 1, 1);
        assert_eq!((budget.used(), o.delivered, o.delivered_bytes), (4, 1, 3));
        o.failed_from(&b, 2, Some("x".into()));
        assert_eq!((budget.used(), o.failed), (0, 1));
    }

    proptest! {
        /// A batch's framing (events back to back, each ending in a newline, `ends` after
        /// each) gives every event back as written, and a batch taken in any parts releases
        /// exactly the bytes the worker reserved, once.
        #[test]
        fn framing_and_parts_release_exactly_the_buffer(
            lines in prop::collection::vec("[^\n]{0,40}", 1..60),
            cuts in prop::collection::vec(1usize..20, 1..60),
        ) {
            let framed: Vec<String> = lines.iter().map(|l| format!("{l}\n")).collect();
            let b = batch(&framed.iter().map(String::as_str).collect::<Vec<_>>());
            for (i, l) in lines.iter().enumerate() {
                prop_assert_eq!(b.line(i), framed[i].as_bytes());
                prop_assert_eq!(b.payload(i), l.as_bytes());
                let rest = framed[i..].concat();
                prop_assert_eq!(b.bytes_from(i), rest.as_bytes());
            }
            let budget = Arc::new(ByteBudget::new(1 << 30));
            prop_assert!(budget.reserve(b.buf.len() as u64));
            let mut o = Outcomes::new(budget.clone(), None, Arc::new(MonotonicClock::new()), Arc::new(Lifecycle::new(1)));
            let mut from = 0;
            for c in cuts.iter().cycle() {
                if from == b.len() {
                    break;
                }
                let n = (*c).min(b.len() - from);
                o.delivered_from(&b, from, n);
                from += n;
            }
            prop_assert_eq!(budget.used(), 0);
            prop_assert_eq!(o.delivered, b.len() as u64);
            prop_assert_eq!(o.delivered_bytes, b.buf.len() as u64);
        }
    }
}
