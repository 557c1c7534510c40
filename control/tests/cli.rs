//! The `spate` binary as a user runs it: exit codes, messages, the summary.

use std::process::{Command, Output};

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
    let o = spate(&["run", "--rate", "max", "--count", "1000", "--threads", "2", "--format", "logfmt"]);
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
    let o = spate(&["run", "--sink", "null", "--rate", "max", "--count", "5000", "--summary-json", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    for k in ["generated", "delivered", "shed", "failed", "dead_lettered", "elapsed_s", "events_per_sec", "bytes"] {
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
        ("kafka: {acks: \"2\"}\n", "`kafka.acks`"),
        ("kafka: {options: {bootstrap.servers: x}}\n", "--brokers"),
        ("rate: [1, 2]\n", "rate"),
        ("tracing: {endpoint: \"https://127.0.0.1:9411\"}\n", "`tracing.endpoint`"),
        ("tracing: {endpoint: \"http://127.0.0.1:9411\", sample: 2}\n", "`tracing.sample`"),
        ("tracing: {endpont: x}\n", "unknown field `endpont`"),
        ("backpressure: spill\n", "`backpressure`"),
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

#[test]
fn kafka_on_the_embedded_broker_then_verify_via_cli() {
    let o = spate(&["run", "--sink", "kafka", "--rate", "max", "--count", "20000", "--topic", "cli-t", "--duration", "60s"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("in-memory"), "must say the broker is in memory: {e}");
    assert!(e.contains("ack latency"), "{e}");
}

#[test]
fn ctrl_c_stops_cleanly_with_a_summary() {
    let child = Command::new(env!("CARGO_BIN_EXE_spate"))
        .args(["run", "--sink", "null", "--rate", "20000", "--duration", "60s", "--summary-json"])
        .arg(tmp("sigint.json"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let start = std::time::Instant::now();
    let o = child.wait_with_output().unwrap();
    assert!(start.elapsed() < std::time::Duration::from_secs(10), "took too long to stop");
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("balanced"), "{e}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(tmp("sigint.json")).unwrap()).unwrap();
    assert!(v["generated"].as_u64().unwrap() > 1000);
    assert_eq!(v["generated"], v["delivered"]);
    assert_eq!(v["in_flight"], 0);
}
