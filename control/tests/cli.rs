//! The `spate` binary as a user runs it: exit codes, messages, the summary, and `spate verify`
//! against `spate broker`.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use spate_test_support::eventually;

fn spate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spate")).args(args).output().expect("spawn spate")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("spate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn run_to_stdout_prints_events_and_summary() {
    let o =
        spate(&["run", "--rate", "max", "--count", "1000", "--threads", "2", "--format", "logfmt"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    assert_eq!(out.lines().count(), 1000);
    let err = stderr(&o);
    assert!(err.contains("generated") && err.contains("1000"), "{err}");
    assert!(err.contains("balanced"), "{err}");
}

#[test]
fn summary_json_has_the_fields() {
    let p = tmp("summary.json");
    let o = spate(&[
        "run",
        "--sink",
        "null",
        "--rate",
        "max",
        "--count",
        "5000",
        "--summary-json",
        p.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    for k in [
        "generated",
        "delivered",
        "shed",
        "failed",
        "dead_lettered",
        "elapsed_s",
        "events_per_sec",
        "bytes",
    ] {
        assert!(v.get(k).is_some(), "missing {k} in {v}");
    }
    assert_eq!(v["generated"], 5000);
    assert_eq!(v["delivered"], 5000);
}

#[test]
fn bad_configs_name_the_key_and_exit_2() {
    let cases: &[(&str, &str)] = &[
        ("rate: 0\n", "`rate`"),
        ("rate: 10\nratee: 1\n", "unknown field `ratee`"),
        ("threads: 0\n", "`threads`"),
        ("format: xml\n", "`format`"),
        ("sources: {web: 1, nosuch: 2}\n", "nosuch"),
        ("sink: {kafka: {acks: \"2\"}}\n", "`sink.kafka.acks`"),
        ("sink: {kafka: {options: {bootstrap.servers: x}}}\n", "--brokers"),
        ("kafka: {topik: x}\n", "`kafka.topik`"),
        ("sink: {kafka: {message_timeout_ms: 0}}\n", "`sink.kafka.message_timeout_ms`"),
        ("sink: {kafka: {breaker: {window: 0}}}\n", "`sink.kafka.breaker.window`"),
        ("rate: [1, 2]\n", "rate"),
        ("tracing: {endpoint: \"https://127.0.0.1:9411\"}\n", "`tracing.endpoint`"),
        ("tracing: {endpoint: \"http://127.0.0.1:9411\", sample: 2}\n", "`tracing.sample`"),
        ("tracing: {endpont: x}\n", "unknown field `endpont`"),
        ("backpressure: spill\n", "`backpressure`"),
        ("rate: -5\n", "events per second as a whole number"),
        ("rate: 1.5\n", "events per second as a whole number"),
        ("burst: 99999999999\n", "`burst`"),
        ("threads: 0\n", "1 to 1024"),
        ("sink: kafka\nkafka: {options: {foo.bar: \"1\"}}\n", "`sink.kafka.options.foo.bar`"),
        ("drain_timeout: 2h\n", "`drain_timeout`"),
        ("catch_up: soon\n", "`catch_up`"),
    ];
    for (yaml, want) in cases {
        let p = tmp("bad.yaml");
        std::fs::write(&p, yaml).unwrap();
        let o = spate(&["check-config", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{yaml}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(want), "{yaml}: expected {want} in {e}");
        assert!(e.contains("fix:"), "{yaml}: no fix in {e}");
        assert_eq!(e.trim().lines().count(), 1, "one message: {e}");
        // `run` refuses the same file the same way, and starts nothing.
        let o = spate(&["run", "--config", p.to_str().unwrap(), "--count", "10"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn missing_config_file_and_bad_flags() {
    let o = spate(&["run", "--config", "/nonexistent/spate.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));
    let o = spate(&["run", "--rate", "0", "--count", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("rate of 0"), "{}", stderr(&o));
    let o = spate(&["run", "--source", "web=lots"]);
    assert_eq!(o.status.code(), Some(2));
    let o = spate(&["run", "--kafka-opt", "novalue", "--sink", "kafka"]);
    assert_eq!(o.status.code(), Some(2));
    let o = spate(&["run", "--trace-endpoint", "zipkin:9411", "--count", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("tracing.endpoint"), "{}", stderr(&o));
}

#[test]
fn check_config_accepts_a_good_file() {
    let p = tmp("good.yaml");
    std::fs::write(&p, "rate: 5000\nsink: null\nformat: rfc5424\nsources: {web: 70, app: 20, payment: 10}\nkafka: {topic: \"logs.{source}\", compression: zstd}\n").unwrap();
    let o = spate(&["check-config", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `spate broker`: librdkafka's mock cluster on loopback, in its own process; killed on drop.
struct Broker {
    child: Child,
    bootstrap: String,
}

impl Broker {
    fn start(topic: &str, partitions: u32) -> Broker {
        let file = tmp(&format!("bootstrap-{topic}"));
        let _ = std::fs::remove_file(&file);
        let child = Command::new(env!("CARGO_BIN_EXE_spate"))
            .args([
                "broker",
                "--topic",
                topic,
                "--partitions",
                &partitions.to_string(),
                "--bootstrap-file",
            ])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn spate broker");
        // Owned before the wait, so a timeout still kills the process.
        let mut b = Broker { child, bootstrap: String::new() };
        b.bootstrap = eventually(
            Duration::from_secs(30),
            "spate broker to write its bootstrap address",
            || {
                std::fs::read_to_string(&file)
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            },
        );
        b
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn kafka_without_brokers_uses_the_in_memory_cluster() {
    let o = spate(&[
        "run",
        "--sink",
        "kafka",
        "--rate",
        "max",
        "--count",
        "20000",
        "--topic",
        "cli-t",
        "--duration",
        "60s",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("in-memory"), "must say the broker is in memory: {e}");
    // 20,000 events at max rate are all scheduled within the 1 s warm-up: their latency is the
    // warm-up line's, and the start is timed.
    assert!(e.contains("warm-up       p50") && !e.contains("ack latency"), "{e}");
    assert!(e.contains("first ack after"), "{e}");
}

#[test]
fn kafka_to_spate_broker_then_verify_via_cli() {
    let broker = Broker::start("cli-verify", 4);
    let b = broker.bootstrap.as_str();
    let summary = tmp("verify-run.json");
    let o = spate(&[
        "run",
        "--sink",
        "kafka",
        "--brokers",
        b,
        "--topic",
        "cli-verify",
        "--rate",
        "max",
        "--count",
        "20000",
        "--threads",
        "2",
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("in-memory"),
        "--brokers given: no embedded cluster: {}",
        stderr(&o)
    );
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(run["delivered"], 20000, "{run}");
    let run_id = run["run_id"].as_str().unwrap();

    let report = tmp("verify-report.json");
    let o = spate(&[
        "verify",
        "--brokers",
        b,
        "--topic",
        "cli-verify",
        "--expect",
        "20000",
        "--timeout",
        "10s",
        "--report-json",
        report.to_str().unwrap(),
    ]);
    let e = stderr(&o);
    assert!(o.status.success(), "verify exit {:?}: {e}", o.status.code());
    let printed: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|err| panic!("stdout is not the JSON report ({err}): {e}"));
    for (k, want) in [
        ("records", 20000),
        ("unique", 20000),
        ("missing", 0),
        ("duplicated", 0),
        ("malformed", 0),
        ("expected", 20000),
    ] {
        assert_eq!(printed[k], want, "{k} in {printed}");
    }
    assert_eq!(printed["partitions"], 4, "{printed}");
    assert_eq!(printed["streams"], 2, "one stream per worker: {printed}");
    assert!(e.contains("spate: verify: 20000 records, 20000 unique events, 0 missing, 0 duplicated, 0 malformed"), "{e}");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(written, printed, "--report-json holds the printed report");

    // Only this run's events, selected by run id, give the same audit.
    let o = spate(&[
        "verify",
        "--brokers",
        b,
        "--topic",
        "cli-verify",
        "--run-id",
        run_id,
        "--expect",
        "20000",
        "--timeout",
        "10s",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let by_id: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(by_id["unique"], 20000, "{by_id}");

    // Expecting more than was sent: the shortfall is counted as missing and verify fails.
    let o = spate(&[
        "verify",
        "--brokers",
        b,
        "--topic",
        "cli-verify",
        "--expect",
        "20010",
        "--timeout",
        "2s",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let short: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(short["missing"], 10, "{short}");

    // The brokers from a run's config file, in each form it may be written: the tagged sink,
    // `sink: kafka` with the older `kafka:` section, and that section alone.
    for (name, yaml) in [
        ("tagged", format!("sink:\n  kafka: {{brokers: '{b}', topic: cli-verify}}\n")),
        ("shorthand", format!("sink: kafka\nkafka: {{brokers: '{b}', topic: cli-verify}}\n")),
        ("legacy", format!("kafka: {{brokers: '{b}', topic: cli-verify}}\n")),
    ] {
        let cfg = tmp(&format!("verify-{name}.yaml"));
        std::fs::write(&cfg, yaml).unwrap();
        let o = spate(&[
            "verify",
            "--config",
            cfg.to_str().unwrap(),
            "--topic",
            "cli-verify",
            "--run-id",
            run_id,
            "--expect",
            "20000",
            "--timeout",
            "10s",
        ]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    }
}

/// Lines in the file, 0 while it does not exist yet.
fn lines_in(p: &Path) -> u64 {
    std::fs::read(p).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count() as u64)
}

#[test]
fn ctrl_c_stops_cleanly_with_a_summary() {
    // A file sink, so the test can see the run is under way (its handlers are installed before
    // it starts) rather than guess with a sleep.
    let events = tmp("sigint.jsonl");
    let _ = std::fs::remove_file(&events);
    let child = Command::new(env!("CARGO_BIN_EXE_spate"))
        .args(["run", "--rate", "20000", "--duration", "60s", "--sink"])
        .arg(format!("file:{}", events.display()))
        .arg("--summary-json")
        .arg(tmp("sigint.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(30), "more than 1000 events in the sink file", || {
        (lines_in(&events) > 1000).then_some(())
    });
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let start = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(10), "took too long to stop");
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("balanced"), "{e}");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp("sigint.json")).unwrap()).unwrap();
    assert!(v["generated"].as_u64().unwrap() > 1000);
    assert_eq!(v["generated"], v["delivered"]);
    assert_eq!(v["in_flight"], 0);
    assert_eq!(v["delivered"], lines_in(&events), "every delivered event is in the file");
}

#[test]
fn kafka_breaker_changes_are_logged_once_each() {
    // Brokers nobody listens on: nothing is acked, the breaker opens after 1 s and half-opens
    // after its 2 s wait; each change is one line on stderr, not one per failed call.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let brokers = format!("127.0.0.1:{port}");
    let dlq = tmp("breaker-dlq.jsonl");
    let o = spate(&[
        "run",
        "--sink",
        "kafka",
        "--brokers",
        &brokers,
        "--topic",
        "t",
        "--rate",
        "1000",
        "--duration",
        "4s",
        "--drain-timeout",
        "1s",
        "--dlq-file",
        dlq.to_str().unwrap(),
    ]);
    let e = stderr(&o);
    let changes: Vec<&str> = e.lines().filter(|l| l.contains("kafka: circuit breaker")).collect();
    eprintln!("exit {:?}, breaker lines: {changes:#?}", o.status.code());
    assert_eq!(o.status.code(), Some(4), "nothing could be delivered: {e}");
    let opened: Vec<_> = changes
        .iter()
        .filter(|l| l.contains("closed -> open: librdkafka reports all brokers down"))
        .collect();
    assert_eq!(opened.len(), 1, "{changes:?}");
    assert!(changes.iter().any(|l| l.contains("open -> half_open")), "{changes:?}");
}

/// Every YAML block of the README is a config `spate check-config` accepts, with the files and
/// environment variables the block names provided (certificates from the test CA).
#[test]
fn every_yaml_block_of_the_readme_passes_check_config() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                current = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(blocks.len() >= 3, "found {} yaml blocks", blocks.len());
    let dir = tmp("readme");
    spate_test_support::make_certs(&dir, Some("readme-pass"));
    std::fs::copy(dir.join("client-enc.key"), dir.join("client.key")).unwrap();
    for (i, block) in blocks.iter().enumerate() {
        let file = dir.join(format!("readme-{i}.yaml"));
        std::fs::write(&file, block).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_spate"))
            .args(["check-config", file.to_str().unwrap()])
            .current_dir(&dir)
            .env("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
            .env("KAFKA_API_KEY", "key")
            .env("KAFKA_API_SECRET", "secret")
            .env("CLIENT_KEY_PASS", "readme-pass")
            .env("REGISTRY_PASSWORD", "registry-pass")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "README yaml block {i} fails check-config: {}\n{block}",
            stderr(&o)
        );
    }
}

#[test]
fn the_shipped_avro_schemas_are_what_spate_derives() {
    for source in ["web", "app", "payment", "syslog"] {
        let o = Command::new(env!("CARGO_BIN_EXE_spate"))
            .args(["schema", "--source", source])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let derived: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let path = format!("{}/../schemas/avro/{source}.avsc", env!("CARGO_MANIFEST_DIR"));
        let shipped: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            derived, shipped,
            "{path} differs from `spate schema --source {source}`: regenerate it"
        );
    }
    // A schema file that is not Avro: one message naming the key, exit 2.
    let bad = tmp("bad.avsc");
    std::fs::write(
        &bad,
        "{\"type\": \"record\", \"name\": \"r\", \"fields\": [{\"name\": \"x\"}]}",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_spate"))
        .args(["run", "--schema", bad.to_str().unwrap(), "--sink", "null", "--count", "1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("schema"), "{}", stderr(&o));
}

/// A schema registry that is not there, or refuses spate's credentials, is a setting to fix:
/// exit 2 with the registry's words, before any event is generated.
#[test]
fn a_registry_that_refuses_or_is_absent_exits_2() {
    use std::io::{Read, Write};
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let refusing = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = refusing.local_addr().unwrap();
    std::thread::spawn(move || {
        // Answers every request 401, as a registry does to a wrong password.
        for c in refusing.incoming().take(8) {
            let Ok(mut c) = c else { continue };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let body = r#"{"error_code":40101,"message":"Unauthorized"}"#;
            let _ = write!(
                c,
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    for (what, url) in
        [("absent", format!("http://{closed}")), ("refusing", format!("http://{addr}"))]
    {
        let o = spate(&[
            "run",
            "--sink",
            "kafka",
            "--format",
            "avro",
            "--schema-registry",
            &url,
            "--count",
            "10",
        ]);
        assert_eq!(o.status.code(), Some(2), "{what}: {}", stderr(&o));
        assert!(stderr(&o).contains("avro.schema_registry"), "{what}: {}", stderr(&o));
    }
}

/// A run that wrote a topic per source (`--topic "cv.{source}"`) is verified with the same
/// pattern: every matching topic is read, and the events are audited together.
#[test]
fn verify_reads_every_topic_of_a_source_pattern() {
    let broker = Broker::start("cv.web,cv.app,cvx.web", 2);
    let b = broker.bootstrap.as_str();
    let run = spate(&[
        "run",
        "--sink",
        "kafka",
        "--brokers",
        b,
        "--topic",
        "cv.{source}",
        "--source",
        "web=1,app=1",
        "--count",
        "4000",
        "--rate",
        "max",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let o = spate(&[
        "verify",
        "--brokers",
        b,
        "--topic",
        "cv.{source}",
        "--expect",
        "4000",
        "--timeout",
        "10s",
    ]);
    assert!(o.status.success(), "verify exit {:?}: {}", o.status.code(), stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((r["unique"].as_u64(), r["missing"].as_u64()), (Some(4000), Some(0)), "{r}");
    assert_eq!(r["partitions"], 4, "two topics of two partitions, not cvx.web: {r}");
}
