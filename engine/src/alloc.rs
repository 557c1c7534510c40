//! The allocator of spate's binaries (feature `mimalloc`): mimalloc for the whole process, with
//! `override`, so librdkafka's per-message `malloc`s get it too (+74 % Kafka throughput with
//! headers; tuning.md). A binary declares `#[global_allocator] static A: spate_engine::alloc::MiMalloc`
//! and calls [`keep_freed_pages`] first thing in `main`.

pub use mimalloc::MiMalloc;

/// mimalloc returns freed pages to the OS 10 ms after they empty (its `purge_delay`). A Kafka
/// producer frees and reallocates its whole queue every second, so every page came back zeroed
/// by a page fault (`clear_page_erms` was 12 % of the flush thread). Never purging keeps RSS at
/// its high-water mark, which the in-flight byte budget caps; see tuning.md.
/// `MIMALLOC_PURGE_DELAY` in the environment still wins.
pub fn keep_freed_pages() {
    const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15; // mimalloc.h, enum mi_option_e (v2 and v3)
    extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set is mimalloc's documented, thread-safe option setter, linked in by
        // the `mimalloc` crate this module depends on; the option index is from its mimalloc.h.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

/// While memory is above the run's high-water mark (`memory.rs`): pages freed from now on go
/// back to the OS at once (`true`), until memory is low again (`false`, kept as by
/// [`keep_freed_pages`]). `MIMALLOC_PURGE_DELAY` in the environment still wins.
pub fn purge_freed_pages(now: bool) {
    const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
    extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: as in `keep_freed_pages`: mimalloc's thread-safe option setter.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, if now { 0 } else { -1 }) };
    }
}

/// Returns what the calling thread's heap holds free to the OS (after a worker dropped its
/// batches under memory pressure).
pub fn collect() {
    extern "C" {
        fn mi_collect(force: bool);
    }
    // SAFETY: mi_collect is mimalloc's documented collector of the calling thread's heap.
    unsafe { mi_collect(true) };
}
