//! Sampled batch spans, exported through the OpenTelemetry SDK: OTLP over HTTP (protobuf, the
//! convention of today's collectors: `http://HOST:4318/v1/traces`) or, for a URL ending in
//! `/api/v2/spans`, to a Zipkin v2 collector (`export.rs`).
//!
//! One batch in every `1/sample` is traced; a traced batch yields a root span `batch` (from the
//! time its first event was scheduled to its end) with children for each stage it crossed:
//! `generate` (worker) → `ring` (waiting for the flush thread) → `produce` (handed to the sink)
//! → `ack` (Kafka: until the delivery report of the batch's last record). The trace id is the
//! first event's W3C trace id, so the batch span sits in the same trace as that event's
//! `traceparent` header downstream.
//!
//! Cost: when tracing is off nothing is started and a worker pays one integer compare per batch
//! (`Sampler::hit` with `every == 0`). When on, a sampled batch costs three clock reads and one
//! `try_send` on a bounded channel; spans that do not fit are dropped and counted, never waited
//! for. The exporter thread turns records into SDK spans; the SDK's batch processor posts them
//! about twice a second, each request bounded by 2 s, so a slow or dead collector costs spans,
//! not events.

mod config;
mod export;
mod record;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use spate_core::clock::WallAnchor;

use crate::error::EngineError;

pub use config::{Endpoint, Protocol, RawTracing, TracingConfig};
pub use record::{stages, BatchTrace, Sampler, SpanRecord, SpanStats, Stage};

/// Batches queued for export (and spans in the SDK's queue) before new ones are dropped.
const QUEUE: usize = 4096;
/// Records turned into spans per wake-up of the exporter thread.
const POST_MAX: usize = 1000;
/// How long the last spans may take to be posted at the end of a run.
const SHUTDOWN: Duration = Duration::from_secs(3);

/// The run's span exporter. Its counters are shown by status and metrics.
pub struct Tracer {
    /// The tracing settings it was started with.
    pub config: TracingConfig,
    tx: SyncSender<SpanRecord>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// What the exporter exported and dropped.
    pub stats: Arc<SpanStats>,
}

impl Tracer {
    /// Starts the exporter thread; `wall` dates the spans, `sink` and `run_id` label them.
    pub fn start(
        config: TracingConfig,
        wall: WallAnchor,
        sink: String,
        run_id: String,
    ) -> Result<Arc<Self>, EngineError> {
        let (tx, rx) = sync_channel(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(SpanStats::default());
        let exporter = Exporter {
            endpoint: config.endpoint.clone(),
            wall,
            sink,
            run_id,
            stats: stats.clone(),
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("spate-spans".into())
            .spawn(move || exporter.run(rx))
            .map_err(|source| EngineError::Spawn { name: "spate-spans".into(), source })?;
        Ok(Arc::new(Self { config, tx, stop, thread: Mutex::new(Some(thread)), stats }))
    }

    /// A worker's sampler at this tracer's rate, offset by `phase`.
    pub fn sampler(&self, phase: u64) -> Sampler {
        Sampler::new(self.config.sample_every, phase)
    }

    /// Queues a finished batch; never blocks.
    pub fn submit(&self, rec: SpanRecord) {
        match self.tx.try_send(rec) {
            Ok(()) => {}
            Err(TrySendError::Full(r) | TrySendError::Disconnected(r)) => {
                self.stats.dropped.fetch_add(record::spans_of(&r), Relaxed);
            }
        }
    }

    /// Posts what is queued and stops the exporter (bounded by its I/O time-outs).
    pub fn finish(&self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

struct Exporter {
    endpoint: Endpoint,
    wall: WallAnchor,
    sink: String,
    run_id: String,
    stats: Arc<SpanStats>,
    stop: Arc<AtomicBool>,
}

impl Exporter {
    fn run(self, rx: Receiver<SpanRecord>) {
        let sdk = export::Sdk::new(&self.endpoint, QUEUE, self.stats.clone());
        loop {
            let stopping = self.stop.load(Relaxed);
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(r) => {
                    self.emit(&sdk, &r);
                    for r in rx.try_iter().take(POST_MAX) {
                        self.emit(&sdk, &r);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if stopping {
                for r in rx.try_iter() {
                    self.emit(&sdk, &r);
                }
                break;
            }
        }
        // Posts what is left, within the export time-out.
        sdk.shutdown(SHUTDOWN);
    }

    fn emit(&self, sdk: &export::Sdk, r: &SpanRecord) {
        sdk.emit(&stages(r, &self.wall, &self.sink, &self.run_id), r.error.as_deref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_hits_every_nth_and_off_never() {
        let mut s = Sampler::new(4, 0);
        let hits: Vec<bool> = (0..8).map(|_| s.hit()).collect();
        assert_eq!(hits, [false, false, false, true, false, false, false, true]);
        let mut off = Sampler::new(0, 3);
        assert!((0..100).all(|_| !off.hit()));
        let mut all = Sampler::new(1, 0);
        assert!((0..10).all(|_| all.hit()));
    }

    #[test]
    fn config_errors_name_the_key() {
        let bad = RawTracing { endpoint: Some("https://x:1".into()), sample: None }
            .validate()
            .unwrap_err();
        assert_eq!(bad.key, "tracing.endpoint");
        assert!(bad.message.contains("https"));
        let bad = RawTracing { endpoint: Some("http://nohost".into()), sample: None }
            .validate()
            .unwrap_err();
        assert!(bad.message.contains("host:port"));
        let bad = RawTracing { endpoint: Some("http://a:9411".into()), sample: Some(1.5) }
            .validate()
            .unwrap_err();
        assert_eq!(bad.key, "tracing.sample");
        let off = RawTracing { endpoint: None, sample: Some(0.5) }.validate().unwrap();
        assert!(off.is_none());
        let on = RawTracing { endpoint: Some("http://127.0.0.1:9411".into()), sample: Some(0.25) }
            .validate()
            .unwrap()
            .unwrap();
        assert_eq!(on.sample_every, 4);
        assert_eq!(
            (on.endpoint.url.as_str(), on.endpoint.protocol),
            ("http://127.0.0.1:9411/api/v2/spans", Protocol::Zipkin)
        );
        let otlp = Endpoint::parse("http://127.0.0.1:4318").unwrap();
        assert_eq!(
            (otlp.url.as_str(), otlp.protocol),
            ("http://127.0.0.1:4318/v1/traces", Protocol::Otlp)
        );
        assert_eq!(Endpoint::parse("http://c:80/otlp/v1/traces").unwrap().protocol, Protocol::Otlp);
    }

    #[test]
    fn a_kafka_batch_gives_a_root_and_four_stages() {
        let wall = WallAnchor::new(&spate_core::clock::FakeClock::new());
        let r = SpanRecord {
            trace_id: 0xabc,
            worker: 1,
            events: 64,
            sched_ns: 1_000_000,
            pushed_ns: 1_200_000,
            popped_ns: 1_500_000,
            written_ns: 1_600_000,
            acked_ns: Some(9_000_000),
            error: None,
        };
        let out = stages(&r, &wall, "kafka", "run");
        let names: Vec<&str> = out.iter().map(|s| s.name).collect();
        assert_eq!(names, ["batch", "generate", "ring", "produce", "ack"]);
        assert_eq!(out[0].end_unix_ns - out[0].start_unix_ns, 8_000_000);
        assert!(out.iter().all(|s| s.trace_id == 0xabc));
        let root = out[0].span_id;
        assert!(out[1..].iter().all(|s| s.parent == Some(root)));
        let ids: std::collections::BTreeSet<_> = out.iter().map(|s| s.span_id).collect();
        assert_eq!(ids.len(), 5, "span ids are distinct");
        assert_eq!(out[4].end_unix_ns - out[4].start_unix_ns, 7_400_000);
    }
}
