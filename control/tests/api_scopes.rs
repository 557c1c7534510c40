//! Scoped tokens: a read token (`--read-token-file`) reads status and metrics and nothing else;
//! the control token (`--token-file`) does everything; a request with neither is refused.
//! Real HTTP on loopback; every wait is bounded.

mod common;

use common::*;

#[test]
fn a_read_token_reads_and_cannot_control() {
    let d = tmpdir("scopes");
    let (control, read) = (d.join("control"), d.join("read"));
    std::fs::write(&control, "control-token\n").unwrap();
    std::fs::write(&read, "read-token\n").unwrap();
    let p = Proc::serve(&[
        "--token-file",
        control.to_str().unwrap(),
        "--read-token-file",
        read.to_str().unwrap(),
    ]);
    let a = p.addr.as_str();
    let with = |t: &str| format!("Bearer {t}");
    let (rt, ct) = (with("read-token"), with("control-token"));
    let json = ("Content-Type", "application/json");

    for path in ["/v1/status", "/metrics"] {
        assert_eq!(http(a, "GET", path, &[("Authorization", &rt)], b"").status, 200, "{path}");
        assert_eq!(http(a, "GET", path, &[("Authorization", &ct)], b"").status, 200, "{path}");
        assert_eq!(http(a, "GET", path, &[], b"").status, 401, "{path}");
        let wrong = http(a, "GET", path, &[("Authorization", "Bearer nope")], b"");
        assert_eq!(wrong.status, 401, "{path}");
    }
    let body = br#"{"sink": "null", "rate": 10, "count": 5}"#;
    for (method, path, body) in [
        ("POST", "/v1/start", &body[..]),
        ("PUT", "/v1/rate", &br#"{"rate": 5}"#[..]),
        ("POST", "/v1/stop", &b"{}"[..]),
    ] {
        let r = http(a, method, path, &[("Authorization", &rt), json], body);
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
        assert!(r.error().contains("read"), "{}", r.body);
    }
    assert_eq!(
        http(a, "GET", "/v1/status", &[("Authorization", &rt)], b"").json()["state"],
        "idle"
    );
    let r = http(a, "POST", "/v1/start", &[("Authorization", &ct), json], body);
    assert_eq!(r.status, 200, "{}", r.body);
    // The read token never shows in what serve prints.
    drop(p);
}

#[test]
fn the_two_tokens_must_differ() {
    let d = tmpdir("scopes-same");
    let f = d.join("t");
    std::fs::write(&f, "same\n").unwrap();
    let o = run_bounded(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--token-file",
            f.to_str().unwrap(),
            "--read-token-file",
            f.to_str().unwrap(),
        ],
        std::time::Duration::from_secs(20),
    );
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("--read-token"), "{e}");
    assert!(!e.contains("same"), "the token is not printed: {e}");
}
