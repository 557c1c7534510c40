//! The end-to-end verifier: consumes a topic with partitions assigned directly (no consumer
//! group: faster to start and works on brokers whose group support is partial) and audits it.
//! Every event must parse (simd-json, for JSON payloads), and per (run, worker) the sequence
//! numbers must have no gaps and no duplicates. The event id comes from the `spate-id` header
//! (every format) or, failing that, the JSON `id` field.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use spate_engine::sink::kafka::security::{self, ErrorTrap};
use spate_engine::EngineError;

pub struct VerifyOptions {
    pub brokers: String,
    pub topic: String,
    pub expect: Option<u64>,
    /// Stop after this long without a new record (once caught up).
    pub idle_timeout: Duration,
    pub run_id: Option<String>,
    pub json: bool,
    /// TLS / SASL, as for the run that produced the topic.
    pub security: spate_engine::sink::kafka::security::Security,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct VerifyReport {
    pub topic: String,
    pub partitions: usize,
    pub records: u64,
    pub unique: u64,
    pub missing: u64,
    pub duplicated: u64,
    pub malformed: u64,
    /// (run, worker) streams seen.
    pub streams: usize,
    /// Records the broker had already deleted before we read (log start offsets above 0).
    pub trimmed_before_read: i64,
    pub expected: Option<u64>,
    pub elapsed_s: f64,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.missing == 0 && self.duplicated == 0 && self.malformed == 0 && self.records > 0
    }
}

/// Sequence numbers seen in one (run, worker) stream: a growable bitset.
#[derive(Default)]
struct SeqSet {
    bits: Vec<u64>,
    distinct: u64,
    max: Option<u64>,
}

impl SeqSet {
    /// Returns false if `seq` was already present.
    fn insert(&mut self, seq: u64) -> bool {
        let (w, b) = ((seq / 64) as usize, seq % 64);
        if w >= self.bits.len() {
            self.bits.resize(w + 1, 0);
        }
        let m = 1u64 << b;
        if self.bits[w] & m != 0 {
            return false;
        }
        self.bits[w] |= m;
        self.distinct += 1;
        self.max = Some(self.max.map_or(seq, |x| x.max(seq)));
        true
    }
    fn gaps(&self) -> u64 {
        self.max.map_or(0, |m| m + 1 - self.distinct)
    }
}

/// Parses `run-worker-seq`.
pub fn parse_id(id: &[u8]) -> Option<(&[u8], u16, u64)> {
    let s = std::str::from_utf8(id).ok()?;
    let mut it = s.rsplitn(3, '-');
    let seq = it.next()?.parse().ok()?;
    let worker = it.next()?.parse().ok()?;
    let run = it.next()?;
    if run.is_empty() {
        return None;
    }
    Some((run.as_bytes(), worker, seq))
}

/// Audits records fed one by one; usable without Kafka (tests feed it directly).
#[derive(Default)]
pub struct Auditor {
    streams: HashMap<(Vec<u8>, u16), SeqSet>,
    pub records: u64,
    pub duplicated: u64,
    pub malformed: u64,
    scratch: Vec<u8>,
    only_run: Option<Vec<u8>>,
    json: bool,
}

impl Auditor {
    pub fn new(json: bool, only_run: Option<&str>) -> Self {
        Self { json, only_run: only_run.map(|r| r.as_bytes().to_vec()), ..Default::default() }
    }

    pub fn feed(&mut self, header_id: Option<&[u8]>, payload: &[u8]) {
        let mut json_id: Option<String> = None;
        if self.json {
            self.scratch.clear();
            self.scratch.extend_from_slice(payload);
            match simd_json::to_borrowed_value(&mut self.scratch) {
                Ok(v) => {
                    use simd_json::prelude::*;
                    json_id = v.get("id").and_then(|i| i.as_str()).map(str::to_string);
                }
                Err(_) => {
                    self.records += 1;
                    self.malformed += 1;
                    return;
                }
            }
        }
        let id = header_id.map(<[u8]>::to_vec).or(json_id.map(String::into_bytes));
        let Some((run, worker, seq)) = id.as_deref().and_then(parse_id) else {
            self.records += 1;
            self.malformed += 1;
            return;
        };
        if self.only_run.as_deref().is_some_and(|r| r != run) {
            return;
        }
        self.records += 1;
        if !self.streams.entry((run.to_vec(), worker)).or_default().insert(seq) {
            self.duplicated += 1;
        }
    }

    pub fn unique(&self) -> u64 {
        self.streams.values().map(|s| s.distinct).sum()
    }

    pub fn report(&self, expect: Option<u64>) -> VerifyReport {
        let unique = self.unique();
        let gaps: u64 = self.streams.values().map(SeqSet::gaps).sum();
        VerifyReport {
            records: self.records,
            unique,
            missing: gaps.max(expect.map_or(0, |e| e.saturating_sub(unique))),
            duplicated: self.duplicated,
            malformed: self.malformed,
            streams: self.streams.len(),
            expected: expect,
            ..Default::default()
        }
    }
}

/// Audits the rows of a PostgreSQL sink's table like [`verify`] audits a topic: every row's
/// `id` column parsed (and equal to its body's `id`, in the JSONB layout), gaps, duplicates and malformed rows
/// counted. The rows are streamed with `COPY ... TO STDOUT`.
pub fn verify_postgres(
    target: &spate_engine::sink::postgres::PgConfig,
    expect: Option<u64>,
    run_id: Option<&str>,
) -> Result<VerifyReport, EngineError> {
    use std::io::BufRead;
    let started = std::time::Instant::now();
    let fail = |what: String| {
        EngineError::Config(spate_engine::ConfigError::new(
            "--postgres",
            what,
            "check the URL, the table and the permissions",
        ))
    };
    let mut pc: postgres::Config = target.url.parse().map_err(|e| fail(format!("{e}")))?;
    pc.connect_timeout(std::time::Duration::from_secs(10));
    let mut c = pc
        .connect(postgres::NoTls)
        .map_err(|e| fail(format!("cannot connect to {}: {e}", target.display())))?;
    // The JSONB layout's body must agree with the id column; the typed layout has only the id.
    let (schema, name) =
        target.table.split_once('.').map_or((None, target.table.as_str()), |(s, n)| (Some(s), n));
    let has_body = c
        .query_opt(
            "SELECT 1 FROM information_schema.columns WHERE table_name = $1 AND table_schema = coalesce($2, current_schema()) \
             AND column_name = 'body'",
            &[&name, &schema],
        )
        .map_err(|e| fail(format!("cannot read the columns of {}: {e}", target.table)))?
        .is_some();
    let agrees = if has_body { "(body->>'id') IS NOT DISTINCT FROM id" } else { "true" };
    let sql = format!("COPY (SELECT id, {agrees} FROM {}) TO STDOUT", target.table);
    let reader =
        c.copy_out(sql.as_str()).map_err(|e| fail(format!("cannot read {}: {e}", target.table)))?;
    let mut audit = Auditor::new(false, run_id);
    for line in std::io::BufReader::new(reader).split(b'\n') {
        let line = line.map_err(|e| fail(format!("reading {}: {e}", target.table)))?;
        match line.split(|&b| b == b'\t').collect::<Vec<_>>()[..] {
            [id, b"t"] => audit.feed(Some(id), b""),
            _ => {
                audit.records += 1;
                audit.malformed += 1;
            }
        }
    }
    let mut r = audit.report(expect);
    r.elapsed_s = started.elapsed().as_secs_f64();
    Ok(r)
}

pub fn verify(o: &VerifyOptions) -> Result<VerifyReport, EngineError> {
    let started = Instant::now();
    let k = |e: rdkafka::error::KafkaError| EngineError::Kafka(e.to_string());
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &o.brokers)
        .set("group.id", "spate-verify")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest");
    o.security.apply(&mut cc);
    security::log_failures(&mut cc);
    let consumer: BaseConsumer<ErrorTrap> =
        cc.create_with_context(ErrorTrap::default()).map_err(k)?;
    let serve = || {
        let _ = consumer.poll(Duration::ZERO);
    };
    let last = || consumer.context().take();
    // A `{source}` topic (one topic per source) is every topic of the cluster the pattern
    // matches: the run's events are audited together, whichever topic each went to.
    let pattern = o.topic.split_once("{source}");
    let md = security::await_metadata(
        consumer.client(),
        &cc,
        if pattern.is_some() { None } else { Some(&o.topic) },
        Duration::from_secs(10),
        &o.security,
        &o.brokers,
        &serve,
        &last,
    )?
    .ok_or_else(|| {
        EngineError::Kafka(format!(
            "no metadata for topic `{}` from {} within 10 s",
            o.topic, o.brokers
        ))
    })?;
    let matches = |name: &str| match pattern {
        Some((pre, post)) => {
            name.len() > pre.len() + post.len() && name.starts_with(pre) && name.ends_with(post)
        }
        None => name == o.topic,
    };
    let mut tpl = TopicPartitionList::new();
    let (mut trimmed, mut partitions) = (0, 0);
    for t in md.topics().iter().filter(|t| matches(t.name())) {
        for p in t.partitions() {
            let (low, _high) =
                consumer.fetch_watermarks(t.name(), p.id(), Duration::from_secs(10)).map_err(k)?;
            trimmed += low.max(0);
            tpl.add_partition_offset(t.name(), p.id(), Offset::Beginning).map_err(k)?;
            partitions += 1;
        }
    }
    if partitions == 0 {
        return Err(EngineError::Kafka(format!(
            "topic `{}` has no partitions (does it exist?)",
            o.topic
        )));
    }
    consumer.assign(&tpl).map_err(k)?;
    let mut audit = Auditor::new(o.json, o.run_id.as_deref());
    let mut last_record = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                last_record = Instant::now();
                let hid = m
                    .headers()
                    .and_then(|h| h.iter().find(|h| h.key == "spate-id").and_then(|h| h.value));
                audit.feed(hid, m.payload().unwrap_or_default());
                if o.expect.is_some_and(|e| audit.unique() >= e && audit.duplicated == 0) {
                    // Read a little longer to catch duplicates arriving behind the last one.
                    let grace = Instant::now() + Duration::from_millis(500);
                    while Instant::now() < grace {
                        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                            let hid = m.headers().and_then(|h| {
                                h.iter().find(|h| h.key == "spate-id").and_then(|h| h.value)
                            });
                            audit.feed(hid, m.payload().unwrap_or_default());
                        }
                    }
                    break;
                }
            }
            Some(Err(e)) => spate_core::rate_log::warn("verify_consume", &format!("verify: {e}")),
            None => {
                if last_record.elapsed() >= o.idle_timeout {
                    break;
                }
            }
        }
    }
    let mut r = audit.report(o.expect);
    r.topic = o.topic.clone();
    r.partitions = partitions;
    r.trimmed_before_read = trimmed;
    r.elapsed_s = started.elapsed().as_secs_f64();
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse() {
        assert_eq!(parse_id(b"00ff-3-42"), Some((&b"00ff"[..], 3, 42)));
        assert_eq!(parse_id(b"garbage"), None);
        assert_eq!(parse_id(b"-1-2"), None);
    }

    #[test]
    fn finds_gaps_duplicates_and_malformed() {
        let mut a = Auditor::new(true, None);
        for seq in [0u64, 1, 2, 4, 4] {
            a.feed(None, format!("{{\"id\":\"aa-0-{seq}\"}}").as_bytes());
        }
        a.feed(None, b"{not json");
        a.feed(Some(b"aa-1-0"), b"{}");
        let r = a.report(None);
        assert_eq!((r.records, r.unique, r.missing, r.duplicated, r.malformed), (7, 5, 1, 1, 1));
        assert_eq!(a.report(Some(10)).missing, 5);
    }
}
