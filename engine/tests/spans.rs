//! Batch spans reach a collector: OTLP/HTTP decoded by the official protobuf definitions (the
//! `opentelemetry-proto` Python package, in `scripts/py/otlp_receiver.py`), and Zipkin v2 JSON
//! read back by a tiny collector on loopback. `SPATE_PYTHON` names a Python with
//! `scripts/py/requirements.txt` installed (scripts/test.sh makes one).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use spate_engine::sink::kafka::EmbeddedBroker;
use spate_engine::{RawConfig, StartOptions};

/// A Zipkin collector: accepts POSTs forever (the test process ends it), answers 202, keeps
/// the spans and the content types.
fn zipkin() -> (String, Arc<Mutex<Vec<Value>>>) {
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
            let head = String::from_utf8_lossy(&buf[..body_start]).to_ascii_lowercase();
            assert!(head.starts_with("post /api/v2/spans http/1.1\r\n"), "{head}");
            assert!(head.contains("content-type: application/json"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map(|v| v.trim().parse().unwrap())
                .expect("content-length");
            while buf.len() < body_start + len {
                let n = c.read(&mut chunk).unwrap();
                assert!(n > 0);
                buf.extend_from_slice(&chunk[..n]);
            }
            let batch: Vec<Value> =
                serde_json::from_slice(&buf[body_start..body_start + len]).expect("Zipkin v2 JSON");
            keep.lock().unwrap().extend(batch);
            c.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n").unwrap();
        }
    });
    (url, spans)
}

/// The OTLP receiver of `scripts/py`: its URL and the spans it decoded (one JSON line each).
struct Otlp {
    child: Child,
    url: String,
    spans: Arc<Mutex<Vec<Value>>>,
}

impl Drop for Otlp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn otlp() -> Otlp {
    let python = std::env::var("SPATE_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/py/otlp_receiver.py");
    let mut child =
        Command::new(&python).arg(script).stdout(Stdio::piped()).spawn().expect("python starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("the receiver prints its port").unwrap();
    let port = first
        .strip_prefix("PORT ")
        .unwrap_or_else(|| panic!("{first} (is opentelemetry-proto installed in {python}?)"));
    let spans = Arc::new(Mutex::new(Vec::new()));
    let keep = spans.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            keep.lock().unwrap().push(serde_json::from_str::<Value>(&line).expect("a JSON line"));
        }
    });
    Otlp { child, url: format!("http://127.0.0.1:{port}/v1/traces"), spans }
}

fn named<'a>(spans: &'a [Value], name: &str) -> Vec<&'a Value> {
    spans.iter().filter(|s| s["name"] == name).collect()
}

#[test]
fn every_sampled_batch_of_a_null_run_reaches_an_otlp_collector() {
    let rx = otlp();
    let yaml = format!(
        "sink: null\nrate: 50000\ncount: 20000\nthreads: 1\nbatch_size: 100\nduration: 30s\ntracing: {{endpoint: \"{}\", sample: 1}}\n",
        rx.url
    );
    let run = spate_engine::start(
        RawConfig::from_yaml(&yaml).unwrap().validate().unwrap(),
        StartOptions::default(),
    )
    .unwrap();
    let tracer = run.shared.tracer.clone().expect("tracer on");
    let shared = run.shared.clone();
    let s = run.join();
    assert!(s.totals.balanced());
    // Sampling 1: every batch the flush thread took is traced, exactly one root each.
    let batches = shared.counters.flush.batches_popped.load(Relaxed);
    assert!(batches >= 20000 / 100, "{batches} batches");
    let exported = tracer.stats.exported.load(Relaxed);
    assert_eq!(exported, batches * 4, "null sink: batch, generate, ring, produce per batch");
    assert_eq!(tracer.stats.dropped.load(Relaxed), 0);
    // The receiver decodes what the collector accepted (its prints may trail the answer).
    spate_test_support::eventually(
        Duration::from_secs(10),
        "the receiver to print every span",
        || (rx.spans.lock().unwrap().len() as u64 == exported).then_some(()),
    );
    let got = rx.spans.lock().unwrap();
    let roots = named(&got, "batch");
    assert_eq!(roots.len() as u64, batches, "one root span per batch");
    let events: u64 =
        roots.iter().map(|r| r["attrs"]["events"].as_str().unwrap().parse::<u64>().unwrap()).sum();
    assert_eq!(events, 20000, "the root spans cover every event once");
    assert!(got
        .iter()
        .all(|s| s["content_type"] == "application/x-protobuf" && s["service"] == "spate"));
    assert!(got.iter().all(|s| s["trace_id"].as_str().unwrap().len() == 32
        && s["span_id"].as_str().unwrap().len() == 16));
    for root in &roots {
        assert_eq!(root["parent"], "", "a root has no parent");
        let kids: Vec<&Value> = got.iter().filter(|k| k["parent"] == root["span_id"]).collect();
        let names: Vec<&str> = kids.iter().map(|k| k["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["generate", "ring", "produce"]);
        assert!(kids.iter().all(|k| k["trace_id"] == root["trace_id"]));
        assert!(kids.iter().all(|k| k["start"].as_u64() >= root["start"].as_u64()
            && k["end"].as_u64() <= root["end"].as_u64()));
    }
}

#[test]
fn kafka_spans_end_at_the_ack_and_sampling_thins_them() {
    let (url, spans) = zipkin();
    let broker = Arc::new(EmbeddedBroker::start(1).unwrap());
    let yaml = format!(
        "sink: {{kafka: {{topic: t-spans}}}}\nrate: 100000\ncount: 40000\nthreads: 1\nbatch_size: 100\nduration: 30s\ntracing: {{endpoint: \"{url}\", sample: 0.1}}\n"
    );
    let run = spate_engine::start(
        RawConfig::from_yaml(&yaml).unwrap().validate().unwrap(),
        StartOptions { embedded: Some(broker), ..Default::default() },
    )
    .unwrap();
    let shared = run.shared.clone();
    let tracer = run.shared.tracer.clone().expect("tracer on");
    let s = run.join();
    assert_eq!(s.totals.delivered, 40000);
    let got = spans.lock().unwrap();
    assert_eq!(tracer.stats.exported.load(Relaxed), got.len() as u64);
    let roots = named(&got, "batch");
    // Batches are at most 100 events (the adaptive batcher may make them smaller); sampling
    // 0.1 traces every tenth batch (the sampler's first hit may fall anywhere in the first ten).
    let batches = shared.counters.flush.batches_popped.load(Relaxed);
    assert!(batches >= 400, "{batches} batches");
    let (lo, hi) = (batches / 10, batches.div_ceil(10));
    assert!(
        (lo..=hi).contains(&(roots.len() as u64)),
        "{} root spans for {batches} batches, expected {lo}..={hi}",
        roots.len()
    );
    for root in &roots {
        let kids: Vec<&Value> = got.iter().filter(|k| k["parentId"] == root["id"]).collect();
        let names: Vec<&str> = kids.iter().map(|k| k["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["generate", "ring", "produce", "ack"]);
        let end =
            |s: &Value| s["timestamp"].as_u64().unwrap() + s["duration"].as_u64().unwrap_or(0);
        // The root spans the whole batch, ending with the ack.
        assert!(end(kids[3]) <= end(root) + 1, "{root} {}", kids[3]);
        assert!(root["tags"].get("error").is_none(), "{root}");
        assert_eq!(root["tags"]["sink"], "kafka");
    }
}

#[test]
fn a_dead_collector_costs_spans_not_events() {
    // A port nobody listens on: posts fail, batches' spans are counted as dropped.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let yaml = format!(
        "sink: null\nrate: 20000\ncount: 10000\nthreads: 1\nbatch_size: 100\nduration: 30s\ntracing: {{endpoint: \"http://127.0.0.1:{port}/v1/traces\", sample: 1}}\n"
    );
    let run = spate_engine::start(
        RawConfig::from_yaml(&yaml).unwrap().validate().unwrap(),
        StartOptions::default(),
    )
    .unwrap();
    let tracer = run.shared.tracer.clone().unwrap();
    let s = run.join();
    assert_eq!(s.totals.delivered, 10000);
    assert!(s.totals.balanced());
    let st = &tracer.stats;
    assert_eq!(st.exported.load(Relaxed), 0);
    assert!(st.dropped.load(Relaxed) >= 4 * 100, "4 spans per batch of at most 100 events");
    let e = st.last_error.lock().clone().unwrap_or_default();
    assert!(!e.is_empty(), "the failure is reported");
}

#[test]
fn tracing_off_starts_nothing() {
    let c = RawConfig::from_yaml("sink: null\nrate: max\ncount: 1000\nthreads: 1\n")
        .unwrap()
        .validate()
        .unwrap();
    let run = spate_engine::start(c, StartOptions::default()).unwrap();
    assert!(run.shared.tracer.is_none());
    assert_eq!(run.join().totals.generated, 1000);
}
