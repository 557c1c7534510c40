//! Where a run started over HTTP may connect: every setting that names a host, set in a request
//! to a listener the server does not allow, is refused with 403 naming the key, and that listener
//! is never reached (so nothing, secrets included, is sent there). Allowed rules and the base
//! config's own destinations still start. Loopback only: 127.0.0.1 is the forbidden host, the
//! allowed ones are 127.0.0.2 (a rule) and the base config's exact address.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use spate_test_support::eventually;

#[test]
fn a_request_reaches_only_allowed_destinations() {
    let canary = TcpListener::bind("127.0.0.1:0").unwrap();
    canary.set_nonblocking(true).unwrap();
    let c = canary.local_addr().unwrap();
    let token = tmpdir("dest-token").join("token");
    std::fs::write(&token, "planted-serve-token\n").unwrap();
    let p =
        Proc::serve(&["--allow-destination", "127.0.0.2", "--token-file", token.to_str().unwrap()]);
    let a = p.addr.as_str();
    let auth = [("Authorization", "Bearer planted-serve-token")];
    let start = |body: &Value| {
        http(
            a,
            "POST",
            "/v1/start",
            &[("Content-Type", "application/json"), auth[0]],
            body.to_string().as_bytes(),
        )
    };
    let bodies = [
        (json!({"sink": {"kafka": {"brokers": c.to_string()}}}), "sink.kafka.brokers"),
        (
            json!({"sink": {"kafka": {"brokers": format!("127.0.0.2:9092,{c}")}}}),
            "sink.kafka.brokers",
        ),
        (json!({"sink": "kafka", "kafka": {"brokers": c.to_string()}}), "sink.kafka.brokers"),
        (json!({"sink": {"tcp": {"address": c.to_string()}}}), "sink.tcp.address"),
        (json!({"sink": format!("postgres://u:pw@{c}/db?table=t")}), "sink.postgres.url"),
        (
            json!({"sink": {"postgres": {"url": format!("postgres://u@127.0.0.2:{}/db?host=127.0.0.1", c.port()), "table": "t"}}}),
            "sink.postgres.url",
        ),
        (
            json!({"sink": {"postgres": {"url": format!("postgres://u@127.0.0.2:{}/db?hostaddr=127.0.0.1", c.port()), "table": "t"}}}),
            "sink.postgres.url",
        ),
        (
            json!({"format": "avro", "sink": "null", "avro": {"schema_registry": {"url": format!("http://{c}"), "username": "u", "password": "planted-password"}}}),
            "avro.schema_registry.url",
        ),
        (
            json!({"sink": "null", "redis": {"url": format!("redis://{c}"), "global_rate": 100, "limit_key": "k"}}),
            "redis.url",
        ),
        (
            json!({"sink": "null", "tracing": {"endpoint": format!("http://{c}/v1/traces")}}),
            "tracing.endpoint",
        ),
        (
            json!({"sink": {"kafka": {"brokers": "127.0.0.2:9092", "options": {"sasl.oauthbearer.token.endpoint.url": format!("http://{c}")}}}}),
            "sink.kafka.options.sasl.oauthbearer.token.endpoint.url",
        ),
    ];
    for (body, key) in &bodies {
        let r = start(body);
        eprintln!("{key}: {} {}", r.status, r.error());
        assert_eq!(r.status, 403, "{body}: {}", r.body);
        assert_eq!(r.json()["key"], *key, "{body}: {}", r.body);
        assert!(!r.body.contains("planted"), "{}", r.body);
    }
    match canary.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the forbidden listener was reached: {other:?}"),
    }

    // An allowed rule: a TCP collector on 127.0.0.2 gets the run's events.
    let allowed = TcpListener::bind("127.0.0.2:0").unwrap();
    let body = json!({"sink": {"tcp": {"address": allowed.local_addr().unwrap().to_string()}}, "rate": 100, "count": 50, "threads": 1, "pin": false});
    let r = start(&body);
    assert_eq!(r.status, 200, "{}", r.body);
    let (mut s, _) = allowed.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.iter().filter(|b| **b == b'\n').count() < 50 && Instant::now() < deadline {
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    assert_eq!(got.iter().filter(|b| **b == b'\n').count(), 50);
    eventually(Duration::from_secs(10), "the run to finish", || {
        let s = http(a, "GET", "/v1/status", &auth, b"").json();
        (s["state"] == "finished").then_some(())
    });
}

#[test]
fn the_base_configs_destinations_are_allowed_exactly() {
    let base_sink = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = base_sink.local_addr().unwrap();
    let dir = tmpdir("dest-base");
    let cfg = dir.join("base.yaml");
    std::fs::write(&cfg, format!("sink: {{tcp: {{address: '{b}'}}}}\nthreads: 1\npin: false\n"))
        .unwrap();
    // No loopback rule: only the base config's address is allowed.
    let p = Proc::serve(&["--config", cfg.to_str().unwrap(), "--allow-destination", "10.0.0.0/8"]);
    let a = p.addr.as_str();
    let other = format!("127.0.0.1:{}", if b.port() == 65535 { 1 } else { b.port() + 1 });
    let r = post(a, "/v1/start", &json!({"sink": {"tcp": {"address": other}}}).to_string());
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["key"], "sink.tcp.address");
    assert!(r.error().contains("--allow-destination"), "{}", r.body);
    let r = post(a, "/v1/start", &json!({"rate": 100, "count": 20}).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let (_s, _) = base_sink.accept().unwrap();
    eventually(Duration::from_secs(10), "the run to finish", || {
        (get(a, "/v1/status").json()["state"] == "finished").then_some(())
    });

    // A rule that cannot be read stops serve at start, naming the flag.
    let o = run_bounded(
        &["serve", "--listen", "127.0.0.1:0", "--allow-destination", "10.0.0.0/40"],
        Duration::from_secs(20),
    );
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("--allow-destination"), "{e}");
}
