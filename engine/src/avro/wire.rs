//! How Avro datums travel: settles, before the run starts, what each Kafka record or TCP frame
//! begins with (nothing, the Confluent header with the registry's schema id, or a container
//! header) and whether several sources share a union schema.

use crate::config::RunConfig;
use crate::error::EngineError;
use spate_gen::{EventConfig, EventSpec, Format};

use super::config::Framing;
use super::registry;
use spate_gen::avro::{confluent_header, push_long, Codec};

/// The events to generate, with their Avro framing settled.
pub struct Wire {
    /// The run's events, with the per-source wire prefixes (and container sync) filled in.
    pub events: EventConfig,
    /// Kafka keys as Confluent-framed Avro strings: the key schema's header.
    pub key_header: Option<[u8; 5]>,
    /// Schema ids by source index (one entry: shared), for the summary.
    pub schema_ids: Vec<u32>,
}

/// Settles the framing of `config`'s events; asks the registry if one is configured. Any
/// registry error ends the start here, before a single event is generated.
pub fn prepare(config: &RunConfig) -> Result<Wire, EngineError> {
    let mut events = config.events.clone();
    let none = |events| Ok(Wire { events, key_header: None, schema_ids: Vec::new() });
    if events.format != Format::Avro {
        return none(events);
    }
    let avro = &config.avro;
    let kafka = config.sink.is_kafka();
    // Subjects are named after the topic (the Kafka sink's, `spate` for the others).
    let template = config.sink.kafka().map_or("spate", |k| k.topic.as_str());
    let topics: Vec<String> =
        events.sources.iter().map(|(s, _)| template.replace("{source}", s)).collect();
    // Sources with topics of their own get a record schema each; a shared topic gets the union.
    events.avro_records_apart =
        kafka && topics.len() > 1 && topics.iter().skip(1).all(|t| *t != topics[0]);
    let apart = events.avro_records_apart;
    let schemas_needed = if apart { topics.len() } else { 1 };
    match avro.framing {
        Framing::Raw => none(events),
        Framing::Container => {
            let spec = EventSpec::build(&events)?;
            let sync = random_sync();
            for i in 0..schemas_needed {
                let schema = if apart { spec.avro_record(i) } else { spec.avro_schema() }
                    .expect("avro has schemas");
                let (_, mut header) =
                    spate_gen::avro::ocf::OcfWriter::new(schema, Codec::Null, sync)
                        .map_err(EngineError::AvroContainer)?;
                push_long(&mut header, 1);
                events.wire_prefix.push(header);
            }
            events.container_sync = Some(sync);
            none(events)
        }
        Framing::Confluent => {
            let ids = match (&avro.registry, avro.schema_id) {
                (_, Some(id)) => vec![id],
                (Some(reg), None) => {
                    let spec = EventSpec::build(&events)?;
                    let mut ids = Vec::with_capacity(schemas_needed);
                    for (i, topic) in topics.iter().enumerate().take(schemas_needed) {
                        let schema = if apart { spec.avro_record(i) } else { spec.avro_schema() }
                            .expect("avro has schemas");
                        let name = (apart || topics.len() == 1)
                            .then(|| format!("spate.{}", events.sources[i].0));
                        let subject =
                            registry::subject(reg.strategy, topic, name.as_deref(), false)
                                .map_err(|m| EngineError::Registry {
                                    url: reg.url.clone(),
                                    message: m,
                                })?;
                        ids.push(registry::schema_id(reg, &subject, schema)?);
                    }
                    ids
                }
                (None, None) => {
                    unreachable!("validated: confluent framing has a schema id or a registry")
                }
            };
            let key_header = match (&avro.registry, avro.avro_keys) {
                (Some(reg), true) => {
                    let subject = registry::subject(
                        super::config::SubjectStrategy::Topic,
                        &topics[0],
                        None,
                        true,
                    )
                    .expect("the topic strategy always names a subject");
                    Some(confluent_header(registry::schema_id(reg, &subject, "\"string\"")?))
                }
                _ => None,
            };
            events.wire_prefix = ids.iter().map(|&id| confluent_header(id).to_vec()).collect();
            Ok(Wire { events, key_header, schema_ids: ids })
        }
    }
}

/// A container sync marker: random per run, so it cannot be guessed into the data.
fn random_sync() -> [u8; 16] {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let a = spate_core::rng::splitmix64(now ^ u64::from(std::process::id()));
    let b = spate_core::rng::splitmix64(a ^ 0x5bd1_e995);
    let mut s = [0u8; 16];
    s[..8].copy_from_slice(&a.to_le_bytes());
    s[8..].copy_from_slice(&b.to_le_bytes());
    s
}
