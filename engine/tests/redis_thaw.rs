//! Redis frozen (SIGSTOP) and thawed: the grant calls spate gave up on while it was frozen are
//! run by Redis after the thaw, and must grant nothing, else the window is spent on leases no
//! one uses and the global rate dips after Redis comes back. A real `redis-server` on loopback;
//! every wait is bounded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use spate_engine::{RawConfig, StartOptions};
use spate_limit::redis::grant::{call_grant, call_grant_until, GRANT_SCRIPT};
use spate_test_support::{eventually, RedisServer};

/// A call whose expiry has passed by Redis's clock grants nothing and records nothing.
#[test]
fn a_stale_grant_call_grants_nothing() {
    let redis = RedisServer::start();
    let mut con = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let script = redis::Script::new(GRANT_SCRIPT);
    let calls = AtomicU64::new(0);
    let key = "spate:limit:{stale}";
    let g = call_grant(&mut con, &script, key, 10, 1, 100, 1_000_000, "a", 1, &calls).unwrap();
    assert_eq!(g.granted, 10);
    let now = g.redis_now_us;
    assert!(now > 1_600_000_000_000_000, "Redis's clock in µs: {now}");
    // Expired a second ago.
    let g = call_grant_until(
        &mut con,
        &script,
        key,
        50,
        1,
        100,
        1_000_000,
        "a",
        2,
        now - 1_000_000,
        &calls,
    )
    .unwrap();
    assert_eq!(g.granted, 0, "{g:?}");
    // Still good for a minute: granted, and the stale call above took nothing.
    let g = call_grant_until(
        &mut con,
        &script,
        key,
        90,
        1,
        100,
        1_000_000,
        "a",
        3,
        now + 60_000_000,
        &calls,
    )
    .unwrap();
    assert_eq!((g.granted, g.used), (90, 100), "{g:?}");
}

/// Redis frozen for 3 s, then thawed: the second after leases resume keeps the global rate.
#[test]
fn the_rate_after_a_thaw_is_the_target() {
    let mut redis = RedisServer::start();
    let rate = 20_000u64;
    let yaml = format!(
        "sink: null\nthreads: 1\npin: false\nduration: 30s\nredis:\n  url: {}\n  global_rate: {rate}\n  limit_key: thaw\n  expected_instances: 1\n",
        redis.url()
    );
    let cfg = RawConfig::from_yaml(&yaml).unwrap().validate().unwrap();
    let run = spate_engine::start(cfg, StartOptions::default()).unwrap();
    let stats = run.shared.limiter.clone();
    eventually(Duration::from_secs(10), "leased events", || {
        (stats.granted.load(Ordering::Relaxed) > 0 && run.totals().generated >= 10_000)
            .then_some(())
    });
    redis.pause();
    // The fault's length, not synchronisation: Redis stays frozen this long.
    std::thread::sleep(Duration::from_secs(3));
    redis.resume();
    let thawed = Instant::now();
    eventually(Duration::from_secs(10), "leases after the thaw", || {
        (stats.mode_name() == "redis").then_some(())
    });
    let g0 = run.totals().generated;
    let t0 = Instant::now();
    // The measured second: a sampling window, each end read with its own time.
    std::thread::sleep(Duration::from_secs(1));
    let g1 = run.totals().generated;
    let secs = t0.elapsed().as_secs_f64();
    run.stop();
    let s = run.join();
    assert!(s.error.is_none(), "{:?}", s.error);
    assert!(s.totals.balanced());
    let got = (g1 - g0) as f64 / secs;
    eprintln!(
        "redis thawed: leases {} ms after SIGCONT; the next second {got:.0} events/s of {rate} ({:.1} %)",
        t0.duration_since(thawed).as_millis(),
        got / rate as f64 * 100.0
    );
    // Loose on a shared machine (the figure is printed and reported); the stale leases this
    // guards against took whole windows before.
    assert!(got > rate as f64 * 0.8, "{got:.0} events/s after the thaw, target {rate}");
}
