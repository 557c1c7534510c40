//! `spate serve` and `spate run --metrics-listen` over real HTTP: the control plane, its
//! errors, Prometheus exposition (checked by promtool and scraped by a real Prometheus), and
//! answers under a max-rate run. Every wait is for a condition, bounded in time.
//!
//! promtool and prometheus come from Debian's `prometheus` package (scripts/test.sh installs
//! it). Without them the tests that need them fail, unless SPATE_SKIP_PROMTOOL=1 is set: then
//! those checks are skipped, each with a SKIPPED line on stderr.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use spate_test_support::eventually;

#[test]
fn lifecycle_start_rate_status_stop() {
    let p = Proc::serve(&[]);
    let a = p.addr.as_str();
    assert_eq!(get(a, "/healthz").status, 200);
    assert_eq!(get(a, "/readyz").status, 200);
    let st = get(a, "/v1/status");
    assert_eq!(st.status, 200);
    assert_eq!(st.json()["state"], "idle");

    let r = post(a, "/v1/start", r#"{"sink": "null", "rate": 2000, "threads": 1, "pin": false}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let run_id = r.json()["run_id"].as_str().unwrap().to_string();
    let again = post(a, "/v1/start", r#"{"sink": "null"}"#);
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.error().contains("already in progress"), "{}", again.body);
    assert_eq!(again.json()["run_id"], run_id.as_str());
    assert_eq!(get(a, "/readyz").status, 503);

    // Live rate change, no restart: the same run speeds up.
    let r = put(a, "/v1/rate", r#"{"rate": 50000}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["previous"], 2000);
    eventually(Duration::from_secs(20), "the current rate to pass 20000/s", || {
        (get(a, "/v1/status").json()["rate"]["current"].as_f64().unwrap_or(0.0) > 20_000.0)
            .then_some(())
    });
    // And to max and back (the local token bucket alone could not switch to or from max).
    assert_eq!(put(a, "/v1/rate", r#"{"rate": "max"}"#).status, 200);
    eventually(Duration::from_secs(10), "the limiter to report unlimited", || {
        (get(a, "/v1/status").json()["limiter"]["mode"] == "unlimited").then_some(())
    });
    assert_eq!(put(a, "/v1/rate", "rate: 1000\n").status, 200, "YAML body");
    let s = get(a, "/v1/status").json();
    assert_eq!(s["state"], "running");
    assert_eq!(s["run_id"], run_id.as_str());
    assert_eq!(s["rate"]["target"], 1000);
    assert_eq!(s["config"]["sink"], "null");
    for k in ["generated", "delivered", "shed", "failed", "dead_lettered", "in_flight"] {
        assert!(s["totals"][k].is_u64(), "totals.{k} missing: {s}");
    }
    for k in [
        "ring_depths",
        "producer_queue",
        "breakers",
        "limiter",
        "latency_ms",
        "batch_size",
        "inflight_bytes",
    ] {
        assert!(s.get(k).is_some(), "{k} missing: {s}");
    }
    assert_eq!(s["limiter"]["mode"], "local");
    assert!(s["rate"]["average"].as_f64().unwrap() > 0.0);

    let stop = post(a, "/v1/stop", "");
    assert_eq!(stop.status, 200, "{}", stop.body);
    let sum = &stop.json()["summary"];
    assert_eq!(sum["run_id"], run_id.as_str());
    assert!(sum["generated"].as_u64().unwrap() > 0);
    assert_eq!(sum["generated"], sum["delivered"], "null sink delivers everything: {sum}");
    let s = get(a, "/v1/status").json();
    assert_eq!(s["state"], "finished");
    assert_eq!(s["summary"]["run_id"], run_id.as_str());
    assert_eq!(
        post(a, "/v1/stop", "").status,
        200,
        "stopping a finished run returns its summary again"
    );
    assert_eq!(get(a, "/readyz").status, 200);
    assert_eq!(put(a, "/v1/rate", r#"{"rate": 5}"#).status, 409);

    // A run that ends by itself is joined and reported finished.
    assert_eq!(
        post(a, "/v1/start", r#"{"sink": "null", "rate": "max", "count": 5000, "threads": 1}"#)
            .status,
        200
    );
    let s = eventually(Duration::from_secs(10), "the counted run to finish", || {
        let s = get(a, "/v1/status").json();
        (s["state"] == "finished").then_some(s)
    });
    assert_eq!(s["summary"]["generated"], 5000);
    assert_eq!(s["totals"]["delivered"], 5000);
}

#[test]
fn base_config_is_overlaid_by_the_body() {
    let d = tmpdir("base");
    let f = d.join("base.yaml");
    std::fs::write(&f, "sink: null\nthreads: 1\npin: false\nrate: 1000\nformat: logfmt\n").unwrap();
    let p = Proc::serve(&["--config", f.to_str().unwrap()]);
    let r =
        http(&p.addr, "POST", "/v1/start", &[("Content-Type", "application/yaml")], b"rate: 500\n");
    assert_eq!(r.status, 200, "{}", r.body);
    let s = get(&p.addr, "/v1/status").json();
    assert_eq!(s["config"]["format"], "logfmt", "from the file: {s}");
    assert_eq!(s["config"]["rate"], 500, "from the body: {s}");
    assert_eq!(s["format"], "logfmt");
    assert_eq!(post(&p.addr, "/v1/stop", "").status, 200);
    // JSON indented with tabs is valid JSON even though YAML rejects tab indentation.
    let r = post(&p.addr, "/v1/start", "{\n\t\"rate\": 700,\n\t\"count\": 100\n}");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["config"]["rate"], 700);
}

#[test]
fn bad_input_gets_a_clear_error_and_status() {
    let p = Proc::serve(&[]);
    let a = p.addr.as_str();

    let r = post(a, "/v1/start", r#"{"rate": 5000,"#);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.error().contains("malformed JSON at line 1 column"), "{}", r.body);
    assert_eq!(r.json()["line"], 1);

    let r = http(
        a,
        "POST",
        "/v1/start",
        &[("Content-Type", "application/yaml")],
        b"rate: 10\nsources: [web,\n",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.error().contains("line"), "malformed YAML names the position: {}", r.body);

    let r = post(a, "/v1/start", r#"{"rate": 10, "ratee": 5}"#);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.error().contains("unknown field `ratee`"), "{}", r.body);

    let r = post(a, "/v1/start", r#"{"kafka": {"topik": "x"}}"#);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["key"], "kafka.topik", "{}", r.body);
    assert!(r.error().contains("topik"), "{}", r.body);

    for (body, key) in [
        (r#"{"threads": 0}"#, "threads"),
        (r#"{"rate": 0}"#, "rate"),
        (r#"{"sink": "tcp"}"#, "sink"),
        (r#"{"duration": "5 parsecs"}"#, "duration"),
    ] {
        let r = post(a, "/v1/start", body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        let j = r.json();
        assert_eq!(j["key"], key, "{body}: {}", r.body);
        assert!(!j["fix"].as_str().unwrap().is_empty(), "{body}: {}", r.body);
        assert!(
            r.error().contains(&format!("`{key}`")) && r.error().contains("fix:"),
            "{body}: {}",
            r.body
        );
    }

    let r = put(a, "/v1/rate", r#"{"rate": 0}"#);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["key"], "rate");
    let r = put(a, "/v1/rate", r#"{"rate": "fast"}"#);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.error().contains("`fast` is not a rate"), "{}", r.body);
    let r = put(a, "/v1/rate", r#"{"speed": 5}"#);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.error().contains("speed"), "{}", r.body);
    let r = put(a, "/v1/rate", r#"{"rate": 5000}"#);
    assert_eq!(r.status, 409, "no run: {}", r.body);
    assert!(r.error().contains("POST /v1/start"), "{}", r.body);
    let r = post(a, "/v1/stop", "");
    assert_eq!(r.status, 409, "{}", r.body);

    let r = get(a, "/v1/start");
    assert_eq!(r.status, 405, "{}", r.body);
    assert_eq!(r.header("Allow"), Some("POST"));
    assert!(r.error().contains("use POST"), "{}", r.body);
    let r = http(a, "DELETE", "/v1/rate", &[], b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("PUT"));

    let r = get(a, "/v1/nope");
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.error().contains("/v1/nope") && r.error().contains("/v1/status"), "{}", r.body);

    // Oversized body with a declared length: refused from the header.
    let big = vec![b' '; 2 << 20];
    let r = post(a, "/v1/start", std::str::from_utf8(&big).unwrap());
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.error().contains("1 MiB"), "{}", r.body);

    // Oversized chunked body (no declared length): refused by the capped read.
    let s = TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "POST /v1/start HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    let chunk = vec![b' '; 64 << 10];
    for _ in 0..17 {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(&chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&req);
    });
    let r = read_response(s);
    let _ = writer.join();
    assert_eq!(r.status, 413, "{}", r.body);

    // Still serving after all that.
    assert_eq!(get(a, "/v1/status").json()["state"], "idle");
}

#[test]
fn bearer_token_is_required_when_set() {
    let d = tmpdir("token");
    let f = d.join("token");
    std::fs::write(&f, "s3cret-token\n").unwrap();
    let p = Proc::serve(&["--token-file", f.to_str().unwrap()]);
    let a = p.addr.as_str();
    let r = get(a, "/v1/status");
    assert_eq!(r.status, 401);
    assert!(r.error().contains("missing bearer token"), "{}", r.body);
    assert!(r.header("WWW-Authenticate").is_some_and(|v| v.starts_with("Bearer")));
    let r = http(a, "GET", "/v1/status", &[("Authorization", "Bearer s3cret-tokem")], b"");
    assert_eq!(r.status, 401);
    assert!(r.error().contains("wrong bearer token"), "{}", r.body);
    assert_eq!(
        http(a, "GET", "/v1/status", &[("Authorization", "Basic czNjcmV0")], b"").status,
        401
    );
    assert_eq!(http(a, "GET", "/metrics", &[], b"").status, 401);
    assert_eq!(http(a, "POST", "/v1/start", &[], b"{}").status, 401);
    assert_eq!(
        http(a, "GET", "/v1/status", &[("Authorization", "Bearer s3cret-token")], b"").status,
        200
    );
    assert_eq!(
        http(a, "GET", "/metrics", &[("Authorization", "Bearer s3cret-token")], b"").status,
        200
    );
    assert_eq!(get(a, "/healthz").status, 200, "liveness stays open");
    assert_eq!(get(a, "/readyz").status, 200, "readiness stays open");
}

#[test]
fn non_loopback_listen_needs_allow_remote() {
    let o = Command::new(BIN).args(["serve", "--listen", "0.0.0.0:0"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("not a loopback address") && e.contains("--allow-remote"), "{e}");
    let p = Proc::spawn(
        &["serve", "--listen", "0.0.0.0:0", "--allow-remote", "--token", "t"],
        "serve listening on",
    );
    let port = p.addr.rsplit(':').next().unwrap();
    assert_eq!(get(&format!("127.0.0.1:{port}"), "/healthz").status, 200);
}

#[test]
fn api_rate_limit_answers_429_with_retry_after() {
    let p = Proc::serve(&["--api-rate", "2"]);
    let a = p.addr.as_str();
    let codes: Vec<Resp> = (0..6).map(|_| get(a, "/v1/status")).collect();
    assert_eq!(codes[0].status, 200);
    let limited = codes.iter().find(|r| r.status == 429).unwrap_or_else(|| {
        panic!("no 429 in {:?}", codes.iter().map(|r| r.status).collect::<Vec<_>>())
    });
    assert!(limited.error().contains("too many requests"), "{}", limited.body);
    let after: u64 = limited.header("Retry-After").expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&after), "{after}");
    assert_eq!(get(a, "/healthz").status, 200, "probes are not limited");
    // Refused requests take no token, so polling does not keep the bucket empty.
    eventually(Duration::from_secs(10), "the bucket to refill (a 200 on /v1/status)", || {
        (get(a, "/v1/status").status == 200).then_some(())
    });
}

#[test]
fn tracing_counts_show_in_status_and_metrics() {
    // A collector port nobody listens on: every post fails, so spans are counted as dropped.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let p = Proc::serve(&[]);
    let a = p.addr.as_str();
    let body = format!(
        r#"{{"sink": "null", "rate": 20000, "threads": 1, "pin": false, "batch_size": 100, "tracing": {{"endpoint": "http://127.0.0.1:{dead}/api/v2/spans", "sample": 1}}}}"#
    );
    assert_eq!(post(a, "/v1/start", &body).status, 200);
    let s = eventually(Duration::from_secs(20), "a failed span post to be counted", || {
        let s = get(a, "/v1/status").json();
        (s["tracing"]["spans_dropped"].as_u64().is_some_and(|n| n > 0)
            && s["tracing"]["last_error"].is_string())
        .then_some(s)
    });
    assert_eq!(s["tracing"]["sample"], 1.0, "{s}");
    assert!(s["tracing"]["spans_dropped"].as_u64().unwrap() > 0, "{s}");
    assert!(s["tracing"]["last_error"].as_str().unwrap().contains("Connection refused"), "{s}");
    let m = get(a, "/metrics").body;
    promtool_check_metrics(&m);
    assert!(m.contains("# TYPE spate_trace_spans_total counter"), "{m}");
    assert!(m.contains("spate_trace_spans_total{result=\"dropped\"}"), "{m}");
    assert_eq!(post(a, "/v1/stop", "").status, 200);
}

#[test]
fn metrics_pass_promtool_during_a_run() {
    let p = Proc::serve(&[]);
    let a = p.addr.as_str();
    let idle = get(a, "/metrics");
    assert_eq!(idle.status, 200);
    assert!(idle.header("Content-Type").unwrap().starts_with("text/plain; version=0.0.4"));
    promtool_check_metrics(&idle.body);
    assert_eq!(
        post(a, "/v1/start", r#"{"sink": "null", "rate": 20000, "threads": 1, "pin": false}"#)
            .status,
        200
    );
    let m = eventually(Duration::from_secs(20), "the observer to count batches", || {
        let m = get(a, "/metrics").body;
        m.lines()
            .any(|l| l.starts_with("spate_batch_size_events_count ") && !l.ends_with(" 0"))
            .then_some(m)
    });
    promtool_check_metrics(&m);
    for name in [
        "# TYPE spate_events_generated_total counter",
        "spate_events_generated_total{sink=\"null\"}",
        "spate_target_rate 20000",
        "spate_run_active 1",
        "# TYPE spate_ack_latency_seconds histogram",
        "spate_ack_latency_seconds_bucket{le=\"+Inf\"}",
        "# TYPE spate_batch_size_events histogram",
        "spate_ring_depth_batches{worker=\"0\"}",
        "spate_limiter_mode{mode=\"local\"} 1",
        "spate_inflight_bytes_budget 0",
        "spate_api_requests_total{code=\"200\"}",
    ] {
        assert!(m.contains(name), "missing `{name}` in\n{m}");
    }
    let gen: f64 = m
        .lines()
        .find(|l| l.starts_with("spate_events_generated_total{"))
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(gen > 0.0);
    let batches: f64 = m
        .lines()
        .find(|l| l.starts_with("spate_batch_size_events_count"))
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(batches > 0.0, "{m}");

    // The same exposition from `spate run --metrics-listen`.
    let r = Proc::spawn(
        &[
            "run",
            "--sink",
            "null",
            "--rate",
            "5000",
            "--threads",
            "1",
            "--no-pin",
            "--duration",
            "20s",
            "--quiet",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        "metrics on",
    );
    eventually(Duration::from_secs(20), "the run to generate events", || {
        get(&r.addr, "/v1/status").json()["totals"]["generated"]
            .as_u64()
            .is_some_and(|n| n > 0)
            .then_some(())
    });
    let m = get(&r.addr, "/metrics");
    assert_eq!(m.status, 200);
    promtool_check_metrics(&m.body);
    assert!(m.body.contains("spate_target_rate 5000"), "{}", m.body);
    let s = get(&r.addr, "/v1/status");
    assert_eq!(s.status, 200);
    assert_eq!(s.json()["state"], "running");
    assert_eq!(get(&r.addr, "/v1/start").status, 404, "no control endpoints on a plain run");
}

#[test]
fn kafka_run_exports_breaker_and_budget() {
    let p = Proc::serve(&[]);
    let a = p.addr.as_str();
    let r = post(
        a,
        "/v1/start",
        r#"{"sink": "kafka", "rate": 2000, "threads": 1, "pin": false, "kafka": {"topic": "t"}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let m = eventually(Duration::from_secs(20), "acks to show in the latency histogram", || {
        let m = get(a, "/metrics").body;
        m.lines()
            .any(|l| l.starts_with("spate_ack_latency_seconds_count ") && !l.ends_with(" 0"))
            .then_some(m)
    });
    promtool_check_metrics(&m);
    assert!(m.contains("spate_breaker_state{breaker=\"kafka\",state=\"closed\"} 1"), "{m}");
    assert!(m.contains("spate_breaker_open_wait_seconds{breaker=\"kafka\"} 2"), "{m}");
    assert!(!m.contains("spate_inflight_bytes_budget 0\n"), "kafka has a budget: {m}");
    // Every spate metric the dashboard and the alert rules use is exported.
    for file in ["grafana/dashboards/spate.json", "alerts.yml", "alerts_test.yml"] {
        let text = std::fs::read_to_string(deploy(file)).unwrap();
        for (i, _) in text.match_indices("spate_") {
            let name: String =
                text[i..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            assert!(
                m.contains(&format!("\n{name}")),
                "{file} uses `{name}`, which /metrics does not export"
            );
        }
    }
    let s = get(a, "/v1/status").json();
    assert_eq!(s["breakers"][0]["state"], "closed", "{s}");
    assert!(s["latency_ms"]["p99"].as_f64().is_some(), "{s}");
    assert_eq!(post(a, "/v1/stop", "").status, 200);
}

#[test]
fn redis_run_exports_its_breaker() {
    let mut redis = spate_test_support::RedisServer::start();
    let p = Proc::serve(&[]);
    let a = p.addr.as_str();
    let body = format!(
        r#"{{"sink": "null", "threads": 1, "pin": false, "redis": {{"url": "{}", "global_rate": 2000, "limit_key": "metrics", "fallback_rate": 500}}}}"#,
        redis.url()
    );
    let r = post(a, "/v1/start", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let m = eventually(Duration::from_secs(20), "leases", || {
        let m = get(a, "/metrics").body;
        m.contains("spate_limiter_mode{mode=\"redis\"} 1").then_some(m)
    });
    promtool_check_metrics(&m);
    for line in [
        "spate_breaker_state{breaker=\"redis\",state=\"closed\"} 1",
        "spate_breaker_open_wait_seconds{breaker=\"redis\"} 1",
        "spate_breaker_opened_total{breaker=\"redis\"} 0",
    ] {
        assert!(m.contains(line), "missing `{line}` in\n{m}");
    }
    assert!(!m.contains("breaker=\"kafka\""), "no Kafka breaker on a null sink: {m}");
    let s = get(a, "/v1/status").json();
    assert_eq!(
        (s["breakers"][0]["name"].as_str(), s["breakers"][0]["state"].as_str()),
        (Some("redis"), Some("closed")),
        "{s}"
    );

    // Redis gone: the breaker opens (the failed calls come 20 ms apart) and it shows.
    redis.kill();
    let m = eventually(Duration::from_secs(10), "the redis breaker to open", || {
        let m = get(a, "/metrics").body;
        m.contains("spate_breaker_state{breaker=\"redis\",state=\"open\"} 1").then_some(m)
    });
    promtool_check_metrics(&m);
    assert!(m.contains("spate_limiter_mode{mode=\"fallback\"} 1"), "{m}");
    assert!(m.contains("spate_breaker_opened_total{breaker=\"redis\"} 1"), "{m}");
    assert_eq!(post(a, "/v1/stop", "").status, 200);
}

#[test]
fn prometheus_scrapes_spate() {
    let Some(prometheus) = prometheus_tool("prometheus", "prometheus scrapes spate") else {
        return;
    };
    let p = Proc::serve(&[]);
    assert_eq!(
        post(&p.addr, "/v1/start", r#"{"sink": "null", "rate": 1000, "threads": 1, "pin": false}"#)
            .status,
        200
    );
    let d = tmpdir("prom");
    let cfg = d.join("prometheus.yml");
    std::fs::write(&cfg, format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: spate\n    static_configs:\n      - targets: ['{}']\n", p.addr)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let web = format!("127.0.0.1:{port}");
    let child = Command::new(prometheus)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", d.join("data").display()))
        .arg(format!("--web.listen-address={web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let prom = Proc { child, addr: web.clone(), stderr: Default::default() };
    let v = eventually(
        Duration::from_secs(40),
        "prometheus to return spate_events_generated_total",
        || {
            let r = TcpStream::connect(&prom.addr)
                .ok()
                .map(|_| get(&prom.addr, "/api/v1/query?query=spate_events_generated_total"))?;
            let j: Value = serde_json::from_str(&r.body).ok()?;
            let res = j["data"]["result"].as_array()?.first()?.clone();
            Some(res)
        },
    );
    assert_eq!(v["metric"]["job"], "spate", "{v}");
    let n: f64 = v["value"][1].as_str().unwrap().parse().unwrap();
    assert!(n > 0.0, "{v}");
    drop(prom);
}

#[test]
fn status_and_metrics_answer_under_a_max_rate_run() {
    let p = Proc::serve(&[]);
    let a = p.addr.as_str();
    assert_eq!(post(a, "/v1/start", r#"{"sink": "null", "rate": "max"}"#).status, 200);
    let before = eventually(Duration::from_secs(20), "the run to generate events", || {
        get(a, "/v1/status").json()["totals"]["generated"].as_u64().filter(|&n| n > 0)
    });
    // Latency is printed, not asserted: on a loaded 2-core machine any bound either flakes or
    // is too loose to mean anything. What must hold is that every request is answered.
    for path in ["/v1/status", "/metrics"] {
        let mut ms: Vec<f64> = (0..200)
            .map(|_| {
                let t = Instant::now();
                let r = get(a, path);
                let dt = t.elapsed().as_secs_f64() * 1e3;
                assert_eq!(r.status, 200);
                dt
            })
            .collect();
        ms.sort_by(|x, y| x.partial_cmp(y).unwrap());
        let (p50, p99, max) = (percentile(&ms, 0.5), percentile(&ms, 0.99), ms[ms.len() - 1]);
        eprintln!(
            "{path} under a max-rate null run: p50 {p50:.3} ms  p99 {p99:.3} ms  max {max:.3} ms  (200 requests, new connection each)"
        );
    }
    let after = get(a, "/v1/status").json()["totals"]["generated"].as_u64().unwrap();
    eprintln!("generated {} events during the measurement", after - before);
    assert!(after > before, "the run kept generating while the requests were answered");
    let stop = post(a, "/v1/stop", "");
    assert_eq!(stop.status, 200, "{}", stop.body);
    let sum = &stop.json()["summary"];
    assert_eq!(sum["generated"], sum["delivered"], "null sink delivers everything: {sum}");
    assert_eq!(sum["in_flight"], 0, "{sum}");
}

#[test]
fn deploy_files_pass_promtool() {
    // The dashboard is valid JSON (the metrics it queries are checked against a live scrape).
    let dash = std::fs::read_to_string(deploy("grafana/dashboards/spate.json")).unwrap();
    let _: Value = serde_json::from_str(&dash).expect("dashboard JSON");
    let Some(promtool) = prometheus_tool("promtool", "promtool on the deploy files") else {
        return;
    };
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
        ["check", "config", "prometheus.yml"],
    ] {
        let o = Command::new(&promtool)
            .args(&args[..2])
            .arg(deploy(args[2]))
            .output()
            .expect("run promtool");
        assert!(
            o.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
