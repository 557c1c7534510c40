//! Credentials by name: `spate serve --profile NAME=FILE` lets a request use the server's
//! credentials (here a Redis password from a file) by naming the profile, never the file; and a
//! credential of the server's config goes only to the destinations it was written with: a
//! request that keeps the base config's SASL password but points the brokers at a listener of
//! its own (on loopback, which the allowlist allows) is refused, and the listener is never
//! reached. Real redis-server and HTTP on loopback; every wait is bounded.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use spate_test_support::{eventually, RedisServer};

fn start(a: &str, body: &Value) -> Resp {
    http(
        a,
        "POST",
        "/v1/start",
        &[("Content-Type", "application/json"), ("Authorization", "Bearer t0ken-profiles")],
        body.to_string().as_bytes(),
    )
}

fn canary() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let a = l.local_addr().unwrap().to_string();
    (l, a)
}

fn never_reached(l: &TcpListener) {
    match l.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the request's own listener was reached: {other:?}"),
    }
}

#[test]
fn the_servers_credentials_stay_with_their_destinations() {
    let d = tmpdir("bound");
    std::fs::write(d.join("token"), "t0ken-profiles\n").unwrap();
    std::fs::write(d.join("kafka-pw"), "PLANTED-KAFKA-PASSWORD\n").unwrap();
    let base = d.join("base.yaml");
    std::fs::write(
        &base,
        format!(
            "sink:\n  kafka:\n    brokers: 127.0.0.1:9\n    topic: t\n    sasl:\n      mechanism: PLAIN\n      username: spate\n      password_file: {}\n",
            d.join("kafka-pw").display()
        ),
    )
    .unwrap();
    let p = Proc::serve(&[
        "--config",
        base.to_str().unwrap(),
        "--token-file",
        d.join("token").to_str().unwrap(),
    ]);
    let (l, c) = canary();
    for body in [
        json!({"sink": {"kafka": {"brokers": c}}, "count": 10}),
        json!({"sink": {"kafka": {"brokers": format!("127.0.0.1:9,{c}")}}, "count": 10}),
    ] {
        let r = start(&p.addr, &body);
        eprintln!("{body}: {} {}", r.status, r.body);
        assert_eq!(r.status, 403, "{body}: {}", r.body);
        assert_eq!(r.json()["key"], "sink.kafka.brokers", "{}", r.body);
        assert!(r.error().contains("sasl.password_file"), "names the credential: {}", r.body);
        assert!(!r.body.contains("PLANTED"), "{}", r.body);
    }
    never_reached(&l);
    // The request may bring its own credential to its own broker (refused here only because
    // nothing listens there: the point is that it is not refused for the credential).
    let own = json!({"sink": {"kafka": {"brokers": c, "sasl": {"mechanism": "PLAIN", "username": "me", "password": "mine-own"}}}, "count": 1});
    let r = start(&p.addr, &own);
    assert_ne!(r.status, 403, "a request's own credential: {}", r.body);
}

#[test]
fn a_profile_lends_its_credentials_by_name_only() {
    let redis = RedisServer::start_with_password("PLANTED-REDIS-PASSWORD");
    let d = tmpdir("profiles");
    std::fs::write(d.join("token"), "t0ken-profiles\n").unwrap();
    std::fs::write(d.join("redis-pw"), "PLANTED-REDIS-PASSWORD\n").unwrap();
    let profile = d.join("shared.yaml");
    let redis_at = format!("redis://127.0.0.1:{}", redis.port());
    std::fs::write(
        &profile,
        format!(
            "redis:\n  url: {redis_at}\n  password_file: {}\n  global_rate: 2000\n  limit_key: profiles\n",
            d.join("redis-pw").display()
        ),
    )
    .unwrap();
    let p = Proc::serve(&[
        "--profile",
        &format!("shared={}", profile.display()),
        "--token-file",
        d.join("token").to_str().unwrap(),
    ]);
    let a = p.addr.as_str();

    let r = start(a, &json!({"profile": "shared", "sink": "null", "count": 400}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains("PLANTED"), "{}", r.body);
    let auth = [("Authorization", "Bearer t0ken-profiles")];
    let s = eventually(Duration::from_secs(20), "the profiled run to finish", || {
        let s = http(a, "GET", "/v1/status", &auth, b"").json();
        (s["state"] == "finished").then_some(s)
    });
    assert_eq!(s["summary"]["generated"], 400, "{s}");
    assert!(!s.to_string().contains("PLANTED"), "{s}");
    // Leased from the profile's Redis, with its password (a wrong one would fall back).
    eprintln!("limiter: {}", s["limiter"]);
    assert_eq!(s["limiter"]["mode"], "redis", "{s}");
    assert!(s["limiter"]["redis_calls"].as_u64() > Some(0), "{s}");
    assert_eq!(s["limiter"]["transitions"], 0, "{s}");

    // The profile's password does not follow a Redis of the request's choosing.
    let (l, c) = canary();
    let r = start(
        a,
        &json!({"profile": "shared", "sink": "null", "count": 10, "redis": {"url": format!("redis://{c}")}}),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["key"], "redis.url", "{}", r.body);
    never_reached(&l);
    // Naming the file itself stays refused; an unknown profile is named with the known ones.
    let r = start(
        a,
        &json!({"sink": "null", "redis": {"url": redis_at, "password_file": d.join("redis-pw")}}),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["key"], "redis.password_file", "{}", r.body);
    let r = start(a, &json!({"profile": "nope", "sink": "null", "count": 1}));
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["key"], "profile", "{}", r.body);
    assert!(r.error().contains("shared"), "{}", r.body);
}

#[test]
fn bad_profiles_are_refused_at_start() {
    let d = tmpdir("bad-profiles");
    std::fs::write(d.join("unknown-key.yaml"), "sink: null\nno_such_key: 1\n").unwrap();
    for (arg, says) in [
        ("no-equals-sign".to_string(), "has no `=`"),
        (format!("x={}", d.join("missing.yaml").display()), "--profile x"),
        (format!("x={}", d.join("unknown-key.yaml").display()), "no_such_key"),
        ("bad name=f".to_string(), "not a profile name"),
    ] {
        let o = std::process::Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--profile", &arg])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{arg}: {err}");
        assert!(err.contains("--profile") && err.contains(says), "{arg}: {err}");
    }
}
