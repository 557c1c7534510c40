//! Avro on the wire: how a datum travels in a Kafka record or TCP frame (`wire.rs`: raw,
//! Confluent framing with a schema id, or a one-record object container), the `avro:` settings
//! (`config.rs`), and the Schema Registry client that registers the schema at start (`registry.rs`).
//! The encoding itself is spate-gen's (`spate_gen::avro`).

pub mod config;
pub mod registry;
pub mod wire;
