//! The in-flight byte budget: bytes in the rings and in the sink's own queue, capped so that
//! what a run holds in memory is bounded by its configuration. Workers reserve a batch's bytes
//! before pushing it; the sink's outcomes release them (`sink::Outcomes`), whichever the sink.
//!
//! Orderings: Relaxed throughout. The counter is a quantity, not a flag guarding other data
//! (the batch itself is published by the ring's Release/Acquire), and a release seen late only
//! makes a worker wait a little longer. A reservation is a `fetch_add` rolled back when it went
//! over, so concurrent workers cannot overshoot together for longer than that instant, and the
//! counter never wraps: a release always follows its reservation.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Bytes held in flight against a cap; a cap of 0 means no cap, and nothing is counted.
#[derive(Debug, Default)]
pub struct ByteBudget {
    used: AtomicU64,
    max: u64,
}

impl ByteBudget {
    /// A budget of `max` bytes (0: no cap).
    pub fn new(max: u64) -> Self {
        Self { used: AtomicU64::new(0), max }
    }

    /// The cap (0: none).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Bytes held now.
    pub fn used(&self) -> u64 {
        self.used.load(Relaxed)
    }

    /// Takes `bytes` if they fit. A batch larger than the whole budget may go when nothing else
    /// is held, so an oversized batch slows the pipeline down instead of blocking it forever.
    #[inline]
    pub fn reserve(&self, bytes: u64) -> bool {
        if self.max == 0 {
            return true;
        }
        let before = self.used.fetch_add(bytes, Relaxed);
        if before == 0 || before + bytes <= self.max {
            true
        } else {
            self.used.fetch_sub(bytes, Relaxed);
            false
        }
    }

    /// Takes `bytes` whether or not they fit: a run that is ending hands its last batches to
    /// the sink's `abandon` (the DLQ file) rather than dropping them, over the cap by at most
    /// one batch per worker, for the moments until the flush thread settles them.
    #[inline]
    pub fn force(&self, bytes: u64) {
        if self.max > 0 {
            self.used.fetch_add(bytes, Relaxed);
        }
    }

    /// Gives back `bytes` taken by [`ByteBudget::reserve`] or [`ByteBudget::force`].
    #[inline]
    pub fn release(&self, bytes: u64) {
        if self.max > 0 && bytes > 0 {
            self.used.fetch_sub(bytes, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_fits_rolls_back_and_lets_an_oversized_batch_through_alone() {
        let c = ByteBudget::new(1000);
        assert!(c.reserve(600));
        assert!(!c.reserve(600), "over budget");
        assert_eq!(c.used(), 600, "a refused reservation leaves nothing behind");
        assert!(c.reserve(400));
        c.release(1000);
        assert!(c.reserve(5000), "an oversized batch goes when nothing is in flight");
        assert!(!c.reserve(1));
        let free = ByteBudget::new(0);
        assert!(
            free.reserve(u64::MAX / 2) && free.reserve(u64::MAX / 2),
            "no cap: nothing is counted"
        );
        assert_eq!(free.used(), 0);
    }

    /// Several workers reserving against one budget while a consumer releases what it received:
    /// the counter never wraps (a release always follows its reservation) and what is held stays
    /// within the budget.
    #[test]
    fn concurrent_reservations_never_overshoot_or_wrap() {
        let budget = 10_000;
        let c = std::sync::Arc::new(ByteBudget::new(budget));
        let released = std::sync::Arc::new(AtomicU64::new(0));
        let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(1024);
        let consumer = {
            let (c, released) = (c.clone(), released.clone());
            std::thread::spawn(move || {
                for b in rx {
                    let before = c.used();
                    assert!(before >= b, "the counter would wrap: {before} - {b}");
                    c.release(b);
                    released.fetch_add(b, Relaxed);
                }
            })
        };
        let workers: Vec<_> = (0..3)
            .map(|w| {
                let (c, tx) = (c.clone(), tx.clone());
                std::thread::spawn(move || {
                    let mut sent = 0;
                    let mut i = 0u64;
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
                    while sent < 20_000 {
                        assert!(
                            std::time::Instant::now() < deadline,
                            "worker {w} could reserve only {sent} batches in 20 s"
                        );
                        let bytes = 100 + (i * 37 + w) % 2_000;
                        i += 1;
                        if c.reserve(bytes) {
                            // Held reservations fit the budget; the other two workers may each
                            // add one batch for an instant before rolling it back.
                            let now = c.used();
                            assert!(
                                now <= budget + 2 * 2_100,
                                "in flight {now} over budget {budget}"
                            );
                            tx.send(bytes).unwrap();
                            sent += 1;
                        } else {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        for w in workers {
            w.join().unwrap();
        }
        consumer.join().unwrap();
        assert_eq!(c.used(), 0, "every reservation was released once");
        assert!(released.load(Relaxed) > 0);
    }
}
