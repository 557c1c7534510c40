//! Public-API tests of the pipeline: workers -> rings -> flush thread -> sink, with exact
//! accounting. Every run is bounded by a count and a duration.

use std::time::{Duration, Instant};

use spate_core::clock::Clock;
use spate_engine::config::RawRate;
use spate_engine::{RawConfig, StartOptions};
use spate_test_support::eventually;

fn cfg(yaml: &str) -> spate_engine::RunConfig {
    RawConfig::from_yaml(yaml).unwrap().validate().unwrap()
}

#[test]
fn null_sink_counts_exactly() {
    let c = cfg("sink: null\nrate: max\ncount: 1000003\nthreads: 2\nduration: 60s\nsources: {web: 70, app: 20, payment: 10}\n");
    let s = spate_engine::start(c, StartOptions::default()).unwrap().join();
    let t = s.totals;
    assert_eq!(t.generated, 1_000_003);
    assert_eq!(t.delivered, 1_000_003);
    assert_eq!((t.shed, t.failed, t.dead_lettered, t.in_flight), (0, 0, 0, 0));
    assert!(t.balanced(), "{t:?}");
    assert!(s.error.is_none());
}

#[test]
fn file_sink_writes_every_line() {
    let dir = tempdir();
    let path = dir.join("out.jsonl");
    let c = cfg(&format!(
        "sink: \"file:{}\"\nrate: max\ncount: 50000\nthreads: 2\nduration: 60s\n",
        path.display()
    ));
    let s = spate_engine::start(c, StartOptions::default()).unwrap().join();
    assert_eq!(s.totals.delivered, 50_000);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 50_000);
    for line in text.lines().take(1000) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["id"].as_str().unwrap().contains('-'));
    }
    assert_eq!(s.totals.delivered_bytes, text.len() as u64);
}

#[test]
fn rate_limited_run_meets_count_and_rate() {
    // 2,000 events at 10,000/s: about 0.2 s. Timing is not asserted tightly here (benchmarks
    // measure precision); only that the limiter paced it rather than running flat out.
    let c = cfg("sink: null\nrate: 10000\ncount: 2000\nthreads: 2\nduration: 30s\n");
    let s = spate_engine::start(c, StartOptions::default()).unwrap().join();
    assert_eq!(s.totals.generated, 2000);
    assert!(s.elapsed_s >= 0.15, "ran in {}s: not paced", s.elapsed_s);
    assert!(s.totals.balanced());
}

#[test]
fn stop_drains_and_balances() {
    let c = cfg("sink: null\nrate: 200000\nthreads: 2\nduration: 60s\n");
    let run = spate_engine::start(c, StartOptions::default()).unwrap();
    eventually(Duration::from_secs(10), "events generated", || {
        (run.totals().generated >= 1000).then_some(())
    });
    run.stop();
    let s = run.join();
    assert!(s.totals.generated >= 1000);
    assert_eq!(s.totals.generated, s.totals.delivered);
    assert_eq!(s.totals.in_flight, 0);
    assert!(s.totals.balanced());
}

#[test]
fn live_rate_change_takes_effect() {
    let c = cfg("sink: null\nrate: 1000\nthreads: 1\nduration: 60s\n");
    let run = spate_engine::start(c, StartOptions::default()).unwrap();
    // At 1,000/s, 200 events take 200 ms; at 100,000/s, 20 times as many take 40 ms. The wait
    // has a deadline far below what the old rate would need for them (4 s), so the new rate shows.
    eventually(Duration::from_secs(10), "200 events at the first rate", || {
        (run.totals().generated >= 200).then_some(())
    });
    let before = run.totals().generated;
    let changed = Instant::now();
    run.set_rate(spate_engine::config::parse_rate(&RawRate::Num(100_000), "rate").unwrap());
    eventually(Duration::from_secs(2), "20x more events at the new rate", || {
        (run.totals().generated >= before + 20 * 200).then_some(())
    });
    let took = changed.elapsed();
    run.stop();
    let s = run.join();
    assert!(
        took < Duration::from_secs(2),
        "4,000 events took {took:?}: the old rate would take 4 s"
    );
    assert!(s.totals.balanced());
}

#[test]
fn every_format_runs_through_the_pipeline() {
    for f in ["json", "logfmt", "apache_common", "apache_combined", "rfc5424", "rfc3164"] {
        let c = cfg(&format!(
            "sink: null\nrate: max\ncount: 20000\nthreads: 2\nduration: 30s\nformat: {f}\n"
        ));
        let s = spate_engine::start(c, StartOptions::default()).unwrap().join();
        assert_eq!(s.totals.delivered, 20_000, "{f}");
        assert!(s.totals.bytes > 20_000 * 40, "{f}: {} bytes", s.totals.bytes);
    }
}

fn tempdir() -> std::path::PathBuf {
    let d =
        std::env::temp_dir().join(format!("spate-test-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// A fake clock drives a whole run: the workers' waits move time forward instead of sleeping,
/// so a minute at 1,000/s passes at once and the count is the schedule's, exactly.
#[test]
fn a_fake_clock_drives_a_whole_run() {
    let clock = spate_core::clock::FakeClock::new();
    let c = cfg("sink: null\nrate: 1000\nduration: 60s\nthreads: 1\n");
    let opts =
        StartOptions { clock: Some(std::sync::Arc::new(clock.clone())), ..Default::default() };
    let s = spate_engine::start(c, opts).unwrap().join();
    let t = s.totals;
    assert!(t.balanced(), "{t:?}");
    assert_eq!((t.delivered, t.in_flight), (t.generated, 0));
    assert!(
        clock.now_ns() >= 60_000_000_000,
        "the run ended before its duration: {} ns",
        clock.now_ns()
    );
    eprintln!("fake-clock run: {} events in {} ns of fake time", t.generated, clock.now_ns());
    assert_eq!(t.generated, 60_000, "{t:?}");
}

/// A rate changed while running is the rate the summary reports.
#[test]
fn the_summary_reports_the_rate_in_force() {
    let run = spate_engine::start(
        cfg("sink: null\nrate: 1000\ncount: 3000\nthreads: 1\nduration: 30s\n"),
        StartOptions::default(),
    )
    .unwrap();
    run.set_rate(spate_limit::Rate::PerSec(std::num::NonZeroU64::new(5000).unwrap()));
    let s = run.join();
    assert_eq!(s.rate, "5000/s");
    assert_eq!(s.totals.generated, 3000);
}
