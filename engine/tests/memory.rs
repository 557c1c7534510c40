//! The memory budget: what cannot fit is refused at start, naming the setting, and a run whose
//! process goes above the high-water mark holds generation back (`block`) or sheds (`shed`),
//! counted, and recovers below the low-water mark. The pressure is real: the test itself
//! allocates and touches memory in the run's process, then frees it. Every wait is bounded.
//! The tests share the process's memory, so they take turns (`TURN`).

use std::time::Duration;

use spate_engine::{RawConfig, StartOptions};
use spate_test_support::eventually;

static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn cfg(yaml: &str) -> Result<spate_engine::RunConfig, spate_engine::ConfigError> {
    RawConfig::from_yaml(yaml).and_then(|r| r.validate())
}

#[test]
fn what_cannot_fit_is_refused_at_start() {
    let _turn = TURN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let e = cfg("sink: null\nmemory_budget: 1MiB\n").unwrap_err();
    assert_eq!(e.key, "memory_budget", "{e}");

    // A record larger than the Kafka producer takes: refused, not dead-lettered by the million.
    let e = cfg("sink: kafka\nsize: 1048576\n").unwrap_err();
    assert_eq!(e.key, "size", "{e}");
    assert!(e.to_string().contains("message.max.bytes"), "{e}");
    cfg("sink: {kafka: {options: {message.max.bytes: '2000000'}}}\nsize: 1048576\n").unwrap();

    // In-flight bytes over half the budget.
    let e = cfg("sink: {kafka: {max_inflight_bytes: 64MiB}}\nmemory_budget: 64MiB\n").unwrap_err();
    assert_eq!(e.key, "sink.kafka.max_inflight_bytes", "{e}");
    // Unset, it is sized within the budget.
    let c = cfg("sink: kafka\nmemory_budget: 64MiB\n").unwrap();
    assert_eq!(c.max_inflight_bytes(), 16 << 20);

    // Batches of the largest events for 4 workers: over half of a 32 MiB budget.
    let c =
        cfg("sink: null\nsize: 1048576\nthreads: 4\nmemory_budget: 32MiB\npin: false\n").unwrap();
    let e = spate_engine::start(c, StartOptions::default()).map(|_| ()).unwrap_err();
    assert!(e.to_string().contains("memory_budget"), "{e}");

    // Pre-rendered events over a quarter of the budget.
    let mut yaml = String::from(
        "sink: null\nmemory_budget: 16MiB\nsources: {wide: 1}\ntemplates:\n  wide:\n    fields:\n",
    );
    for i in 0..1000 {
        yaml.push_str(&format!("      - {{ name: a_field_with_a_long_name_{i:04}, gen: uuid }}\n"));
    }
    let c = cfg(&yaml).unwrap();
    let e = spate_engine::start(c, StartOptions::default()).map(|_| ()).unwrap_err();
    assert!(e.to_string().contains("memory_budget") && e.to_string().contains("wide"), "{e}");
}

/// Touches `mib` MiB so that they are resident, until dropped (a single large allocation is
/// mapped apart, so dropping it gives the memory back).
fn ballast(mib: usize) -> Vec<u8> {
    vec![1u8; mib << 20]
}

fn pressure_run(policy: &str) -> spate_engine::Summary {
    let _turn = TURN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let rss = spate_engine::memory::rss().unwrap();
    // High water at 80 %: the ballast takes the process over it, its release back under 70 %.
    let budget = (rss + (64 << 20)) * 10 / 8 + (8 << 20);
    let c = cfg(&format!(
        "sink: null\nrate: 20000\nthreads: 1\npin: false\nduration: 60s\nbackpressure: {policy}\nmemory_budget: {budget}\n"
    ))
    .unwrap();
    let run = spate_engine::start(c, StartOptions::default()).unwrap();
    let s = run.shared.clone();
    let generated = || s.counters.totals().generated;
    eventually(Duration::from_secs(10), "events before the pressure", || {
        (generated() > 2_000).then_some(())
    });
    let held = ballast(160);
    eventually(Duration::from_secs(10), "the watch to see the pressure", || {
        s.memory.pressed().then_some(())
    });
    let t0 = s.counters.totals();
    // The pause is the observation window, not synchronisation: while pressed, `block`
    // generates nothing past the batch it was filling, `shed` generates only to shed.
    std::thread::sleep(Duration::from_millis(300));
    let t1 = s.counters.totals();
    match policy {
        "block" => assert!(t1.generated - t0.generated <= 1024, "{t0:?} -> {t1:?}"),
        _ => assert!(t1.shed_memory > t0.shed_memory, "{t0:?} -> {t1:?}"),
    }
    assert!(held.iter().step_by(4096).all(|b| *b == 1));
    drop(held);
    eventually(Duration::from_secs(10), "the watch to see the release", || {
        (!s.memory.pressed()).then_some(())
    });
    let resumed = s.counters.totals().delivered;
    eventually(Duration::from_secs(10), "delivery to resume", || {
        (s.counters.totals().delivered > resumed + 2_000).then_some(())
    });
    run.stop();
    run.join()
}

#[test]
fn block_holds_generation_back_and_recovers() {
    let s = pressure_run("block");
    let t = s.totals;
    assert!(t.balanced(), "{t:?}");
    assert_eq!((t.shed, t.failed, t.in_flight), (0, 0, 0), "{t:?}");
    assert_eq!(t.delivered, t.generated);
    assert!(s.memory.pressed >= 1, "{:?}", s.memory);
    assert!(s.memory.peak_rss_bytes > 160 << 20, "{:?}", s.memory);
}

#[test]
fn shed_counts_what_memory_sheds_and_recovers() {
    let s = pressure_run("shed");
    let t = s.totals;
    assert!(t.balanced(), "{t:?}");
    assert!(t.shed_memory > 0, "{t:?}");
    assert_eq!(s.shed_reasons.get("memory"), Some(&t.shed_memory), "{:?}", s.shed_reasons);
    assert_eq!(t.generated, t.delivered + t.shed, "{t:?}");
}
