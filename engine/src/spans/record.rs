//! What a traced batch records as it goes (stage times), the workers' sampling decision, the
//! spans a record becomes ([`stages`]), and the exporter's counters.

use std::sync::atomic::AtomicU64;

use parking_lot::Mutex;
use spate_core::clock::WallAnchor;

/// Per-batch stage times of a sampled batch (monotonic ns); all zero when not sampled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchTrace {
    /// Whether this batch is traced.
    pub sampled: bool,
    /// The worker pushed it into its ring.
    pub pushed_ns: u64,
    /// The flush thread took it out.
    pub popped_ns: u64,
}

/// A worker's sampling decision: every `every`-th batch (0 = tracing off). Deterministic on
/// purpose: no random draw on the hot path, and the spacing is even.
#[derive(Debug, Clone, Copy)]
pub struct Sampler {
    every: u64,
    n: u64,
}

impl Sampler {
    /// `phase` spreads workers so they do not all sample the same batch number.
    pub fn new(every: u64, phase: u64) -> Self {
        Self { every, n: if every == 0 { 0 } else { phase % every } }
    }

    /// Whether the next batch is traced.
    #[inline]
    pub fn hit(&mut self) -> bool {
        if self.every == 0 {
            return false;
        }
        self.n += 1;
        if self.n >= self.every {
            self.n = 0;
            true
        } else {
            false
        }
    }
}

/// A finished batch's timeline, sent to the exporter.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    /// The W3C trace id of the batch's first event.
    pub trace_id: u128,
    /// The worker that filled the batch.
    pub worker: u16,
    /// Events in the batch.
    pub events: u32,
    /// The limiter scheduled the batch's first event.
    pub sched_ns: u64,
    /// The worker pushed the batch into its ring.
    pub pushed_ns: u64,
    /// The flush thread took it out.
    pub popped_ns: u64,
    /// The sink took the batch's last event.
    pub written_ns: u64,
    /// The last event's acknowledgement (Kafka); `None` for sinks without acks.
    pub acked_ns: Option<u64>,
    /// `None` when delivered; the error otherwise.
    pub error: Option<String>,
}

/// The exporter's counters, shown by status and metrics.
#[derive(Debug, Default)]
pub struct SpanStats {
    /// Spans (not batches) accepted by the collector.
    pub exported: AtomicU64,
    /// Spans dropped: a queue was full or the POST failed.
    pub dropped: AtomicU64,
    /// Posts to the collector that failed.
    pub posts_failed: AtomicU64,
    /// The last export error, if any.
    pub last_error: Mutex<Option<String>>,
}

/// One span of a traced batch, ready for any protocol: ids, name, wall-clock times (Unix ns).
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// The batch's trace id.
    pub trace_id: u128,
    /// This span's id.
    pub span_id: u64,
    /// None for the root.
    pub parent: Option<u64>,
    /// `batch` for the root, else the stage: `generate`, `ring`, `produce` or `ack`.
    pub name: &'static str,
    /// Start, in Unix ns.
    pub start_unix_ns: u64,
    /// End, in Unix ns.
    pub end_unix_ns: u64,
    /// (key, value) attributes: the root carries the batch's.
    pub attributes: Vec<(&'static str, String)>,
}

/// Spans a traced batch yields: the root and one per stage.
pub(super) fn spans_of(r: &SpanRecord) -> u64 {
    if r.acked_ns.is_some() {
        5
    } else {
        4
    }
}

/// Span ids derived from the trace id through splitmix64, distinct per stage and never zero.
fn span_id(trace_id: u128, stage: u64) -> u64 {
    let x = (trace_id as u64)
        ^ ((trace_id >> 64) as u64).rotate_left(17)
        ^ stage.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    spate_core::rng::splitmix64(x).max(1)
}

/// The spans of one traced batch: the root `batch` and a child per stage it crossed.
pub fn stages(b: &SpanRecord, wall: &WallAnchor, sink: &str, run_id: &str) -> Vec<Stage> {
    let root = span_id(b.trace_id, 0);
    let end = b.acked_ns.unwrap_or(b.written_ns);
    let mut attributes = vec![
        ("events", b.events.to_string()),
        ("worker", b.worker.to_string()),
        ("sink", sink.to_string()),
        ("run_id", run_id.to_string()),
    ];
    if let Some(e) = &b.error {
        attributes.push(("error", e.clone()));
    }
    let at = |ns: u64| wall.unix_ns(ns);
    let mut out = vec![Stage {
        trace_id: b.trace_id,
        span_id: root,
        parent: None,
        name: "batch",
        start_unix_ns: at(b.sched_ns),
        end_unix_ns: at(end.max(b.sched_ns)),
        attributes,
    }];
    let mut steps = vec![
        ("generate", b.sched_ns, b.pushed_ns),
        ("ring", b.pushed_ns, b.popped_ns),
        ("produce", b.popped_ns, b.written_ns),
    ];
    if let Some(a) = b.acked_ns {
        steps.push(("ack", b.written_ns, a));
    }
    for (k, (name, from, to)) in steps.into_iter().enumerate() {
        out.push(Stage {
            trace_id: b.trace_id,
            span_id: span_id(b.trace_id, k as u64 + 1),
            parent: Some(root),
            name,
            start_unix_ns: at(from),
            end_unix_ns: at(to.max(from)),
            attributes: Vec::new(),
        });
    }
    out
}
