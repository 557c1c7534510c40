use std::time::Duration;

use proptest::prelude::*;
use serde_yaml_ng::Value;

use super::*;
use crate::sink::config::{RawSink, SinkConfig};
use spate_limit::Rate;

fn valid(yaml: &str) -> RunConfig {
    RawConfig::from_yaml(yaml)
        .unwrap_or_else(|e| panic!("{yaml}: {e}"))
        .validate()
        .unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

fn error(yaml: &str) -> ConfigError {
    match RawConfig::from_yaml(yaml) {
        Err(e) => e,
        Ok(raw) => raw.validate().expect_err(yaml),
    }
}

#[test]
fn unknown_keys_are_named() {
    let e = error("rate: 10\nratee: 5\n");
    assert!(e.message.contains("unknown field `ratee`"), "{e}");
    let e = error("sink: {kafka: {topik: x}}");
    assert_eq!(e.key, "sink.kafka.topik");
    // The deprecated top-level section is read as the sink's, and named so.
    let e = error("sink: kafka\nkafka:\n  topik: x\n");
    assert_eq!(e.key, "sink.kafka.topik");
}

#[test]
fn yaml_null_sink_means_the_null_sink() {
    assert_eq!(valid("sink: null\n").sink, SinkConfig::Null);
    assert_eq!(valid("rate: 5\n").sink, SinkConfig::Stdout);
}

#[test]
fn rates() {
    assert_eq!(parse_rate(&RawRate::Text("max".into()), "rate").unwrap(), Rate::Max);
    assert_eq!(parse_rate(&RawRate::Num(5), "rate").unwrap().per_sec(), Some(5));
    assert!(parse_rate(&RawRate::Num(0), "rate").unwrap_err().message.contains("rate of 0"));
    assert!(parse_rate(&RawRate::Num(10_000_001), "rate").is_err());
    assert!(parse_rate(&RawRate::Text("fast".into()), "rate").is_err());
}

#[test]
fn durations_are_typed() {
    let c = valid("duration: 250ms\ndrain_timeout: 5m\ncatch_up: 0s\nwarmup: 2");
    assert_eq!(c.duration, Some(Duration::from_millis(250)));
    assert_eq!(c.drain_timeout, Duration::from_secs(300));
    assert_eq!(c.catch_up, Duration::ZERO);
    assert_eq!(c.warmup, Duration::from_secs(2));
    assert_eq!(error("duration: 0s").key, "duration");
    assert_eq!(error("duration: 5 parsecs").key, "duration");
    assert_eq!(error("drain_timeout: 2h").key, "drain_timeout");
}

#[test]
fn flags_override_file() {
    let dir = std::env::temp_dir().join(format!("spate-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.yaml");
    std::fs::write(&file, "rate: 10\nformat: logfmt\n").unwrap();
    let mut flags = Flags::default();
    flags.set("--rate", Target::Path(&["rate"]), Some("max".into()));
    let c = RawConfig::load(Some(&file), &flags).unwrap().validate().unwrap();
    assert_eq!(c.rate, Rate::Max);
    assert_eq!(c.events.format, spate_gen::Format::Logfmt);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_values_name_their_key() {
    for (yaml, key) in [
        ("threads: 0", "threads"),
        ("backpressure: drop", "backpressure"),
        ("sink: tcp", "sink"),
        ("format: xml", "format"),
        ("count: 0", "count"),
        ("ring_capacity: 1", "ring_capacity"),
        ("sink: {ftp: {}}", "sink"),
        ("sink: {tcp: {address: nowhere}}", "sink.tcp.address"),
    ] {
        let e = error(yaml);
        assert_eq!(e.key, key, "{yaml}: {e}");
        assert!(e.to_string().contains("fix:"), "{e}");
    }
}

/// Zeros and out-of-range values are refused with their key, never raised to 1 or clamped.
#[test]
fn zero_values_are_refused_not_raised() {
    for (yaml, key) in [
        ("sink: {kafka: {message_timeout_ms: 0}}", "sink.kafka.message_timeout_ms"),
        ("sink: {kafka: {latency_target_ms: 0}}", "sink.kafka.latency_target_ms"),
        ("sink: {kafka: {breaker: {window: 0}}}", "sink.kafka.breaker.window"),
        ("sink: {kafka: {breaker: {min_calls: 0}}}", "sink.kafka.breaker.min_calls"),
        ("sink: {kafka: {breaker: {window: 5, min_calls: 6}}}", "sink.kafka.breaker.min_calls"),
        ("sink: {kafka: {breaker: {half_open_calls: 0}}}", "sink.kafka.breaker.half_open_calls"),
        ("sink: {kafka: {breaker: {open_wait: 0s}}}", "sink.kafka.breaker.open_wait"),
        ("sink: {kafka: {breaker: {slow_call_ms: 0}}}", "sink.kafka.breaker.slow_call"),
        ("sink: {kafka: {retries: 1000}}", "sink.kafka.retries"),
        ("sink: {kafka: {max_inflight_bytes: 1KiB}}", "sink.kafka.max_inflight_bytes"),
        (
            "sink: {postgres: {url: 'postgres://u@h/db', commit_rows: 0}}",
            "sink.postgres.commit_rows",
        ),
    ] {
        assert_eq!(error(yaml).key, key, "{yaml}");
    }
}

#[test]
fn deprecated_forms_still_work_and_say_so() {
    let c = valid("sink: kafka\nkafka: {topic: t, breaker: {open_wait_ms: 500}}");
    let k = c.sink.kafka().unwrap();
    assert_eq!((k.topic.as_str(), k.breaker.open_wait), ("t", Duration::from_millis(500)));
    assert_eq!(c.deprecated.len(), 2, "{:?}", c.deprecated);
    assert!(c.deprecated.iter().any(|d| d.contains("open_wait_ms")), "{:?}", c.deprecated);
}

#[test]
fn sizes_and_paths_are_typed() {
    let c = valid("sink: {kafka: {max_inflight_bytes: 64MiB, dlq_file: /tmp/x.jsonl}}");
    let k = c.sink.kafka().unwrap();
    assert_eq!(k.max_inflight_bytes, 64 << 20);
    assert_eq!(k.dlq_file, std::path::PathBuf::from("/tmp/x.jsonl"));
}

/// A key path and the YAML values a test may put there.
fn settings() -> Vec<(&'static [&'static str], Vec<Value>)> {
    let v = |s: &str| serde_yaml_ng::from_str::<Value>(s).unwrap();
    vec![
        (&["rate"], vec![v("10"), v("max"), v("2500")]),
        (&["duration"], vec![v("1s"), v("5m")]),
        (&["threads"], vec![v("1"), v("2")]),
        (&["format"], vec![v("json"), v("logfmt")]),
        (&["seed"], vec![v("1"), v("42")]),
        (&["sources"], vec![v("{web: 1}"), v("{app: 2, web: 1}")]),
        (&["drain_timeout"], vec![v("0s"), v("3s")]),
        (&["backpressure"], vec![v("block"), v("shed")]),
        (&["sink", "kafka", "topic"], vec![v("a"), v("b")]),
        (&["sink", "kafka", "brokers"], vec![v("'127.0.0.1:1'"), v("'127.0.0.1:2'")]),
        (&["sink", "kafka", "compression"], vec![v("lz4"), v("zstd")]),
        (&["redis", "global_rate"], vec![v("100"), v("200")]),
        (&["redis", "limit_key"], vec![v("a"), v("b")]),
        (&["tracing", "sample"], vec![v("0.5"), v("1")]),
    ]
}

fn tree(pairs: &[(usize, usize)]) -> Value {
    let all = settings();
    let mut t = Value::Mapping(Default::default());
    for &(k, i) in pairs {
        let (path, values) = &all[k];
        set_path(&mut t, path, values[i % values.len()].clone());
    }
    t
}

proptest! {
    /// Flags laid over a file give the same config as the file with those keys set in it.
    #[test]
    fn flags_over_a_file_equal_the_file_with_those_keys(
        file in proptest::collection::vec((0..14usize, 0..3usize), 0..8),
        flags in proptest::collection::vec((0..14usize, 0..3usize), 0..8),
    ) {
        let all = settings();
        let mut f = Flags::default();
        for &(k, i) in &flags {
            let (path, values) = &all[k];
            f.set("--flag", Target::Path(path), Some(values[i % values.len()].clone()));
        }
        let merged = layer::finish(f.apply(tree(&file)).unwrap()).unwrap();
        let mut expected = tree(&file);
        for &(k, i) in &flags {
            let (path, values) = &all[k];
            set_path(&mut expected, path, values[i % values.len()].clone());
        }
        let expected = layer::finish(expected).unwrap();
        prop_assert_eq!(merged, expected);
    }
}

#[test]
fn the_sink_schema_accepts_what_the_shorthands_give() {
    for s in ["stdout", "null", "kafka", "file:x", "tcp://h:1", "postgres://u@h/db?table=t"] {
        let raw =
            RawConfig::from_yaml(&format!("sink: '{s}'")).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert!(!matches!(raw.sink, RawSink::Stdout(_)) || s == "stdout", "{s}");
    }
}
