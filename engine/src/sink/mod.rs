//! Sinks: where the flush thread hands batches. One trait, so every sink (null, stdout, file,
//! TCP, Kafka, PostgreSQL) plugs into the same flush thread, and one outcome path
//! ([`Outcomes`]) through which each reports what became of the events it took.

pub(crate) mod beneath;
pub mod config;
pub mod dlq;
pub mod kafka;
mod outcome;
pub mod postgres;
pub mod tcp;

pub use beneath::{confine_writes_beneath, refuse_symlinks};
pub use outcome::Outcomes;

use std::fs::File;
use std::io::Write;

use crate::batch::Batch;
use crate::error::EngineError;
use spate_gen::avro::ocf::OcfWriter;
use spate_gen::avro::Codec;

/// A destination for batches, owned and driven by the flush thread only.
pub trait Sink: Send {
    /// Hands events `from..` of `batch` to the sink and returns how many it took: all of them,
    /// unless the sink is full (then the flush thread keeps the rest and retries after `poll`).
    /// Outcomes known now (written, failed) are reported to `acct` at once; outcomes learned
    /// later (Kafka delivery reports, PostgreSQL commits) by `poll`. A sink reports the events
    /// it took with [`Outcomes::taken`] (or a `*_from` report) once it no longer needs their
    /// bytes in the batch, or releases their bytes itself when it learns their outcome.
    fn write(
        &mut self,
        batch: &Batch,
        from: usize,
        acct: &mut Outcomes,
    ) -> Result<usize, EngineError>;

    /// Serves pending outcomes and timers; waits at most `timeout_ms` (0: do not wait).
    fn poll(&mut self, _acct: &mut Outcomes, _timeout_ms: u64) {}

    /// Run end: waits up to `timeout_ms` for every outstanding outcome and flushes buffers.
    fn finish(&mut self, acct: &mut Outcomes, timeout_ms: u64) -> Result<(), EngineError>;

    /// Settles events `from..` of `batch` that will not be written: the run is ending (drain
    /// timeout, hard stop). The default counts them failed; a sink with a dead-letter queue puts
    /// them there.
    fn abandon(&mut self, batch: &Batch, from: usize, acct: &mut Outcomes, reason: &str) {
        acct.failed_from(batch, from, Some(reason.to_string()));
    }

    /// Events handed over but without an outcome yet.
    fn in_flight(&self) -> u64 {
        0
    }
}

/// Discards events (counted as delivered): measures generation alone.
pub struct NullSink;

impl Sink for NullSink {
    #[inline]
    fn write(
        &mut self,
        batch: &Batch,
        from: usize,
        acct: &mut Outcomes,
    ) -> Result<usize, EngineError> {
        let n = batch.len() - from;
        acct.delivered_from(batch, from, n);
        Ok(n)
    }
    fn finish(&mut self, _acct: &mut Outcomes, _timeout_ms: u64) -> Result<(), EngineError> {
        Ok(())
    }
}

/// Where a `WriterSink` writes. A file can be cut back after a failed write, so it holds whole
/// lines only (a full disk leaves no torn line behind); a pipe cannot.
pub trait Output: Write + Send {
    /// Cuts the output back to its first `len` bytes, where it can (a file); by default a no-op.
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
    /// The reader went away (`spate | head`): the rest of the run is shed, quietly.
    gone: bool,
}

impl WriterSink<std::io::Stdout> {
    /// A sink writing to standard output.
    pub fn stdout() -> Self {
        // `Stdout` is line-buffered, but a `write_all` of a whole batch ending in '\n' goes out
        // in one write: the line writer passes everything up to the last newline straight
        // through.
        Self {
            target: "stdout".into(),
            out: std::io::stdout(),
            whole: 0,
            container: None,
            gone: false,
        }
    }
}

impl WriterSink<File> {
    /// A sink writing to the file at `path`, created or truncated.
    pub fn file(path: &std::path::Path) -> Result<Self, EngineError> {
        let f = beneath::open_write(path, beneath::Mode::Truncate).map_err(|source| {
            EngineError::SinkOpen { target: format!("file:{}", path.display()), source }
        })?;
        Ok(Self {
            target: format!("file:{}", path.display()),
            out: f,
            whole: 0,
            container: None,
            gone: false,
        })
    }
}

impl<W: Output> WriterSink<W> {
    /// Writes an Avro object container of `schema` instead of lines: one block per batch.
    pub fn avro_container(mut self, schema: &str, codec: Codec) -> Result<Self, EngineError> {
        let mut sync = [0u8; 16];
        let r = spate_gen::RunId::random().0;
        sync[..8].copy_from_slice(&r.to_le_bytes());
        sync[8..].copy_from_slice(&spate_core::rng::splitmix64(r).to_le_bytes());
        let (w, header) = OcfWriter::new(schema, codec, sync)
            .map_err(|source| EngineError::SinkOpen { target: self.target.clone(), source })?;
        self.container = Some((w, header));
        Ok(self)
    }

    /// The reader went away (`spate | head`): not a failure. This batch and the rest of the
    /// run are shed; the flush thread ends the run. Returns the events taken (all).
    fn reader_left(&mut self, batch: &Batch, from: usize, acct: &mut Outcomes) -> usize {
        self.gone = true;
        acct.reader_gone();
        acct.shed_from(batch, from);
        batch.len() - from
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
    fn write(
        &mut self,
        batch: &Batch,
        from: usize,
        acct: &mut Outcomes,
    ) -> Result<usize, EngineError> {
        let n = batch.len() - from;
        if self.gone {
            acct.shed_from(batch, from);
            return Ok(n);
        }
        let res = self.header().and_then(|()| match &mut self.container {
            None => Ok(batch.bytes_from(from)),
            Some((w, _)) => w.block((from..batch.len()).map(|i| batch.payload(i))),
        });
        let bytes = match res {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                return Ok(self.reader_left(batch, from, acct))
            }
            Err(source) => {
                self.out.cut_to(self.whole);
                acct.failed_from(batch, from, Some(source.to_string()));
                return Err(EngineError::SinkWrite { target: self.target.clone(), source });
            }
        };
        let mut written = 0;
        let res = loop {
            if written == bytes.len() {
                break Ok(());
            }
            match self.out.write(&bytes[written..]) {
                Ok(0) => break Err(std::io::ErrorKind::WriteZero.into()),
                Ok(k) => written += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        match res {
            Ok(()) => {
                self.whole += bytes.len() as u64;
                acct.delivered_as(batch, from, n, bytes.len() as u64);
                Ok(n)
            }
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                // The lines the pipe took whole before its reader left were delivered (an
                // Avro block is all or nothing); the rest of the run is shed.
                let base = if from == 0 { 0 } else { batch.ends[from - 1] as usize };
                let whole = if self.container.is_some() {
                    0
                } else {
                    batch.ends[from..]
                        .iter()
                        .take_while(|&&end| end as usize - base <= written)
                        .count()
                };
                let line_bytes =
                    batch.bytes_from(from).len() - batch.bytes_from(from + whole).len();
                acct.delivered_as(batch, from, whole, line_bytes as u64);
                self.reader_left(batch, from + whole, acct);
                Ok(n)
            }
            Err(source) => {
                // Part of the batch may be on disk: cut it off, so the file holds exactly the
                // events counted delivered, and count the whole batch failed.
                self.out.cut_to(self.whole);
                acct.failed_from(batch, from, Some(source.to_string()));
                Err(EngineError::SinkWrite { target: self.target.clone(), source })
            }
        }
    }

    fn abandon(&mut self, batch: &Batch, from: usize, acct: &mut Outcomes, reason: &str) {
        if self.gone {
            acct.shed_from(batch, from);
        } else {
            acct.failed_from(batch, from, Some(reason.to_string()));
        }
    }

    fn finish(&mut self, _acct: &mut Outcomes, _timeout_ms: u64) -> Result<(), EngineError> {
        if self.gone {
            return Ok(());
        }
        // A run without events still leaves a valid (empty) container.
        self.header()
            .and_then(|()| self.out.flush())
            .map_err(|source| EngineError::SinkWrite { target: self.target.clone(), source })
    }
}
