//! A run's lifecycle: the stop and abort requests, the reader of stdout going away, workers
//! ending, and the flush thread finishing. Written only through these methods, so each flag has
//! one meaning and one place that sets it; readers (status, the CLI, `spate serve`) ask.
//!
//! Orderings: the requests (`stop`, `abort`, reader gone) are Relaxed: each is a flag polled in
//! a loop, and nothing is published through it. A worker's end is a Release increment that the
//! flush thread's Acquire load pairs with, so the worker's last pushes are visible before the
//! flush thread sees it done; the flush thread's end is a Release store that `is_finished`'s
//! Acquire pairs with, so its last published counters are visible to whoever sees it finished.

use std::sync::atomic::{
    AtomicBool, AtomicUsize, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

/// The stop/abort/done state of one run.
#[derive(Debug)]
pub struct Lifecycle {
    workers: usize,
    /// Graceful stop: workers finish their batch and exit, the flush thread drains everything.
    stop: AtomicBool,
    /// Hard stop: a worker blocked on backpressure gives up (its events count as failed), and
    /// the sink settles what it holds at once.
    abort: AtomicBool,
    /// The reader of stdout went away: the run ended early, on purpose.
    reader_gone: AtomicBool,
    /// Workers that have stopped generating (they may still be handing over their last batch).
    generation_done: AtomicUsize,
    workers_done: AtomicUsize,
    flush_done: AtomicBool,
}

impl Lifecycle {
    /// A run of `workers` workers, none of them started yet.
    pub fn new(workers: usize) -> Self {
        Self {
            workers,
            stop: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            reader_gone: AtomicBool::new(false),
            generation_done: AtomicUsize::new(0),
            workers_done: AtomicUsize::new(0),
            flush_done: AtomicBool::new(false),
        }
    }

    /// Asks for a graceful stop: stop generating, deliver what is queued.
    pub fn stop(&self) {
        self.stop.store(true, Relaxed);
    }

    /// Asks for a hard stop (a stop too): give up on what is blocked, settle the rest now.
    pub fn abort(&self) {
        self.stop.store(true, Relaxed);
        self.abort.store(true, Relaxed);
    }

    /// The reader of stdout went away: the run ends at once, and the summary says why.
    pub fn reader_gone(&self) {
        self.reader_gone.store(true, Relaxed);
        self.abort();
    }

    /// Whether a stop (graceful or hard) was asked for.
    pub fn is_stopping(&self) -> bool {
        self.stop.load(Relaxed)
    }

    /// Whether a hard stop was asked for.
    pub fn is_aborting(&self) -> bool {
        self.abort.load(Relaxed)
    }

    /// Whether the run ended because the reader of stdout went away.
    pub fn is_reader_gone(&self) -> bool {
        self.reader_gone.load(Relaxed)
    }

    /// A worker stopped generating (its last batch may still be on its way).
    pub(crate) fn generation_ended(&self, workers: usize) {
        self.generation_done.fetch_add(workers, Relaxed);
    }

    /// Whether every worker has stopped generating.
    pub(crate) fn all_generated(&self) -> bool {
        self.generation_done.load(Relaxed) == self.workers
    }

    /// `workers` workers have exited, their last batches pushed (Release: see the module doc).
    pub(crate) fn workers_ended(&self, workers: usize) {
        self.workers_done.fetch_add(workers, Release);
    }

    /// Whether every worker has exited (Acquire: their pushes are visible).
    pub(crate) fn all_workers_done(&self) -> bool {
        self.workers_done.load(Acquire) == self.workers
    }

    /// The flush thread has settled everything it will settle and published its counters.
    pub(crate) fn flush_ended(&self) {
        self.flush_done.store(true, Release);
    }

    /// Whether the run is over: its counters are final.
    pub fn is_finished(&self) -> bool {
        self.flush_done.load(Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abort_and_reader_gone_imply_stop() {
        let l = Lifecycle::new(2);
        assert!(!l.is_stopping());
        l.reader_gone();
        assert!(l.is_stopping() && l.is_aborting() && l.is_reader_gone());
        let l = Lifecycle::new(2);
        l.abort();
        assert!(l.is_stopping() && !l.is_reader_gone());
    }

    #[test]
    fn workers_and_flush_end_in_counts() {
        let l = Lifecycle::new(3);
        l.generation_ended(1);
        l.workers_ended(1);
        assert!(!l.all_generated() && !l.all_workers_done());
        l.generation_ended(2);
        l.workers_ended(2);
        assert!(l.all_generated() && l.all_workers_done());
        assert!(!l.is_finished());
        l.flush_ended();
        assert!(l.is_finished());
    }
}
