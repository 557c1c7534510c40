//! What the control plane refuses, over real HTTP on loopback: files outside `--data-dir`, a
//! non-loopback listener without a token, state changes without a JSON/YAML content type or
//! from another origin, foreign `Host` names; and secrets that must never show in what it
//! answers. The HTTP limits are in `api_limits.rs`. Every wait is bounded.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;
use spate_test_support::eventually;

#[test]
fn file_sinks_over_http_stay_under_the_data_dir() {
    let outside = tmpdir("outside");
    let data = tmpdir("data");
    let target = outside.join("passwd2");

    // Without --data-dir no file sink is started over HTTP.
    let p = Proc::serve(&[]);
    let r = post_json(
        &p.addr,
        "/v1/start",
        &serde_json::json!({"sink": format!("file:{}", target.display()), "count": 10}),
    );
    eprintln!("no --data-dir: {} {}", r.status, r.body.trim());
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["key"], "sink.file.path", "{}", r.body);
    assert!(r.error().contains("--data-dir"), "{}", r.body);
    assert!(!target.exists(), "the refused sink created {}", target.display());
    drop(p);

    std::os::unix::fs::symlink(&outside, data.join("out-dir")).unwrap();
    std::fs::write(outside.join("victim"), "keep me\n").unwrap();
    std::os::unix::fs::symlink(outside.join("victim"), data.join("victim-link")).unwrap();
    let p = Proc::serve(&["--data-dir", data.to_str().unwrap()]);
    let a = p.addr.as_str();
    let escape = format!("../{}/passwd2", outside.file_name().unwrap().to_str().unwrap());
    let refused = [
        (serde_json::json!({"sink": format!("file:{}", target.display())}), "sink.file.path"),
        (serde_json::json!({"sink": format!("file:{escape}")}), "sink.file.path"),
        (
            serde_json::json!({"sink": format!("file:{}/sub/../{escape}", data.display())}),
            "sink.file.path",
        ),
        (serde_json::json!({"sink": "file:out-dir/passwd2"}), "sink.file.path"),
        (serde_json::json!({"sink": "file:victim-link"}), "sink.file.path"),
        (
            serde_json::json!({"sink": "kafka", "kafka": {"dlq_file": outside.join("dlq.jsonl")}}),
            "kafka.dlq_file",
        ),
        (
            serde_json::json!({"sink": {"kafka": {"dlq_file": outside.join("dlq.jsonl")}}}),
            "sink.kafka.dlq_file",
        ),
        (
            serde_json::json!({"sink": format!("postgres://u@127.0.0.1:1/db?table=t&dlq_file={}", outside.join("pg.jsonl").display())}),
            "sink.postgres.dlq_file",
        ),
        (
            serde_json::json!({"sink": "kafka", "kafka": {"options": {"plugin.library.paths": "/tmp/x.so"}}}),
            "kafka.options.plugin.library.paths",
        ),
    ];
    for (body, key) in &refused {
        let r = post_json(a, "/v1/start", body);
        eprintln!("{body}: {} {}", r.status, r.body.trim());
        assert_eq!(r.status, 403, "{body}: {}", r.body);
        let j = r.json();
        assert_eq!(j["key"], *key, "{body}: {}", r.body);
        assert!(!j["fix"].as_str().unwrap_or("").is_empty(), "{body}: {}", r.body);
        assert_eq!(get(a, "/v1/status").json()["state"], "idle", "{body} must not start a run");
    }
    let left: Vec<_> =
        std::fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["victim"], "nothing was created outside the data dir");
    assert_eq!(std::fs::read_to_string(outside.join("victim")).unwrap(), "keep me\n");

    // A relative path is taken from the data dir; an absolute one under it is fine too.
    std::fs::create_dir_all(data.join("sub")).unwrap();
    for (sink, file) in [
        ("file:events.log".to_string(), data.join("events.log")),
        (format!("file:{}/sub/x.log", data.display()), data.join("sub/x.log")),
    ] {
        let r = post_json(
            a,
            "/v1/start",
            &serde_json::json!({"sink": sink, "rate": "max", "count": 100, "threads": 1, "pin": false}),
        );
        assert_eq!(r.status, 200, "{sink}: {}", r.body);
        let s = eventually(Duration::from_secs(20), "the file run to finish", || {
            let s = get(a, "/v1/status").json();
            (s["state"] == "finished").then_some(s)
        });
        assert_eq!(s["summary"]["delivered"], 100, "{s}");
        let canon = std::fs::canonicalize(&file).unwrap();
        assert_eq!(s["sink"], format!("file:{}", canon.display()), "{s}");
        assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 100);
    }
}

/// Every path-valued setting the config types know, set in a `POST /v1/start` body to a file
/// outside `--data-dir`, is refused with 403 naming its key, and every secret file refused from a
/// request altogether. The list is the config schema's (`walk::marked_keys`): a key added to the
/// config later is in it with no change here. Also through the deprecated `kafka:` section and
/// the `postgres://` shorthand's `dlq_file` parameter.
#[test]
fn every_path_setting_is_confined_through_the_api() {
    use spate_engine::config::walk::{marked_keys, Kind};
    let outside = tmpdir("outside-all");
    let data = tmpdir("data-all");
    let p = Proc::serve(&["--data-dir", data.to_str().unwrap()]);
    let a = p.addr.as_str();
    let target = outside.join("x");
    let mut bodies: Vec<(Value, String)> = Vec::new();
    for (key, kind) in marked_keys() {
        if key.contains('*')
            || key.contains("[]")
            || !matches!(kind, Kind::DataPath | Kind::SecretFile)
        {
            continue;
        }
        let mut body = serde_yaml_ng::Value::Null;
        let path: Vec<&str> = key.split('.').collect();
        spate_engine::config::set_path(&mut body, &path, target.to_string_lossy().as_ref().into());
        bodies.push((serde_json::to_value(&body).unwrap(), key.clone()));
        if let Some(rest) = key.strip_prefix("sink.kafka.") {
            let legacy = serde_json::json!({"sink": "kafka", "kafka": {}});
            let mut legacy: serde_yaml_ng::Value = serde_json::from_value(legacy).unwrap();
            let path: Vec<&str> = std::iter::once("kafka").chain(rest.split('.')).collect();
            spate_engine::config::set_path(
                &mut legacy,
                &path,
                target.to_string_lossy().as_ref().into(),
            );
            bodies.push((serde_json::to_value(&legacy).unwrap(), format!("kafka.{rest}")));
        }
    }
    bodies.push((
        serde_json::json!({"sink": format!("postgres://u@127.0.0.1:1/db?table=t&dlq_file={}", target.display())}),
        "sink.postgres.dlq_file".into(),
    ));
    assert!(bodies.len() >= 20, "the schema marks fewer keys than expected: {bodies:?}");
    for (body, key) in &bodies {
        let r = post_json(a, "/v1/start", body);
        eprintln!("{key}: {} {}", r.status, r.error());
        assert_eq!(r.status, 403, "{body}: {}", r.body);
        // The audit section is the server's as a whole.
        let named = if key.starts_with("audit.") { "audit" } else { key.as_str() };
        assert_eq!(r.json()["key"], named, "{body}: {}", r.body);
    }
    assert_eq!(get(a, "/v1/status").json()["state"], "idle");
    assert!(
        std::fs::read_dir(&outside).unwrap().next().is_none(),
        "a file was created outside the data dir"
    );
    eprintln!("{} bodies refused", bodies.len());
}

#[test]
fn a_remote_listener_needs_a_token_and_never_prints_it() {
    let d = tmpdir("tokens");
    let limit = Duration::from_secs(20);
    let o = run_bounded(&["serve", "--listen", "0.0.0.0:0", "--allow-remote"], limit);
    let e = String::from_utf8_lossy(&o.stderr);
    eprintln!("serve --allow-remote without a token: exit {:?}: {}", o.status.code(), e.trim());
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("--token"), "{e}");

    let empty = d.join("empty");
    std::fs::write(&empty, " \n").unwrap();
    for (file, says) in [(empty.clone(), "empty"), (d.join("missing"), "cannot read")] {
        let o = run_bounded(
            &["serve", "--listen", "127.0.0.1:0", "--token-file", file.to_str().unwrap()],
            limit,
        );
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{e}");
        assert!(e.contains(says) && e.contains("--token-file"), "{e}");
    }

    let run = [
        "run",
        "--sink",
        "null",
        "--rate",
        "10",
        "--threads",
        "1",
        "--no-pin",
        "--duration",
        "30s",
        "--quiet",
    ];
    let mut args = run.to_vec();
    args.extend(["--metrics-listen", "0.0.0.0:0"]);
    let o = run_bounded(&args, limit);
    let e = String::from_utf8_lossy(&o.stderr);
    eprintln!(
        "run --metrics-listen 0.0.0.0 without a token: exit {:?}: {}",
        o.status.code(),
        e.trim()
    );
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("--metrics-token"), "{e}");
    let mut a2 = args.clone();
    a2.extend(["--metrics-token-file", empty.to_str().unwrap()]);
    let o = run_bounded(&a2, limit);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));

    let token = "planted-token-5521";
    let tf = d.join("token");
    std::fs::write(&tf, format!("{token}\n")).unwrap();
    args.extend(["--metrics-token-file", tf.to_str().unwrap()]);
    let r = Proc::spawn(&args, "metrics on");
    let a = format!("127.0.0.1:{}", port(&r.addr));
    let bearer = format!("Bearer {token}");
    assert_eq!(get(&a, "/metrics").status, 401);
    assert_eq!(get(&a, "/v1/status").status, 401);
    assert_eq!(http(&a, "GET", "/metrics", &[("Authorization", &bearer)], b"").status, 200);
    assert_eq!(http(&a, "GET", "/v1/status", &[("Authorization", &bearer)], b"").status, 200);
    assert_eq!(get(&a, "/healthz").status, 200, "liveness stays open");
    drop(r);

    let p = Proc::spawn(
        &["serve", "--listen", "0.0.0.0:0", "--allow-remote", "--token-file", tf.to_str().unwrap()],
        "serve listening on",
    );
    let a = format!("127.0.0.1:{}", port(&p.addr));
    assert_eq!(get(&a, "/v1/status").status, 401);
    assert_eq!(http(&a, "GET", "/v1/status", &[("Authorization", &bearer)], b"").status, 200);
    let log = p.stderr.lock().unwrap().clone();
    assert!(!log.contains(token), "the token was printed: {log}");
}

#[test]
fn state_changes_need_a_config_content_type_and_their_own_origin() {
    let p = Proc::serve(&["--allowed-origin", "http://ui.example"]);
    let a = p.addr.as_str();
    let body = br#"{"sink": "null", "count": 1}"#;
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let headers: Vec<(&str, &str)> = ct.iter().map(|c| ("Content-Type", *c)).collect();
        let r = http(a, "POST", "/v1/start", &headers, body);
        eprintln!("POST /v1/start with Content-Type {ct:?}: {} {}", r.status, r.body.trim());
        assert_eq!(r.status, 415, "{ct:?}: {}", r.body);
        assert!(r.error().contains("application/json"), "{}", r.body);
        assert_eq!(get(a, "/v1/status").json()["state"], "idle");
    }
    assert_eq!(
        http(a, "PUT", "/v1/rate", &[("Content-Type", "text/plain")], br#"{"rate": 5}"#).status,
        415
    );
    // Accepted types pass the gate: no run, so stopping answers 409.
    for ct in [
        "application/json",
        "application/json; charset=utf-8",
        "application/yaml",
        "text/yaml",
        "application/x-yaml",
    ] {
        let r = http(a, "POST", "/v1/stop", &[("Content-Type", ct)], b"");
        assert_eq!(r.status, 409, "{ct}: {}", r.body);
    }

    let json = ("Content-Type", "application/json");
    for origin in
        ["http://evil.example", "null", "https://127.0.0.1", &format!("http://{a}.evil.example")]
    {
        let r = http(a, "POST", "/v1/stop", &[json, ("Origin", origin)], b"");
        eprintln!("POST /v1/stop from Origin {origin}: {} {}", r.status, r.body.trim());
        assert_eq!(r.status, 403, "{origin}: {}", r.body);
        assert!(r.error().contains("Origin"), "{}", r.body);
    }
    let own = format!("http://{a}");
    let localhost = format!("http://localhost:{}", port(a));
    for origin in [own.as_str(), localhost.as_str(), "http://ui.example"] {
        let r = http(a, "POST", "/v1/stop", &[json, ("Origin", origin)], b"");
        assert_eq!(r.status, 409, "{origin}: {}", r.body);
    }
    assert_eq!(
        http(a, "GET", "/v1/status", &[("Origin", "http://evil.example")], b"").status,
        200,
        "reads are not state changes"
    );
}

#[test]
fn host_must_name_this_server() {
    let p = Proc::serve(&["--allowed-host", "spate.internal"]);
    let a = p.addr.as_str();
    let port = port(a);
    let ask = |host: &str| {
        let rq = format!("GET /v1/status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        raw(a, rq.as_bytes(), Duration::from_secs(10)).expect("a response")
    };
    for host in [
        format!("evil.example:{port}"),
        "evil.example".into(),
        "127.0.0.1:1".into(),
        format!("spate.internal.evil:{port}"),
    ] {
        let r = ask(&host);
        eprintln!("Host {host}: {} {}", r.status, r.body.trim());
        assert_eq!(r.status, 421, "{host}: {}", r.body);
        assert!(r.error().contains("--allowed-host"), "{}", r.body);
    }
    for host in [
        a.to_string(),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        format!("spate.internal:{port}"),
        "spate.internal".into(),
    ] {
        assert_eq!(ask(&host).status, 200, "{host}");
    }
}

#[test]
fn secrets_are_masked_wherever_the_config_is_shown() {
    const SECRET: &str = "PLANTED-s3cret-7781";
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let p = Proc::serve(&[]);
    let a = p.addr.as_str();

    // A secret passed through as a librdkafka option that has a typed setting: refused, naming
    // the option, not its value.
    let refused = post_json(
        a,
        "/v1/start",
        &serde_json::json!({"sink": "kafka", "kafka": {"options": {"sasl.password": SECRET}}}),
    );
    eprintln!("refused sasl.password option: {} {}", refused.status, refused.body.trim());
    assert!(refused.status >= 400, "{}", refused.body);
    assert!(
        refused.error().contains("sasl.password"),
        "the error still names the option: {}",
        refused.body
    );

    // Typed SASL with a planted password, at the embedded cluster (which has no SASL): the
    // start is refused naming kafka.sasl, and the answer shows no password.
    let sasl = post_json(
        a,
        "/v1/start",
        &serde_json::json!({"sink": "kafka", "kafka": {"sasl": {"mechanism": "SCRAM-SHA-256", "username": "u", "password": SECRET}}}),
    );
    eprintln!("SASL at a broker without it: {} {}", sasl.status, sasl.body.trim());
    assert!(sasl.status >= 400 && sasl.error().contains("kafka.sasl"), "{}", sasl.body);
    assert!(!sasl.body.contains(SECRET), "{}", sasl.body);

    // Files and environment of the server are not the caller's to name.
    for (body, key) in [
        (
            serde_json::json!({"sink": "kafka", "kafka": {"sasl": {"mechanism": "PLAIN", "username": "u", "password_file": "/etc/shadow"}}}),
            "kafka.sasl.password_file",
        ),
        (
            serde_json::json!({"sink": "kafka", "kafka": {"tls": {"ca_file": "/etc/hostname"}}}),
            "kafka.tls.ca_file",
        ),
        (
            serde_json::json!({"sink": "kafka", "kafka": {"sasl": {"mechanism": "PLAIN", "username": "${HOME}", "password": "x1234"}}}),
            "kafka",
        ),
        (
            serde_json::json!({"sink": "null", "redis": {"url": "redis://127.0.0.1:1", "password_file": "/etc/shadow", "global_rate": 10, "limit_key": "k"}}),
            "redis.password_file",
        ),
    ] {
        let r = post_json(a, "/v1/start", &body);
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(r.error().contains(key), "{key}: {}", r.body);
    }

    let body = serde_json::json!({
        "sink": "kafka", "rate": 200, "threads": 1, "pin": false,
        "kafka": {"topic": format!("t-{SECRET}"), "options": {"client.id": "spate", "ssl.keystore.password": SECRET}},
        "tracing": {"endpoint": format!("http://user:url-planted-pw@127.0.0.1:{dead}/api/v2/spans"), "sample": 1},
    });
    let start = post_json(a, "/v1/start", &body);
    assert_eq!(start.status, 200, "{}", start.body);
    eventually(Duration::from_secs(20), "a failed span post to be reported", || {
        get(a, "/v1/status").json()["tracing"]["last_error"].as_str().map(|_| ())
    });
    let status = get(a, "/v1/status");
    let metrics = get(a, "/metrics");
    let stop = eventually(Duration::from_secs(30), "the run to stop", || {
        let r = post(a, "/v1/stop", "");
        (r.status == 200).then_some(r)
    });
    let after = get(a, "/v1/status");
    eprintln!("status config: {}", status.json()["config"]);
    eprintln!("status tracing: {}", status.json()["tracing"]);
    for (what, text) in [
        ("refused start", &refused.body),
        ("start", &start.body),
        ("status", &status.body),
        ("metrics", &metrics.body),
        ("stop", &stop.body),
        ("final status", &after.body),
    ] {
        for planted in [SECRET, "url-planted-pw"] {
            assert!(!text.contains(planted), "{what} shows `{planted}`:\n{text}");
        }
    }
    let s = status.json();
    assert_eq!(
        s["config"]["sink"]["kafka"]["options"]["ssl.keystore.password"], "<redacted>",
        "{s}"
    );
    assert_eq!(s["config"]["sink"]["kafka"]["options"]["client.id"], "spate", "{s}");
    assert_eq!(s["config"]["sink"]["kafka"]["topic"], "t-<redacted>", "{s}");
    assert!(s["tracing"]["endpoint"].as_str().unwrap().contains("user:<redacted>@"), "{s}");

    // `spate run --metrics-listen` shows the same document, and prints no secret either.
    let r = Proc::spawn(
        &[
            "run",
            "--sink",
            "kafka",
            "--rate",
            "100",
            "--threads",
            "1",
            "--no-pin",
            "--duration",
            "30s",
            "--quiet",
            "--topic",
            &format!("t-{SECRET}"),
            "--kafka-opt",
            &format!("ssl.keystore.password={SECRET}"),
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        "metrics on",
    );
    let s = get(&r.addr, "/v1/status");
    assert_eq!(s.status, 200);
    assert!(!s.body.contains(SECRET), "run status shows the secret:\n{}", s.body);
    assert_eq!(
        s.json()["config"]["sink"]["kafka"]["options"]["ssl.keystore.password"],
        "<redacted>",
        "{}",
        s.body
    );
    let o = run_bounded(
        &[
            "run",
            "--sink",
            "kafka",
            "--count",
            "1",
            "--kafka-opt",
            &format!("sasl.password={SECRET}"),
        ],
        Duration::from_secs(30),
    );
    let e = String::from_utf8_lossy(&o.stderr);
    eprintln!("run with a refused secret option: exit {:?}: {}", o.status.code(), e.trim());
    assert!(!o.status.success() && e.contains("sasl.password") && !e.contains(SECRET), "{e}");
    assert!(!r.stderr.lock().unwrap().contains(SECRET));
}

#[test]
fn compose_runs_the_api_with_a_token_file_and_a_data_dir() {
    let text = std::fs::read_to_string(deploy("../docker-compose.yml")).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let cmd: Vec<String> = doc["services"]["spate"]["command"]
        .as_sequence()
        .expect("spate command as a list")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    // `--flag=value` or `--flag value`.
    let flag = |f: &str| {
        cmd.iter().enumerate().find_map(|(i, c)| match c.strip_prefix(f) {
            Some(v) if v.starts_with('=') => Some(v[1..].to_string()),
            Some("") => cmd.get(i + 1).cloned(),
            _ => None,
        })
    };
    let token_file = flag("--token-file").unwrap_or_else(|| panic!("no --token-file in {cmd:?}"));
    assert!(token_file.starts_with("/run/secrets/"), "{token_file}");
    assert!(flag("--data-dir").is_some(), "no --data-dir in {cmd:?}");
    for (name, svc) in doc["services"].as_mapping().unwrap() {
        for port in svc["ports"].as_sequence().into_iter().flatten() {
            let port = port.as_str().unwrap();
            assert!(port.starts_with("127.0.0.1:"), "{name:?} publishes {port} beyond loopback");
        }
    }
    // The Prometheus of the stack scrapes with the same token.
    let prom =
        doc["configs"]["prometheus"]["content"].as_str().expect("an inline prometheus config");
    assert!(prom.contains(&format!("credentials_file: {token_file}")), "{prom}");
    let Some(promtool) =
        prometheus_tool("promtool", "promtool check config on the compose Prometheus config")
    else {
        return;
    };
    let d = tmpdir("compose");
    std::fs::write(d.join("alerts.yml"), std::fs::read(deploy("alerts.yml")).unwrap()).unwrap();
    std::fs::write(d.join("token"), "t\n").unwrap();
    std::fs::write(
        d.join("prometheus.yml"),
        prom.replace(&token_file, d.join("token").to_str().unwrap()),
    )
    .unwrap();
    let o = std::process::Command::new(promtool)
        .args(["check", "config"])
        .arg(d.join("prometheus.yml"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A sibling directory whose name starts with the data dir's name is outside it.
#[test]
fn data_dir_prefix_is_not_a_sibling() {
    let base = tmpdir("prefix");
    let data = base.join("data");
    let sibling = base.join("data-evil");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&sibling).unwrap();
    let p = Proc::serve(&["--data-dir", data.to_str().unwrap()]);
    let r = post_json(
        &p.addr,
        "/v1/start",
        &serde_json::json!({"sink": format!("file:{}/x", sibling.display())}),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!Path::new(&sibling).join("x").exists());
}
