//! Replaying a dead-letter file: every JSON line is produced again to its topic with its key
//! and headers; the result counts what was acknowledged.

use std::io::BufRead;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use spate_engine::sink::dlq::DlqLine;
use spate_engine::sink::kafka::security::{self, ErrorTrap, Security};
use spate_engine::EngineError;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplayReport {
    pub sent: u64,
    pub failed: u64,
    pub bad_lines: u64,
}

#[derive(Default)]
struct Count {
    ok: AtomicU64,
    err: AtomicU64,
    trap: ErrorTrap,
}
impl ClientContext for Count {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, line: &str) {
        self.trap.log(level, fac, line);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.trap.error(error, reason);
    }
}
impl ProducerContext for Count {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, (): ()) {
        if r.is_ok() { &self.ok } else { &self.err }.fetch_add(1, Relaxed);
    }
}

pub fn replay(
    file: &Path,
    brokers: &str,
    topic: Option<&str>,
    security: &Security,
) -> Result<ReplayReport, EngineError> {
    let f = std::fs::File::open(file)
        .map_err(|source| EngineError::SinkOpen { target: file.display().to_string(), source })?;
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "30000");
    security.apply(&mut cc);
    security::log_failures(&mut cc);
    let producer: BaseProducer<Count> =
        cc.create_with_context(Count::default()).map_err(|e| EngineError::Kafka(e.to_string()))?;
    // A refused certificate or credential is said now, not after every line timed out.
    let serve = || {
        producer.poll(Duration::ZERO);
    };
    let last = || producer.context().trap.take();
    security::await_metadata(
        producer.client(),
        &cc,
        None,
        Duration::from_secs(3),
        security,
        brokers,
        &serve,
        &last,
    )?;
    let mut bad = 0;
    for line in std::io::BufReader::new(f).lines() {
        let line = line.map_err(|source| EngineError::SinkOpen {
            target: file.display().to_string(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(d) = serde_json::from_str::<DlqLine>(&line) else {
            bad += 1;
            continue;
        };
        let mut h = OwnedHeaders::new_with_capacity(d.headers.len());
        for (k, v) in &d.headers {
            h = h.insert(Header { key: k, value: Some(v.as_bytes()) });
        }
        let t = topic.unwrap_or(&d.topic);
        let (Ok(payload), Ok(key)) = (d.payload_bytes(), d.key_bytes()) else {
            bad += 1;
            continue;
        };
        let mut rec = BaseRecord::to(t).payload(&payload).headers(h);
        if let Some(k) = &key {
            rec = rec.key(k);
        }
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((e, r))
                    if e.rdkafka_error_code()
                        == Some(rdkafka::error::RDKafkaErrorCode::QueueFull) =>
                {
                    producer.poll(Duration::from_millis(10));
                    rec = r;
                }
                Err(_) => {
                    producer.context().err.fetch_add(1, Relaxed);
                    break;
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    let _ = producer.flush(Duration::from_secs(60));
    let c = producer.context();
    Ok(ReplayReport {
        sent: c.ok.load(Relaxed),
        failed: c.err.load(Relaxed) + producer.in_flight_count().max(0) as u64,
        bad_lines: bad,
    })
}
