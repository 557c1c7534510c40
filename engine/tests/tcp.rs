//! The TCP sink against a real loopback listener: framing, backpressure, reconnect.

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use spate_engine::{RawConfig, StartOptions};
use spate_test_support::eventually;

fn cfg(yaml: &str) -> spate_engine::RunConfig {
    RawConfig::from_yaml(yaml).unwrap().validate().unwrap()
}

/// Accepts one connection and returns everything read until EOF (bounded by a deadline).
fn collector(l: TcpListener) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut all = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
        all
    })
}

#[test]
fn newline_framing_delivers_every_line() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = collector(l);
    let c = cfg(&format!("sink: \"tcp://{addr}\"\nrate: max\ncount: 200000\nthreads: 2\nduration: 60s\nformat: rfc5424\n"));
    let s = spate_engine::start(c, StartOptions::default()).unwrap().join();
    assert_eq!((s.totals.delivered, s.totals.in_flight, s.totals.failed), (200_000, 0, 0), "{s:?}");
    let got = h.join().unwrap();
    assert_eq!(got.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count(), 200_000);
    assert_eq!(got.len() as u64, s.totals.delivered_bytes);
}

#[test]
fn octet_counting_frames_parse() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = collector(l);
    let c = cfg(&format!("sink: \"tcp://{addr}?framing=octet\"\nrate: max\ncount: 30000\nthreads: 1\nduration: 60s\nformat: rfc5424\n"));
    let s = spate_engine::start(c, StartOptions::default()).unwrap().join();
    assert_eq!(s.totals.delivered, 30_000);
    let got = h.join().unwrap();
    // RFC 6587 octet counting: MSG-LEN SP SYSLOG-MSG, repeated.
    let (mut i, mut frames) = (0, 0);
    while i < got.len() {
        let sp = got[i..].iter().position(|&b| b == b' ').unwrap();
        let len: usize = std::str::from_utf8(&got[i..i + sp]).unwrap().parse().unwrap();
        let msg = &got[i + sp + 1..i + sp + 1 + len];
        assert!(msg.starts_with(b"<"), "frame {frames} does not start with PRI");
        assert!(!msg.contains(&b'\n'));
        i += sp + 1 + len;
        frames += 1;
    }
    assert_eq!(frames, 30_000);
}

#[test]
fn reconnects_when_the_collector_comes_late() {
    // Reserve a port, close it, start spate (connection refused), then listen on it.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let c = cfg(&format!(
        "sink: \"tcp://127.0.0.1:{port}\"\nrate: 20000\ncount: 20000\nthreads: 1\nduration: 60s\n"
    ));
    let run = spate_engine::start(c, StartOptions::default()).unwrap();
    // Events are generated and held while nothing listens: the sink has met a refused port.
    let t = eventually(Duration::from_secs(10), "events held for the absent collector", || {
        let t = run.totals();
        (t.generated >= 200).then_some(t)
    });
    assert_eq!(t.delivered, 0, "delivered with no collector listening: {t:?}");
    let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let h = collector(l);
    let s = run.join();
    assert_eq!((s.totals.delivered, s.totals.failed, s.totals.shed), (20_000, 0, 0), "{s:?}");
    let got = h.join().unwrap();
    assert_eq!(got.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count(), 20_000);
}
