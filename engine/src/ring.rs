//! Bounded single-producer single-consumer ring: how a worker hands whole batches to the
//! flush thread (and how the flush thread hands emptied batches back, see `batch.rs`).
//!
//! Algorithm: Lamport's SPSC ring buffer with the index-caching refinement used by rtrb and
//! glommio's `spsc_queue` ("FastForward"/"MCRingBuffer" style). `head` (next slot to pop) and
//! `tail` (next slot to push) are monotonically increasing counters, each on its own cache line
//! (`CachePadded`) so the two threads never false-share. Each side keeps a plain, non-atomic
//! copy of the *other* side's index and re-reads the atomic only when the copy says the ring
//! looks full (producer) or empty (consumer), so in steady state a push or pop touches one
//! shared cache line, not two.
//!
//! Memory orderings:
//! - producer writes the slot, then `tail.store(Release)`; the consumer's `tail.load(Acquire)`
//!   pairs with it, so the slot's contents are visible before the consumer reads them;
//! - consumer moves the value out of the slot, then `head.store(Release)`; the producer's
//!   `head.load(Acquire)` pairs with it, so the slot is not overwritten while being read;
//! - each side loads its *own* index `Relaxed`: only it ever writes that index.
//!
//! The ring carries whole batches (`Batch`, a few hundred events each), never single events,
//! so its cost is amortised; the capacity is in batches.

use std::cell::Cell;
use std::mem::MaybeUninit;

use crate::sync::{Arc, AtomicUsize, Ordering, UnsafeCell};
use crossbeam_utils::CachePadded;

struct Shared<T> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
}

// SAFETY: a slot is only ever accessed by one side at a time: the producer writes slots in
// [tail, head + capacity), the consumer reads slots in [head, tail); the Release/Acquire pairs
// on head and tail transfer ownership of a slot between the two threads. `T: Send` is required
// because values move from the producer thread to the consumer thread.
unsafe impl<T: Send> Sync for Shared<T> {}
// SAFETY: see above; the shared state itself can move between threads when `T: Send`.
unsafe impl<T: Send> Send for Shared<T> {}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Both handles are gone (we are inside the last Arc), so no concurrent access.
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        for i in head..tail {
            let slot = &self.slots[i & self.mask];
            // SAFETY: slots in [head, tail) were written by the producer and not yet read.
            slot.with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
    }
}

/// Creates a ring holding up to `capacity` values (rounded up to a power of two, at least 2).
pub fn ring<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let cap = capacity.max(2).next_power_of_two();
    let slots = (0..cap).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect();
    let shared = Arc::new(Shared {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        slots,
        mask: cap - 1,
    });
    (
        Producer { shared: shared.clone(), tail: Cell::new(0), cached_head: Cell::new(0) },
        Consumer { shared, head: Cell::new(0), cached_tail: Cell::new(0) },
    )
}

/// The push side. `Send` but not `Sync`: exactly one thread pushes.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    tail: Cell<usize>,
    cached_head: Cell<usize>,
}

/// The pop side. `Send` but not `Sync`: exactly one thread pops.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    head: Cell<usize>,
    cached_tail: Cell<usize>,
}

// SAFETY: the handle owns its side of the ring; moving it to another thread moves that role.
unsafe impl<T: Send> Send for Producer<T> {}
// SAFETY: as for Producer.
unsafe impl<T: Send> Send for Consumer<T> {}

impl<T> Producer<T> {
    /// Pushes `value`, or hands it back when the ring is full (like rtrb's `PushError::Full`).
    #[inline]
    pub fn push(&self, value: T) -> Result<(), T> {
        let tail = self.tail.get();
        let cap = self.shared.mask + 1;
        if tail.wrapping_sub(self.cached_head.get()) == cap {
            // Looks full: refresh our copy of head. Acquire pairs with the consumer's Release
            // store of head, so the slot it vacated is really free.
            self.cached_head.set(self.shared.head.load(Ordering::Acquire));
            if tail.wrapping_sub(self.cached_head.get()) == cap {
                return Err(value);
            }
        }
        let slot = &self.shared.slots[tail & self.shared.mask];
        // SAFETY: tail - head < capacity, so this slot is not readable by the consumer and no
        // one else writes it: the producer is the only writer and is not Sync.
        slot.with_mut(|p| unsafe { p.write(MaybeUninit::new(value)) });
        let next = tail.wrapping_add(1);
        self.tail.set(next);
        // Release: publishes the slot write above to the consumer's Acquire load of tail.
        self.shared.tail.store(next, Ordering::Release);
        Ok(())
    }

    /// Number of values currently queued (a snapshot; exact for the producer's own pushes).
    pub fn len(&self) -> usize {
        self.tail.get().wrapping_sub(self.shared.head.load(Ordering::Acquire))
    }

    /// Whether no value is queued (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots in the ring (a power of two).
    pub fn capacity(&self) -> usize {
        self.shared.mask + 1
    }

    /// True when the consumer has been dropped (nobody will ever pop again).
    pub fn is_abandoned(&self) -> bool {
        Arc::strong_count(&self.shared) < 2
    }
}

impl<T> Consumer<T> {
    /// Pops the oldest value, or `None` when the ring is empty.
    #[inline]
    pub fn pop(&self) -> Option<T> {
        let head = self.head.get();
        if head == self.cached_tail.get() {
            // Looks empty: refresh. Acquire pairs with the producer's Release store of tail,
            // making the slot contents visible.
            self.cached_tail.set(self.shared.tail.load(Ordering::Acquire));
            if head == self.cached_tail.get() {
                return None;
            }
        }
        let slot = &self.shared.slots[head & self.shared.mask];
        // SAFETY: head < tail, so the producer has initialised this slot and published it with
        // its Release store; it will not touch it again until we advance head.
        let value = slot.with_mut(|p| unsafe { p.read().assume_init() });
        let next = head.wrapping_add(1);
        self.head.set(next);
        // Release: the read above happens-before the producer reuses the slot (its Acquire).
        self.shared.head.store(next, Ordering::Release);
        Some(value)
    }

    /// Number of values currently queued (a snapshot).
    pub fn len(&self) -> usize {
        self.shared.tail.load(Ordering::Acquire).wrapping_sub(self.head.get())
    }

    /// Whether no value is queued (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots in the ring (a power of two).
    pub fn capacity(&self) -> usize {
        self.shared.mask + 1
    }

    /// True when the producer has been dropped: once `pop` returns `None` it stays empty.
    pub fn is_abandoned(&self) -> bool {
        Arc::strong_count(&self.shared) < 2
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_full() {
        let (p, c) = ring::<u32>(4);
        for i in 0..4 {
            p.push(i).unwrap();
        }
        assert_eq!(p.push(9), Err(9));
        assert_eq!(c.len(), 4);
        for i in 0..4 {
            assert_eq!(c.pop(), Some(i));
        }
        assert_eq!(c.pop(), None);
    }

    #[test]
    fn drops_queued_values() {
        let v = std::sync::Arc::new(());
        let (p, c) = ring(8);
        for _ in 0..5 {
            p.push(v.clone()).unwrap();
        }
        drop(c.pop());
        drop((p, c));
        assert_eq!(std::sync::Arc::strong_count(&v), 1);
    }

    /// Stress: two real threads, a bounded number of values, every value arrives once, in order.
    #[test]
    fn stress_two_threads_in_order() {
        const N: u64 = 2_000_000;
        let (p, c) = ring::<Box<u64>>(16);
        let prod = std::thread::spawn(move || {
            for i in 0..N {
                let mut v = Box::new(i);
                loop {
                    match p.push(v) {
                        Ok(()) => break,
                        Err(back) => {
                            v = back;
                            std::hint::spin_loop();
                        }
                    }
                }
            }
        });
        let mut expect = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while expect < N {
            assert!(std::time::Instant::now() < deadline, "stress test stalled at {expect}");
            if let Some(v) = c.pop() {
                assert_eq!(*v, expect);
                expect += 1;
            } else {
                std::hint::spin_loop();
            }
        }
        prod.join().unwrap();
        assert!(c.pop().is_none());
    }
}

#[cfg(all(test, feature = "loom"))]
mod loom_tests {
    use super::*;

    /// loom explores every interleaving of a producer pushing 3 values through a ring of 2.
    #[test]
    fn loom_push_pop() {
        loom::model(|| {
            let (p, c) = ring::<loom::sync::Arc<u32>>(2);
            let t = loom::thread::spawn(move || {
                for i in 0..3 {
                    let mut v = loom::sync::Arc::new(i);
                    loop {
                        match p.push(v) {
                            Ok(()) => break,
                            Err(back) => {
                                v = back;
                                loom::thread::yield_now();
                            }
                        }
                    }
                }
            });
            let mut got = 0;
            while got < 3 {
                if let Some(v) = c.pop() {
                    assert_eq!(*v, got);
                    got += 1;
                } else {
                    loom::thread::yield_now();
                }
            }
            t.join().unwrap();
        });
    }
}
