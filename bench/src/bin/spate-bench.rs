//! `spate-bench`: measurements that are not micro-benchmarks.
//!
//! - `spate-bench rate [--rates 10,1000,100000,1000000] [--duration 10s] [--threads 2]`:
//!   rate precision. Runs the engine in process into the null sink at each target rate and
//!   samples the generated counter every 100 ms on a fixed grid; prints the achieved average
//!   (error against the target) and the worst 100 ms window as a multiple of its share.
//! - `spate-bench bare-producer --brokers B --topic T [--count N] [--size 200 | --payloads FILE] [--headers]`: the librdkafka
//!   ceiling: a bare rdkafka `BaseProducer` loop sending pre-built payloads with the same client
//!   settings spate uses (acks all, idempotence, lz4, linger 5 ms), polled from one thread.
//! - `spate-bench outage [--down 60s] [--rate 50000] [--budget-mib 64]`: Kafka outage on the
//!   embedded cluster (librdkafka mock `broker_down` for `--down`, then up): RSS every 5 s, the
//!   breaker's transitions, and the final accounting (zero loss expected under `block`).
//! - `spate-bench tcp-count --listen ADDR [--expect N] [--idle 5s]`: a TCP receiver for the
//!   loggen comparison (`scripts/compare-tcp.sh`): counts lines and bytes on every connection,
//!   first byte to last, and prints them as JSON once `--expect` lines arrived or the senders
//!   went quiet for `--idle`. Both tools are measured here, at the receiving end.
//! - `spate-bench soak SCENARIO.yaml [--report PATH]`: a scenario (YAML, see
//!   bench/scenarios/) is a run config plus `warmup` and `sample` settings. Prints throughput,
//!   acked vs generated, RSS and CPU over time, latency p50/p99/p99.9, and writes a JSON report.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use spate_bench::{cpu_seconds, rss_bytes, sample_windows};
use spate_engine::config::{parse_duration, RawRate};
use spate_engine::{RawConfig, StartOptions};

use spate_engine::alloc::MiMalloc;

/// The same allocator and settings as the `spate` binary, so the bare loop is a fair ceiling.
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> Result<()> {
    spate_engine::alloc::keep_freed_pages();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("rate") => rate(&args[1..]),
        Some("soak") => soak(&args[1..]),
        Some("bare-producer") => bare_producer(&args[1..]),
        Some("outage") => outage(&args[1..]),
        Some("tcp-count") => tcp_count(&args[1..]),
        _ => bail!("usage: spate-bench rate [--rates 10,1000,100000,1000000] [--duration 10s] [--threads 2]\n       spate-bench soak SCENARIO.yaml [--report PATH]\n       spate-bench bare-producer --brokers B --topic T [--count N] [--size 200]"),
    }
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

fn rate(args: &[String]) -> Result<()> {
    let rates: Vec<u64> = flag(args, "--rates")
        .unwrap_or("10,1000,100000,1000000")
        .split(',')
        .map(|r| r.trim().parse())
        .collect::<Result<_, _>>()?;
    let duration = parse_duration(flag(args, "--duration").unwrap_or("10s"), "--duration")?;
    let threads: usize = flag(args, "--threads").unwrap_or("2").parse()?;
    println!(
        "{:>10} {:>12} {:>12} {:>9} {:>14} {:>10}",
        "target/s", "events", "achieved/s", "error %", "worst 100ms", "x share"
    );
    let mut all_ok = true;
    for r in rates {
        let raw = RawConfig {
            rate: Some(RawRate::Num(r)),
            sink: spate_engine::sink::config::RawSink::Null(Default::default()),
            threads: Some(threads),
            duration: Some(duration.into()),
            ..Default::default()
        };
        let cfg = raw.validate()?;
        let run = spate_engine::start(cfg, StartOptions::default())?;
        let shared = run.shared.clone();
        let windows = sample_windows(
            || shared.counters.totals().generated,
            Duration::from_millis(100),
            duration,
            || run.is_finished(),
        );
        let s = run.join();
        let achieved = s.totals.generated as f64 / duration.as_secs_f64();
        let err = (achieved - r as f64) / r as f64 * 100.0;
        let share = r as f64 / 10.0;
        let worst = windows.iter().copied().max().unwrap_or(0);
        let ratio = worst as f64 / share;
        all_ok &= err.abs() <= 0.5 && ratio <= 2.0;
        println!(
            "{:>10} {:>12} {:>12.1} {:>+9.3} {:>14} {:>10.2}",
            r, s.totals.generated, achieved, err, worst, ratio
        );
    }
    println!(
        "targets (|error| <= 0.5 %, worst window <= 2x share): {}",
        if all_ok { "met" } else { "NOT met" }
    );
    Ok(())
}

/// A soak scenario: a run config plus measurement settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    name: String,
    /// Excluded from the figures.
    #[serde(default)]
    warmup: Option<String>,
    /// Sampling period for the time series. Default 1s.
    #[serde(default)]
    sample: Option<String>,
    /// Kafka only: audit the topic with `spate verify` while the run goes (a concurrent
    /// consumer, so the embedded cluster's trimming of old data does not hide anything).
    #[serde(default)]
    verify: bool,
    /// Runs started side by side in this process, each an instance with its own limiter (with
    /// `run.redis`, its own Redis connection and leases). Default 1; `--instances N` overrides.
    #[serde(default)]
    instances: Option<usize>,
    /// The run's config, as a config file writes it.
    run: serde_yaml_ng::Value,
}

#[derive(Debug, Serialize)]
struct Point {
    t_s: f64,
    generated_per_s: f64,
    delivered_per_s: f64,
    rss_mb: f64,
    cpu_pct: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    scenario: String,
    measured_s: f64,
    generated: u64,
    delivered: u64,
    acked_ratio: f64,
    events_per_sec: f64,
    delivered_per_sec: f64,
    rate_error_pct: Option<f64>,
    rss_mb_start: f64,
    rss_mb_end: f64,
    rss_mb_max: f64,
    cpu_s_per_million_events: f64,
    latency_ms: Option<spate_engine::latency::Percentiles>,
    summary: spate_engine::Summary,
    series: Vec<Point>,
    verify: Option<spate::verify::VerifyReport>,
    instances: usize,
    /// Totals per instance (the figures above are their sum).
    instance_totals: Vec<spate_engine::stats::Totals>,
    redis_calls: u64,
}

fn soak(args: &[String]) -> Result<()> {
    let path = args.first().context("give a scenario file")?;
    let sc: Scenario = serde_yaml_ng::from_str(
        &std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?,
    )
    .with_context(|| format!("bad scenario {path}"))?;
    let warmup =
        sc.warmup.as_deref().map(|w| parse_duration(w, "warmup")).transpose()?.unwrap_or_default();
    let sample = sc
        .sample
        .as_deref()
        .map(|w| parse_duration(w, "sample"))
        .transpose()?
        .unwrap_or(Duration::from_secs(1));
    let cfg = RawConfig::from_tree(sc.run.clone())?.validate()?;
    let target = cfg.rate.per_sec();
    let run_for = cfg.duration;
    let mut opts = StartOptions::default();
    let mut verifier = None;
    // Kept until the verifier is done: the run alone would drop the embedded cluster at its end.
    let mut keep_broker = None;
    let kafka = cfg.sink.kafka().cloned();
    let is_kafka = kafka.is_some();
    let mut brokers = kafka.as_ref().and_then(|k| k.brokers.clone()).unwrap_or_default();
    let topic = kafka.as_ref().map(|k| k.topic.clone()).unwrap_or_default();
    if let Some(k) = kafka.as_ref().filter(|k| k.brokers.is_none()) {
        // One embedded cluster for every instance of the scenario (and for the verifier).
        let broker = std::sync::Arc::new(spate_engine::sink::kafka::EmbeddedBroker::start(1)?);
        if !k.topic.contains('{') {
            broker.create_topic(&k.topic, k.partitions)?;
        }
        brokers = broker.bootstrap().to_string();
        opts.embedded = Some(broker.clone());
        keep_broker = Some(broker);
    }
    if sc.verify {
        use spate::verify::{verify, VerifyOptions};
        anyhow::ensure!(is_kafka, "verify: true needs the kafka sink");
        anyhow::ensure!(!topic.contains('{'), "verify: true needs one topic, not a template");
        let run_id = spate_gen::RunId::random();
        opts.run_id = Some(run_id);
        let vo = VerifyOptions {
            brokers,
            topic: topic.clone(),
            expect: None,
            idle_timeout: Duration::from_secs(15),
            run_id: Some(run_id.to_string()),
            json: true,
            security: Default::default(),
        };
        verifier = Some(std::thread::spawn(move || verify(&vo)));
    }
    let instances =
        flag(args, "--instances").map(str::parse).transpose()?.or(sc.instances).unwrap_or(1).max(1);
    anyhow::ensure!(!(sc.verify && instances > 1), "verify: true runs one instance");
    let target = target.map(|r| if cfg.redis.is_some() { r } else { r * instances as u64 });
    let runs: Vec<spate_engine::Run> = (0..instances)
        .map(|_| spate_engine::start(cfg.clone(), opts.clone()))
        .collect::<Result<_, _>>()?;
    let run = Fleet(runs);
    eprintln!("soak {}: warm-up {:?}", sc.name, warmup);
    let t0 = Instant::now();
    while t0.elapsed() < warmup && !run.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let base = run.totals();
    let (rss0, cpu0, m0) = (rss_bytes(), cpu_seconds(), Instant::now());
    let mut series = Vec::new();
    let mut last = (base, cpu0, Instant::now());
    let mut rss_max = rss0;
    // The rate window ends just before the first instance reaches its configured duration (a
    // snapshot is taken there): the drain after generation stops is not part of the rate.
    let window_end = run_for
        .and_then(|d| run.0.iter().map(|r| r.shared.started + d).min())
        .map(|e| e.checked_sub(Duration::from_millis(50)).unwrap());
    let mut at_end: Option<(spate_engine::stats::Totals, Instant)> = None;
    while !run.is_finished() {
        let mut wake = last.2 + sample;
        if let Some(e) = window_end.filter(|_| at_end.is_none()) {
            wake = wake.min(e);
        }
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
        let t = run.totals();
        if let Some(e) = window_end.filter(|e| at_end.is_none() && Instant::now() >= *e) {
            at_end = Some((t, e));
            if Instant::now() < last.2 + sample {
                continue;
            }
        }
        let (cpu, now) = (cpu_seconds(), Instant::now());
        let dt = now.duration_since(last.2).as_secs_f64();
        let rss = rss_bytes();
        rss_max = rss_max.max(rss);
        let p = Point {
            t_s: m0.elapsed().as_secs_f64(),
            generated_per_s: (t.generated - last.0.generated) as f64 / dt,
            delivered_per_s: (t.delivered - last.0.delivered) as f64 / dt,
            rss_mb: rss as f64 / 1e6,
            cpu_pct: (cpu - last.1) / dt * 100.0,
        };
        eprintln!(
            "{:>7.1}s gen {:>11.0}/s  acked {:>11.0}/s  rss {:>7.1} MB  cpu {:>5.0}%",
            p.t_s, p.generated_per_s, p.delivered_per_s, p.rss_mb, p.cpu_pct
        );
        series.push(p);
        last = (t, cpu, now);
    }
    // From the end of warm-up until everything was delivered (for delivered/s).
    let drained_s = m0.elapsed().as_secs_f64().max(1e-9);
    let measured = match at_end {
        Some((_, e)) => e.saturating_duration_since(m0),
        None => m0.elapsed(),
    }
    .as_secs_f64()
    .max(1e-9);
    let (rss1, cpu1) = (rss_bytes(), cpu_seconds());
    let redis_calls: u64 = run
        .0
        .iter()
        .map(|r| r.shared.limiter.redis_calls.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    let summaries: Vec<spate_engine::Summary> =
        run.0.into_iter().map(spate_engine::Run::join).collect();
    let instance_totals: Vec<_> = summaries.iter().map(|s| s.totals).collect();
    let mut summary = summaries[0].clone();
    summary.totals = instance_totals.iter().copied().fold(Default::default(), |a, b| a + b);
    let verified = match verifier {
        Some(v) => {
            eprintln!("soak {}: waiting for the verifier to catch up (15 s idle)", sc.name);
            Some(v.join().map_err(|_| anyhow::anyhow!("verifier panicked"))??)
        }
        None => None,
    };
    drop(keep_broker);
    let t = summary.totals;
    let generated = t.generated - base.generated;
    let delivered = t.delivered - base.delivered;
    // The rate: events generated inside the window (after warm-up, before the end snapshot).
    let eps = (at_end.map_or(t.generated, |(e, _)| e.generated) - base.generated) as f64 / measured;
    let report = Report {
        scenario: sc.name.clone(),
        measured_s: measured,
        generated,
        delivered,
        acked_ratio: if generated > 0 { delivered as f64 / generated as f64 } else { 0.0 },
        events_per_sec: eps,
        delivered_per_sec: delivered as f64 / drained_s,
        rate_error_pct: target.map(|r| (eps - r as f64) / r as f64 * 100.0),
        rss_mb_start: rss0 as f64 / 1e6,
        rss_mb_end: rss1 as f64 / 1e6,
        rss_mb_max: rss_max as f64 / 1e6,
        cpu_s_per_million_events: if generated > 0 {
            (cpu1 - cpu0) / generated as f64 * 1e6
        } else {
            0.0
        },
        latency_ms: summary.latency_ms,
        summary,
        series,
        verify: verified,
        instances,
        instance_totals,
        redis_calls,
    };
    eprintln!(
        "soak {}: {:.0} events/s generated, {:.0}/s acked ({:.4} acked/generated), rate error {}, RSS {:.1} -> {:.1} MB (max {:.1}), {:.2} CPU-s per 1M events, latency {}",
        report.scenario,
        report.events_per_sec,
        report.delivered_per_sec,
        report.acked_ratio,
        report.rate_error_pct.map_or_else(|| "n/a".into(), |e| format!("{e:+.3} %")),
        report.rss_mb_start,
        report.rss_mb_end,
        report.rss_mb_max,
        report.cpu_s_per_million_events,
        report.latency_ms.map_or_else(|| "n/a".into(), |l| format!("p50 {:.2} / p99 {:.2} / p99.9 {:.2} ms", l.p50, l.p99, l.p999)),
    );
    if report.instances > 1 || report.redis_calls > 0 {
        let per: Vec<String> = report
            .instance_totals
            .iter()
            .map(|t| {
                format!(
                    "{:.1} %",
                    t.generated as f64 / report.summary.totals.generated.max(1) as f64 * 100.0
                )
            })
            .collect();
        eprintln!(
            "instances: {} (share of the events, whole run: {}); Redis calls {} = {:.3} per 1,000 events",
            report.instances,
            per.join(", "),
            report.redis_calls,
            report.redis_calls as f64 / report.summary.totals.generated.max(1) as f64 * 1000.0
        );
    }
    if let Some(v) = &report.verify {
        eprintln!(
            "verify: {} records, {} unique of {} generated, missing {}, duplicated {}, malformed {}, trimmed before read {}: {}",
            v.records,
            v.unique,
            report.summary.totals.generated,
            v.missing,
            v.duplicated,
            v.malformed,
            v.trimmed_before_read,
            if v.ok() && v.unique == report.summary.totals.generated { "zero loss" } else { "NOT clean" }
        );
    }
    let out = flag(args, "--report").map_or_else(|| format!("soak-{}.json", sc.name), String::from);
    std::fs::write(&out, serde_json::to_vec_pretty(&report)?)?;
    eprintln!("report: {out}");
    Ok(())
}

fn bare_producer(args: &[String]) -> Result<()> {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let brokers = flag(args, "--brokers").context("--brokers is required")?;
    let topic = flag(args, "--topic").context("--topic is required")?;
    let count: u64 = flag(args, "--count").unwrap_or("2000000").parse()?;
    let size: usize = flag(args, "--size").unwrap_or("200").parse()?;
    let raw = spate_engine::sink::kafka::RawKafka {
        brokers: Some(brokers.into()),
        topic: Some(topic.into()),
        ..Default::default()
    };
    let kcfg = spate_engine::sink::kafka::KafkaConfig::from_raw(&raw)?;
    let producer: BaseProducer = kcfg.client_config(brokers).create()?;
    // Pre-built payloads, cycled: the lines of `--payloads FILE` (the very events spate sends,
    // so compression sees the same bytes), else 1024 synthetic JSON-ish payloads of `size` bytes.
    let payloads: Vec<Vec<u8>> = match flag(args, "--payloads") {
        Some(path) => {
            let text = std::fs::read(path).with_context(|| format!("reading {path}"))?;
            text.split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .take(100_000)
                .map(<[u8]>::to_vec)
                .collect()
        }
        None => (0..1024)
            .map(|i| {
                let mut p = format!("{{\"seq\":{i},\"msg\":\"").into_bytes();
                while p.len() < size.saturating_sub(2) {
                    p.push(b'a' + (p.len() % 26) as u8);
                }
                p.extend_from_slice(b"\"}");
                p
            })
            .collect(),
    };
    anyhow::ensure!(!payloads.is_empty(), "no payloads");
    let n_payloads = payloads.len() as u64;
    let size = payloads.iter().map(Vec::len).sum::<usize>() / payloads.len();
    let with_headers = args.iter().any(|a| a == "--headers");
    const TRACEPARENT: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const SPATE_ID: &[u8] = b"d1f1cc7a33bca03c-0-1234567";
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let mut sent = 0u64;
    while sent < count {
        let p = &payloads[(sent % n_payloads) as usize];
        let mut rec = BaseRecord::<(), _>::to(topic).payload(p);
        if with_headers {
            // The same two headers spate sends, pre-built (values of the same length).
            rec = rec.headers(
                rdkafka::message::OwnedHeaders::new_with_capacity(2)
                    .insert(rdkafka::message::Header {
                        key: "traceparent",
                        value: Some(TRACEPARENT),
                    })
                    .insert(rdkafka::message::Header { key: "spate-id", value: Some(SPATE_ID) }),
            );
        }
        match producer.send(rec) {
            Ok(()) => sent += 1,
            Err((e, _))
                if e.rdkafka_error_code() == Some(rdkafka::error::RDKafkaErrorCode::QueueFull) =>
            {
                producer.poll(Duration::from_millis(1));
            }
            Err((e, _)) => bail!("produce failed: {e}"),
        }
        if sent.is_multiple_of(1024) {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let _ = acked;
    let (dt, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    let unacked = producer.in_flight_count();
    println!(
        "{{\"tool\":\"bare-rdkafka\",\"events\":{count},\"unacked\":{unacked},\"seconds\":{dt:.3},\"events_per_sec\":{:.0},\"mb_per_sec\":{:.1},\"cpu_us_per_event\":{:.3}}}",
        count as f64 / dt,
        count as f64 * size as f64 / dt / 1e6,
        cpu / count as f64 * 1e6
    );
    Ok(())
}

fn outage(args: &[String]) -> Result<()> {
    use spate_engine::sink::kafka::EmbeddedBroker;
    let down = parse_duration(flag(args, "--down").unwrap_or("60s"), "--down")?;
    let rate: u64 = flag(args, "--rate").unwrap_or("50000").parse()?;
    let budget: u64 = flag(args, "--budget-mib").unwrap_or("64").parse()?;
    let broker = std::sync::Arc::new(EmbeddedBroker::start(1)?);
    broker.create_topic("outage", 8)?;
    let warm = Duration::from_secs(5);
    let total = warm + down + Duration::from_secs(20);
    let yaml = format!(
        "sink: kafka\nrate: {rate}\nduration: {}ms\nkafka: {{topic: outage, message_timeout_ms: 5000, retries: 50, max_inflight_bytes: {}}}\n",
        total.as_millis(),
        budget << 20
    );
    let cfg = RawConfig::from_yaml(&yaml)?.validate()?;
    let run = spate_engine::start(
        cfg,
        StartOptions { embedded: Some(broker.clone()), ..Default::default() },
    )?;
    let breaker = run.shared.breaker.clone().context("kafka run has a breaker")?;
    let t0 = Instant::now();
    let mut phase = 0;
    let mut next = Duration::ZERO;
    println!(
        "{:>6} {:>8} {:>10} {:>12} {:>12} {:>10}",
        "t_s", "rss_MB", "breaker", "generated", "delivered", "in_flight"
    );
    while !run.is_finished() {
        let t = t0.elapsed();
        if phase == 0 && t >= warm {
            broker.cluster().broker_down(1)?;
            phase = 1;
            println!("-- broker down");
        }
        if phase == 1 && t >= warm + down {
            broker.cluster().broker_up(1)?;
            phase = 2;
            println!("-- broker up");
        }
        if t >= next {
            let tt = run.totals();
            println!(
                "{:>6.0} {:>8.1} {:>10} {:>12} {:>12} {:>10}",
                t.as_secs_f64(),
                rss_bytes() as f64 / 1e6,
                breaker.state().as_str(),
                tt.generated,
                tt.delivered,
                tt.in_flight
            );
            next += Duration::from_secs(5);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = run.join();
    let t = s.totals;
    println!(
        "final: generated {} delivered {} dead_lettered {} shed {} failed {} in_flight {} balanced {} breaker opened {} times, {} transitions",
        t.generated,
        t.delivered,
        t.dead_lettered,
        t.shed,
        t.failed,
        t.in_flight,
        t.balanced(),
        breaker.opened(),
        breaker.transitions()
    );
    Ok(())
}

fn tcp_count(args: &[String]) -> Result<()> {
    use std::io::Read;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::sync::{Arc, Mutex};
    let listen = flag(args, "--listen").context("--listen is required")?;
    let expect: u64 = flag(args, "--expect").map(str::parse).transpose()?.unwrap_or(u64::MAX);
    let idle = parse_duration(flag(args, "--idle").unwrap_or("5s"), "--idle")?;
    let l = std::net::TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    eprintln!("tcp-count listening on {}", l.local_addr()?);
    let lines = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    // (first byte, last byte) over all connections.
    let span: Arc<Mutex<(Option<Instant>, Option<Instant>)>> = Arc::new(Mutex::new((None, None)));
    {
        let (lines, bytes, span) = (lines.clone(), bytes.clone(), span.clone());
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { continue };
                let (lines, bytes, span) = (lines.clone(), bytes.clone(), span.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 1 << 20];
                    loop {
                        match c.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                let now = Instant::now();
                                {
                                    let mut s = span.lock().unwrap();
                                    s.0.get_or_insert(now);
                                    s.1 = Some(now);
                                }
                                lines.fetch_add(
                                    buf[..n].iter().filter(|&&b| b == b'\n').count() as u64,
                                    Relaxed,
                                );
                                bytes.fetch_add(n as u64, Relaxed);
                            }
                        }
                    }
                });
            }
        });
    }
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let (first, last) = *span.lock().unwrap();
        if lines.load(Relaxed) >= expect
            || (first.is_some() && last.is_some_and(|t| t.elapsed() >= idle))
        {
            let (first, last) = (first.unwrap(), last.unwrap());
            let secs = last.duration_since(first).as_secs_f64().max(1e-9);
            let (n, b) = (lines.load(Relaxed), bytes.load(Relaxed));
            println!(
                "{{\"lines\":{n},\"bytes\":{b},\"seconds\":{secs:.3},\"lines_per_sec\":{:.0},\"mb_per_sec\":{:.1}}}",
                n as f64 / secs,
                b as f64 / secs / 1e6
            );
            return Ok(());
        }
    }
}

/// Several runs measured as one (`instances:` in a scenario).
struct Fleet(Vec<spate_engine::Run>);

impl Fleet {
    fn is_finished(&self) -> bool {
        self.0.iter().all(spate_engine::Run::is_finished)
    }

    fn totals(&self) -> spate_engine::stats::Totals {
        self.0.iter().map(spate_engine::Run::totals).fold(Default::default(), |a, b| a + b)
    }
}
