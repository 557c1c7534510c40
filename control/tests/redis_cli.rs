//! `spate run --redis ...` as users run it: several processes sharing one global rate through a
//! real `redis-server` (started on a free loopback port, killed on drop), and secrets kept out of
//! every message. Figures are printed (`-- --nocapture`).

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

use spate_test_support::RedisServer;

fn spate(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spate"));
    c.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("spate-redis-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn three_processes_share_a_global_rate() {
    let redis = RedisServer::start();
    let url = redis.url();
    let summaries: Vec<_> = (0..3).map(|i| tmp(&format!("summary-{i}.json"))).collect();
    let children: Vec<_> = summaries
        .iter()
        .map(|p| {
            let p = p.to_str().unwrap();
            spate(&[
                "run",
                "--sink",
                "null",
                "--redis",
                &url,
                "--global-rate",
                "30000",
                "--limit-key",
                "k",
                "--duration",
                "10s",
                "--summary-json",
                p,
            ])
            .spawn()
            .unwrap()
        })
        .collect();
    let mut generated = Vec::new();
    for (child, path) in children.into_iter().zip(&summaries) {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert!(v["error"].is_null(), "{v}");
        assert_eq!(v["rate"], "30000/s", "the global rate is reported");
        generated.push(v["generated"].as_u64().unwrap());
    }
    let sum: u64 = generated.iter().sum();
    eprintln!("3 processes, 30000/s global for 10 s: {generated:?} = {sum} ({:+.2} % of 300000)", (sum as f64 / 300_000.0 - 1.0) * 100.0);
    assert!((sum as f64 - 300_000.0).abs() <= 3_000.0, "aggregate {sum} not within 1 % of 300000");
}

#[test]
fn secrets_and_bad_input_are_reported_safely() {
    // TLS is not built in: a clear config error that does not echo the password.
    let o = spate(&[
        "run",
        "--sink",
        "null",
        "--redis",
        "rediss://user:hunter2@127.0.0.1:1",
        "--global-rate",
        "10",
        "--limit-key",
        "k",
        "--duration",
        "1s",
    ])
    .output()
    .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("redis.url") && err.contains("TLS") && !err.contains("hunter2"), "{err}");

    let o = spate(&[
        "run",
        "--sink",
        "null",
        "--redis",
        "redis://127.0.0.1:1",
        "--global-rate",
        "10",
        "--limit-key",
        "bad key}",
        "--duration",
        "1s",
    ])
    .output()
    .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("redis.limit_key"), "{err}");

    // Redis unreachable (a port nobody listens on): the run goes on at the fallback rate and
    // nothing prints the password.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("redis://user:hunter2@127.0.0.1:{port}");
    let summary = tmp("fallback.json");
    let o = spate(&[
        "run",
        "--sink",
        "null",
        "--redis",
        &url,
        "--global-rate",
        "1000",
        "--limit-key",
        "k",
        "--fallback-rate",
        "500",
        "--duration",
        "2s",
        "--summary-json",
        summary.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let n = v["generated"].as_u64().unwrap();
    eprintln!("redis unreachable, fallback 500/s for 2 s: {n} events");
    assert!((700..=1_100).contains(&n), "{n} events at a 500/s fallback for 2 s");
}
