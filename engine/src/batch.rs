//! A batch: the unit that crosses a ring. It is also the arena: its buffers are allocated
//! once, filled by a worker, drained by the flush thread, then sent back to the same worker
//! through a return ring and cleared (capacity kept), so steady state allocates nothing.

use bytes::BytesMut;

use crate::spans::{BatchTrace, SpanRecord};
use spate_gen::EventMeta;

/// A batch of formatted events with their per-event identity, filled by one worker.
#[derive(Debug)]
pub struct Batch {
    /// Formatted events back to back, each ending in `\n`.
    pub buf: BytesMut,
    /// End offset (exclusive, after the `\n`) of each event in `buf`.
    pub ends: Vec<u32>,
    /// Per-event identity (sequence, trace context, source) for keys and headers.
    pub metas: Vec<EventMeta>,
    /// The worker that filled it (and gets it back).
    pub worker: u16,
    /// Monotonic ns at which the first event was scheduled by the limiter: ack latency is
    /// measured from here, so a slow sink cannot hide its delay (no coordinated omission).
    pub sched_ns: u64,
    /// Stage times when this batch is traced (`spans/`).
    pub trace: BatchTrace,
}

impl Batch {
    /// An empty batch of `worker`, with room for `events` events and `bytes` bytes.
    pub fn with_capacity(worker: u16, events: usize, bytes: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(bytes),
            ends: Vec::with_capacity(events),
            metas: Vec::with_capacity(events),
            worker,
            sched_ns: 0,
            trace: BatchTrace::default(),
        }
    }

    /// Number of events in the batch.
    #[inline]
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the batch holds no event.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Clears contents, keeps capacity.
    #[inline]
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
        self.metas.clear();
        self.sched_ns = 0;
        self.trace = BatchTrace::default();
    }

    /// Event `i` including its trailing newline.
    #[inline]
    pub fn line(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.buf[start..self.ends[i] as usize]
    }

    /// Event `i` without its trailing newline (a Kafka record value).
    #[inline]
    pub fn payload(&self, i: usize) -> &[u8] {
        let l = self.line(i);
        &l[..l.len() - 1]
    }

    /// The span of this traced batch, whose last event the sink took at `written_ns`.
    pub fn span_record(
        &self,
        written_ns: u64,
        acked_ns: Option<u64>,
        error: Option<String>,
    ) -> SpanRecord {
        SpanRecord {
            trace_id: self.metas.first().map_or(0, |m| m.trace_id),
            worker: self.worker,
            events: self.len() as u32,
            sched_ns: self.sched_ns,
            pushed_ns: self.trace.pushed_ns,
            popped_ns: self.trace.popped_ns,
            written_ns,
            acked_ns,
            error,
        }
    }

    /// Bytes of events `from..`.
    pub fn bytes_from(&self, from: usize) -> &[u8] {
        let start = if from == 0 { 0 } else { self.ends[from - 1] as usize };
        &self.buf[start..]
    }
}
