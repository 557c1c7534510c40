//! Sinks: where the flush thread hands batches. One trait, so stdout, null, file and Kafka
//! plug into the same flush thread.

pub mod config;
pub mod dlq;
pub mod kafka;
pub mod postgres;
pub mod tcp;

use std::fs::File;
use std::io::Write;

use crate::batch::Batch;
use crate::error::EngineError;
use crate::stats::LocalFlush;
use spate_gen::avro::ocf::OcfWriter;
use spate_gen::avro::Codec;

/// A destination for batches, owned and driven by the flush thread only.
pub trait Sink: Send {
    /// Hands events `from..` of `batch` to the sink and returns how many it took: all of them,
    /// unless the sink is full (then the flush thread keeps the rest and retries after `poll`).
    /// Outcomes known now (written, failed) are counted into `acct`; outcomes learned later
    /// (Kafka delivery reports) are counted by `poll`.
    fn write(&mut self, batch: &Batch, from: usize, acct: &mut LocalFlush) -> Result<usize, EngineError>;

    /// Serves pending outcomes and timers; waits at most `timeout_ms` (0: do not wait).
    fn poll(&mut self, _acct: &mut LocalFlush, _timeout_ms: u64) {}

    /// Run end: waits up to `timeout_ms` for every outstanding outcome and flushes buffers.
    fn finish(&mut self, acct: &mut LocalFlush, timeout_ms: u64) -> Result<(), EngineError>;

    /// Settles events `from..` of `batch` that will not be written: the run is ending (drain
    /// timeout, hard stop). The default counts them failed; a sink with a dead-letter queue puts
    /// them there. The flush thread releases their share of the byte budget itself.
    fn abandon(&mut self, batch: &Batch, from: usize, acct: &mut LocalFlush, _reason: &str) {
        acct.failed += (batch.len() - from) as u64;
    }

    /// Events handed over but without an outcome yet.
    fn in_flight(&self) -> u64 {
        0
    }

    /// True when the sink keeps its own copy of the bytes until acknowledged and releases
    /// the in-flight byte budget itself (Kafka); otherwise the flush thread releases a batch's
    /// bytes as soon as the sink has taken it.
    /// True if the sink ends traced batches' spans itself, at their acknowledgement (Kafka);
    /// otherwise the flush thread ends them when the sink takes the batch.
    fn traces_acks(&self) -> bool {
        false
    }

    fn releases_budget_on_ack(&self) -> bool {
        false
    }
}

/// Discards events (counted as delivered): measures generation alone.
pub struct NullSink;

impl Sink for NullSink {
    #[inline]
    fn write(&mut self, batch: &Batch, from: usize, acct: &mut LocalFlush) -> Result<usize, EngineError> {
        let n = batch.len() - from;
        acct.delivered += n as u64;
        acct.delivered_bytes += batch.bytes_from(from).len() as u64;
        Ok(n)
    }
    fn finish(&mut self, _acct: &mut LocalFlush, _timeout_ms: u64) -> Result<(), EngineError> {
        Ok(())
    }
}

/// Where a `WriterSink` writes. A file can be cut back after a failed write, so it holds whole
/// lines only (a full disk leaves no torn line behind); a pipe cannot.
pub trait Output: Write + Send {
    fn cut_to(&mut self, _len: u64) {}
}

impl Output for std::io::Stdout {}

impl Output for File {
    fn cut_to(&mut self, len: u64) {
        let _ = self.set_len(len);
    }
}

/// Writes whole batches with one `write_all` each (one syscall per batch, not per event).
pub struct WriterSink<W: Output> {
    target: String,
    out: W,
    /// Bytes written whole so far (where a failed write is cut back to).
    whole: u64,
    /// Binary events: an Avro object container, one block per batch; and its header until
    /// it is written.
    container: Option<(OcfWriter, Vec<u8>)>,
}

impl WriterSink<std::io::Stdout> {
    pub fn stdout() -> Self {
        // `Stdout` is line-buffered, but a `write_all` of a whole batch ending in '\n' goes out
        // in one write: the line writer passes everything up to the last newline straight
        // through.
        Self { target: "stdout".into(), out: std::io::stdout(), whole: 0, container: None }
    }
}

impl WriterSink<File> {
    pub fn file(path: &std::path::Path) -> Result<Self, EngineError> {
        let f = File::create(path).map_err(|source| EngineError::SinkOpen { target: format!("file:{}", path.display()), source })?;
        Ok(Self { target: format!("file:{}", path.display()), out: f, whole: 0, container: None })
    }
}

impl<W: Output> WriterSink<W> {
    /// Writes an Avro object container of `schema` instead of lines: one block per batch.
    pub fn avro_container(mut self, schema: &str, codec: Codec) -> Result<Self, EngineError> {
        let mut sync = [0u8; 16];
        let r = spate_gen::RunId::random().0;
        sync[..8].copy_from_slice(&r.to_le_bytes());
        sync[8..].copy_from_slice(&spate_core::rng::splitmix64(r).to_le_bytes());
        let (w, header) =
            OcfWriter::new(schema, codec, sync).map_err(|source| EngineError::SinkOpen { target: self.target.clone(), source })?;
        self.container = Some((w, header));
        Ok(self)
    }

    /// Writes the container header if it is still pending.
    fn header(&mut self) -> std::io::Result<()> {
        if let Some((_, h)) = &mut self.container {
            if !h.is_empty() {
                self.out.write_all(h)?;
                self.whole += h.len() as u64;
                h.clear();
            }
        }
        Ok(())
    }
}

impl<W: Output> Sink for WriterSink<W> {
    fn write(&mut self, batch: &Batch, from: usize, acct: &mut LocalFlush) -> Result<usize, EngineError> {
        let n = batch.len() - from;
        let res = self.header().and_then(|()| match &mut self.container {
            None => Ok(batch.bytes_from(from)),
            Some((w, _)) => w.block((from..batch.len()).map(|i| batch.payload(i))),
        });
        let bytes = match res {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Err(EngineError::ReaderGone),
            Err(source) => {
                self.out.cut_to(self.whole);
                acct.failed += n as u64;
                return Err(EngineError::SinkWrite { target: self.target.clone(), source });
            }
        };
        match self.out.write_all(bytes) {
            Ok(()) => {
                self.whole += bytes.len() as u64;
                acct.delivered += n as u64;
                acct.delivered_bytes += bytes.len() as u64;
                Ok(n)
            }
            // The reader went away (`spate | head`): not a failure; the flush thread counts
            // this batch and the rest of the run as shed and stops.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(EngineError::ReaderGone),
            Err(source) => {
                // Part of the batch may be on disk: cut it off, so the file holds exactly the
                // events counted delivered, and count the whole batch failed.
                self.out.cut_to(self.whole);
                acct.failed += n as u64;
                Err(EngineError::SinkWrite { target: self.target.clone(), source })
            }
        }
    }

    fn finish(&mut self, _acct: &mut LocalFlush, _timeout_ms: u64) -> Result<(), EngineError> {
        // A run without events still leaves a valid (empty) container.
        self.header().and_then(|()| self.out.flush()).map_err(|source| EngineError::SinkWrite { target: self.target.clone(), source })
    }
}
