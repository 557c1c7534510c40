//! `spate run --redis ...` as users run it: several processes sharing one global rate through a
//! real `redis-server` (started on a free loopback port, killed on drop), and secrets kept out of
//! every message. Figures are printed (`-- --nocapture`); only what must hold however loaded the
//! machine is asserted.

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use spate_test_support::RedisServer;

fn spate(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spate"));
    c.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("spate-redis-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// The global rate of `three_processes_share_a_global_rate`, events/s.
const GLOBAL_RATE: u64 = 30_000;
/// The documented worst-case overshoot of the leased limiter: every instance's outstanding lease
/// (engine/src/limit/redis/mod.rs). Each of the 3 instances runs at 10,500/s, where a lease is
/// its floor of 2,000 events (more than 50 ms' worth, less than a quarter window's).
const LEASE_OVERSHOOT: u64 = 3 * 2000;

#[test]
fn three_processes_share_a_global_rate() {
    let redis = RedisServer::start();
    let stderrs = share_a_global_rate(&redis.url(), &[]);
    assert!(stderrs.iter().all(|e| !e.contains("falls back")), "{stderrs:?}");
    // Reported, not asserted (it depends on timing): the limiter's call budget.
    let info = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port().to_string(), "INFO", "commandstats"])
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    let calls = info.lines().find_map(|l| {
        l.strip_prefix("cmdstat_evalsha:calls=")?.split(',').next()?.parse::<u64>().ok()
    });
    eprintln!("Redis EVALSHA calls: {calls:?} for {} events", GLOBAL_RATE * 10);
}

/// The same over TLS (certificate checked against the test CA) as an ACL user allowed only the
/// commands the limiter's doc names: no instance falls back, so spate needs no more than those.
#[test]
fn three_processes_share_a_global_rate_over_tls_as_an_acl_user() {
    let certs = tmp("certs");
    spate_test_support::make_certs(&certs, None);
    let acl = tmp("users.acl");
    std::fs::write(
        &acl,
        "user default off\nuser spate on >acl-planted-pw ~spate:limit:* resetchannels -@all +evalsha +script|load +time +zremrangebyscore +zrange +zadd +pexpire\n",
    )
    .unwrap();
    let pw = tmp("redis-password");
    std::fs::write(&pw, "acl-planted-pw\n").unwrap();
    let redis = RedisServer::start_tls(spate_test_support::TlsServer {
        certs: certs.clone(),
        acl_file: Some(acl),
        require_client_cert: true,
    });
    let url = format!("rediss://localhost:{}", redis.port());
    let ca = certs.join("ca.pem");
    let (cert, key) = (certs.join("client.pem"), certs.join("client.key"));
    let extra = [
        "--redis-user",
        "spate",
        "--redis-password-file",
        pw.to_str().unwrap(),
        "--redis-ca",
        ca.to_str().unwrap(),
        "--redis-cert",
        cert.to_str().unwrap(),
        "--redis-key",
        key.to_str().unwrap(),
    ];
    let stderrs = share_a_global_rate(&url, &extra);
    for e in &stderrs {
        assert!(
            !e.contains("falls back"),
            "an instance fell back (a command the ACL user may not run?): {e}"
        );
        assert!(!e.contains("acl-planted-pw"), "{e}");
    }

    // A CA that did not sign the server's certificate: refused at start, naming the setting.
    let rogue = certs.join("rogue-ca.pem");
    let mut bad = extra.to_vec();
    bad[5] = rogue.to_str().unwrap();
    let started = Instant::now();
    let o = spate(
        &[
            &[
                "run",
                "--sink",
                "null",
                "--redis",
                &url,
                "--global-rate",
                "10",
                "--limit-key",
                "k",
                "--duration",
                "5s",
            ][..],
            &bad,
        ]
        .concat(),
    )
    .output()
    .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("redis.tls.ca_file"), "{err}");
    assert!(started.elapsed().as_secs() < 10, "took {:?}", started.elapsed());
    // A wrong password for the ACL user: refused at start, and not echoed.
    std::fs::write(&pw, "not-the-password\n").unwrap();
    let o = spate(
        &[
            &[
                "run",
                "--sink",
                "null",
                "--redis",
                &url,
                "--global-rate",
                "10",
                "--limit-key",
                "k",
                "--duration",
                "5s",
            ][..],
            &extra,
        ]
        .concat(),
    )
    .output()
    .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("refused the credentials") && !err.contains("not-the-password"), "{err}");
}

/// Three processes sharing `GLOBAL_RATE` for 10 s through the Redis at `url`; returns their
/// stderr.
fn share_a_global_rate(url: &str, extra: &[&str]) -> Vec<String> {
    let rate = GLOBAL_RATE.to_string();
    let summaries: Vec<_> = (0..3).map(|i| tmp(&format!("summary-{i}.json"))).collect();
    // Events can only be generated between the first spawn and the last exit: that span bounds
    // what Redis may have granted. Each child is waited for on its own thread, so its exit time
    // is taken when it exits, not when the test gets round to it.
    let first_spawn = Instant::now();
    let waiters: Vec<_> = summaries
        .iter()
        .map(|p| {
            let args = [
                "run",
                "--sink",
                "null",
                "--redis",
                url,
                "--global-rate",
                &rate,
                "--limit-key",
                "k",
                "--duration",
                "10s",
                "--summary-json",
                p.to_str().unwrap(),
            ];
            let child = spate(&[&args[..], extra].concat()).spawn().unwrap();
            std::thread::spawn(move || {
                let o = child.wait_with_output().unwrap();
                (o, Instant::now())
            })
        })
        .collect();
    let mut generated = Vec::new();
    let mut stderrs = Vec::new();
    let mut last_exit = first_spawn;
    for (waiter, path) in waiters.into_iter().zip(&summaries) {
        let (o, exited) = waiter.join().unwrap();
        last_exit = last_exit.max(exited);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert!(v["error"].is_null(), "{v}");
        assert_eq!(v["rate"], "30000/s", "the global rate is reported");
        assert_eq!(v["generated"], v["delivered"], "null sink delivers everything: {v}");
        assert_eq!(v["in_flight"], 0, "{v}");
        generated.push(v["generated"].as_u64().unwrap());
        stderrs.push(stderr(&o));
    }
    let sum: u64 = generated.iter().sum();
    let span = last_exit.duration_since(first_spawn).as_secs_f64();
    let nominal = GLOBAL_RATE * 10;
    let ceiling = (GLOBAL_RATE as f64 * span) as u64 + LEASE_OVERSHOOT;
    eprintln!(
        "3 processes, {GLOBAL_RATE}/s global for 10 s: {generated:?} = {sum} ({:+.2} % of {nominal}); \
         all within {span:.2} s, ceiling {ceiling}",
        (sum as f64 / nominal as f64 - 1.0) * 100.0
    );
    assert!(
        sum <= ceiling,
        "aggregate {sum} is above the global rate over the {span:.2} s the processes ran plus the lease overshoot ({ceiling})"
    );
    assert!(
        sum >= nominal * 8 / 10,
        "aggregate {sum} is below 80 % of {nominal}: the instances did not use the global rate"
    );
    stderrs
}

#[test]
fn secrets_and_bad_input_are_reported_safely() {
    // Nothing listens there: a clear config error that does not echo the password.
    let o = spate(&[
        "run",
        "--sink",
        "null",
        "--redis",
        "rediss://user:hunter2@127.0.0.1:1",
        "--global-rate",
        "10",
        "--limit-key",
        "k",
        "--duration",
        "1s",
    ])
    .output()
    .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("redis.url") && !err.contains("hunter2"), "{err}");

    let o = spate(&[
        "run",
        "--sink",
        "null",
        "--redis",
        "redis://127.0.0.1:1",
        "--global-rate",
        "10",
        "--limit-key",
        "bad key}",
        "--duration",
        "1s",
    ])
    .output()
    .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("redis.limit_key"), "{err}");
}

/// `spate run` with the Redis limiter at `url`, 1000/s global, for `duration`.
fn run_on(url: &str, duration: &str, extra: &[&str]) -> Command {
    let mut args = vec![
        "run",
        "--sink",
        "null",
        "--redis",
        url,
        "--global-rate",
        "1000",
        "--limit-key",
        "k",
        "--duration",
        duration,
    ];
    args.extend_from_slice(extra);
    spate(&args)
}

#[test]
fn wrong_password_or_no_redis_is_an_error_at_start() {
    let redis = RedisServer::start_with_password("s3cret");
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for (url, says) in [
        (format!("redis://:hunter2@127.0.0.1:{}", redis.port()), "refused the credentials"),
        (
            format!("redis://127.0.0.1:{}", redis.port()),
            "requires a password and none was given (NOAUTH)",
        ),
        (format!("redis://:hunter2@127.0.0.1:{closed}"), "cannot reach Redis"),
    ] {
        let summary = tmp("refused.json");
        let _ = std::fs::remove_file(&summary);
        let t = Instant::now();
        let o =
            run_on(&url, "10s", &["--summary-json", summary.to_str().unwrap()]).output().unwrap();
        let took = t.elapsed();
        let err = stderr(&o);
        eprintln!("{url}: exit {:?} after {} ms: {err}", o.status.code(), took.as_millis());
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains("config error at `redis.url`")
                && err.contains(says)
                && err.contains("fix:"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "one message: {err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(!summary.exists(), "the run did not begin, so there is no summary");
        assert!(took < std::time::Duration::from_secs(5), "gave up after {took:?}");
    }
}

#[test]
fn redis_outage_mid_run_is_logged_once_each_way() {
    use std::io::{BufRead, BufReader};
    use std::time::Duration;
    let mut redis = RedisServer::start_with_password("hunter2");
    let url = format!("redis://:hunter2@127.0.0.1:{}", redis.port());
    let mut child = run_on(&url, "8s", &["--fallback-rate", "500"]).spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let mut wait_line = |needle: &str| {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(l) = lines.iter().find(|l: &&String| l.contains(needle)) {
                return l.clone();
            }
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => lines.push(l),
                Err(_) => panic!("no stderr line with `{needle}` within 10 s; got {lines:?}"),
            }
        }
    };
    // On leases once the lease log exists in Redis.
    let leased = spate_test_support::wait_for(Instant::now() + Duration::from_secs(10), || {
        redis.query(&["EXISTS", "spate:limit:{k}"]).is_ok_and(|r| r == ":1")
    });
    assert!(leased, "no lease within 10 s");
    redis.kill();
    let killed = Instant::now();
    let down = wait_line("redis limiter: no lease");
    eprintln!("{} ms after the kill: {down}", killed.elapsed().as_millis());
    redis.restart();
    let restarted = Instant::now();
    let up = wait_line("redis limiter: leases from");
    eprintln!("{} ms after the restart: {up}", restarted.elapsed().as_millis());
    let status = child.wait().unwrap();
    lines.extend(rx.try_iter());
    let masked = format!("redis://:<redacted>@127.0.0.1:{}", redis.port());
    assert!(down.contains(&masked) && down.contains("falls back to 500/s"), "{down}");
    // The reason stands in parentheses after the URL.
    let reason = down
        .split_once(&format!("{masked} ("))
        .and_then(|(_, r)| r.split_once(')'))
        .map_or("", |(r, _)| r);
    assert!(!reason.is_empty(), "no reason in {down}");
    assert!(up.contains(&masked), "{up}");
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(
        (count("redis limiter: no lease"), count("redis limiter: leases from")),
        (1, 1),
        "once per transition: {lines:?}"
    );
    assert!(lines.iter().all(|l| !l.contains("hunter2")), "{lines:?}");
    assert!(status.success(), "{status:?}: {lines:?}");
}
