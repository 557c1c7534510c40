//! What the control plane refuses, over real HTTP on loopback: files outside `--data-dir`, a
//! non-loopback listener without a token, state changes without a JSON/YAML content type or
//! from another origin, foreign `Host` names, oversized or stalled requests, deeply nested
//! configs; and secrets that must never show in what it answers. Every wait is bounded.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use spate_test_support::eventually;

fn post_json(addr: &str, path: &str, body: &Value) -> Resp {
    post(addr, path, &body.to_string())
}

fn port(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap()
}

/// A memory figure of a process in kB (`VmRSS`, `VmHWM`), from /proc.
fn status_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.split(':').next() == Some(field)).unwrap_or_else(|| panic!("no {field} line"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn file_sinks_over_http_stay_under_the_data_dir() {
    let outside = tmpdir("outside");
    let data = tmpdir("data");
    let target = outside.join("passwd2");

    // Without --data-dir no file sink is started over HTTP.
    let p = Proc::serve(&[]);
    let r = post_json(&p.addr, "/v1/start", &serde_json::json!({"sink": format!("file:{}", target.display()), "count": 10}));
    eprintln!("no --data-dir: {} {}", r.status, r.body.trim());
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["key"], "sink.file.path", "{}", r.body);
    assert!(r.error().contains("--data-dir"), "{}", r.body);
    assert!(!target.exists(), "the refused sink created {}", target.display());
    drop(p);

    std::os::unix::fs::symlink(&outside, data.join("out-dir")).unwrap();
    std::fs::write(outside.join("victim"), "keep me\n").unwrap();
    std::os::unix::fs::symlink(outside.join("victim"), data.join("victim-link")).unwrap();
    let p = Proc::serve(&["--data-dir", data.to_str().unwrap()]);
    let a = p.addr.as_str();
    let escape = format!("../{}/passwd2", outside.file_name().unwrap().to_str().unwrap());
    let refused = [
        (serde_json::json!({"sink": format!("file:{}", target.display())}), "sink.file.path"),
        (serde_json::json!({"sink": format!("file:{escape}")}), "sink.file.path"),
        (serde_json::json!({"sink": format!("file:{}/sub/../{escape}", data.display())}), "sink.file.path"),
        (serde_json::json!({"sink": "file:out-dir/passwd2"}), "sink.file.path"),
        (serde_json::json!({"sink": "file:victim-link"}), "sink.file.path"),
        (serde_json::json!({"sink": "kafka", "kafka": {"dlq_file": outside.join("dlq.jsonl")}}), "kafka.dlq_file"),
        (serde_json::json!({"sink": {"kafka": {"dlq_file": outside.join("dlq.jsonl")}}}), "sink.kafka.dlq_file"),
        (serde_json::json!({"sink": format!("postgres://u@127.0.0.1:1/db?table=t&dlq_file={}", outside.join("pg.jsonl").display())}), "sink.postgres.dlq_file"),
        (
            serde_json::json!({"sink": "kafka", "kafka": {"options": {"plugin.library.paths": "/tmp/x.so"}}}),
            "kafka.options.plugin.library.paths",
        ),
    ];
    for (body, key) in &refused {
        let r = post_json(a, "/v1/start", body);
        eprintln!("{body}: {} {}", r.status, r.body.trim());
        assert_eq!(r.status, 403, "{body}: {}", r.body);
        let j = r.json();
        assert_eq!(j["key"], *key, "{body}: {}", r.body);
        assert!(!j["fix"].as_str().unwrap_or("").is_empty(), "{body}: {}", r.body);
        assert_eq!(get(a, "/v1/status").json()["state"], "idle", "{body} must not start a run");
    }
    let left: Vec<_> = std::fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["victim"], "nothing was created outside the data dir");
    assert_eq!(std::fs::read_to_string(outside.join("victim")).unwrap(), "keep me\n");

    // A relative path is taken from the data dir; an absolute one under it is fine too.
    std::fs::create_dir_all(data.join("sub")).unwrap();
    for (sink, file) in
        [("file:events.log".to_string(), data.join("events.log")), (format!("file:{}/sub/x.log", data.display()), data.join("sub/x.log"))]
    {
        let r = post_json(a, "/v1/start", &serde_json::json!({"sink": sink, "rate": "max", "count": 100, "threads": 1, "pin": false}));
        assert_eq!(r.status, 200, "{sink}: {}", r.body);
        let s = eventually(Duration::from_secs(20), "the file run to finish", || {
            let s = get(a, "/v1/status").json();
            (s["state"] == "finished").then_some(s)
        });
        assert_eq!(s["summary"]["delivered"], 100, "{s}");
        let canon = std::fs::canonicalize(&file).unwrap();
        assert_eq!(s["sink"], format!("file:{}", canon.display()), "{s}");
        assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 100);
    }
}

/// Every path-valued setting the config types know, set in a `POST /v1/start` body to a file
/// outside `--data-dir`, is refused with 403 naming its key, and every secret file refused from a
/// request altogether. The list is the config schema's (`walk::marked_keys`): a key added to the
/// config later is in it with no change here. Also through the deprecated `kafka:` section and
/// the `postgres://` shorthand's `dlq_file` parameter.
#[test]
fn every_path_setting_is_confined_through_the_api() {
    use spate_engine::config::walk::{marked_keys, Kind};
    let outside = tmpdir("outside-all");
    let data = tmpdir("data-all");
    let p = Proc::serve(&["--data-dir", data.to_str().unwrap()]);
    let a = p.addr.as_str();
    let target = outside.join("x");
    let mut bodies: Vec<(Value, String)> = Vec::new();
    for (key, kind) in marked_keys() {
        if key.contains('*') || key.contains("[]") || !matches!(kind, Kind::DataPath | Kind::SecretFile) {
            continue;
        }
        let mut body = serde_yaml_ng::Value::Null;
        let path: Vec<&str> = key.split('.').collect();
        spate_engine::config::set_path(&mut body, &path, target.to_string_lossy().as_ref().into());
        bodies.push((serde_json::to_value(&body).unwrap(), key.clone()));
        if let Some(rest) = key.strip_prefix("sink.kafka.") {
            let legacy = serde_json::json!({"sink": "kafka", "kafka": {}});
            let mut legacy: serde_yaml_ng::Value = serde_json::from_value(legacy).unwrap();
            let path: Vec<&str> = std::iter::once("kafka").chain(rest.split('.')).collect();
            spate_engine::config::set_path(&mut legacy, &path, target.to_string_lossy().as_ref().into());
            bodies.push((serde_json::to_value(&legacy).unwrap(), format!("kafka.{rest}")));
        }
    }
    bodies.push((
        serde_json::json!({"sink": format!("postgres://u@127.0.0.1:1/db?table=t&dlq_file={}", target.display())}),
        "sink.postgres.dlq_file".into(),
    ));
    assert!(bodies.len() >= 20, "the schema marks fewer keys than expected: {bodies:?}");
    for (body, key) in &bodies {
        let r = post_json(a, "/v1/start", body);
        eprintln!("{key}: {} {}", r.status, r.error());
        assert_eq!(r.status, 403, "{body}: {}", r.body);
        // The audit section is the server's as a whole.
        let named = if key.starts_with("audit.") { "audit" } else { key.as_str() };
        assert_eq!(r.json()["key"], named, "{body}: {}", r.body);
    }
    assert_eq!(get(a, "/v1/status").json()["state"], "idle");
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none(), "a file was created outside the data dir");
    eprintln!("{} bodies refused", bodies.len());
}

#[test]
fn a_remote_listener_needs_a_token_and_never_prints_it() {
    let d = tmpdir("tokens");
    let limit = Duration::from_secs(20);
    let o = run_bounded(&["serve", "--listen", "0.0.0.0:0", "--allow-remote"], limit);
    let e = String::from_utf8_lossy(&o.stderr);
    eprintln!("serve --allow-remote without a token: exit {:?}: {}", o.status.code(), e.trim());
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("--token"), "{e}");

    let empty = d.join("empty");
    std::fs::write(&empty, " \n").unwrap();
    for (file, says) in [(empty.clone(), "empty"), (d.join("missing"), "cannot read")] {
        let o = run_bounded(&["serve", "--listen", "127.0.0.1:0", "--token-file", file.to_str().unwrap()], limit);
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{e}");
        assert!(e.contains(says) && e.contains("--token-file"), "{e}");
    }

    let run = ["run", "--sink", "null", "--rate", "10", "--threads", "1", "--no-pin", "--duration", "30s", "--quiet"];
    let mut args = run.to_vec();
    args.extend(["--metrics-listen", "0.0.0.0:0"]);
    let o = run_bounded(&args, limit);
    let e = String::from_utf8_lossy(&o.stderr);
    eprintln!("run --metrics-listen 0.0.0.0 without a token: exit {:?}: {}", o.status.code(), e.trim());
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("--metrics-token"), "{e}");
    let mut a2 = args.clone();
    a2.extend(["--metrics-token-file", empty.to_str().unwrap()]);
    let o = run_bounded(&a2, limit);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));

    let token = "planted-token-5521";
    let tf = d.join("token");
    std::fs::write(&tf, format!("{token}\n")).unwrap();
    args.extend(["--metrics-token-file", tf.to_str().unwrap()]);
    let r = Proc::spawn(&args, "metrics on");
    let a = format!("127.0.0.1:{}", port(&r.addr));
    let bearer = format!("Bearer {token}");
    assert_eq!(get(&a, "/metrics").status, 401);
    assert_eq!(get(&a, "/v1/status").status, 401);
    assert_eq!(http(&a, "GET", "/metrics", &[("Authorization", &bearer)], b"").status, 200);
    assert_eq!(http(&a, "GET", "/v1/status", &[("Authorization", &bearer)], b"").status, 200);
    assert_eq!(get(&a, "/healthz").status, 200, "liveness stays open");
    drop(r);

    let p = Proc::spawn(&["serve", "--listen", "0.0.0.0:0", "--allow-remote", "--token-file", tf.to_str().unwrap()], "serve listening on");
    let a = format!("127.0.0.1:{}", port(&p.addr));
    assert_eq!(get(&a, "/v1/status").status, 401);
    assert_eq!(http(&a, "GET", "/v1/status", &[("Authorization", &bearer)], b"").status, 200);
    let log = p.stderr.lock().unwrap().clone();
    assert!(!log.contains(token), "the token was printed: {log}");
}

#[test]
fn state_changes_need_a_config_content_type_and_their_own_origin() {
    let p = Proc::serve(&["--allowed-origin", "http://ui.example"]);
    let a = p.addr.as_str();
    let body = br#"{"sink": "null", "count": 1}"#;
    for ct in [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data; boundary=x")] {
        let headers: Vec<(&str, &str)> = ct.iter().map(|c| ("Content-Type", *c)).collect();
        let r = http(a, "POST", "/v1/start", &headers, body);
        eprintln!("POST /v1/start with Content-Type {ct:?}: {} {}", r.status, r.body.trim());
        assert_eq!(r.status, 415, "{ct:?}: {}", r.body);
        assert!(r.error().contains("application/json"), "{}", r.body);
        assert_eq!(get(a, "/v1/status").json()["state"], "idle");
    }
    assert_eq!(http(a, "PUT", "/v1/rate", &[("Content-Type", "text/plain")], br#"{"rate": 5}"#).status, 415);
    // Accepted types pass the gate: no run, so stopping answers 409.
    for ct in ["application/json", "application/json; charset=utf-8", "application/yaml", "text/yaml", "application/x-yaml"] {
        let r = http(a, "POST", "/v1/stop", &[("Content-Type", ct)], b"");
        assert_eq!(r.status, 409, "{ct}: {}", r.body);
    }

    let json = ("Content-Type", "application/json");
    for origin in ["http://evil.example", "null", "https://127.0.0.1", &format!("http://{a}.evil.example")] {
        let r = http(a, "POST", "/v1/stop", &[json, ("Origin", origin)], b"");
        eprintln!("POST /v1/stop from Origin {origin}: {} {}", r.status, r.body.trim());
        assert_eq!(r.status, 403, "{origin}: {}", r.body);
        assert!(r.error().contains("Origin"), "{}", r.body);
    }
    let own = format!("http://{a}");
    let localhost = format!("http://localhost:{}", port(a));
    for origin in [own.as_str(), localhost.as_str(), "http://ui.example"] {
        let r = http(a, "POST", "/v1/stop", &[json, ("Origin", origin)], b"");
        assert_eq!(r.status, 409, "{origin}: {}", r.body);
    }
    assert_eq!(http(a, "GET", "/v1/status", &[("Origin", "http://evil.example")], b"").status, 200, "reads are not state changes");
}

#[test]
fn host_must_name_this_server() {
    let p = Proc::serve(&["--allowed-host", "spate.internal"]);
    let a = p.addr.as_str();
    let port = port(a);
    let ask = |host: &str| {
        let rq = format!("GET /v1/status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        raw(a, rq.as_bytes(), Duration::from_secs(10)).expect("a response")
    };
    for host in [format!("evil.example:{port}"), "evil.example".into(), "127.0.0.1:1".into(), format!("spate.internal.evil:{port}")] {
        let r = ask(&host);
        eprintln!("Host {host}: {} {}", r.status, r.body.trim());
        assert_eq!(r.status, 421, "{host}: {}", r.body);
        assert!(r.error().contains("--allowed-host"), "{}", r.body);
    }
    for host in
        [a.to_string(), format!("localhost:{port}"), format!("LocalHost:{port}"), format!("spate.internal:{port}"), "spate.internal".into()]
    {
        assert_eq!(ask(&host).status, 200, "{host}");
    }
}

#[test]
fn oversized_heads_and_urls_get_431_and_414() {
    let p = Proc::serve(&[]);
    let a = p.addr.as_str();
    let long_url = format!("/v1/status?pad={}", "a".repeat(5000));
    let r = raw(a, format!("GET {long_url} HTTP/1.1\r\nHost: {a}\r\n\r\n").as_bytes(), Duration::from_secs(10)).expect("a response");
    eprintln!("5 kB URL: {} {}", r.status, r.body.trim());
    assert_eq!(r.status, 414, "{}", r.body);
    assert!(r.error().contains("4096"), "{}", r.body);

    let one_big = format!("GET /v1/status HTTP/1.1\r\nHost: {a}\r\nX-Pad: {}\r\n\r\n", "b".repeat(20 << 10));
    let many: String = (0..1000).map(|i| format!("X-Pad-{i}: {}\r\n", "c".repeat(20))).collect();
    let many = format!("GET /v1/status HTTP/1.1\r\nHost: {a}\r\n{many}\r\n");
    for rq in [one_big, many] {
        let r = raw(a, rq.as_bytes(), Duration::from_secs(10)).expect("a response");
        eprintln!("{} B head: {} {}", rq.len(), r.status, r.body.trim());
        // hyper's 431 has no body.
        assert_eq!(r.status, 431, "{}", r.body);
    }
    assert_eq!(get(a, "/v1/status").status, 200, "still serving");
}

#[test]
fn a_huge_header_is_cut_off_without_growing_memory() {
    let p = Proc::serve(&[]);
    let a = p.addr.clone();
    let pid = p.child.id();
    let before = status_kb(pid, "VmRSS");
    const TOTAL: usize = 64 << 20;
    let mut s = TcpStream::connect(&a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut w = s.try_clone().unwrap();
    let host = a.clone();
    let writer = std::thread::spawn(move || {
        let mut sent = 0usize;
        if w.write_all(format!("GET /v1/status HTTP/1.1\r\nHost: {host}\r\nX-Big: ").as_bytes()).is_err() {
            return sent;
        }
        let chunk = vec![b'a'; 64 << 10];
        while sent < TOTAL {
            match w.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let sent = writer.join().unwrap();
    // The high-water mark: memory taken and given back again still counts.
    let peak = status_kb(pid, "VmHWM");
    let r = parse_response(&buf);
    eprintln!(
        "64 MiB header: the server took {:.1} MiB before closing; answer {:?}; serve RSS before {before} kB, peak {peak} kB",
        sent as f64 / (1 << 20) as f64,
        r.as_ref().map(|r| r.status),
    );
    assert!(sent < TOTAL / 2, "the server read {sent} bytes of one header before refusing it");
    assert!(peak < before + 50_000, "serve RSS peaked at {peak} kB, from {before} kB");
    if let Some(r) = r {
        assert_eq!(r.status, 431, "{}", r.body);
    }
    assert_eq!(get(&a, "/healthz").status, 200, "still serving");
}

#[test]
fn stalled_clients_time_out_and_do_not_starve_the_server() {
    let p = Proc::serve(&[]);
    let a = p.addr.as_str();
    let started = Instant::now();
    // Four bodies that never arrive (larger than what a server might read up front), and one
    // head that never ends.
    let mut stalled: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(a).unwrap();
            let rq = format!("POST /v1/start HTTP/1.1\r\nHost: {a}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{");
            s.write_all(rq.as_bytes()).unwrap();
            s
        })
        .collect();
    let mut head = TcpStream::connect(a).unwrap();
    head.write_all(format!("GET /v1/status HTTP/1.1\r\nHost: {a}\r\n").as_bytes()).unwrap();
    stalled.push(head);
    std::thread::sleep(Duration::from_millis(300));
    for path in ["/healthz", "/v1/status", "/readyz"] {
        let t = Instant::now();
        let r = raw(a, format!("GET {path} HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\n\r\n").as_bytes(), Duration::from_secs(3));
        let dt = t.elapsed();
        eprintln!("{path} with 5 stalled clients: {:?} in {dt:?}", r.as_ref().map(|r| r.status));
        assert_eq!(r.map(|r| r.status), Some(200), "{path} did not answer within 3 s while clients stall");
    }
    for (i, mut s) in stalled.into_iter().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let at = started.elapsed();
        let r = parse_response(&buf);
        eprintln!("stalled client {i}: {:?} after {at:?}", r.as_ref().map(|r| (r.status, r.body.trim().to_string())));
        if i == 4 {
            // A head that never ends: hyper closes the connection at the deadline, without an
            // answer (nothing of the request was understood).
            assert!(r.as_ref().is_none_or(|r| r.status == 408), "the stalled head got {:?}", r.map(|r| r.status));
            assert!(at < Duration::from_secs(12), "the stalled head was dropped only after {at:?}");
            continue;
        }
        let r = r.unwrap_or_else(|| panic!("stalled client {i} got no answer within {at:?}"));
        assert_eq!(r.status, 408, "{}", r.body);
        assert!(at < Duration::from_secs(12), "dropped only after {at:?}");
    }
    assert_eq!(get(a, "/v1/status").json()["state"], "idle");
}

/// 64 slow clients (8 from each of 8 loopback addresses, each sending half a head) hold every
/// full slot: the probes still answer, from slots kept for them, and other paths get 503 at
/// once. A ninth connection from one address is refused at once. Latencies printed.
#[test]
fn probes_answer_while_slow_clients_hold_every_slot() {
    let p = Proc::serve(&[]);
    let a = p.addr.clone();
    let port: u16 = port(&a).parse().unwrap();
    // One address past its 8 connections is refused at once.
    let eight: Vec<TcpStream> = (0..8).map(|_| socket2_connect([127, 0, 0, 11], port).unwrap()).collect();
    let r = read_response(socket2_connect([127, 0, 0, 11], port).unwrap());
    assert_eq!(r.status, 503, "{}", r.body);
    drop(eight);
    let mut slow = Vec::new();
    for host in 2..=9u8 {
        for _ in 0..8 {
            let s = socket2_connect([127, 0, 0, host], port);
            let mut s = s.expect("a slow client connects");
            s.write_all(format!("GET /v1/status HTTP/1.1\r\nHost: {a}\r\n").as_bytes()).unwrap();
            slow.push(s);
        }
    }
    // Every full slot held: other paths are refused at once.
    let t = eventually(Duration::from_secs(3), "every full slot to be held", || {
        let t = Instant::now();
        let r = raw(&a, format!("GET /v1/status HTTP/1.1\r\nHost: {a}\r\n\r\n").as_bytes(), Duration::from_secs(1));
        (r.map(|r| r.status) == Some(503)).then(|| t.elapsed())
    });
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        for path in ["/healthz", "/readyz"] {
            let t = Instant::now();
            let r = raw(&a, format!("GET {path} HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\n\r\n").as_bytes(), Duration::from_secs(1));
            let dt = t.elapsed();
            worst = worst.max(dt);
            assert_eq!(r.map(|r| r.status), Some(200), "{path} with 64 slow clients, after {dt:?}");
        }
    }
    eprintln!("64 slow clients: probes answered in at most {worst:?}; /v1/status refused with 503 in {t:?}");
    drop(slow);
}

/// Connects from `from` (a loopback address of this host) to 127.0.0.1:`port`.
fn socket2_connect(from: [u8; 4], port: u16) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket/bind/connect calls on a descriptor this function owns until it is
    // handed to `TcpStream` (which then closes it); the addresses are valid sockaddr_in values.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let addr = |ip: [u8; 4], port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(ip) },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let local = addr(from, 0);
        if libc::bind(fd, (&raw const local).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let remote = addr([127, 0, 0, 1], port);
        if libc::connect(fd, (&raw const remote).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

/// RFC 9112 3.2.2: a server accepts a request target in absolute form; RFC 9110 11.1: the
/// authentication scheme is case-insensitive.
#[test]
fn absolute_targets_and_any_case_bearer_are_accepted() {
    let dir = tmpdir("tok-case");
    let tf = dir.join("token");
    std::fs::write(&tf, "case-token-1\n").unwrap();
    let p = Proc::serve(&["--token-file", tf.to_str().unwrap()]);
    let a = p.addr.as_str();
    let r = raw(a, format!("GET http://{a}/healthz HTTP/1.1\r\nHost: {a}\r\n\r\n").as_bytes(), Duration::from_secs(5)).expect("an answer");
    assert_eq!(r.status, 200, "{}", r.body);
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = http(a, "GET", "/v1/status", &[("Authorization", &format!("{scheme} case-token-1"))], b"");
        assert_eq!(r.status, 200, "{scheme}: {}", r.body);
    }
    assert_eq!(http(a, "GET", "/v1/status", &[("Authorization", "Basic case-token-1")], b"").status, 401);
}

#[test]
fn secrets_are_masked_wherever_the_config_is_shown() {
    const SECRET: &str = "PLANTED-s3cret-7781";
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let p = Proc::serve(&[]);
    let a = p.addr.as_str();

    // A secret passed through as a librdkafka option that has a typed setting: refused, naming
    // the option, not its value.
    let refused = post_json(a, "/v1/start", &serde_json::json!({"sink": "kafka", "kafka": {"options": {"sasl.password": SECRET}}}));
    eprintln!("refused sasl.password option: {} {}", refused.status, refused.body.trim());
    assert!(refused.status >= 400, "{}", refused.body);
    assert!(refused.error().contains("sasl.password"), "the error still names the option: {}", refused.body);

    // Typed SASL with a planted password, at the embedded cluster (which has no SASL): the
    // start is refused naming kafka.sasl, and the answer shows no password.
    let sasl = post_json(
        a,
        "/v1/start",
        &serde_json::json!({"sink": "kafka", "kafka": {"sasl": {"mechanism": "SCRAM-SHA-256", "username": "u", "password": SECRET}}}),
    );
    eprintln!("SASL at a broker without it: {} {}", sasl.status, sasl.body.trim());
    assert!(sasl.status >= 400 && sasl.error().contains("kafka.sasl"), "{}", sasl.body);
    assert!(!sasl.body.contains(SECRET), "{}", sasl.body);

    // Files and environment of the server are not the caller's to name.
    for (body, key) in [
        (
            serde_json::json!({"sink": "kafka", "kafka": {"sasl": {"mechanism": "PLAIN", "username": "u", "password_file": "/etc/shadow"}}}),
            "kafka.sasl.password_file",
        ),
        (serde_json::json!({"sink": "kafka", "kafka": {"tls": {"ca_file": "/etc/hostname"}}}), "kafka.tls.ca_file"),
        (
            serde_json::json!({"sink": "kafka", "kafka": {"sasl": {"mechanism": "PLAIN", "username": "${HOME}", "password": "x1234"}}}),
            "kafka",
        ),
        (
            serde_json::json!({"sink": "null", "redis": {"url": "redis://127.0.0.1:1", "password_file": "/etc/shadow", "global_rate": 10, "limit_key": "k"}}),
            "redis.password_file",
        ),
    ] {
        let r = post_json(a, "/v1/start", &body);
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(r.error().contains(key), "{key}: {}", r.body);
    }

    let body = serde_json::json!({
        "sink": "kafka", "rate": 200, "threads": 1, "pin": false,
        "kafka": {"topic": format!("t-{SECRET}"), "options": {"client.id": "spate", "ssl.keystore.password": SECRET}},
        "tracing": {"endpoint": format!("http://user:url-planted-pw@127.0.0.1:{dead}/api/v2/spans"), "sample": 1},
    });
    let start = post_json(a, "/v1/start", &body);
    assert_eq!(start.status, 200, "{}", start.body);
    eventually(Duration::from_secs(20), "a failed span post to be reported", || {
        get(a, "/v1/status").json()["tracing"]["last_error"].as_str().map(|_| ())
    });
    let status = get(a, "/v1/status");
    let metrics = get(a, "/metrics");
    let stop = eventually(Duration::from_secs(30), "the run to stop", || {
        let r = post(a, "/v1/stop", "");
        (r.status == 200).then_some(r)
    });
    let after = get(a, "/v1/status");
    eprintln!("status config: {}", status.json()["config"]);
    eprintln!("status tracing: {}", status.json()["tracing"]);
    for (what, text) in [
        ("refused start", &refused.body),
        ("start", &start.body),
        ("status", &status.body),
        ("metrics", &metrics.body),
        ("stop", &stop.body),
        ("final status", &after.body),
    ] {
        for planted in [SECRET, "url-planted-pw"] {
            assert!(!text.contains(planted), "{what} shows `{planted}`:\n{text}");
        }
    }
    let s = status.json();
    assert_eq!(s["config"]["sink"]["kafka"]["options"]["ssl.keystore.password"], "<redacted>", "{s}");
    assert_eq!(s["config"]["sink"]["kafka"]["options"]["client.id"], "spate", "{s}");
    assert_eq!(s["config"]["sink"]["kafka"]["topic"], "t-<redacted>", "{s}");
    assert!(s["tracing"]["endpoint"].as_str().unwrap().contains("user:<redacted>@"), "{s}");

    // `spate run --metrics-listen` shows the same document, and prints no secret either.
    let r = Proc::spawn(
        &[
            "run",
            "--sink",
            "kafka",
            "--rate",
            "100",
            "--threads",
            "1",
            "--no-pin",
            "--duration",
            "30s",
            "--quiet",
            "--topic",
            &format!("t-{SECRET}"),
            "--kafka-opt",
            &format!("ssl.keystore.password={SECRET}"),
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        "metrics on",
    );
    let s = get(&r.addr, "/v1/status");
    assert_eq!(s.status, 200);
    assert!(!s.body.contains(SECRET), "run status shows the secret:\n{}", s.body);
    assert_eq!(s.json()["config"]["sink"]["kafka"]["options"]["ssl.keystore.password"], "<redacted>", "{}", s.body);
    let o = run_bounded(
        &["run", "--sink", "kafka", "--count", "1", "--kafka-opt", &format!("sasl.password={SECRET}")],
        Duration::from_secs(30),
    );
    let e = String::from_utf8_lossy(&o.stderr);
    eprintln!("run with a refused secret option: exit {:?}: {}", o.status.code(), e.trim());
    assert!(!o.status.success() && e.contains("sasl.password") && !e.contains(SECRET), "{e}");
    assert!(!r.stderr.lock().unwrap().contains(SECRET));
}

#[test]
fn deeply_nested_configs_are_refused_fast() {
    let p = Proc::serve(&[]);
    let a = p.addr.as_str();
    let levels = 75_000;
    let yaml = format!("a: {}1{}\n", "{b: ".repeat(levels), "}".repeat(levels));
    assert!(yaml.len() > 300_000);
    let t = Instant::now();
    let r = http(a, "POST", "/v1/start", &[("Content-Type", "application/yaml")], yaml.as_bytes());
    let dt = t.elapsed();
    eprintln!("{} kB nested YAML: {} in {dt:?}: {}", yaml.len() / 1000, r.status, r.body.trim());
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["key"], "(document)", "{}", r.body);
    assert!(r.error().contains("nested"), "{}", r.body);
    assert!(dt < Duration::from_secs(1), "took {dt:?}");

    let rate = format!("rate: {}1{}\n", "[".repeat(300_000), "]".repeat(300_000));
    let t = Instant::now();
    let r = http(a, "PUT", "/v1/rate", &[("Content-Type", "application/yaml")], rate.as_bytes());
    let dt = t.elapsed();
    eprintln!("{} kB nested rate body: {} in {dt:?}", rate.len() / 1000, r.status);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(dt < Duration::from_secs(1), "took {dt:?}");

    let deep_json = format!("{}{}", "{\"a\": ".repeat(40), "1".to_string() + &"}".repeat(40));
    let r = post(a, "/v1/start", &deep_json);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.error().contains("nested"), "{}", r.body);
}

#[test]
fn compose_runs_the_api_with_a_token_file_and_a_data_dir() {
    let text = std::fs::read_to_string(deploy("../docker-compose.yml")).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let cmd: Vec<String> = doc["services"]["spate"]["command"]
        .as_sequence()
        .expect("spate command as a list")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    // `--flag=value` or `--flag value`.
    let flag = |f: &str| {
        cmd.iter().enumerate().find_map(|(i, c)| match c.strip_prefix(f) {
            Some(v) if v.starts_with('=') => Some(v[1..].to_string()),
            Some("") => cmd.get(i + 1).cloned(),
            _ => None,
        })
    };
    let token_file = flag("--token-file").unwrap_or_else(|| panic!("no --token-file in {cmd:?}"));
    assert!(token_file.starts_with("/run/secrets/"), "{token_file}");
    assert!(flag("--data-dir").is_some(), "no --data-dir in {cmd:?}");
    for (name, svc) in doc["services"].as_mapping().unwrap() {
        for port in svc["ports"].as_sequence().into_iter().flatten() {
            let port = port.as_str().unwrap();
            assert!(port.starts_with("127.0.0.1:"), "{name:?} publishes {port} beyond loopback");
        }
    }
    // The Prometheus of the stack scrapes with the same token.
    let prom = doc["configs"]["prometheus"]["content"].as_str().expect("an inline prometheus config");
    assert!(prom.contains(&format!("credentials_file: {token_file}")), "{prom}");
    let Some(promtool) = prometheus_tool("promtool", "promtool check config on the compose Prometheus config") else {
        return;
    };
    let d = tmpdir("compose");
    std::fs::write(d.join("alerts.yml"), std::fs::read(deploy("alerts.yml")).unwrap()).unwrap();
    std::fs::write(d.join("token"), "t\n").unwrap();
    std::fs::write(d.join("prometheus.yml"), prom.replace(&token_file, d.join("token").to_str().unwrap())).unwrap();
    let o = std::process::Command::new(promtool).args(["check", "config"]).arg(d.join("prometheus.yml")).output().unwrap();
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

/// A sibling directory whose name starts with the data dir's name is outside it.
#[test]
fn data_dir_prefix_is_not_a_sibling() {
    let base = tmpdir("prefix");
    let data = base.join("data");
    let sibling = base.join("data-evil");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&sibling).unwrap();
    let p = Proc::serve(&["--data-dir", data.to_str().unwrap()]);
    let r = post_json(&p.addr, "/v1/start", &serde_json::json!({"sink": format!("file:{}/x", sibling.display())}));
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!Path::new(&sibling).join("x").exists());
}
