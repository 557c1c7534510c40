//! The Redis global limiter against a real `redis-server` (started by the tests on a free
//! loopback port, killed on drop). Several engines in one process share a limit key; totals are
//! sampled every second. Every run is bounded by a duration. Measured figures are printed
//! (`cargo test --release -p spate-engine --test redis -- --nocapture`).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use spate_engine::limit::redis::config::RawRedis;
use spate_engine::limit::redis::lease::{call_grant, GRANT_SCRIPT};
use spate_engine::{RawConfig, Run, StartOptions};

/// A `redis-server` on 127.0.0.1, killed on drop.
struct RedisServer {
    port: u16,
    child: Child,
}

impl RedisServer {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self::start_on(port)
    }

    fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let s = Self { port, child };
        let client = redis::Client::open(s.url()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(200)) {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return s;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not answer PING on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(url: &str, global: u64, key: &str, extra: &str) -> Run {
    let yaml = format!(
        "sink: null\nthreads: 1\npin: false\nduration: 30s\nredis:\n  url: {url}\n  global_rate: {global}\n  limit_key: {key}\n{extra}"
    );
    let cfg = RawConfig::from_yaml(&yaml).unwrap().validate().unwrap();
    spate_engine::start(cfg, StartOptions::default()).unwrap()
}

/// Starts `n` engines on one key, samples the sum of their generated counts every second for
/// `secs` seconds, stops them and returns the per-second counts.
fn windows(url: &str, global: u64, key: &str, n: usize, secs: usize) -> (Vec<u64>, Vec<Run>) {
    let runs: Vec<Run> = (0..n).map(|_| start(url, global, key, "")).collect();
    let total = |runs: &[Run]| runs.iter().map(|r| r.totals().generated).sum::<u64>();
    let t0 = Instant::now();
    let mut last = total(&runs);
    let mut counts = Vec::new();
    for k in 1..=secs {
        let due = t0 + Duration::from_secs(k as u64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let now = total(&runs);
        counts.push(now - last);
        last = now;
    }
    for r in &runs {
        r.stop();
    }
    (counts, runs)
}

#[test]
fn three_instances_share_the_global_rate() {
    let redis = RedisServer::start();
    let (counts, runs) = windows(&redis.url(), 30_000, "share3", 3, 10);
    let calls: u64 = runs.iter().map(|r| r.shared.limiter.redis_calls.load(Ordering::Relaxed)).sum();
    let waits: u64 = runs.iter().map(|r| r.shared.limiter.lease_waits.load(Ordering::Relaxed)).sum();
    let per_instance: Vec<u64> = runs.iter().map(|r| r.totals().generated).collect();
    for r in runs {
        let s = r.join();
        assert!(s.error.is_none(), "{:?}", s.error);
    }
    let sum: u64 = counts.iter().sum();
    let dev: Vec<f64> = counts.iter().map(|&c| (c as f64 / 30_000.0 - 1.0) * 100.0).collect();
    eprintln!("3 instances, 30000/s for 10 s: total {sum} ({:+.2} %), per second {counts:?}", (sum as f64 / 300_000.0 - 1.0) * 100.0);
    eprintln!("  per-second deviation %: {:?}", dev.iter().map(|d| format!("{d:+.2}")).collect::<Vec<_>>());
    eprintln!("  per instance {per_instance:?}, redis calls {calls}, lease waits {waits}");
    assert!((sum as f64 - 300_000.0).abs() <= 3_000.0, "aggregate {sum} not within 1 % of 300000");
    // The first second includes start-up (three engines joining one by one); the steady
    // windows must be within 5 %.
    for (i, &c) in counts.iter().enumerate().skip(1) {
        assert!((c as f64 - 30_000.0).abs() <= 1_500.0, "window {i}: {c} not within 5 % of 30000 ({counts:?})");
    }
    assert!(counts[0] <= 31_500, "first window above the limit: {counts:?}");
}

#[test]
fn low_global_rates_never_exceed_the_limit() {
    let redis = RedisServer::start();
    let url = redis.url();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| windows(&url, 1, "low1", 3, 8).0);
        let b = s.spawn(|| windows(&url, 10, "low10", 3, 8).0);
        (a.join().unwrap(), b.join().unwrap())
    });
    eprintln!("global 1/s across 3 instances, per second: {a:?}");
    eprintln!("global 10/s across 3 instances, per second: {b:?}");
    assert!(a.iter().all(|&c| c <= 1), "1/s exceeded: {a:?}");
    assert!(b.iter().all(|&c| c <= 10), "10/s exceeded: {b:?}");
    // And it does send (nearly) the limit: Redis re-grants a slot as soon as it leaves the window.
    assert!(a.iter().sum::<u64>() >= 5, "1/s: {a:?}");
    assert!(b.iter().sum::<u64>() >= 60, "10/s: {b:?}");
}

#[test]
fn redis_calls_stay_below_one_per_thousand_events() {
    let redis = RedisServer::start();
    let (counts, runs) = windows(&redis.url(), 100_000, "calls", 1, 4);
    let calls = runs[0].shared.limiter.redis_calls.load(Ordering::Relaxed);
    let lease = runs[0].shared.limiter.lease_size.load(Ordering::Relaxed);
    let s = runs.into_iter().next().unwrap().join();
    let events = s.totals.generated;
    let ratio = calls as f64 * 1000.0 / events as f64;
    eprintln!(
        "100000/s for 4 s: {events} events, {calls} redis calls = {ratio:.3} per 1000 events (lease {lease} tokens), per second {counts:?}"
    );
    assert!(events > 300_000, "{events} events");
    assert!(ratio <= 1.0, "{calls} calls for {events} events");
}

#[test]
fn redis_down_falls_back_then_recovers() {
    let redis = RedisServer::start();
    let port = redis.port;
    let run = start(&redis.url(), 20_000, "outage", "  expected_instances: 2\n");
    let stats = run.shared.limiter.clone();
    let t0 = Instant::now();
    let timeline = std::sync::Mutex::new(vec![(0u128, stats.mode_name(), 0u64)]);
    let stop = AtomicU64::new(0);
    let mut redis = Some(redis);
    let (mut killed_at, mut restarted_at) = (None, None);
    let mut min_rate_after_kill = u64::MAX;
    std::thread::scope(|s| {
        // Watch the mode every 5 ms.
        s.spawn(|| {
            let mut last = stats.mode_name();
            while stop.load(Ordering::Relaxed) == 0 {
                let m = stats.mode_name();
                if m != last {
                    timeline.lock().unwrap().push((t0.elapsed().as_millis(), m, run.totals().generated));
                    last = m;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let mut prev = run.totals().generated;
        for tick in 1..=50u32 {
            // 200 ms ticks: kill at 2 s, restart at 4 s, end at 10 s.
            std::thread::sleep((t0 + Duration::from_millis(200 * tick as u64)).saturating_duration_since(Instant::now()));
            let now = run.totals().generated;
            if killed_at.is_some() && tick > 15 {
                // From 1 s after the kill on, every 200 ms must show progress (no stall).
                min_rate_after_kill = min_rate_after_kill.min((now - prev) * 5);
            }
            prev = now;
            if tick == 10 {
                redis.take();
                killed_at = Some(t0.elapsed().as_millis());
            }
            if tick == 20 {
                redis = Some(RedisServer::start_on(port));
                restarted_at = Some(t0.elapsed().as_millis());
            }
        }
        stop.store(1, Ordering::Relaxed);
    });
    run.stop();
    let transitions = stats.transitions.load(Ordering::Relaxed);
    let s = run.join();
    let tl = timeline.into_inner().unwrap();
    let (killed_at, restarted_at) = (killed_at.unwrap(), restarted_at.unwrap());
    eprintln!("killed at {killed_at} ms, restarted at {restarted_at} ms; timeline (ms, mode, generated): {tl:?}");
    eprintln!("  transitions {transitions}, lowest rate from 1 s after the kill {min_rate_after_kill}/s, total {}", s.totals.generated);
    assert!(s.error.is_none(), "{:?}", s.error);
    let fb = tl.iter().find(|e| e.1 == "fallback" && e.0 >= killed_at).expect("went to fallback");
    assert!(fb.0 - killed_at <= 1000, "fallback {} ms after the kill", fb.0 - killed_at);
    let back = tl.iter().find(|e| e.1 == "redis" && e.0 >= restarted_at).expect("back to redis");
    assert!(back.0 - restarted_at <= 5000, "leases resumed {} ms after the restart", back.0 - restarted_at);
    assert!(min_rate_after_kill >= 2_000, "stalled: {min_rate_after_kill}/s");
    assert_eq!(stats.mode_name(), "redis");
}

#[test]
fn grant_script_grants_what_fits_and_reloads() {
    let redis = RedisServer::start();
    let mut con = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let script = redis::Script::new(GRANT_SCRIPT);
    let calls = AtomicU64::new(0);
    let key = "spate:limit:{script}";
    // A key that looks like an injection attempt is just data in ARGV.
    let g = call_grant(&mut con, &script, key, 60, 100, 1_000_000, "a'); redis.call('FLUSHALL", 1, &calls).unwrap();
    assert_eq!((g.granted, g.instances), (60, 1));
    assert_eq!(calls.load(Ordering::Relaxed), 3, "NOSCRIPT, SCRIPT LOAD, EVALSHA");
    let g = call_grant(&mut con, &script, key, 60, 100, 1_000_000, "b", 1, &calls).unwrap();
    assert_eq!((g.granted, g.instances, g.used), (40, 2, 100), "partial grant");
    let g = call_grant(&mut con, &script, key, 60, 100, 1_000_000, "b", 2, &calls).unwrap();
    assert_eq!(g.granted, 0);
    assert!(g.retry_after_us > 0 && g.retry_after_us <= 1_000_000, "{g:?}");
    assert_eq!(calls.load(Ordering::Relaxed), 5);
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut con).unwrap();
    let g = call_grant(&mut con, &script, key, 1, 100, 1_000_000, "b", 3, &calls).unwrap();
    assert_eq!(g.granted, 0, "still full after reload");
    std::thread::sleep(Duration::from_millis(1_050));
    let g = call_grant(&mut con, &script, key, 500, 100, 1_000_000, "c", 1, &calls).unwrap();
    assert_eq!(g.granted, 100, "window emptied");
    let n: u64 = redis::cmd("ZCARD").arg(key).query(&mut con).unwrap();
    assert_eq!(n, 1);
}

#[test]
fn redis_section_parses_and_flags_override() {
    let file =
        RawConfig::from_yaml("sink: null\nredis:\n  url: redis://:pw@127.0.0.1:1\n  global_rate: 500\n  limit_key: a\n  lease_ms: 20\n")
            .unwrap();
    let flags = RawConfig { redis: Some(RawRedis { global_rate: Some(900), ..Default::default() }), ..Default::default() };
    let c = file.overlay(flags).validate().unwrap();
    let r = c.redis.as_ref().unwrap();
    assert_eq!(r.global_rate.get(), 900);
    assert_eq!(r.lease, Duration::from_millis(20));
    assert_eq!(c.rate.per_sec(), Some(900), "the global rate rules");
    assert!(!format!("{c:?}").contains(":pw@"), "password in Debug");
    let e = RawConfig::from_yaml("redis:\n  urll: x\n").unwrap_err();
    assert!(e.message.contains("urll"), "{e}");
    let e = RawConfig::from_yaml("redis:\n  url: redis://h\n  limit_key: a\n").unwrap().validate().unwrap_err();
    assert_eq!(e.key, "redis.global_rate");
}
