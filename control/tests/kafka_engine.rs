//! The Kafka path against librdkafka's own mock cluster (a real Kafka protocol endpoint on
//! loopback, in process), with its fault injection. A fresh topic per test; exact counts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use spate::verify::{verify, VerifyOptions};
use spate_core::breaker::State;
use spate_engine::sink::kafka::EmbeddedBroker;
use spate_engine::{RawConfig, StartOptions};
use spate_test_support::eventually;

fn cfg(yaml: &str) -> spate_engine::RunConfig {
    RawConfig::from_yaml(yaml).unwrap().validate().unwrap()
}

fn audit(broker: &EmbeddedBroker, topic: &str, expect: u64) -> spate::verify::VerifyReport {
    verify(&VerifyOptions {
        brokers: broker.bootstrap().into(),
        topic: topic.into(),
        expect: Some(expect),
        idle_timeout: Duration::from_secs(5),
        run_id: None,
        json: true,
        security: Default::default(),
    })
    .unwrap()
}

#[test]
fn produces_and_verifies_exactly() {
    let broker = Arc::new(EmbeddedBroker::start(1).unwrap());
    let c = cfg("sink: kafka\nrate: max\ncount: 30000\nthreads: 2\nduration: 60s\nsources: {web: 1, app: 1}\nkafka: {topic: t-basic, partitions: 3, key: trace_id}\n");
    let s = spate_engine::start(
        c,
        StartOptions { embedded: Some(broker.clone()), ..Default::default() },
    )
    .unwrap()
    .join();
    let t = s.totals;
    assert_eq!(
        (t.generated, t.delivered, t.in_flight, t.failed, t.dead_lettered, t.shed),
        (30_000, 30_000, 0, 0, 0, 0),
        "{s:?}"
    );
    assert!(t.balanced());
    // Every ack is in exactly one of the two histograms: after the warm-up, or in it.
    let count = |p: Option<spate_engine::latency::Percentiles>| p.map_or(0, |p| p.count);
    assert_eq!(count(s.latency_ms) + count(s.warmup_latency_ms), 30_000, "{s:?}");
    let r = audit(&broker, "t-basic", 30_000);
    assert!(r.ok(), "{r:?}");
    assert_eq!((r.unique, r.missing, r.duplicated, r.malformed), (30_000, 0, 0, 0));
}

#[test]
fn warmup_acks_are_kept_apart_and_the_start_is_timed() {
    let broker = Arc::new(EmbeddedBroker::start(1).unwrap());
    let count = |p: Option<spate_engine::latency::Percentiles>| p.map_or(0, |p| p.count);
    // 2,000/s for 2 s with a 1 s warm-up: the first second's events (by schedule) are warm-up.
    let c = cfg(
        "sink: kafka\nrate: 2000\nduration: 2s\nwarmup: 1s\nthreads: 1\nkafka: {topic: t-warm}\n",
    );
    let s = spate_engine::start(
        c,
        StartOptions { embedded: Some(broker.clone()), ..Default::default() },
    )
    .unwrap()
    .join();
    let (warm, steady) = (count(s.warmup_latency_ms), count(s.latency_ms));
    assert_eq!(warm + steady, s.totals.delivered, "{s:?}");
    assert!(
        (1700..=2100).contains(&warm),
        "warm-up acks {warm} of {}, expected about 2,000",
        s.totals.delivered
    );
    assert_eq!(s.warmup_s, 1.0);
    let (ready, first) = (s.sink_ready_ms.unwrap(), s.first_ack_ms.unwrap());
    assert!(ready <= first, "sink ready {ready} ms, first ack {first} ms");
    // No warm-up: every ack is in `latency_ms`.
    let c = cfg("sink: kafka\nrate: max\ncount: 5000\nwarmup: 0s\nthreads: 1\nduration: 60s\nkafka: {topic: t-warm0}\n");
    let s = spate_engine::start(
        c,
        StartOptions { embedded: Some(broker.clone()), ..Default::default() },
    )
    .unwrap()
    .join();
    assert_eq!((count(s.latency_ms), s.warmup_latency_ms), (5000, None), "{s:?}");
}

#[test]
fn topic_template_per_source_and_round_robin() {
    let broker = Arc::new(EmbeddedBroker::start(1).unwrap());
    let c = cfg("sink: kafka\nrate: max\ncount: 9000\nthreads: 1\nduration: 60s\nsources: {web: 1, payment: 1}\nkafka: {topic: \"rr.{source}\", key: round_robin, partitions: 4}\n");
    let s = spate_engine::start(
        c,
        StartOptions { embedded: Some(broker.clone()), ..Default::default() },
    )
    .unwrap()
    .join();
    assert_eq!(s.totals.delivered, 9000);
    let web = audit_all(&broker, "rr.web");
    let pay = audit_all(&broker, "rr.payment");
    assert_eq!(web.records + pay.records, 9000);
    assert!(web.records > 3000 && pay.records > 3000, "{} / {}", web.records, pay.records);
    // Round robin: each topic's records are spread over its 4 partitions evenly, to one record.
    for (topic, total) in [("rr.web", web.records), ("rr.payment", pay.records)] {
        let counts = partition_counts(&broker, topic, 4);
        assert_eq!(counts.iter().sum::<u64>(), total, "{topic}: {counts:?}");
        let (lo, hi) = (total / 4, total.div_ceil(4));
        assert!(
            counts.iter().all(|c| (lo..=hi).contains(c)),
            "{topic}: {counts:?}, expected each in {lo}..={hi}"
        );
    }
}

#[test]
fn retriable_produce_errors_are_retried_and_delivered() {
    let broker = Arc::new(EmbeddedBroker::start(1).unwrap());
    broker.create_topic("t-retry", 2).unwrap();
    // The next 20 produce requests fail with a retriable error; librdkafka retries them.
    let errs = vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 20];
    broker.cluster().request_errors(RDKafkaApiKey::Produce, &errs);
    let c = cfg("sink: kafka\nrate: 20000\ncount: 20000\nthreads: 2\nduration: 60s\nkafka: {topic: t-retry}\n");
    let s = spate_engine::start(
        c,
        StartOptions { embedded: Some(broker.clone()), ..Default::default() },
    )
    .unwrap()
    .join();
    let t = s.totals;
    assert_eq!(
        (t.generated, t.delivered, t.dead_lettered, t.failed, t.in_flight),
        (20_000, 20_000, 0, 0, 0),
        "{s:?}"
    );
    let r = audit(&broker, "t-retry", 20_000);
    assert_eq!((r.missing, r.duplicated), (0, 0), "{r:?}");
}

/// A broker that forgets the producer id (as a restarted in-memory broker does) answers
/// `UnknownProducerId`: the refused records are retried (through a new producer if librdkafka
/// cannot go on), and every event arrives exactly once.
#[test]
fn unknown_producer_id_is_survived_without_loss_or_duplicates() {
    let broker = Arc::new(EmbeddedBroker::start(1).unwrap());
    broker.create_topic("t-pid", 2).unwrap();
    let dlq = std::env::temp_dir().join(format!("spate-pid-{}.jsonl", std::process::id()));
    let c = cfg(&format!(
        "sink: kafka\nrate: 10000\ncount: 30000\nthreads: 1\nduration: 60s\nkafka: {{topic: t-pid, dlq_file: \"{}\"}}\n",
        dlq.display()
    ));
    let run = spate_engine::start(
        c,
        StartOptions { embedded: Some(broker.clone()), ..Default::default() },
    )
    .unwrap();
    delivered_at_least(&run, 5000);
    let errs = vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID; 4];
    broker.cluster().request_errors(RDKafkaApiKey::Produce, &errs);
    let s = run.join();
    let t = s.totals;
    assert_eq!((t.generated, t.shed, t.failed, t.in_flight), (30_000, 0, 0, 0), "{s:?}");
    assert!(t.balanced());
    let r = audit(&broker, "t-pid", 30_000 - t.dead_lettered);
    // Anything not delivered is in the DLQ file (possibly persisted); nothing twice.
    assert_eq!(r.unique, t.delivered, "{r:?} {s:?}");
    assert_eq!((r.duplicated, r.malformed), (0, 0), "{r:?}");
}

#[test]
fn oversized_events_are_dead_lettered() {
    let broker = Arc::new(EmbeddedBroker::start(1).unwrap());
    let dir = std::env::temp_dir().join(format!("spate-dlq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dlq = dir.join("dlq.jsonl");
    let _ = std::fs::remove_file(&dlq);
    // `size` over message.max.bytes is refused at start; events that grow past it by their
    // content (a template's long value) reach the producer and are dead-lettered.
    let sized = "sink: kafka\nsize: 4000\nkafka: {options: {message.max.bytes: \"2000\"}}\n";
    let e = RawConfig::from_yaml(sized).unwrap().validate().unwrap_err();
    assert_eq!(e.key, "size", "{e}");
    let c = cfg(&format!(
        "sink: kafka\nrate: max\ncount: 500\nthreads: 1\nduration: 60s\nsources: {{big: 1}}\ntemplates: {{big: {{fields: [{{name: blob, gen: {{choice: [\"{}\"]}}}}]}}}}\nkafka: {{topic: t-big, dlq_file: \"{}\", options: {{message.max.bytes: \"2000\"}}}}\n",
        "x".repeat(4000),
        dlq.display()
    ));
    let s = spate_engine::start(
        c,
        StartOptions { embedded: Some(broker.clone()), ..Default::default() },
    )
    .unwrap()
    .join();
    let t = s.totals;
    assert_eq!(
        (t.generated, t.delivered, t.dead_lettered, t.failed, t.in_flight),
        (500, 0, 500, 0, 0),
        "{s:?}"
    );
    assert!(t.balanced());
    // Too large for the DLQ topic as well, so they are in the DLQ file, with the error.
    let text = std::fs::read_to_string(&dlq).unwrap();
    assert_eq!(text.lines().count(), 500);
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(line["error"].as_str().unwrap().to_lowercase().contains("size"), "{line}");
    assert!(line["headers"]["traceparent"].as_str().unwrap().starts_with("00-"));
    // `spate dlq replay` sends them again (to a topic that accepts them) and nothing is lost.
    let r = spate::dlq_replay::replay(
        &dlq,
        broker.bootstrap(),
        Some("t-big-replay"),
        &Default::default(),
    )
    .unwrap();
    assert_eq!((r.sent, r.failed, r.bad_lines), (500, 0, 0));
    let a = audit_all(&broker, "t-big-replay");
    assert_eq!((a.records, a.unique, a.duplicated, a.malformed), (500, 500, 0, 0), "{a:?}");
}

/// Broker down for 10 s in the middle of a run, then up: the breaker opens and closes, the run
/// finishes, nothing is lost (policy block) and nothing is duplicated (idempotence).
#[test]
fn broker_outage_mid_run_loses_nothing() {
    let broker = Arc::new(EmbeddedBroker::start(1).unwrap());
    broker.create_topic("t-outage", 8).unwrap();
    let c = cfg("sink: kafka\nrate: 5000\ncount: 80000\nthreads: 2\nduration: 90s\nkafka: {topic: t-outage, message_timeout_ms: 30000, retries: 20, breaker: {open_wait_ms: 1000, min_calls: 10, half_open_calls: 5, slow_call_ms: 120000}}\n");
    let run = spate_engine::start(
        c,
        StartOptions { embedded: Some(broker.clone()), ..Default::default() },
    )
    .unwrap();
    let breaker = run.shared.breaker.clone().unwrap();
    delivered_at_least(&run, 10_000);
    let saw_open = outage(&broker, &breaker, Duration::from_secs(10));
    // After the broker is back the breaker half-opens, its trial calls succeed, and it closes.
    let mut closed_again = false;
    let up_at = Instant::now();
    while !run.is_finished() && up_at.elapsed() < Duration::from_secs(60) {
        closed_again |= saw_open && breaker.state() == State::Closed;
        // Sampling the breaker's state while the run goes on: no event is awaited here.
        std::thread::sleep(Duration::from_millis(10));
    }
    let s = run.join();
    let t = s.totals;
    assert!(saw_open, "breaker never opened during the outage");
    assert!(closed_again, "breaker never closed after the outage (now {:?})", breaker.state());
    assert!(breaker.transitions() >= 3, "open, half-open, closed: {}", breaker.transitions());
    assert!(breaker.opened() >= 1);
    assert_eq!(t.generated, 80_000, "{s:?}");
    assert_eq!(
        (t.delivered, t.dead_lettered, t.shed, t.failed, t.in_flight),
        (80_000, 0, 0, 0, 0),
        "{s:?}"
    );
    assert!(t.balanced());
    let r = audit(&broker, "t-outage", 80_000);
    assert_eq!((r.unique, r.missing, r.malformed), (80_000, 0, 0), "{r:?} {s:?}");
    // spate itself never sent a record twice: no application retry happened, and every record
    // got exactly one successful delivery report (delivered == generated above). The mock
    // cluster may still log a few records twice after `broker_up`: it does not de-duplicate an
    // idempotent producer's resends (reproduced by `the_mock_cluster_appends_idempotent_resends_again`,
    // ADR 003); zero duplicates is asserted against a real broker in scripts/tansu-e2e.sh.
    assert_eq!(t.retried, 0, "{s:?}");
    if r.duplicated > 0 {
        eprintln!(
            "NOTE: the mock cluster logged {} duplicates with no retry by spate: {r:?}",
            r.duplicated
        );
    }
}

/// Why the outage test above can see copies although spate sent each record once: librdkafka's
/// mock cluster checks an idempotent producer's sequence numbers only for a transactional
/// producer (`rd_kafka_mock_validate_records` in rdkafka_mock.c returns at once when the request
/// has no TransactionalId). When a connection drops after the broker appended a request but
/// before its response arrived, librdkafka resends the request with the same producer id and
/// sequence; a real broker answers DUPLICATE_SEQUENCE and writes nothing, the mock appends the
/// records again. Reproduced here on purpose: responses are held back 500 ms, the broker goes
/// down while they are pending and comes back, librdkafka resends, and the mock's log holds more
/// records than spate produced, while spate counts one ack per record and no retry of its own.
/// Against a real broker a restart gives 0 duplicated (scripts/tansu-e2e.sh).
#[test]
fn the_mock_cluster_appends_idempotent_resends_again() {
    let broker = Arc::new(EmbeddedBroker::start(1).unwrap());
    broker.create_topic("t-resend", 1).unwrap();
    let c = cfg("sink: kafka\nrate: 2000\ncount: 8000\nthreads: 1\nduration: 60s\nkafka: {topic: t-resend, message_timeout_ms: 60000}\n");
    let run = spate_engine::start(
        c,
        StartOptions { embedded: Some(broker.clone()), ..Default::default() },
    )
    .unwrap();
    delivered_at_least(&run, 1000);
    // Requests appended, responses pending: then the connection goes.
    broker.cluster().broker_round_trip_time(1, Duration::from_millis(500)).unwrap();
    // The fault's timing is what is tested (requests sent into a 500 ms round trip, the
    // connection cut while their responses are pending, 1 s down), not synchronisation.
    std::thread::sleep(Duration::from_millis(300));
    broker.cluster().broker_down(1).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    broker.cluster().broker_round_trip_time(1, Duration::ZERO).unwrap();
    broker.cluster().broker_up(1).unwrap();
    let s = run.join();
    let t = s.totals;
    assert_eq!(
        (t.generated, t.delivered, t.dead_lettered, t.failed, t.in_flight, t.retried),
        (8000, 8000, 0, 0, 0, 0),
        "{s:?}"
    );
    let r = audit(&broker, "t-resend", 8000);
    assert_eq!((r.unique, r.missing, r.malformed), (8000, 0, 0), "{r:?}");
    eprintln!(
        "mock cluster log after late responses: {} records, {} duplicated",
        r.records, r.duplicated
    );
    assert!(r.duplicated > 0, "the mock did not append the resent requests again: {r:?}");
}

/// Policy `spill`: while the broker is down and the breaker OPEN, generation goes on into the
/// DLQ file. Every event is delivered or in the file; replaying the file fills the topic's gaps.
#[test]
fn spill_policy_writes_to_the_dlq_file_while_the_breaker_is_open() {
    let broker = Arc::new(EmbeddedBroker::start(1).unwrap());
    // 8 partitions: the mock keeps at most 5 MiB of record batches per partition and trims the
    // oldest beyond it (rdkafka_mock.c, `max_size`); 40,000 events and the replayed ones come
    // close to that on 4 partitions when the sticky partitioner favours one.
    broker.create_topic("t-spill", 8).unwrap();
    let dir = std::env::temp_dir().join(format!("spate-spill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dlq = dir.join("spill.jsonl");
    let _ = std::fs::remove_file(&dlq);
    let c = cfg(&format!(
        "sink: kafka\nrate: 5000\ncount: 40000\nthreads: 1\nduration: 60s\nbackpressure: spill\nkafka: {{topic: t-spill, dlq_file: \"{}\", message_timeout_ms: 30000, breaker: {{open_wait_ms: 1000, min_calls: 10, half_open_calls: 5, slow_call_ms: 120000}}}}\n",
        dlq.display()
    ));
    let run = spate_engine::start(
        c,
        StartOptions { embedded: Some(broker.clone()), ..Default::default() },
    )
    .unwrap();
    let breaker = run.shared.breaker.clone().unwrap();
    delivered_at_least(&run, 10_000);
    let saw_open = outage(&broker, &breaker, Duration::from_secs(4));
    let s = run.join();
    let t = s.totals;
    assert!(saw_open, "the breaker never opened");
    assert_eq!(t.generated, 40_000, "{s:?}");
    assert_eq!((t.shed, t.failed, t.in_flight), (0, 0, 0), "{s:?}");
    assert_eq!(t.delivered + t.dead_lettered, 40_000, "{s:?}");
    assert!(t.balanced());
    let text = std::fs::read_to_string(&dlq).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len() as u64,
        t.dead_lettered,
        "every dead-lettered event is a line of the file"
    );
    let spilled = lines.iter().filter(|l| l.contains("spilled")).count();
    assert!(spilled > 1000, "generation went on while open: {spilled} spilled");
    let possibly_persisted = lines.iter().filter(|l| l.contains("possibly persisted")).count();
    // Replaying the file into the same topic completes it: nothing missing.
    let r = spate::dlq_replay::replay(&dlq, broker.bootstrap(), None, &Default::default()).unwrap();
    assert_eq!((r.sent, r.failed, r.bad_lines), (lines.len() as u64, 0, 0));
    let a = audit(&broker, "t-spill", 40_000);
    assert_eq!((a.unique, a.missing, a.malformed), (40_000, 0, 0), "{a:?}");
    assert!(
        a.duplicated as usize <= possibly_persisted,
        "duplicates only from possibly-persisted records: {a:?}"
    );
}

/// Waits (at most 30 s) until the run has delivered `n` events.
fn delivered_at_least(run: &spate_engine::Run, n: u64) {
    eventually(Duration::from_secs(30), &format!("{n} events delivered"), || {
        (run.totals().delivered >= n).then_some(())
    });
}

/// Takes the broker down for `down` (fault injection: the outage's length is the point), then
/// up again; true if the breaker was seen OPEN meanwhile.
fn outage(broker: &EmbeddedBroker, breaker: &spate_core::breaker::Breaker, down: Duration) -> bool {
    broker.cluster().broker_down(1).unwrap();
    let down_at = Instant::now();
    let mut saw_open = false;
    while down_at.elapsed() < down {
        saw_open |= breaker.state() == State::Open;
        // Sampling during the outage, whose length is the fault.
        std::thread::sleep(Duration::from_millis(20));
    }
    broker.cluster().broker_up(1).unwrap();
    saw_open
}

/// Records in each partition of `topic` (high watermarks; the topic was written once).
fn partition_counts(broker: &EmbeddedBroker, topic: &str, partitions: i32) -> Vec<u64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().unwrap();
    (0..partitions)
        .map(|p| {
            let (lo, hi) = c.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap();
            (hi - lo) as u64
        })
        .collect()
}

/// Reads a topic until 2 s pass without a record.
fn audit_all(broker: &EmbeddedBroker, topic: &str) -> spate::verify::VerifyReport {
    let o = VerifyOptions {
        brokers: broker.bootstrap().into(),
        topic: topic.into(),
        expect: None,
        idle_timeout: Duration::from_secs(2),
        run_id: None,
        json: true,
        security: Default::default(),
    };
    verify(&o).unwrap()
}
