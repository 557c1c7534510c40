//! The run's memory: one budget, planned at start and watched while running.
//!
//! - **Budget** (`memory_budget`): by default half of the smaller of the cgroup's limit and the
//!   machine's memory. At start the run's large structures are sized from it (`plan`): batches
//!   (each worker's pool of batch buffers), and the sink's in-flight bytes. What cannot fit even
//!   at its smallest is refused, naming the setting.
//! - **Watch**: a thread samples the process's resident memory (`/proc/self/statm`) and, in a
//!   cgroup with a limit, the cgroup's working set (usage less inactive file cache), every
//!   [`SAMPLE`]. Above the high-water mark (80 % of the budget, or of the cgroup's limit) the run
//!   is *pressed*: workers stop generating under `block` (nothing is lost) and shed what they are
//!   granted under `shed` and `spill`, counted as `shed_memory`. Below the low-water mark (70 %)
//!   generation resumes. Workers read one flag per batch: no syscall on the hot path.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// How often memory is sampled.
pub const SAMPLE: Duration = Duration::from_millis(50);
/// Pressed above this share of the budget (or of the cgroup's limit)...
pub const HIGH_WATER: f64 = 0.80;
/// ...and released below this share.
pub const LOW_WATER: f64 = 0.70;

/// The run's memory state, shared by the watch (writer) and workers, status and metrics
/// (readers). Relaxed throughout: each value is a sample read on its own, no other memory is
/// published through them.
#[derive(Debug, Default)]
pub struct Memory {
    /// The budget in bytes.
    pub budget: u64,
    /// The cgroup's limit, if there is one.
    pub cgroup_limit: Option<u64>,
    /// Whether generation is held back now.
    pressed: AtomicBool,
    /// The last sample of resident memory.
    pub rss: AtomicU64,
    /// The highest resident memory sampled.
    pub peak_rss: AtomicU64,
    /// The cgroup's working set at the last sample (0 without a cgroup limit).
    pub cgroup_used: AtomicU64,
    /// Times the run became pressed.
    pub pressed_count: AtomicU64,
}

impl Memory {
    /// A budget of `budget` bytes, in the cgroup this process is in.
    pub fn new(budget: u64) -> Memory {
        Memory { budget, cgroup_limit: cgroup_limit(), ..Memory::default() }
    }

    /// Whether generation is held back (one relaxed load: workers read it per batch).
    #[inline]
    pub fn pressed(&self) -> bool {
        self.pressed.load(Relaxed)
    }

    /// Takes one sample and updates the pressed state from it.
    pub fn sample(&self) {
        let rss = rss().unwrap_or(0);
        self.rss.store(rss, Relaxed);
        self.peak_rss.fetch_max(rss, Relaxed);
        let used = self.cgroup_limit.and_then(|_| cgroup_working_set()).unwrap_or(0);
        self.cgroup_used.store(used, Relaxed);
        let share = |v: u64, of: u64| v as f64 / of.max(1) as f64;
        let load =
            share(rss, self.budget).max(self.cgroup_limit.map_or(0.0, |limit| share(used, limit)));
        let was = self.pressed();
        if !was && load > HIGH_WATER {
            #[cfg(feature = "mimalloc")]
            crate::alloc::purge_freed_pages(true);
            self.pressed.store(true, Relaxed);
            self.pressed_count.fetch_add(1, Relaxed);
            // Name what crossed the mark: this process against its budget, or the whole
            // cgroup (neighbours included) against its limit.
            let own = share(rss, self.budget) > HIGH_WATER;
            let msg = match self.cgroup_limit {
                Some(limit) if !own => format!(
                    "memory: the cgroup uses {} MiB of its {} MiB limit (this process {} MiB), above {:.0} %: generation held back until it falls below {:.0} %",
                    used >> 20,
                    limit >> 20,
                    rss >> 20,
                    HIGH_WATER * 100.0,
                    LOW_WATER * 100.0
                ),
                _ => format!(
                    "memory: {} MiB resident is above {:.0} % of the budget of {} MiB: generation held back until it falls below {:.0} %",
                    rss >> 20,
                    HIGH_WATER * 100.0,
                    self.budget >> 20,
                    LOW_WATER * 100.0
                ),
            };
            spate_core::rate_log::warn("memory_high", &msg);
        } else if was && load < LOW_WATER {
            self.pressed.store(false, Relaxed);
            #[cfg(feature = "mimalloc")]
            crate::alloc::purge_freed_pages(false);
            let msg = format!("memory: {} MiB resident, generation resumes", rss >> 20);
            spate_core::rate_log::warn("memory_low", &msg);
        }
    }

    /// Holds the run pressed (tests of the degraded paths).
    #[doc(hidden)]
    pub fn force_pressed(&self, on: bool) {
        self.pressed.store(on, Relaxed);
    }
}

/// Samples `memory` every [`SAMPLE`] until `done()`.
pub fn watch(memory: &Memory, done: impl Fn() -> bool) {
    while !done() {
        memory.sample();
        std::thread::sleep(SAMPLE);
    }
    memory.sample();
}

/// The default budget: half of the smaller of the cgroup's limit and the machine's memory.
pub fn default_budget() -> u64 {
    let total = mem_total().unwrap_or(4 << 30);
    cgroup_limit().map_or(total, |c| c.min(total)) / 2
}

/// Resident memory of this process.
pub fn rss() -> Option<u64> {
    spate_core::resident::resident_bytes()
}

fn mem_total() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// This process's memory cgroup directory: v2 (`0::/path`) or v1's memory controller.
fn cgroup_dir() -> Option<(std::path::PathBuf, bool)> {
    let s = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in s.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "memory") {
            let d = std::path::Path::new("/sys/fs/cgroup/memory").join(path);
            if d.join("memory.limit_in_bytes").exists() {
                return Some((d, true));
            }
        }
        if controllers.is_empty() {
            let d = std::path::Path::new("/sys/fs/cgroup").join(path);
            if d.join("memory.max").exists() {
                return Some((d, false));
            }
        }
    }
    None
}

fn read_u64(p: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// The limit of this process's memory cgroup, if it has one.
pub fn cgroup_limit() -> Option<u64> {
    let (dir, v1) = cgroup_dir()?;
    let limit = if v1 {
        read_u64(&dir.join("memory.limit_in_bytes"))?
    } else {
        read_u64(&dir.join("memory.max"))? // "max" does not parse: no limit
    };
    // v1 writes "no limit" as a huge page-rounded number.
    (limit < 1 << 60).then_some(limit)
}

/// The cgroup's usage less its inactive file cache (what the kernel cannot simply drop).
fn cgroup_working_set() -> Option<u64> {
    let (dir, v1) = cgroup_dir()?;
    let (usage, stat, key) = if v1 {
        (
            read_u64(&dir.join("memory.usage_in_bytes"))?,
            dir.join("memory.stat"),
            "total_inactive_file",
        )
    } else {
        (read_u64(&dir.join("memory.current"))?, dir.join("memory.stat"), "inactive_file")
    };
    let inactive = std::fs::read_to_string(stat)
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok()))
        .unwrap_or(0);
    Some(usage.saturating_sub(inactive))
}

/// How the budget is spent at start: batch buffers and in-flight bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Events per batch (the configured batch size, or fewer for large events).
    pub batch_size: usize,
}

/// Sizes the batches of `threads` workers, each with `pool` batches, for events of about
/// `event_bytes`, within a quarter of `budget` (the rest: the sink's in-flight bytes, the
/// generator's pre-rendered events, the process). Refused when one event per batch does not fit.
pub fn plan(
    budget: u64,
    threads: usize,
    pool: usize,
    event_bytes: usize,
    batch_size: usize,
) -> Result<Plan, String> {
    let slots = (threads * pool) as u64;
    let least = slots * event_bytes as u64;
    if least > budget / 2 {
        return Err(format!(
            "{threads} workers × {pool} batches × one event of about {} KiB need {} MiB, over half of the memory budget of {} MiB",
            event_bytes >> 10,
            least >> 20,
            budget >> 20
        ));
    }
    let per_batch = (budget / 4 / slots).max(event_bytes as u64);
    let fits = usize::try_from(per_batch / event_bytes.max(1) as u64).unwrap_or(usize::MAX);
    Ok(Plan { batch_size: batch_size.min(fits).max(1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_events_get_smaller_batches() {
        let p = plan(1 << 30, 2, 18, 1 << 20, 1024).unwrap();
        // 256 MiB over 36 batches: 7 events of 1 MiB each.
        assert_eq!(p.batch_size, 7);
        assert_eq!(plan(1 << 30, 2, 18, 320, 1024).unwrap().batch_size, 1024);
        let e = plan(16 << 20, 2, 18, 1 << 20, 1024).unwrap_err();
        assert!(e.contains("memory budget"), "{e}");
    }

    #[test]
    fn this_process_is_measured() {
        assert!(rss().unwrap() > 0);
        assert!(default_budget() > 0);
        let m = Memory::new(1);
        m.sample();
        assert!(m.pressed(), "any process is above 80 % of 1 byte");
        assert_eq!(m.pressed_count.load(Relaxed), 1);
        let m = Memory::new(u64::MAX / 4);
        m.sample();
        assert!(!m.pressed());
    }
}
