//! The embedded broker: librdkafka's in-process mock cluster, a real Kafka protocol endpoint
//! on loopback kept in memory. Used when `--sink kafka` has no `--brokers`, by `spate broker`,
//! and by the tests.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::error::EngineError;

/// An in-process librdkafka mock cluster: a real Kafka protocol endpoint on loopback, kept in
/// memory. Each partition keeps at most 5 MiB or 100,000 message sets (librdkafka trims the
/// oldest beyond that), so a long run cannot exhaust memory; old data is forgotten instead.
pub struct EmbeddedBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
    bootstrap: String,
}

// SAFETY: `MockCluster` holds a raw `rd_kafka_mock_cluster_t*` and an rdkafka `Client`
// (itself Send + Sync). librdkafka's mock cluster runs on its own thread and every
// `rd_kafka_mock_*` control call is serialised onto that thread through its op queue
// (rdkafka_mock.c: `rd_kafka_op_req(mcluster->ops, ...)`), so the handle may be used and dropped from any
// thread. We only call those functions and `bootstrap_servers` (an immutable string).
unsafe impl Send for EmbeddedBroker {}
// SAFETY: as above: concurrent control calls are queued to the mock cluster's own thread.
unsafe impl Sync for EmbeddedBroker {}

impl EmbeddedBroker {
    /// Starts a mock cluster of `brokers` brokers.
    pub fn start(brokers: i32) -> Result<Self, EngineError> {
        let cluster = MockCluster::new(brokers).map_err(|e| {
            EngineError::Kafka(format!("cannot start the embedded mock cluster: {e}"))
        })?;
        let bootstrap = cluster.bootstrap_servers();
        Ok(Self { cluster, bootstrap })
    }
    /// The cluster's bootstrap servers, `host:port[,host:port...]`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }
    /// Creates a topic; one that exists already is fine.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), EngineError> {
        match self.cluster.create_topic(topic, partitions, 1) {
            Ok(()) => Ok(()),
            Err(KafkaError::MockCluster(RDKafkaErrorCode::TopicAlreadyExists)) => Ok(()),
            Err(e) => Err(EngineError::Kafka(format!(
                "cannot create topic `{topic}` on the embedded cluster: {e}"
            ))),
        }
    }
    /// The librdkafka mock cluster itself, to inject errors, latency or broker outages.
    pub fn cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.cluster
    }
}
