//! The control plane's HTTP limits, over real sockets on loopback: oversized heads, targets and
//! bodies, stalled clients, slots held by slow clients (the probes still answer), absolute-form
//! targets, deeply nested configs. Every wait is bounded.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use spate_test_support::eventually;

#[test]
fn oversized_heads_and_urls_get_431_and_414() {
    let p = Proc::serve(&[]);
    let a = p.addr.as_str();
    let long_url = format!("/v1/status?pad={}", "a".repeat(5000));
    let r = raw(
        a,
        format!("GET {long_url} HTTP/1.1\r\nHost: {a}\r\n\r\n").as_bytes(),
        Duration::from_secs(10),
    )
    .expect("a response");
    eprintln!("5 kB URL: {} {}", r.status, r.body.trim());
    assert_eq!(r.status, 414, "{}", r.body);
    assert!(r.error().contains("4096"), "{}", r.body);

    let one_big =
        format!("GET /v1/status HTTP/1.1\r\nHost: {a}\r\nX-Pad: {}\r\n\r\n", "b".repeat(20 << 10));
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
        if w.write_all(format!("GET /v1/status HTTP/1.1\r\nHost: {host}\r\nX-Big: ").as_bytes())
            .is_err()
        {
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
        sent as f64 / f64::from(1 << 20),
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
    // Not an ordering the assertions rely on (the stalled connections exist either way): a
    // pause so that the server has read the stalled heads before the probes arrive, as it would
    // have in production.
    std::thread::sleep(Duration::from_millis(300));
    for path in ["/healthz", "/v1/status", "/readyz"] {
        let t = Instant::now();
        let r = raw(
            a,
            format!("GET {path} HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\n\r\n").as_bytes(),
            Duration::from_secs(3),
        );
        let dt = t.elapsed();
        eprintln!("{path} with 5 stalled clients: {:?} in {dt:?}", r.as_ref().map(|r| r.status));
        assert_eq!(
            r.map(|r| r.status),
            Some(200),
            "{path} did not answer within 3 s while clients stall"
        );
    }
    for (i, mut s) in stalled.into_iter().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let at = started.elapsed();
        let r = parse_response(&buf);
        eprintln!(
            "stalled client {i}: {:?} after {at:?}",
            r.as_ref().map(|r| (r.status, r.body.trim().to_string()))
        );
        if i == 4 {
            // A head that never ends: hyper closes the connection at the deadline, without an
            // answer (nothing of the request was understood).
            assert!(
                r.as_ref().is_none_or(|r| r.status == 408),
                "the stalled head got {:?}",
                r.map(|r| r.status)
            );
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
    // One address past its 8 connections is refused at once. On a server of its own: the slots
    // of connections just closed are freed when that server notices, and slow clients arriving
    // meanwhile would take the probe slots.
    {
        let p = Proc::serve(&[]);
        let port: u16 = port(&p.addr).parse().unwrap();
        let eight: Vec<TcpStream> =
            (0..8).map(|_| socket2_connect([127, 0, 0, 11], port).unwrap()).collect();
        let r = read_response(socket2_connect([127, 0, 0, 11], port).unwrap());
        assert_eq!(r.status, 503, "{}", r.body);
        drop(eight);
    }
    let p = Proc::serve(&[]);
    let a = p.addr.clone();
    let port: u16 = port(&a).parse().unwrap();
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
        let r = raw(
            &a,
            format!("GET /v1/status HTTP/1.1\r\nHost: {a}\r\n\r\n").as_bytes(),
            Duration::from_secs(1),
        );
        (r.map(|r| r.status) == Some(503)).then(|| t.elapsed())
    });
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        for path in ["/healthz", "/readyz"] {
            let t = Instant::now();
            let r = raw(
                &a,
                format!("GET {path} HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\n\r\n").as_bytes(),
                Duration::from_secs(1),
            );
            let dt = t.elapsed();
            worst = worst.max(dt);
            assert_eq!(r.map(|r| r.status), Some(200), "{path} with 64 slow clients, after {dt:?}");
        }
    }
    eprintln!("64 slow clients: probes answered in at most {worst:?}; /v1/status refused with 503 in {t:?}");
    drop(slow);
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
    let r = raw(
        a,
        format!("GET http://{a}/healthz HTTP/1.1\r\nHost: {a}\r\n\r\n").as_bytes(),
        Duration::from_secs(5),
    )
    .expect("an answer");
    assert_eq!(r.status, 200, "{}", r.body);
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = http(
            a,
            "GET",
            "/v1/status",
            &[("Authorization", &format!("{scheme} case-token-1"))],
            b"",
        );
        assert_eq!(r.status, 200, "{scheme}: {}", r.body);
    }
    assert_eq!(
        http(a, "GET", "/v1/status", &[("Authorization", "Basic case-token-1")], b"").status,
        401
    );
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

/// A body of many small values is refused before either parser runs, and bodies just under the
/// cap, sent at once, are checked one at a time: serve's memory stays bounded.
#[test]
fn many_valued_bodies_are_refused_or_checked_one_at_a_time() {
    let p = Proc::serve(&[]);
    let a = p.addr.clone();
    let pid = p.child.id();
    let before = status_kb(pid, "VmRSS");
    let list = format!("{{\"x\": [{}]}}", vec!["0"; 500_000].join(","));
    assert!(list.len() < 1 << 20);
    let r = post(&a, "/v1/start", &list);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["key"], "(document)", "{}", r.body);
    assert!(r.error().contains("values"), "{}", r.body);
    // Just under the cap, from 8 clients at once.
    let keys: Vec<String> = (0..49_000).map(|i| format!("\"k{i}\":0")).collect();
    let body = format!("{{{}}}", keys.join(","));
    let codes: Vec<u16> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8).map(|_| s.spawn(|| post(&a, "/v1/start", &body).status)).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let peak = status_kb(pid, "VmHWM");
    eprintln!(
        "500,000-value body refused; 8 bodies of 49,000 keys at once: {codes:?}; serve RSS before {before} kB, peak {peak} kB"
    );
    assert!(codes.iter().all(|&c| c == 400 || c == 409), "{codes:?}");
    assert!(peak < before + 160_000, "serve RSS peaked at {peak} kB, from {before} kB");
    assert_eq!(get(&a, "/healthz").status, 200, "still serving");
}
