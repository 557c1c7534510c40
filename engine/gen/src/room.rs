//! The memory the pre-rendered events of a run may take: a source that would need more is
//! refused at start, naming `memory_budget`.

use spate_core::ConfigError;

use crate::config::VARIANTS;

/// What the pre-rendered events may take (`EventConfig::memory_limit`, 0: no limit), checked
/// by the bytes counted and, every 64 checks, by the process's real growth since the build began
/// (allocator slack and per-record structures the count does not see).
pub(crate) struct Room {
    limit: usize,
    start_rss: u64,
    checks: u32,
}

impl Room {
    pub(crate) fn new(limit: usize) -> Room {
        let start_rss =
            if limit == 0 { 0 } else { spate_core::resident::resident_bytes().unwrap_or(0) };
        Room { limit, start_rss, checks: 0 }
    }

    /// Refuses a source whose events would take more than the limit.
    pub(crate) fn check(&mut self, used: usize, source: &str) -> Result<(), ConfigError> {
        if self.limit == 0 {
            return Ok(());
        }
        self.checks = self.checks.wrapping_add(1);
        let mut over = used > self.limit;
        if !over && self.checks.is_multiple_of(64) {
            let now = spate_core::resident::resident_bytes().unwrap_or(0);
            over = now.saturating_sub(self.start_rss) > self.limit as u64;
        }
        if !over {
            return Ok(());
        }
        Err(ConfigError::new(
            "memory_budget",
            format!(
                "the {VARIANTS} pre-rendered events of source `{source}` need over {} MiB, more than the quarter of the memory budget they may take",
                self.limit >> 20
            ),
            "raise memory_budget, or make the source's events smaller (fewer or shorter fields)",
        ))
    }
}
