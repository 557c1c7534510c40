//! Avro over Kafka (librdkafka's mock cluster) checked with independent decoders: fastavro and
//! confluent-kafka's `AvroDeserializer` (Python, `scripts/py/avro_check.py`), pointed at a
//! small Confluent-compatible registry (`scripts/py/registry_server.py`, the REST endpoints
//! spate calls). `SPATE_PYTHON` names a Python with `scripts/py/requirements.txt` installed
//! (`scripts/test.sh` makes one); default `python3`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;
use serde_json::Value;
use spate::verify::{verify, VerifyOptions};
use spate_engine::sink::kafka::EmbeddedBroker;
use spate_engine::{EngineError, RawConfig, StartOptions};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn python() -> String {
    std::env::var("SPATE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The test registry, killed on drop.
struct Registry {
    child: Child,
    url: String,
}

impl Registry {
    fn start(args: &[&str]) -> Registry {
        let mut child = Command::new(python())
            .arg(root().join("scripts/py/registry_server.py"))
            .args(["--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs scripts/py/registry_server.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port: u16 = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("registry said {line:?}"));
        Registry { child, url: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every record of `topic` (key, value), read until `n` or 10 s.
fn consume(broker: &EmbeddedBroker, topic: &str, n: usize) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", format!("avro-{topic}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let mut out = Vec::with_capacity(n);
    let end = Instant::now() + Duration::from_secs(10);
    while out.len() < n && Instant::now() < end {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            out.push((m.key().map(<[u8]>::to_vec), m.payload().unwrap_or_default().to_vec()));
        }
    }
    out
}

/// Writes records length-prefixed (4-byte big-endian) for avro_check.py.
fn records_file(name: &str, records: impl Iterator<Item = Vec<u8>>) -> PathBuf {
    let p = std::env::temp_dir().join(format!("spate-avro-{}-{name}", std::process::id()));
    let mut f = std::fs::File::create(&p).unwrap();
    for r in records {
        f.write_all(&(r.len() as u32).to_be_bytes()).unwrap();
        f.write_all(&r).unwrap();
    }
    p
}

/// Runs avro_check.py; returns the decoded records (fails the test on any failure).
fn check(args: &[&str]) -> Vec<Value> {
    let out = Command::new(python())
        .arg(root().join("scripts/py/avro_check.py"))
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "avro_check {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        text.lines().last().unwrap_or("")
    );
    let mut v: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary = v.pop().unwrap();
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["decoded"].as_u64(), Some(v.len() as u64));
    v
}

fn start(yaml: &str, broker: &Arc<EmbeddedBroker>) -> Result<spate_engine::Summary, EngineError> {
    let c = RawConfig::from_yaml(yaml).unwrap().validate().unwrap();
    Ok(spate_engine::start(
        c,
        StartOptions { embedded: Some(broker.clone()), ..Default::default() },
    )?
    .join())
}

fn audit(broker: &EmbeddedBroker, topic: &str, expect: u64) {
    let r = verify(&VerifyOptions {
        brokers: broker.bootstrap().into(),
        topic: topic.into(),
        expect: Some(expect),
        idle_timeout: Duration::from_secs(5),
        run_id: None,
        json: false,
        security: Default::default(),
    })
    .unwrap();
    assert!(r.ok() && r.unique == expect, "{r:?}");
}

#[test]
fn confluent_framed_records_decode_with_confluent_kafka_and_the_registry() {
    let reg = Registry::start(&["--basic", "alice:s3cret"]);
    let broker = Arc::new(EmbeddedBroker::start(1).unwrap());
    let n = 20_000;
    let yaml = format!(
        "sink: kafka\nrate: max\ncount: {n}\nthreads: 2\nduration: 60s\nformat: avro\nsources: {{web: 3, payment: 1}}\n\
         kafka: {{topic: t-avro, partitions: 2, key: source}}\n\
         avro: {{key_format: avro, schema_registry: {{url: '{}', username: alice, password: s3cret}}}}\n",
        reg.url
    );
    let s = start(&yaml, &broker).unwrap();
    let t = s.totals;
    assert_eq!(
        (t.generated, t.delivered, t.in_flight, t.failed, t.dead_lettered, t.shed),
        (n, n, 0, 0, 0, 0),
        "{s:?}"
    );
    audit(&broker, "t-avro", n);
    let recs = consume(&broker, "t-avro", n as usize);
    assert_eq!(recs.len(), n as usize);
    // Keys: Confluent-framed Avro strings (the key schema "string" under t-avro-key).
    for (k, _) in &recs {
        let k = k.as_deref().expect("keyed");
        assert_eq!(k[0], 0);
        assert!(&k[6..] == b"web" || &k[6..] == b"payment", "{k:?}");
    }
    let file = records_file("framed", recs.into_iter().map(|r| r.1));
    let decoded = check(&[
        "framed",
        "--registry",
        &reg.url,
        "--basic",
        "alice:s3cret",
        file.to_str().unwrap(),
    ]);
    assert_eq!(decoded.len(), n as usize);
    let mut ids = std::collections::HashSet::new();
    for r in &decoded {
        assert!(ids.insert(r["id"].as_str().unwrap().to_string()));
        match r["source"].as_str().unwrap() {
            "web" => {
                assert!((100..600).contains(&r["status"].as_i64().unwrap()), "{r}");
                assert!(r["latency_ms"].as_f64().unwrap() >= 0.0, "{r}");
                assert!(r["bytes"].as_i64().unwrap() >= 0, "{r}");
            }
            "payment" => assert!(r["amount"].as_f64().unwrap() > 0.0, "{r}"),
            o => panic!("source {o}"),
        }
        let tp = r["traceparent"].as_str().unwrap();
        assert!(tp.len() == 55 && tp.starts_with("00-") && tp.ends_with("-01"), "{tp}");
    }
    let _ = std::fs::remove_file(file);
}

#[test]
fn raw_datums_decode_with_the_shipped_schema_and_topics_per_source_get_a_schema_each() {
    let broker = Arc::new(EmbeddedBroker::start(1).unwrap());
    let s = start("sink: kafka\nrate: max\ncount: 6000\nthreads: 1\nduration: 60s\nformat: avro\nsources: {web: 1, syslog: 1}\nkafka: {topic: 'raw-{source}'}\n", &broker).unwrap();
    assert_eq!((s.totals.generated, s.totals.delivered), (6000, 6000), "{s:?}");
    let mut total = 0;
    for source in ["web", "syslog"] {
        let topic = format!("raw-{source}");
        let recs = consume(&broker, &topic, 6000);
        total += recs.len();
        let file = records_file(source, recs.into_iter().map(|r| r.1));
        let schema = root().join(format!("schemas/avro/{source}.avsc"));
        let decoded = check(&["raw", "--schema", schema.to_str().unwrap(), file.to_str().unwrap()]);
        assert!(decoded.iter().all(|r| r["source"] == source));
        let _ = std::fs::remove_file(file);
    }
    assert_eq!(total, 6000);
}

#[test]
fn registry_errors_stop_the_start_before_any_event() {
    let reg = Registry::start(&["--bearer", "tok", "--incompatible", "locked-value"]);
    let broker = Arc::new(EmbeddedBroker::start(1).unwrap());
    let run = |topic: &str, registry: &str| {
        let yaml =
            format!("sink: kafka\nrate: max\ncount: 100\nformat: avro\nkafka: {{topic: {topic}}}\navro: {{schema_registry: {registry}}}\n");
        match start(&yaml, &broker) {
            Err(EngineError::Registry { message, .. }) => message,
            Err(e) => panic!("{e}"),
            Ok(s) => panic!("started: {s:?}"),
        }
    };
    let bad_token = run("ok", &format!("{{url: '{}', token: nope}}", reg.url));
    assert!(bad_token.contains("refused the credentials (401"), "{bad_token}");
    let incompatible = run("locked", &format!("{{url: '{}', token: tok}}", reg.url));
    assert!(
        incompatible.contains("incompatible") && incompatible.contains("locked-value"),
        "{incompatible}"
    );
    let unknown =
        run("fresh", &format!("{{url: '{}', token: tok, auto_register: false}}", reg.url));
    assert!(unknown.contains("does not have this schema (404"), "{unknown}");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = run("ok", &format!("{{url: 'http://127.0.0.1:{port}', timeout: 2s}}"));
    assert!(down.contains("unreachable"), "{down}");
    // With the right token it registers, and a second run reuses the id.
    let ok = format!(
        "sink: kafka\nrate: max\ncount: 100\nformat: avro\nkafka: {{topic: ok}}\navro: {{schema_registry: {{url: '{}', token: tok}}}}\n",
        reg.url
    );
    for _ in 0..2 {
        let s = start(&ok, &broker).unwrap();
        assert_eq!(s.totals.delivered, 100);
    }
    let recs = consume(&broker, "ok", 200);
    assert_eq!(recs.len(), 200);
    assert!(
        recs.iter().all(|r| r.1[..5] == recs[0].1[..5] && r.1[0] == 0),
        "one schema id for both runs"
    );
}

#[test]
fn container_framed_records_are_whole_object_containers() {
    let broker = Arc::new(EmbeddedBroker::start(1).unwrap());
    let s = start("sink: kafka\nrate: max\ncount: 500\nformat: avro\nsources: {app: 1, payment: 1}\nkafka: {topic: cont}\navro: {framing: container}\n", &broker).unwrap();
    assert_eq!(s.totals.delivered, 500);
    for (_, v) in consume(&broker, "cont", 500) {
        let r = apache_avro::Reader::new(&v[..]).unwrap();
        let vals: Vec<_> = r.map(|x| x.unwrap()).collect();
        assert_eq!(vals.len(), 1);
    }
}

#[test]
fn schema_driven_records_decode_with_fastavro_within_their_hints() {
    let dir = std::env::temp_dir().join(format!("spate-avro-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, codec) in [
        ("orders", "deflate"),
        ("pageviews", "zstandard"),
        ("all_types", "null"),
        // A recursive record, and a union at the top level.
        ("linked", "null"),
        ("top_union", "deflate"),
    ] {
        let out = dir.join(format!("{name}.avro"));
        let yaml = format!(
            "sink: 'file:{}'\nrate: max\ncount: 20000\nthreads: 2\nduration: 60s\nschema: '{}'\navro: {{codec: {codec}}}\n",
            out.display(),
            root().join(format!("schemas/examples/{name}.avsc")).display()
        );
        let c = RawConfig::from_yaml(&yaml).unwrap().validate().unwrap();
        let s = spate_engine::start(c, StartOptions::default()).unwrap().join();
        assert_eq!((s.totals.generated, s.totals.delivered), (20_000, 20_000), "{s:?}");
        let recs = check(&["ocf", out.to_str().unwrap()]);
        assert_eq!(recs.len(), 20_000);
        if name == "orders" {
            for r in &recs {
                assert!((0.1..=10.0).contains(&r["orderunits"].as_f64().unwrap()), "{r}");
                assert!(
                    (10_000..=99_999).contains(&r["address"]["zipcode"].as_i64().unwrap()),
                    "{r}"
                );
                assert!(r["itemid"].as_str().unwrap().starts_with("Item_"), "{r}");
            }
            // `iteration` counts per worker: each worker's orderids are 0, 1, 2, ...
            let mut ids: Vec<i64> = recs.iter().map(|r| r["orderid"].as_i64().unwrap()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!((ids[0], ids.len() <= 20_000), (0, true));
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Schemas with names the specification does not allow end in exit 2 naming the path (the Avro
/// parser used to panic on them: exit 101); an enum without symbols is refused the same way.
#[test]
fn invalid_avro_names_are_refused_naming_the_path() {
    let dir = std::env::temp_dir().join(format!("spate-avro-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (schema, key) in [
        (
            r#"{"type":"record","name":"bad-name","fields":[{"name":"a","type":"int"}]}"#,
            "schema: name",
        ),
        (
            r#"{"type":"record","name":"R","fields":[{"name":"e","type":{"type":"enum","name":"E-x","symbols":["A"]}}]}"#,
            "schema: fields.e.name",
        ),
        (
            r#"{"type":"record","name":"R","fields":[{"name":"f","type":{"type":"fixed","name":"1F","size":4}}]}"#,
            "schema: fields.f.name",
        ),
        (
            r#"{"type":"record","name":"R","fields":[{"name":"e","type":{"type":"enum","name":"E","symbols":[]}}]}"#,
            "schema: fields.e.symbols",
        ),
    ] {
        let f = dir.join("s.avsc");
        std::fs::write(&f, schema).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_spate"))
            .args(["run", "--sink", "null", "--count", "3", "--schema", f.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{schema}: {err}");
        assert!(err.contains(&format!("`{key}`")), "{schema}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
