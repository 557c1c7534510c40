//! Making the librdkafka producer (spate's delivery context, the client config) and waiting for
//! its first metadata answer at start.

use std::time::Duration;

use rdkafka::producer::{BaseProducer, Producer};

use super::config::KafkaConfig;
use super::delivery::SinkContext;
use super::security;
use crate::error::EngineError;

/// Topic handle names: the sources' topics, then the DLQ topic.
pub(super) fn handle_names(topics: &[String], cfg: &KafkaConfig) -> Vec<String> {
    topics.iter().cloned().chain(std::iter::once(cfg.dlq_topic.clone())).collect()
}

/// Waits for the first metadata answer, for two reasons. A refused certificate or credential
/// ends the start here with one message naming the setting (librdkafka would otherwise retry
/// it quietly until the run's duration is out). And the idempotent producer asks for its
/// producer id when a metadata answer arrives from a broker that is up, else it retries on a
/// 500 ms timer: one answer now gets the id at once (measured: first ack after 0.56 s without,
/// see the benchmarks page). Bounded: a broker that is down costs at most 1 s (3 s with TLS or
/// SASL, whose handshakes take longer), and is then the breaker's business, not an error.
pub(super) fn probe(
    producer: &BaseProducer<SinkContext>,
    cfg: &KafkaConfig,
    bootstrap: &str,
    topic: Option<&str>,
) -> Result<(), EngineError> {
    let secured = cfg.security.tls.is_some() || cfg.security.sasl.is_some();
    let wait = Duration::from_millis(if secured { 3000 } else { 1000 });
    // Client errors reach the context through the main queue, which `poll` serves.
    let serve = || {
        producer.poll(Duration::ZERO);
    };
    let last = || producer.context().trap.take();
    let answer = security::await_metadata(
        producer.client(),
        &cfg.client_config(bootstrap),
        topic,
        wait,
        &cfg.security,
        bootstrap,
        &serve,
        &last,
    )?;
    if answer.is_none() && secured {
        spate_core::rate_log::warn(
            "kafka_no_answer",
            &format!("kafka: no answer from {bootstrap} within {wait:?}; if that port is not a TLS listener, the TLS handshake waits there unanswered (librdkafka socket.connection.setup.timeout.ms)"),
        );
    }
    Ok(())
}

/// A producer with spate's delivery context, on `bootstrap`.
pub(super) fn make_producer(
    cfg: &KafkaConfig,
    bootstrap: &str,
) -> Result<BaseProducer<SinkContext>, EngineError> {
    let ctx = SinkContext::new(
        cfg.breaker.slow_call.as_nanos() as u64,
        cfg.retries.min(100) as u8,
        cfg.idempotence,
    );
    cfg.client_config(bootstrap).create_with_context(ctx).map_err(|e| {
        // librdkafka reads the CA, certificate and key here: a bad one is a config error.
        let text = e.to_string();
        match cfg.security.explain(&text, bootstrap) {
            Some(c) => EngineError::Config(c),
            None if text.contains("ssl") || text.contains("SSL") => EngineError::Config(spate_core::ConfigError::new(
                "sink.kafka.tls",
                format!("librdkafka cannot use the TLS files: {text}"),
                "check sink.kafka.tls.ca_file, cert_file, key_file and key_password (PEM files; the passphrase of an encrypted key)",
            )),
            None => EngineError::Kafka(format!("cannot create the producer: {text}")),
        }
    })
}
