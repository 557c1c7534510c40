//! The flush thread: drains every worker's ring round-robin, hands batches to the sink, sends
//! emptied batches back to their worker, and serves the sink's callbacks (Kafka delivery
//! reports) from this same thread: no hidden polling threads.
//!
//! When the sink is full (Kafka `QueueFull`) the batch being written is kept with its position
//! and nothing more is drained until the sink takes it; the rings then fill and the workers
//! block or shed by policy. Nothing is dropped silently.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use crate::batch::Batch;
use crate::error::EngineError;
use crate::ring::{Consumer, Producer};
use crate::run::RunShared;
use crate::sink::{Outcomes, Sink};

/// Batches taken from one ring before moving to the next (fairness between workers).
const PER_RING: usize = 4;

/// What the flush thread is started with.
pub struct FlushSetup {
    /// The run's shared state: counters, lifecycle, clock.
    pub shared: Arc<RunShared>,
    /// The consumer end of each worker's ring, filled batches in.
    pub rings: Vec<Consumer<Batch>>,
    /// The producer end of each worker's return ring, emptied batches back.
    pub returns: Vec<Producer<Batch>>,
    /// The sink batches are handed to.
    pub sink: Box<dyn Sink>,
}

/// The flush thread's body: drains the rings into the sink until every worker is done (or the
/// drain timeout or a hard stop), then finishes the sink; returns the sink's error, if any.
pub fn run(setup: FlushSetup) -> Result<(), EngineError> {
    let FlushSetup { shared, rings, returns, mut sink } = setup;
    let mut f = Flush {
        shared: &shared,
        returns,
        local: Outcomes::new(
            shared.budget.clone(),
            shared.tracer.clone(),
            shared.clock.clone(),
            shared.lifecycle.clone(),
        ),
        dead: None,
        reader_gone: false,
    };
    let mut pending: Option<(Batch, usize)> = None;
    let n = rings.len();
    let mut start = 0;
    // Once generation has ended (duration, count, stop), the sink has until this time to settle.
    let mut drain_deadline: Option<u64> = None;
    let mut giving_up = false;
    loop {
        let now = shared.clock.now_ns();
        // Acquire pairs with each worker's Release increment: their final pushes are visible.
        let all_done = shared.lifecycle.all_workers_done();
        let generated_all = shared.lifecycle.all_generated();
        let deadline_ns = shared.deadline_ns.load(Relaxed);
        if drain_deadline.is_none()
            && (shared.lifecycle.is_stopping() || now >= deadline_ns || generated_all)
        {
            let ended = now.min(deadline_ns);
            drain_deadline = Some(ended.saturating_add(shared.drain_timeout_ns));
        }
        if !giving_up
            && (shared.lifecycle.is_aborting() || drain_deadline.is_some_and(|d| now >= d))
        {
            // Hard stop, or the drain timeout passed: workers stop waiting to push, and what
            // they had not handed over, the sink settles now (`Sink::abandon`).
            giving_up = true;
            shared.lifecycle.abort();
        }
        if giving_up {
            if let Some((b, from)) = pending.take() {
                f.abandon(&mut *sink, b, from);
            }
            for (i, r) in rings.iter().enumerate() {
                while let Some(b) = r.pop() {
                    f.count_pop(i);
                    f.abandon(&mut *sink, b, 0);
                }
            }
            f.local.sink_in_flight = sink.in_flight();
            f.local.publish(&shared.counters.flush);
            if shared.lifecycle.all_workers_done()
                && rings.iter().all(super::ring::Consumer::is_empty)
            {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        let mut progressed = false;
        if let Some((b, from)) = pending.take() {
            pending = f.hand(&mut *sink, b, from);
            progressed = pending.is_none();
        }
        if pending.is_none() {
            'rings: for k in 0..n {
                let i = (start + k) % n;
                for _ in 0..PER_RING {
                    let Some(mut b) = rings[i].pop() else { break };
                    if b.trace.sampled {
                        b.trace.popped_ns = shared.clock.now_ns();
                    }
                    f.count_pop(i);
                    progressed = true;
                    if let Some(p) = f.hand(&mut *sink, b, 0) {
                        pending = Some(p);
                        break 'rings;
                    }
                }
            }
            start = (start + 1) % n.max(1);
        }
        if f.dead.is_none() {
            sink.poll(&mut f.local, 0);
        }
        f.local.sink_in_flight = sink.in_flight();
        f.local.publish(&shared.counters.flush);
        if !progressed {
            if all_done && pending.is_none() && rings.iter().all(super::ring::Consumer::is_empty) {
                break;
            }
            if pending.is_some() {
                // Sink full: wait on its callbacks rather than spin.
                sink.poll(&mut f.local, 1);
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }
    let res = match f.dead.take() {
        Some(e) => Err(e),
        None => {
            // What is left of the drain time (none after a hard stop: settle at once).
            let now = shared.clock.now_ns();
            let left_ns = if shared.lifecycle.is_aborting() {
                0
            } else {
                drain_deadline.map_or(shared.drain_timeout_ns, |d| d.saturating_sub(now))
            };
            sink.finish(&mut f.local, left_ns / 1_000_000)
        }
    };
    f.local.sink_in_flight = sink.in_flight();
    f.local.publish(&shared.counters.flush);
    drop(sink);
    shared.lifecycle.flush_ended();
    res
}

struct Flush<'a> {
    shared: &'a RunShared,
    returns: Vec<Producer<Batch>>,
    /// Every outcome, the sink's and this thread's own, is reported here.
    local: Outcomes,
    /// Set when the sink failed for good: the rest of the run is counted as failed.
    dead: Option<EngineError>,
    /// Whether the run was ended because the reader of stdout went away (once).
    reader_gone: bool,
}

impl Flush<'_> {
    /// Hands `batch[from..]` to the sink. Returns the batch back if the sink took only part.
    fn hand(&mut self, sink: &mut dyn Sink, batch: Batch, from: usize) -> Option<(Batch, usize)> {
        let len = batch.len();
        let took = if let Some(e) = &self.dead {
            self.local.failed_from(&batch, from, Some(e.to_string()));
            len - from
        } else {
            match sink.write(&batch, from, &mut self.local) {
                Ok(t) => t,
                Err(e) => {
                    // The sink reported this batch failed; stop the run, fail the rest.
                    self.shared.set_error(e.to_string());
                    self.shared.lifecycle.abort();
                    self.dead = Some(e);
                    len - from
                }
            }
        };
        if self.local.is_reader_gone() && !self.reader_gone {
            // Not a failure: whoever read stdout has what it wanted (`spate | head`). The
            // sink sheds the rest; the run ends now.
            self.reader_gone = true;
            self.shared.lifecycle.reader_gone();
        }
        self.local.events_handed += took as u64;
        if from + took < len {
            return Some((batch, from + took));
        }
        self.give_back(batch);
        None
    }

    fn count_pop(&mut self, ring: usize) {
        self.local.batches += 1;
        let popped = &self.shared.counters.popped_per_ring[ring];
        popped.store(popped.load(Relaxed) + 1, Relaxed);
    }

    /// Settles `batch[from..]` without delivering it: failed when the sink is dead, otherwise
    /// whatever the sink does with what it cannot deliver in time (the DLQ file of Kafka and
    /// PostgreSQL; stdout sheds it once its reader went away).
    fn abandon(&mut self, sink: &mut dyn Sink, batch: Batch, from: usize) {
        let n = (batch.len() - from) as u64;
        if let Some(e) = &self.dead {
            self.local.failed_from(&batch, from, Some(e.to_string()));
        } else {
            sink.abandon(
                &batch,
                from,
                &mut self.local,
                "not handed to the sink before the drain timeout or a hard stop",
            );
        }
        self.local.events_handed += n;
        self.give_back(batch);
    }

    fn give_back(&mut self, batch: Batch) {
        let w = batch.worker as usize;
        // The return ring is sized to the worker's whole pool, so it cannot be full; if the
        // worker has exited, the batch is simply dropped.
        let _ = self.returns[w].push(batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::ring;
    use spate_gen::{EventMeta, RunId};
    use spate_limit::Rate;

    /// A sink that takes at most `room` events, then is full until its next `poll` (like
    /// Kafka's `QueueFull`), and counts what it took as delivered.
    struct Choking {
        room: usize,
        left: usize,
        polls: u64,
    }

    impl Sink for Choking {
        fn write(
            &mut self,
            batch: &Batch,
            from: usize,
            acct: &mut Outcomes,
        ) -> Result<usize, EngineError> {
            let n = (batch.len() - from).min(self.left);
            self.left -= n;
            acct.delivered_from(batch, from, n);
            Ok(n)
        }
        fn poll(&mut self, _acct: &mut Outcomes, _timeout_ms: u64) {
            self.polls += 1;
            self.left = self.room;
        }
        fn finish(&mut self, _acct: &mut Outcomes, _timeout_ms: u64) -> Result<(), EngineError> {
            Ok(())
        }
    }

    fn batch(worker: u16, events: usize) -> Batch {
        let mut b = Batch::with_capacity(worker, events, events * 4);
        for _ in 0..events {
            b.buf.extend_from_slice(b"abc\n");
            b.ends.push(b.buf.len() as u32);
            b.metas.push(EventMeta::default());
        }
        b
    }

    /// Two workers' rings drained into a sink that keeps filling up part-way through batches:
    /// every event is delivered once, every batch goes back to its own worker, and the loop ends
    /// once both workers are done and the rings are empty.
    #[test]
    fn partial_writes_are_resumed_and_batches_return_home() {
        // A byte budget: each batch's bytes are reserved as a worker does, and must all be
        // released through the sink's outcomes, part by part.
        let shared = Arc::new(RunShared::new(RunId(1), 2, Rate::Max, 1 << 20, None, None));
        let (mut rings, mut returns, mut tx, mut back) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..2 {
            let (p, c) = ring::<Batch>(64);
            let (rp, rc) = ring::<Batch>(64);
            rings.push(c);
            returns.push(rp);
            tx.push(p);
            back.push(rc);
        }
        let mut pushed = 0u64;
        for i in 0..40 {
            let w = i % 2;
            let n = 1 + (i * 7) % 50;
            let b = batch(w as u16, n);
            assert!(shared.budget.reserve(b.buf.len() as u64));
            assert!(tx[w].push(b).is_ok());
            pushed += n as u64;
        }
        shared.counters.workers[0].events_pushed.store(pushed, Relaxed); // in-flight view only
        shared.lifecycle.workers_ended(2);
        let sink = Box::new(Choking { room: 13, left: 13, polls: 0 });
        let s = shared.clone();
        let h = std::thread::spawn(move || run(FlushSetup { shared: s, rings, returns, sink }));
        h.join().unwrap().unwrap();
        let f = &shared.counters.flush;
        assert_eq!(f.delivered.load(Relaxed), pushed);
        assert_eq!(f.events_handed.load(Relaxed), pushed);
        assert_eq!(f.batches_popped.load(Relaxed), 40);
        assert_eq!(shared.budget.used(), 0, "every byte reserved was released once");
        assert!(shared.lifecycle.is_finished());
        for (w, r) in back.iter().enumerate() {
            let mut n = 0;
            while let Some(b) = r.pop() {
                assert_eq!(b.worker as usize, w, "a batch went back to the wrong worker");
                n += 1;
            }
            assert_eq!(n, 20, "worker {w} got {n} of its 20 batches back");
        }
    }

    /// A sink that fails for good stops the run: the rest is counted failed, not lost.
    #[test]
    fn a_dead_sink_fails_the_rest_and_stops_the_run() {
        struct Dead;
        impl Sink for Dead {
            fn write(
                &mut self,
                batch: &Batch,
                from: usize,
                acct: &mut Outcomes,
            ) -> Result<usize, EngineError> {
                acct.failed_from(batch, from, None);
                Err(EngineError::SinkWrite {
                    target: "dead".into(),
                    source: std::io::ErrorKind::BrokenPipe.into(),
                })
            }
            fn finish(
                &mut self,
                _acct: &mut Outcomes,
                _timeout_ms: u64,
            ) -> Result<(), EngineError> {
                Ok(())
            }
        }
        let shared = Arc::new(RunShared::new(RunId(1), 1, Rate::Max, 0, None, None));
        let (p, c) = ring::<Batch>(8);
        let (rp, _rc) = ring::<Batch>(8);
        for _ in 0..3 {
            assert!(p.push(batch(0, 10)).is_ok());
        }
        shared.lifecycle.workers_ended(1);
        let res = run(FlushSetup {
            shared: shared.clone(),
            rings: vec![c],
            returns: vec![rp],
            sink: Box::new(Dead),
        });
        assert!(res.is_err());
        assert_eq!(shared.counters.flush.failed.load(Relaxed), 30);
        assert!(shared.lifecycle.is_stopping() && shared.lifecycle.is_aborting());
        let err = shared.error.lock().clone().unwrap_or_default();
        assert!(err.contains("`dead`"), "{err}");
    }
}
