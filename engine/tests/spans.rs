//! Batch spans reach a Zipkin v2 collector: a tiny HTTP collector on loopback records what
//! spate posts, and the spans are parsed back with spate's own Zipkin types.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spate_engine::sink::kafka::EmbeddedBroker;
use spate_engine::spans::ZipkinSpan;
use spate_engine::{RawConfig, StartOptions};

/// Accepts POSTs forever (the test process ends it), answers 202, keeps the bodies.
fn collector() -> (String, Arc<Mutex<Vec<ZipkinSpan>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v2/spans", l.local_addr().unwrap());
    let spans = Arc::new(Mutex::new(Vec::new()));
    let keep = spans.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            let body_start = loop {
                let n = c.read(&mut chunk).unwrap();
                assert!(n > 0, "connection closed before the headers ended");
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
            };
            let head = String::from_utf8_lossy(&buf[..body_start]).to_string();
            assert!(head.starts_with("POST /api/v2/spans HTTP/1.1\r\n"), "{head}");
            assert!(head.contains("Content-Type: application/json"), "{head}");
            let len: usize =
                head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).map(|v| v.trim().parse().unwrap()).expect("content-length");
            while buf.len() < body_start + len {
                let n = c.read(&mut chunk).unwrap();
                assert!(n > 0);
                buf.extend_from_slice(&chunk[..n]);
            }
            let batch: Vec<ZipkinSpan> = serde_json::from_slice(&buf[body_start..body_start + len]).expect("Zipkin v2 JSON");
            keep.lock().unwrap().extend(batch);
            c.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n").unwrap();
        }
    });
    (url, spans)
}

fn roots(spans: &[ZipkinSpan]) -> Vec<&ZipkinSpan> {
    spans.iter().filter(|s| s.name == "batch").collect()
}

#[test]
fn every_sampled_batch_of_a_null_run_is_exported() {
    let (url, spans) = collector();
    let yaml = format!(
        "sink: null\nrate: 50000\ncount: 20000\nthreads: 1\nbatch_size: 100\nduration: 30s\ntracing: {{endpoint: \"{url}\", sample: 1}}\n"
    );
    let run = spate_engine::start(RawConfig::from_yaml(&yaml).unwrap().validate().unwrap(), StartOptions::default()).unwrap();
    let tracer = run.shared.tracer.clone().expect("tracer on");
    let shared = run.shared.clone();
    let s = run.join();
    assert!(s.totals.balanced());
    let got = spans.lock().unwrap();
    // Sampling 1: every batch the flush thread took is traced, exactly one root each.
    let batches = shared.counters.flush.batches_popped.load(std::sync::atomic::Ordering::Relaxed);
    assert!(batches >= 20000 / 100, "{batches} batches");
    let r = roots(&got);
    assert_eq!(r.len() as u64, batches, "one root span per batch");
    let events: u64 = r.iter().map(|s| s.tags["events"].parse::<u64>().unwrap()).sum();
    assert_eq!(events, 20000, "the root spans cover every event once");
    // Null sink: no acks, so generate, ring and produce only.
    assert_eq!(got.len(), r.len() * 4);
    assert!(got.iter().all(|s| s.trace_id.len() == 32 && s.id.len() == 16 && s.duration >= 1));
    assert!(got.iter().filter(|s| s.name != "batch").all(|s| s.parent_id.is_some()));
    assert_eq!(tracer.stats.exported.load(std::sync::atomic::Ordering::Relaxed), got.len() as u64);
    assert_eq!(tracer.stats.dropped.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[test]
fn kafka_spans_end_at_the_ack_and_sampling_thins_them() {
    let (url, spans) = collector();
    let broker = Arc::new(EmbeddedBroker::start(1).unwrap());
    let yaml = format!(
        "sink: kafka\nrate: 100000\ncount: 40000\nthreads: 1\nbatch_size: 100\nduration: 30s\nkafka: {{topic: t-spans}}\ntracing: {{endpoint: \"{url}\", sample: 0.1}}\n"
    );
    let run = spate_engine::start(
        RawConfig::from_yaml(&yaml).unwrap().validate().unwrap(),
        StartOptions { embedded: Some(broker), ..Default::default() },
    )
    .unwrap();
    let shared = run.shared.clone();
    let s = run.join();
    assert_eq!(s.totals.delivered, 40000);
    let got = spans.lock().unwrap();
    let r = roots(&got);
    // Batches are at most 100 events (the adaptive batcher may make them smaller); sampling
    // 0.1 traces every tenth batch (the sampler's first hit may fall anywhere in the first ten).
    let batches = shared.counters.flush.batches_popped.load(std::sync::atomic::Ordering::Relaxed);
    assert!(batches >= 400, "{batches} batches");
    let (lo, hi) = (batches / 10, batches.div_ceil(10));
    assert!((lo..=hi).contains(&(r.len() as u64)), "{} root spans for {batches} batches, expected {lo}..={hi}", r.len());
    for root in &r {
        let kids: Vec<&ZipkinSpan> = got.iter().filter(|k| k.parent_id.as_deref() == Some(root.id.as_str())).collect();
        let names: Vec<&str> = kids.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["generate", "ring", "produce", "ack"]);
        let ack = kids[3];
        // The root spans the whole batch, ending with the ack.
        assert!(ack.timestamp + ack.duration <= root.timestamp + root.duration + 1);
        assert!(!root.tags.contains_key("error"), "{:?}", root.tags);
    }
}

#[test]
fn a_dead_collector_costs_spans_not_events() {
    // A port nobody listens on: posts fail, batches' spans are counted as dropped.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let yaml = format!(
        "sink: null\nrate: 20000\ncount: 10000\nthreads: 1\nbatch_size: 100\nduration: 30s\ntracing: {{endpoint: \"http://127.0.0.1:{port}/api/v2/spans\", sample: 1}}\n"
    );
    let run = spate_engine::start(RawConfig::from_yaml(&yaml).unwrap().validate().unwrap(), StartOptions::default()).unwrap();
    let tracer = run.shared.tracer.clone().unwrap();
    let s = run.join();
    assert_eq!(s.totals.delivered, 10000);
    assert!(s.totals.balanced());
    let st = &tracer.stats;
    assert_eq!(st.exported.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert!(st.dropped.load(std::sync::atomic::Ordering::Relaxed) >= 4 * 100, "4 spans per batch of at most 100 events");
    assert!(st.last_error.lock().as_deref().unwrap_or("").contains("connect"));
}

#[test]
fn tracing_off_starts_nothing() {
    let c = RawConfig::from_yaml("sink: null\nrate: max\ncount: 1000\nthreads: 1\n").unwrap().validate().unwrap();
    let run = spate_engine::start(c, StartOptions::default()).unwrap();
    assert!(run.shared.tracer.is_none());
    assert_eq!(run.join().totals.generated, 1000);
}
