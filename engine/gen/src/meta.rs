//! The identity of a run and of each event it generates.

use std::fmt;

/// Identity of one generated event (for Kafka keys and headers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventMeta {
    /// The event's sequence number within its worker.
    pub seq: u64,
    /// Its W3C trace id (never 0).
    pub trace_id: u128,
    /// Its W3C span id (never 0).
    pub span_id: u64,
    /// Index into [`EventSpec::source_names`].
    pub source: u16,
    /// The worker that made it.
    pub worker: u16,
    /// Where the event's id and its `traceparent` (55 bytes) are in its own line, when the
    /// format writes them ([`EventMeta::NONE`] otherwise): the Kafka sink reuses those bytes
    /// for its headers instead of formatting them again.
    pub id_at: u32,
    /// Length of the id at `id_at`.
    pub id_len: u32,
    /// Where the `traceparent` value starts in the line.
    pub tp_at: u32,
}

impl Default for EventMeta {
    fn default() -> Self {
        Self {
            seq: 0,
            trace_id: 0,
            span_id: 0,
            source: 0,
            worker: 0,
            id_at: Self::NONE,
            id_len: 0,
            tp_at: Self::NONE,
        }
    }
}

impl EventMeta {
    /// "Not in the line" for `id_at` and `tp_at`.
    pub const NONE: u32 = u32::MAX;

    /// The event id, if `line` (this event's line) carries it.
    #[inline]
    pub fn id_in<'a>(&self, line: &'a [u8]) -> Option<&'a [u8]> {
        line.get(self.id_at as usize..(self.id_at as usize).checked_add(self.id_len as usize)?)
    }

    /// The `traceparent` text, if `line` carries it.
    #[inline]
    pub fn traceparent_in<'a>(&self, line: &'a [u8]) -> Option<&'a [u8]> {
        line.get(self.tp_at as usize..(self.tp_at as usize).checked_add(55)?)
    }
}

/// Identifies one run: every event id starts with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RunId(pub u64);

impl RunId {
    /// A fresh id from the wall clock and the process id (not from the seed: runs differ).
    pub fn random() -> RunId {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        RunId(spate_core::rng::splitmix64(now ^ (u64::from(std::process::id()) << 40)))
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for RunId {
    type Err = std::num::ParseIntError;
    /// Parses the 16-hex-digit form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16).map(RunId)
    }
}
