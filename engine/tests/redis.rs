//! The Redis global limiter against a real `redis-server` (started by the tests on a free
//! loopback port, killed on drop). Several engines in one process share a limit key; totals are
//! sampled every second. Every run is bounded by a duration. Rates depend on how busy the machine
//! is, so the assertions check the limits that must hold and measured figures are printed
//! (`cargo test --release -p spate-engine --test redis -- --nocapture`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use spate_engine::{RawConfig, Run, StartOptions};
use spate_limit::redis::config::RawRedis;
use spate_limit::redis::grant::{call_grant, GRANT_SCRIPT};
use spate_limit::stats::LimiterStats;
use spate_test_support::{wait_for, RedisServer};

fn start(url: &str, global: u64, key: &str, extra: &str) -> Run {
    let yaml = format!(
        "sink: null\nthreads: 1\npin: false\nduration: 30s\nredis:\n  url: {url}\n  global_rate: {global}\n  limit_key: {key}\n{extra}"
    );
    let cfg = RawConfig::from_yaml(&yaml).unwrap().validate().unwrap();
    spate_engine::start(cfg, StartOptions::default()).unwrap()
}

/// Starts `n` engines on one key, samples the sum of their generated counts about every second
/// for `secs` seconds, stops them and returns each window's count and measured length (s).
fn windows(
    url: &str,
    global: u64,
    key: &str,
    n: usize,
    secs: usize,
) -> (Vec<(u64, f64)>, Vec<Run>) {
    windows_after(url, global, key, n, secs, Duration::ZERO)
}

/// As `windows`, with the first engine running alone for `alone` before the others start (so
/// its leases are sized for one instance, then for `n`).
fn windows_after(
    url: &str,
    global: u64,
    key: &str,
    n: usize,
    secs: usize,
    alone: Duration,
) -> (Vec<(u64, f64)>, Vec<Run>) {
    let mut runs = vec![start(url, global, key, "")];
    // The scenario: one instance alone for a while (its lease sizes are what is tested).
    std::thread::sleep(alone);
    runs.extend((1..n).map(|_| start(url, global, key, "")));
    let total = |runs: &[Run]| runs.iter().map(|r| r.totals().generated).sum::<u64>();
    let t0 = Instant::now();
    let mut last = (t0, total(&runs));
    let mut out = Vec::new();
    for k in 1..=secs {
        // A sampling clock, not synchronisation: a late wake-up only makes the window longer,
        // and its length is measured.
        let due = t0 + Duration::from_secs(k as u64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let (at, now) = (Instant::now(), total(&runs));
        out.push((now - last.1, (at - last.0).as_secs_f64()));
        last = (at, now);
    }
    for r in &runs {
        r.stop();
    }
    (out, runs)
}

/// The limiter's settings for `global` with the default window (1 s) and lease (50 ms).
fn redis_config(global: u64) -> spate_limit::redis::config::RedisConfig {
    RawRedis {
        url: Some("redis://127.0.0.1:1".into()),
        global_rate: Some(global),
        limit_key: Some("k".into()),
        ..Default::default()
    }
    .validate()
    .unwrap()
}

#[test]
fn three_instances_share_the_global_rate() {
    const GLOBAL: u64 = 30_000;
    let redis = RedisServer::start();
    let (w, runs) = windows(&redis.url(), GLOBAL, "share3", 3, 10);
    let calls: u64 =
        runs.iter().map(|r| r.shared.limiter.redis_calls.load(Ordering::Relaxed)).sum();
    let waits: u64 =
        runs.iter().map(|r| r.shared.limiter.lease_waits.load(Ordering::Relaxed)).sum();
    let per_instance: Vec<u64> = runs.iter().map(|r| r.totals().generated).collect();
    for r in runs {
        let s = r.join();
        assert!(s.error.is_none(), "{:?}", s.error);
    }
    let sum: u64 = w.iter().map(|x| x.0).sum();
    let span: f64 = w.iter().map(|x| x.1).sum();
    let rates: Vec<f64> = w.iter().map(|&(c, len)| c as f64 / len).collect();
    eprintln!(
        "3 instances, {GLOBAL}/s for {span:.3} s: total {sum} = {:.1}/s ({:+.2} %), per second {:?}",
        sum as f64 / span,
        (sum as f64 / span / GLOBAL as f64 - 1.0) * 100.0,
        w.iter().map(|x| x.0).collect::<Vec<_>>()
    );
    eprintln!(
        "  per-window deviation %: {:?}",
        rates
            .iter()
            .map(|r| format!("{:+.2}", (r / GLOBAL as f64 - 1.0) * 100.0))
            .collect::<Vec<_>>()
    );
    eprintln!("  per instance {per_instance:?}, redis calls {calls}, lease waits {waits}");
    // The documented overshoot: instances x lease size, at its largest before an instance has
    // heard of the others (it then leases 1.05 x global x 50 ms, as if alone).
    let overshoot = 3.0 * (1.05 * GLOBAL as f64 * redis_config(GLOBAL).lease.as_secs_f64()).ceil();
    for (i, &(c, len)) in w.iter().enumerate() {
        let max = GLOBAL as f64 * len + overshoot;
        assert!(c as f64 <= max, "window {i}: {c} events in {len:.3} s, above {GLOBAL}/s plus the lease overshoot ({max:.0}); {w:?}");
    }
    let max = GLOBAL as f64 * span + overshoot;
    assert!(
        sum as f64 <= max,
        "aggregate {sum} in {span:.3} s above {GLOBAL}/s plus the lease overshoot ({max:.0})"
    );
    // Not a precision check (that is the figure printed above): the instances must not starve.
    assert!(
        sum as f64 >= GLOBAL as f64 * span / 2.0,
        "aggregate {sum} in {span:.3} s is below half of {GLOBAL}/s"
    );
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
    let counts = |w: &[(u64, f64)]| w.iter().map(|x| x.0).collect::<Vec<_>>();
    eprintln!("global 1/s across 3 instances, per window: {a:?}");
    eprintln!("global 10/s across 3 instances, per window: {b:?}");
    for (global, w) in [(1u64, &a), (10, &b)] {
        // Redis re-grants a slot no sooner than window + guard after it was granted, and the
        // guard absorbs the jitter between grant and spend: so `global` events at most per
        // window, and per window plus half the guard in a longer span (a late sample, the run).
        let c = redis_config(global);
        let window = c.window.as_secs_f64();
        let guard = c.window_with_guard_us() as f64 / 1e6 - window;
        let max_in = |len: f64| global * ((len / (window + guard / 2.0)).floor() as u64 + 1);
        for (i, &(n, len)) in w.iter().enumerate() {
            assert!(
                n <= max_in(len),
                "{global}/s: window {i} of {len:.3} s has {n} events, above {}; {w:?}",
                max_in(len)
            );
        }
        let span: f64 = w.iter().map(|x| x.1).sum();
        let sum: u64 = w.iter().map(|x| x.0).sum();
        assert!(
            sum <= max_in(span),
            "{global}/s: {sum} events in {span:.3} s, above {}; {:?}",
            max_in(span),
            counts(w)
        );
    }
    // And it does send (nearly) the limit: Redis re-grants a slot as soon as it leaves the window.
    assert!(a.iter().map(|x| x.0).sum::<u64>() >= 5, "1/s: {:?}", counts(&a));
    assert!(b.iter().map(|x| x.0).sum::<u64>() >= 60, "10/s: {:?}", counts(&b));
}

/// Instances joining change every instance's lease size (a lease is sized for the instance's
/// share): leases granted before the change are still being paced out when the re-grants of
/// the slots they held arrive, and no window may hold more than the limit for that.
#[test]
fn instances_joining_do_not_push_a_low_rate_over_the_limit() {
    let redis = RedisServer::start();
    let (w, runs) = windows_after(&redis.url(), 10, "join10", 3, 5, Duration::from_millis(1500));
    let transitions: Vec<u64> =
        runs.iter().map(|r| r.shared.limiter.transitions.load(Ordering::Relaxed)).collect();
    eprintln!("10/s, 1 instance then 3, per window: {w:?}; mode transitions {transitions:?}");
    assert_eq!(transitions, [0, 0, 0], "no fallback expected against a healthy Redis");
    let c = redis_config(10);
    let window = c.window.as_secs_f64();
    let guard = c.window_with_guard_us() as f64 / 1e6 - window;
    for (i, &(n, len)) in w.iter().enumerate() {
        let max = 10 * ((len / (window + guard / 2.0)).floor() as u64 + 1);
        assert!(n <= max, "window {i} of {len:.3} s has {n} events, above {max}; {w:?}");
    }
}

#[test]
fn redis_calls_stay_below_one_per_thousand_events() {
    let redis = RedisServer::start();
    let (w, runs) = windows(&redis.url(), 100_000, "calls", 1, 4);
    let calls = runs[0].shared.limiter.redis_calls.load(Ordering::Relaxed);
    let lease = runs[0].shared.limiter.lease_size.load(Ordering::Relaxed);
    let s = runs.into_iter().next().unwrap().join();
    let events = s.totals.generated;
    let ratio = calls as f64 * 1000.0 / events as f64;
    eprintln!(
        "100000/s for 4 s: {events} events, {calls} redis calls = {ratio:.3} per 1000 events (lease {lease} tokens), per window {w:?}"
    );
    assert!(events > 300_000, "{events} events");
    assert!(ratio <= 1.0, "{calls} calls for {events} events");
}

/// A server of its own and a run on leases from it: 20,000/s global, 10,000/s in fallback.
fn leased_run(key: &str) -> (RedisServer, Run) {
    let redis = RedisServer::start();
    let run = start(&redis.url(), 20_000, key, "  expected_instances: 2\n");
    let stats = &run.shared.limiter;
    let leased = wait_for(Instant::now() + Duration::from_secs(10), || {
        stats.granted.load(Ordering::Relaxed) > 0 && run.totals().generated >= 10_000
    });
    assert!(leased, "no leased events");
    assert_eq!(stats.mode_name(), "redis");
    (redis, run)
}

/// Waits (10 s at most) for leases to come back after `what`, and returns how long it took.
fn leases_resume(stats: &LimiterStats, what: &str) -> Duration {
    let t = Instant::now();
    assert!(
        wait_for(t + Duration::from_secs(10), || stats.mode_name() == "redis"),
        "leases did not resume within 10 s of {what}"
    );
    let took = t.elapsed();
    let granted = stats.granted.load(Ordering::Relaxed);
    assert!(
        wait_for(Instant::now() + Duration::from_secs(5), || stats.granted.load(Ordering::Relaxed)
            > granted),
        "no lease after {what}"
    );
    took
}

#[test]
fn redis_down_falls_back_then_recovers() {
    let (mut redis, run) = leased_run("outage");
    let stats = run.shared.limiter.clone();
    let generated = || run.totals().generated;
    let within = |secs: u64| Instant::now() + Duration::from_secs(secs);
    // No stall: at least 2000 events (a fifth of the 10000/s fallback rate) within a second.
    let progresses = |what: &str| {
        let (from, t) = (generated(), Instant::now());
        let ok = wait_for(t + Duration::from_secs(1), || generated() >= from + 2_000);
        eprintln!("  {what}: 2000 events took {} ms", t.elapsed().as_millis());
        assert!(ok, "{what}: stalled, {} events in 1 s", generated() - from);
    };
    progresses("on leases");

    redis.kill();
    let killed = Instant::now();
    assert!(
        wait_for(within(10), || stats.mode_name() == "fallback"),
        "no fallback within 10 s of the kill"
    );
    let to_fallback = killed.elapsed();
    progresses("in fallback");
    // Stay down until the breaker's trial call (after 1 s open) has failed as well.
    let calls = stats.redis_calls.load(Ordering::Relaxed);
    assert!(
        wait_for(within(10), || stats.redis_calls.load(Ordering::Relaxed) > calls),
        "no trial call while Redis was down"
    );
    progresses("in fallback after a trial call");
    assert_eq!(stats.mode_name(), "fallback", "a trial call against a dead Redis cannot succeed");

    redis.restart();
    let to_redis = leases_resume(&stats, "the restart");
    progresses("on leases again");

    run.stop();
    let transitions = stats.transitions.load(Ordering::Relaxed);
    let s = run.join();
    eprintln!(
        "fallback {} ms after the kill, leases {} ms after the restart, {transitions} transitions, total {}",
        to_fallback.as_millis(),
        to_redis.as_millis(),
        s.totals.generated
    );
    assert!(s.error.is_none(), "{:?}", s.error);
    // A dead Redis refuses connections at once: about 60 ms, at worst 3 x the 200 ms timeout.
    assert!(
        to_fallback <= Duration::from_millis(1000),
        "fallback {} ms after the kill",
        to_fallback.as_millis()
    );
    // At most the breaker's 1 s open wait, then one trial call.
    assert!(
        to_redis <= Duration::from_millis(5000),
        "leases resumed {} ms after the restart",
        to_redis.as_millis()
    );
    assert!(transitions >= 2, "{transitions} transitions");
    assert_eq!(stats.mode_name(), "redis");
}

/// Samples `f` every few ms until `done` holds or `limit` passes, and returns the samples with
/// their times.
fn sample_until(
    limit: Duration,
    f: impl Fn() -> u64,
    mut done: impl FnMut() -> bool,
) -> Vec<(Instant, u64)> {
    let end = Instant::now() + limit;
    let mut out = vec![(Instant::now(), f())];
    while Instant::now() < end && !done() {
        // A sampling interval: each sample carries its own time.
        std::thread::sleep(Duration::from_millis(5));
        out.push((Instant::now(), f()));
    }
    out
}

/// The longest time `samples` show no progress, and where it started.
fn longest_stall(samples: &[(Instant, u64)]) -> (Duration, Instant) {
    let mut last = samples[0];
    let mut worst = (Duration::ZERO, last.0);
    for &(t, n) in &samples[1..] {
        if n > last.1 {
            last = (t, n);
        } else if t - last.0 > worst.0 {
            worst = (t - last.0, last.0);
        }
    }
    worst
}

#[test]
fn hung_redis_falls_back_without_a_stall() {
    let (mut redis, run) = leased_run("hung");
    let stats = run.shared.limiter.clone();
    let generated = || run.totals().generated;

    // Frozen, not dead: connections are accepted by the kernel and then nothing answers.
    redis.pause();
    let paused = Instant::now();
    let mut to_fallback = None;
    let mut samples = sample_until(Duration::from_secs(5), generated, || {
        if to_fallback.is_none() && stats.mode_name() == "fallback" {
            to_fallback = Some(paused.elapsed());
        }
        to_fallback.is_some()
    });
    // And a second in fallback, still frozen, through the breaker's trial call.
    samples.extend(sample_until(Duration::from_secs(1), generated, || false));
    let (stall, stall_at) = longest_stall(&samples);
    let per_100ms: Vec<u64> = samples
        .iter()
        .scan((paused, samples[0].1), |(at, from), &(t, n)| {
            if t - *at < Duration::from_millis(100) {
                return Some(None);
            }
            let d = n - *from;
            *at += Duration::from_millis(100);
            *from = n;
            Some(Some(d))
        })
        .flatten()
        .collect();
    eprintln!(
        "hung redis: fallback after {:?}, longest stall {} ms (from {} ms after the pause), events per 100 ms: {per_100ms:?}",
        to_fallback.map(|d| d.as_millis()),
        stall.as_millis(),
        stall_at.saturating_duration_since(paused).as_millis(),
    );

    redis.resume();
    let to_redis = leases_resume(&stats, "SIGCONT");
    eprintln!("  leases {} ms after SIGCONT", to_redis.as_millis());
    run.stop();
    let s = run.join();
    assert!(s.error.is_none(), "{:?}", s.error);

    let to_fallback = to_fallback.expect("no fallback within 5 s of freezing Redis");
    assert!(
        to_fallback <= Duration::from_millis(1500),
        "fallback {} ms after freezing Redis",
        to_fallback.as_millis()
    );
    assert!(
        stall < Duration::from_millis(500),
        "no event for {} ms with Redis frozen; per 100 ms: {per_100ms:?}",
        stall.as_millis()
    );
}

/// Starts an engine on `url` and returns the error it refused to start with.
fn start_error(url: &str) -> spate_engine::ConfigError {
    let yaml = format!("sink: null\nthreads: 1\npin: false\nduration: 5s\nredis:\n  url: {url}\n  global_rate: 100\n  limit_key: k\n");
    let cfg = RawConfig::from_yaml(&yaml).unwrap().validate().unwrap();
    let t = Instant::now();
    let e = match spate_engine::start(cfg, StartOptions::default()) {
        Ok(run) => {
            run.stop();
            panic!("{} started a run", url);
        }
        Err(spate_engine::EngineError::Config(c)) => c,
        Err(e) => panic!("{url}: not a config error: {e}"),
    };
    eprintln!("{url}: refused in {} ms: {e}", t.elapsed().as_millis());
    assert_eq!(e.key, "redis.url", "{e}");
    assert!(t.elapsed() < Duration::from_secs(2), "took {:?} to give up", t.elapsed());
    e
}

#[test]
fn redis_that_cannot_be_used_at_start_is_a_config_error() {
    let redis = RedisServer::start_with_password("s3cret");
    let port = redis.port();
    let e = start_error(&format!("redis://:hunter2@127.0.0.1:{port}"));
    assert!(
        e.message.contains("refused the credentials") && e.fix.contains("redis.password_file"),
        "{e}"
    );
    assert!(!e.to_string().contains("hunter2"), "the password is not printed: {e}");
    let e = start_error(&format!("redis://127.0.0.1:{port}"));
    assert!(
        e.message.contains("requires a password")
            && e.message.contains("NOAUTH")
            && e.fix.contains("password_file"),
        "{e}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = start_error(&format!("redis://:s3cret@127.0.0.1:{closed}"));
    assert!(e.message.contains("cannot reach Redis") && !e.to_string().contains("s3cret"), "{e}");

    let mut hung = RedisServer::start();
    hung.pause();
    let e = start_error(&hung.url());
    assert!(e.message.contains("did not answer within 200 ms"), "{e}");
    hung.resume();

    // The right password: leases.
    let run = start(&format!("redis://:s3cret@127.0.0.1:{port}"), 1000, "auth", "");
    let stats = run.shared.limiter.clone();
    assert!(
        wait_for(Instant::now() + Duration::from_secs(10), || stats
            .granted
            .load(Ordering::Relaxed)
            > 0),
        "no lease with the right password"
    );
    run.stop();
    assert!(run.join().error.is_none());
}

#[test]
fn grant_script_grants_what_fits_and_reloads() {
    let redis = RedisServer::start();
    let mut con = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let script = redis::Script::new(GRANT_SCRIPT);
    let calls = AtomicU64::new(0);
    let key = "spate:limit:{script}";
    // A key that looks like an injection attempt is just data in ARGV.
    let g = call_grant(
        &mut con,
        &script,
        key,
        60,
        1,
        100,
        1_000_000,
        "a'); redis.call('FLUSHALL",
        1,
        &calls,
    )
    .unwrap();
    assert_eq!((g.granted, g.instances), (60, 1));
    assert_eq!(calls.load(Ordering::Relaxed), 3, "NOSCRIPT, SCRIPT LOAD, EVALSHA");
    let g = call_grant(&mut con, &script, key, 60, 1, 100, 1_000_000, "b", 1, &calls).unwrap();
    assert_eq!((g.granted, g.instances, g.used), (40, 2, 100), "partial grant");
    let g = call_grant(&mut con, &script, key, 60, 1, 100, 1_000_000, "b", 2, &calls).unwrap();
    assert_eq!(g.granted, 0);
    assert!(g.retry_after_us > 0 && g.retry_after_us <= 1_000_000, "{g:?}");
    assert_eq!(calls.load(Ordering::Relaxed), 5);
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut con).unwrap();
    let g = call_grant(&mut con, &script, key, 1, 1, 100, 1_000_000, "b", 3, &calls).unwrap();
    assert_eq!(g.granted, 0, "still full after reload");
    // The window empties on Redis's clock (the one the script reads): wait until the newest
    // lease is a window old.
    let newest: Vec<(String, f64)> =
        redis::cmd("ZRANGE").arg(key).arg(-1).arg(-1).arg("WITHSCORES").query(&mut con).unwrap();
    let newest_us = newest[0].1 as u64;
    let mut redis_now_us = || {
        let (s, us): (u64, u64) = redis::cmd("TIME").query(&mut con).unwrap();
        s * 1_000_000 + us
    };
    assert!(
        wait_for(Instant::now() + Duration::from_secs(5), || redis_now_us()
            >= newest_us + 1_000_000),
        "window did not pass"
    );
    let g = call_grant(&mut con, &script, key, 500, 1, 100, 1_000_000, "c", 1, &calls).unwrap();
    assert_eq!(g.granted, 100, "window emptied");
    let n: u64 = redis::cmd("ZCARD").arg(key).query(&mut con).unwrap();
    assert_eq!(n, 1);
}

#[test]
fn grant_script_refuses_slivers_and_says_when_enough_is_free() {
    let redis = RedisServer::start();
    let mut con = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let script = redis::Script::new(GRANT_SCRIPT);
    let calls = AtomicU64::new(0);
    let key = "spate:limit:{least}";
    let window = 1_000_000;
    let score = |con: &mut redis::Connection, i: isize| -> u64 {
        let m: Vec<(String, f64)> =
            redis::cmd("ZRANGE").arg(key).arg(i).arg(i).arg("WITHSCORES").query(con).unwrap();
        m[0].1 as u64
    };
    let g = call_grant(&mut con, &script, key, 30, 30, 100, window, "a", 1, &calls).unwrap();
    assert_eq!(g.granted, 30);
    let first = score(&mut con, 0);
    // Redis's clock must move between the two grants (their scores are compared).
    std::thread::sleep(Duration::from_millis(5));
    let g = call_grant(&mut con, &script, key, 60, 60, 100, window, "b", 1, &calls).unwrap();
    assert_eq!(g.granted, 60);
    let second = score(&mut con, 1);
    assert!(second > first);
    // 10 left: below the least of 20, so nothing, and retry when the first lease (30) leaves.
    let g = call_grant(&mut con, &script, key, 40, 20, 100, window, "c", 1, &calls).unwrap();
    assert_eq!((g.granted, g.used), (0, 90), "{g:?}");
    let (s, us): (u64, u64) = redis::cmd("TIME").query(&mut con).unwrap();
    let expect = first + window - (s * 1_000_000 + us);
    // (The script read Redis's clock a little before this test did.)
    assert!(g.retry_after_us.abs_diff(expect) < 50_000, "{g:?}, first lease leaves in {expect} µs");
    // Needing 45 more than the 10 free: the first (30) is not enough, the second (60) is.
    let g = call_grant(&mut con, &script, key, 60, 55, 100, window, "c", 2, &calls).unwrap();
    let (s, us): (u64, u64) = redis::cmd("TIME").query(&mut con).unwrap();
    let expect = second + window - (s * 1_000_000 + us);
    assert!(
        g.granted == 0 && g.retry_after_us.abs_diff(expect) < 50_000,
        "{g:?}, second leaves in {expect} µs"
    );
    // At or above the least: the remainder is granted.
    let g = call_grant(&mut con, &script, key, 40, 10, 100, window, "c", 3, &calls).unwrap();
    assert_eq!((g.granted, g.used), (10, 100));
}

#[test]
fn redis_section_parses_and_flags_override() {
    let file = spate_engine::config::parse(
        "sink: null\nredis:\n  url: redis://:pw@127.0.0.1:1\n  global_rate: 500\n  limit_key: a\n  lease_ms: 20\n",
    )
    .unwrap();
    let mut flags = spate_engine::config::Flags::default();
    flags.set(
        "--global-rate",
        spate_engine::config::Target::Path(&["redis", "global_rate"]),
        Some(900u64.into()),
    );
    let c = RawConfig::from_tree(flags.apply(file).unwrap()).unwrap().validate().unwrap();
    let r = c.redis.as_ref().unwrap();
    assert_eq!(r.global_rate.get(), 900);
    assert_eq!(r.lease, Duration::from_millis(20));
    assert_eq!(c.rate.per_sec(), Some(900), "the global rate rules");
    assert!(!format!("{c:?}").contains(":pw@"), "password in Debug");
    let e = RawConfig::from_yaml("redis:\n  urll: x\n").unwrap_err();
    assert!(e.message.contains("urll"), "{e}");
    let e = RawConfig::from_yaml("redis:\n  url: redis://h\n  limit_key: a\n")
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(e.key, "redis.global_rate");
}
