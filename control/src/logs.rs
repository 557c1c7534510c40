//! Where spate's log events go: `tracing` events from every crate, written to stderr by one
//! writer thread, as text (`spate: warning: ...`) or JSON lines (`--log-format json`), at the
//! level `--log-level` (or `SPATE_LOG`) asks for.
//!
//! Never a stall, never a panic: the thread that logs (a flush thread, a worker) hands the line
//! to the writer through a bounded queue and goes on; if the queue is full (stderr is a pipe
//! nobody reads) the line is dropped and counted, and a write error (stderr closed) is ignored.
//! At exit, [`flush`] waits a bounded time for the queue to empty.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tracing::level_filters::LevelFilter;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Lines waiting for the writer thread.
const QUEUE: usize = 4096;

struct Queue {
    tx: SyncSender<Vec<u8>>,
    queued: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
}

static QUEUE_: OnceLock<Queue> = OnceLock::new();

/// Lines dropped because the writer could not keep up (stderr not read).
pub fn dropped() -> u64 {
    QUEUE_.get().map_or(0, |q| q.dropped.load(Relaxed))
}

/// A line being formatted; sent to the writer thread when dropped.
pub struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let Some(q) = QUEUE_.get() else { return };
        if self.0.is_empty() {
            return;
        }
        match q.tx.try_send(std::mem::take(&mut self.0)) {
            Ok(()) => {
                q.queued.fetch_add(1, Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                q.dropped.fetch_add(1, Relaxed);
            }
        }
    }
}

struct Stderr;

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Line;
    fn make_writer(&'a self) -> Line {
        Line(Vec::with_capacity(128))
    }
}

fn writer(rx: Receiver<Vec<u8>>) {
    let mut err = std::io::stderr();
    for line in rx {
        // A closed or broken stderr: the line is gone, the program goes on.
        let _ = err.write_all(&line);
        if let Some(q) = QUEUE_.get() {
            q.written.fetch_add(1, Relaxed);
        }
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `spate: warning: message key=value`.
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

/// `spate: warning: message site=... suppressed=...` for people.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        write!(w, "spate: {level}: ")?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Installs the subscriber. `level`: `error`, `warn`, `info` (default), `debug` or `trace`;
/// unset, `SPATE_LOG` may say it. A bad level is refused (exit 2 by the caller).
pub fn init(level: Option<&str>, format: LogFormat) -> Result<(), spate_engine::ConfigError> {
    let parse = |l: &str, key: &str| {
        l.parse::<LevelFilter>().map_err(|_| {
            spate_engine::ConfigError::new(
                key,
                format!("`{l}` is not a log level"),
                "use error, warn, info, debug or trace",
            )
        })
    };
    let filter = match (level, std::env::var("SPATE_LOG").ok()) {
        (Some(l), _) => parse(l, "--log-level")?,
        (None, Some(l)) => parse(&l, "SPATE_LOG")?,
        (None, None) => LevelFilter::INFO,
    };
    let (tx, rx) = sync_channel(QUEUE);
    if QUEUE_
        .set(Queue {
            tx,
            queued: AtomicU64::new(0),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        })
        .is_err()
    {
        return Ok(()); // already set up (tests)
    }
    let _ = std::thread::Builder::new().name("spate-log".into()).spawn(move || writer(rx));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(Stderr)
        .with_ansi(false)
        .log_internal_errors(false);
    let layer = match format {
        LogFormat::Text => layer.event_format(Plain).boxed(),
        LogFormat::Json => layer.json().boxed(),
    };
    let _ = tracing_subscriber::registry().with(layer.with_filter(filter)).try_init();
    Ok(())
}

/// Waits up to `limit` for queued lines to be written (at exit).
pub fn flush(limit: Duration) {
    let Some(q) = QUEUE_.get() else { return };
    let end = Instant::now() + limit;
    while q.written.load(Relaxed) < q.queued.load(Relaxed) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(1));
    }
}
