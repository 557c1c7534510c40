//! `--api-rate` shared through Redis: two `spate serve` instances whose base config names the
//! same Redis limit a client together (a sliding window of one second per client address), and
//! with Redis gone each instance falls back to its own bucket instead of refusing or hanging.
//! A real `redis-server` on loopback; every request bounded.

mod common;

use common::*;
use spate_test_support::RedisServer;

#[test]
fn two_instances_limit_a_client_together() {
    let mut redis = RedisServer::start();
    let d = tmpdir("shared-rate");
    let cfg = d.join("base.yaml");
    std::fs::write(
        &cfg,
        format!("redis: {{url: '{}', global_rate: 100, limit_key: api-test}}\n", redis.url()),
    )
    .unwrap();
    let a = Proc::serve(&["--config", cfg.to_str().unwrap(), "--api-rate", "3"]);
    let b = Proc::serve(&["--config", cfg.to_str().unwrap(), "--api-rate", "3"]);
    // Ten requests within well under a second, alternating between the two instances: three
    // fit the shared window (each instance alone would let three through, six in all).
    let codes: Vec<u16> = (0..10)
        .map(|i| get(if i % 2 == 0 { &a.addr } else { &b.addr }, "/v1/status").status)
        .collect();
    let ok = codes.iter().filter(|c| **c == 200).count();
    eprintln!("shared --api-rate 3 over two instances: {codes:?}");
    assert_eq!(ok, 3, "{codes:?}");
    let r = get(&b.addr, "/v1/status");
    assert_eq!(r.status, 429);
    assert!(r.header("Retry-After").is_some());

    // Redis frozen: each instance decides alone, within its timeout, and still answers.
    redis.pause();
    // Past the shared window (one second), then a fresh local bucket on each instance.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let t = std::time::Instant::now();
    let r = get(&a.addr, "/v1/status");
    eprintln!("with Redis frozen: {} after {:?}", r.status, t.elapsed());
    assert_eq!(r.status, 200);
    assert!(t.elapsed() < std::time::Duration::from_secs(2), "{:?}", t.elapsed());
    redis.resume();
}
