//! Batch spans into the OpenTelemetry SDK, and from it to the collector: OTLP/HTTP (protobuf)
//! or Zipkin v2, through the SDK's batch processor, over a small blocking HTTP client (ureq:
//! no async runtime of its own; the processor calls it on its own thread).
//!
//! The spans' ids are spate's (the batch's first event's trace id, span ids derived from it), not
//! random: an id generator hands the SDK the ids staged for the span being started.

use std::cell::Cell;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use opentelemetry::trace::{
    Span as _, SpanId, SpanKind, Status, TraceContextExt as _, TraceId, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, IdGenerator, SdkTracer, SdkTracerProvider, SpanData,
    SpanExporter,
};
use opentelemetry_sdk::Resource;

use super::config::{Endpoint, Protocol};
use super::record::{SpanStats, Stage};

/// Each POST, connect to answer.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(2);

thread_local! {
    /// The ids of the next span to start on this thread (the exporter thread).
    static NEXT: Cell<Option<(TraceId, SpanId)>> = const { Cell::new(None) };
}

/// Hands the SDK the ids staged in [`NEXT`].
#[derive(Debug, Default)]
struct StagedIds;

impl IdGenerator for StagedIds {
    fn new_trace_id(&self) -> TraceId {
        NEXT.with(Cell::get).map_or(TraceId::INVALID, |(t, _)| t)
    }
    fn new_span_id(&self) -> SpanId {
        NEXT.with(Cell::get).map_or(SpanId::INVALID, |(_, s)| s)
    }
}

/// The SDK set up for one run's collector.
pub(super) struct Sdk {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl Sdk {
    pub(super) fn new(endpoint: &Endpoint, queue: usize, stats: Arc<SpanStats>) -> Sdk {
        let client = Ureq::new(EXPORT_TIMEOUT);
        let exporter: Box<dyn FnOnce(BatchConfig) -> BatchSpanProcessor> = match endpoint.protocol {
            Protocol::Otlp => {
                let e = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(endpoint.url.clone())
                    .with_timeout(EXPORT_TIMEOUT)
                    .with_http_client(client)
                    .build();
                let stats2 = stats.clone();
                match e {
                    Ok(e) => Box::new(move |c| {
                        BatchSpanProcessor::new(Counting { inner: e, stats: stats2 }, c.0)
                    }),
                    Err(err) => Box::new(move |c| {
                        BatchSpanProcessor::new(
                            Failing { why: err.to_string(), stats: stats2 },
                            c.0,
                        )
                    }),
                }
            }
            // The SDK deprecates its Zipkin exporter (Zipkin reads OTLP now); it is kept for the
            // collectors people run today, until the crate goes.
            #[allow(deprecated)]
            Protocol::Zipkin => {
                let e = opentelemetry_zipkin::ZipkinExporter::builder()
                    .with_collector_endpoint(endpoint.url.clone())
                    .with_http_client(client)
                    .build();
                let stats2 = stats.clone();
                match e {
                    Ok(e) => Box::new(move |c| {
                        BatchSpanProcessor::new(Counting { inner: e, stats: stats2 }, c.0)
                    }),
                    Err(err) => Box::new(move |c| {
                        BatchSpanProcessor::new(
                            Failing { why: err.to_string(), stats: stats2 },
                            c.0,
                        )
                    }),
                }
            }
        };
        let config = BatchConfigBuilder::default()
            .with_max_queue_size(queue)
            .with_max_export_batch_size(queue.min(512))
            .with_scheduled_delay(Duration::from_millis(500))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_id_generator(StagedIds)
            .with_resource(Resource::builder().with_service_name("spate").build())
            .with_span_processor(exporter(BatchConfig(config)))
            .build();
        let tracer = provider.tracer("spate");
        Sdk { provider, tracer }
    }

    /// One traced batch's spans (the root first), ended at their recorded times.
    pub(super) fn emit(&self, stages: &[Stage], error: Option<&str>) {
        let Some(root) = stages.first() else { return };
        let time = |ns: u64| UNIX_EPOCH + Duration::from_nanos(ns);
        let trace = TraceId::from(root.trace_id);
        NEXT.with(|n| n.set(Some((trace, SpanId::from(root.span_id)))));
        let span = self
            .tracer
            .span_builder(root.name)
            .with_kind(SpanKind::Internal)
            .with_start_time(time(root.start_unix_ns))
            .with_attributes(root.attributes.iter().map(|(k, v)| KeyValue::new(*k, v.clone())))
            .start_with_context(&self.tracer, &Context::new());
        let cx = Context::new().with_span(span);
        for s in &stages[1..] {
            NEXT.with(|n| n.set(Some((trace, SpanId::from(s.span_id)))));
            let kind = if matches!(s.name, "produce" | "ack") {
                SpanKind::Producer
            } else {
                SpanKind::Internal
            };
            let mut child = self
                .tracer
                .span_builder(s.name)
                .with_kind(kind)
                .with_start_time(time(s.start_unix_ns))
                .start_with_context(&self.tracer, &cx);
            child.end_with_timestamp(time(s.end_unix_ns));
        }
        NEXT.with(|n| n.set(None));
        let span = cx.span();
        match error {
            Some(e) => span.set_status(Status::error(e.to_string())),
            None => span.set_status(Status::Ok),
        }
        span.end_with_timestamp(time(root.end_unix_ns));
    }

    /// Posts what the processor holds, within `limit`.
    pub(super) fn shutdown(self, limit: Duration) {
        let _ = self.provider.shutdown_with_timeout(limit);
    }
}

/// The processor's settings, carried to the exporter's constructor.
struct BatchConfig(opentelemetry_sdk::trace::BatchConfig);

/// Counts what the collector accepted and what it did not.
#[derive(Debug)]
struct Counting<E> {
    inner: E,
    stats: Arc<SpanStats>,
}

impl<E: SpanExporter> SpanExporter for Counting<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        let r = self.inner.export(batch).await;
        match &r {
            Ok(()) => {
                self.stats.exported.fetch_add(n, Relaxed);
            }
            Err(e) => {
                self.stats.posts_failed.fetch_add(1, Relaxed);
                self.stats.dropped.fetch_add(n, Relaxed);
                *self.stats.last_error.lock() = Some(e.to_string());
            }
        }
        r
    }
    fn shutdown_with_timeout(&self, t: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(t)
    }
    fn set_resource(&mut self, r: &Resource) {
        self.inner.set_resource(r);
    }
}

/// An exporter that could not be built: every span is dropped, with the reason.
#[derive(Debug)]
struct Failing {
    why: String,
    stats: Arc<SpanStats>,
}

impl SpanExporter for Failing {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.stats.dropped.fetch_add(batch.len() as u64, Relaxed);
        *self.stats.last_error.lock() = Some(self.why.clone());
        Ok(())
    }
}

/// A blocking HTTP client for the exporters (ureq): the batch processor calls it on its own
/// thread. Status codes are the exporter's to judge.
#[derive(Debug, Clone)]
struct Ureq(ureq::Agent);

impl Ureq {
    fn new(timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Ureq(agent)
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Ureq {
    async fn send_bytes(
        &self,
        req: opentelemetry_http::Request<opentelemetry_http::Bytes>,
    ) -> Result<
        opentelemetry_http::Response<opentelemetry_http::Bytes>,
        opentelemetry_http::HttpError,
    > {
        let (parts, body) = req.into_parts();
        let resp = self.0.run(http::Request::from_parts(parts, body.to_vec()))?;
        let (parts, mut body) = resp.into_parts();
        let bytes = body.with_config().limit(4 << 20).read_to_vec()?;
        Ok(opentelemetry_http::Response::from_parts(parts, opentelemetry_http::Bytes::from(bytes)))
    }
}
