//! The fault matrix: `spate run` as users run it, with one fault injected per test. Each row
//! asserts the run contract: the run ends within duration + drain timeout + a small margin,
//! `generated = delivered + dead-lettered + shed + failed + in-flight` with nothing in flight,
//! the exit code is the documented one, and the DLQ file holds exactly the events counted as
//! dead-lettered. Each prints a `FAULT |` line with what it saw (`-- --nocapture`), the
//! figures of the README's table. Loopback only; every run is bounded in time.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::faults::*;
use serde_json::Value;
use spate_test_support::eventually;

#[test]
fn tcp_sink_unreachable_from_the_start() {
    let dir = Dir::new("tcp-unreachable");
    let sum = dir.join("s.json");
    let sink = format!("tcp://127.0.0.1:{}", closed_port());
    let t = Instant::now();
    let c = spate(
        &["run", "--sink", &sink, "--rate", "100", "--duration", "1s", "--drain-timeout", "2s"],
        &sum,
    )
    .spawn()
    .unwrap();
    let o = outcome(c, t, Duration::from_secs(20), &sum);
    o.report("TCP sink unreachable from the start (1 s run, 2 s drain)");
    o.balanced();
    assert!(o.elapsed < Duration::from_secs(1 + 2 + 3), "{:?}", o.elapsed);
    assert_eq!(o.code, 4, "nothing delivered: {}", o.stderr);
    assert_eq!(o.n("failed"), o.n("generated"));
}

#[test]
fn tcp_listener_that_never_reads() {
    let dir = Dir::new("tcp-stuck");
    let sum = dir.join("s.json");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let sink = format!("tcp://{}", l.local_addr().unwrap());
    // Accepts and holds the connection without reading a byte.
    let holder = std::thread::spawn(move || {
        let (conn, _) = l.accept().unwrap();
        // The peer's behaviour under test (holding the connection, not synchronisation).
        std::thread::sleep(Duration::from_secs(8));
        drop(conn);
    });
    let t = Instant::now();
    let c = spate(
        &["run", "--sink", &sink, "--rate", "max", "--duration", "1s", "--drain-timeout", "2s"],
        &sum,
    )
    .spawn()
    .unwrap();
    let o = outcome(c, t, Duration::from_secs(20), &sum);
    o.report("TCP receiver accepts, never reads (1 s run at max, 2 s drain)");
    o.balanced();
    assert!(o.elapsed < Duration::from_secs(1 + 2 + 3), "{:?}", o.elapsed);
    assert_eq!(o.code, 3, "kernel buffers took some, the rest failed: {}", o.stderr);
    assert!(o.n("failed") > 0 && o.n("delivered") > 0, "{}", o.s);
    holder.join().unwrap();
}

#[test]
fn tcp_receiver_killed_mid_run() {
    let dir = Dir::new("tcp-killed");
    let sum = dir.join("s.json");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let sink = format!("tcp://{}", l.local_addr().unwrap());
    // Reads for a second, then closes the connection and the listener: later connects fail.
    let receiver = std::thread::spawn(move || {
        let (conn, _) = l.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let mut r = BufReader::new(conn);
        let until = Instant::now() + Duration::from_secs(1);
        let mut line = String::new();
        while Instant::now() < until {
            line.clear();
            let _ = r.read_line(&mut line);
        }
    });
    let t = Instant::now();
    let c = spate(
        &["run", "--sink", &sink, "--rate", "2000", "--duration", "3s", "--drain-timeout", "2s"],
        &sum,
    )
    .spawn()
    .unwrap();
    let o = outcome(c, t, Duration::from_secs(20), &sum);
    receiver.join().unwrap();
    o.report("TCP receiver gone after 1 s (3 s run, 2 s drain)");
    o.balanced();
    assert!(o.elapsed < Duration::from_secs(3 + 2 + 3), "{:?}", o.elapsed);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.n("delivered") > 0 && o.n("failed") > 0, "{}", o.s);
}

#[test]
fn kafka_unreachable_from_the_start() {
    let dir = Dir::new("kafka-unreachable");
    let (sum, dlq) = (dir.join("s.json"), dir.join("dlq.jsonl"));
    let brokers = format!("127.0.0.1:{}", closed_port());
    let t = Instant::now();
    let c = spate(
        &[
            "run",
            "--sink",
            "kafka",
            "--brokers",
            &brokers,
            "--rate",
            "1000",
            "--duration",
            "2s",
            "--drain-timeout",
            "2s",
            "--dlq-file",
            dlq.to_str().unwrap(),
        ],
        &sum,
    )
    .spawn()
    .unwrap();
    let o = outcome(c, t, Duration::from_secs(30), &sum);
    o.report("Kafka unreachable from the start (2 s run, 2 s drain)");
    o.balanced();
    assert!(o.elapsed < Duration::from_secs(2 + 2 + 4), "{:?}", o.elapsed);
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert_eq!(o.n("dead_lettered"), o.n("generated"));
    assert_eq!(
        dlq_lines(&dlq),
        o.n("dead_lettered"),
        "the DLQ file holds every dead-lettered event"
    );
}

/// The broker process killed (SIGKILL) or stalled (SIGSTOP, longer than the drain timeout)
/// in the middle of a run.
fn broker_fault(name: &str, sig: i32, extra: &[&str]) -> Outcome {
    let dir = Dir::new(name);
    let (sum, dlq) = (dir.join("s.json"), dir.join("dlq.jsonl"));
    let (mut b, brokers) = broker(&dir);
    let t = Instant::now();
    let mut c = spate(
        &[
            "run",
            "--sink",
            "kafka",
            "--brokers",
            &brokers,
            "--topic",
            "t",
            "--rate",
            "2000",
            "--duration",
            "5s",
            "--drain-timeout",
            "2s",
            "--dlq-file",
            dlq.to_str().unwrap(),
        ],
        &sum,
    );
    c.args(extra);
    let c = Watched::start(c);
    // The fault comes mid-run: once the broker has acknowledged a good share of the events.
    c.totals_until("1,000 events delivered", Duration::from_secs(20), |t| {
        t["delivered"].as_u64() >= Some(1000)
    });
    signal(&b, sig);
    let o = c.outcome(t, Duration::from_secs(40), &sum);
    if sig == libc::SIGSTOP {
        signal(&b, libc::SIGCONT);
    }
    let _ = b.kill();
    let _ = b.wait();
    o.balanced();
    assert!(o.elapsed < Duration::from_secs(5 + 2 + 4), "{:?}", o.elapsed);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.n("delivered") > 0 && o.n("dead_lettered") > 0, "{}", o.s);
    assert_eq!(
        dlq_lines(&dlq),
        o.n("dead_lettered"),
        "the DLQ file holds every dead-lettered event"
    );
    o
}

#[test]
fn kafka_broker_killed_mid_run() {
    broker_fault("kafka-killed", libc::SIGKILL, &[])
        .report("Kafka broker killed at 2 s (5 s run, 2 s drain)");
}

#[test]
fn kafka_broker_stalled_past_the_drain_timeout() {
    broker_fault("kafka-stalled", libc::SIGSTOP, &[])
        .report("Kafka broker stopped (SIGSTOP) at 2 s until the end (5 s run, 2 s drain)");
}

/// Policy `spill`: generation goes on into the DLQ file while the breaker is open, and what was
/// in flight at the end goes there too: nothing is left in flight.
#[test]
fn kafka_broker_killed_mid_run_with_spill() {
    let o = broker_fault("kafka-killed-spill", libc::SIGKILL, &["--backpressure", "spill"]);
    o.report("Kafka broker killed at 2 s, --backpressure spill (5 s run, 2 s drain)");
    // Generation did not pause: about the whole schedule was generated.
    assert!(o.n("generated") > 8_000, "{}", o.s);
}

#[test]
fn stdout_closed_early() {
    let dir = Dir::new("stdout");
    let sum = dir.join("s.json");
    let t = Instant::now();
    let mut c = spate(&["run", "--rate", "1000", "--duration", "30s"], &sum)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = c.stdout.take().unwrap();
    let mut r = BufReader::new(out);
    let mut line = String::new();
    for _ in 0..3 {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with('{'), "{line}");
    }
    drop(r); // like `| head -3`
    let o = outcome(c, t, Duration::from_secs(20), &sum);
    o.report("stdout closed after 3 lines (like `| head -3`)");
    o.balanced();
    assert!(o.elapsed < Duration::from_secs(10), "{:?}", o.elapsed);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.s["reader_gone"], true);
    assert!(!o.stderr.to_lowercase().contains("broken pipe"), "{}", o.stderr);
}

/// A reader that leaves in the middle of a batch (`| head -c 200000`): the lines the pipe took
/// whole count as delivered (at least every line the reader saw), the rest as shed.
#[test]
fn stdout_closed_mid_batch_counts_what_the_pipe_took() {
    use std::io::Read;
    let dir = Dir::new("stdout-bytes");
    let sum = dir.join("s.json");
    let t = Instant::now();
    let mut c = spate(&["run", "--rate", "max", "--count", "200000", "--threads", "1"], &sum)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut got = vec![0u8; 200_000];
    c.stdout.take().unwrap().read_exact(&mut got).unwrap(); // and the pipe closes here
    let seen = got.iter().filter(|&&b| b == b'\n').count() as u64;
    let o = outcome(c, t, Duration::from_secs(20), &sum);
    o.report("stdout closed after 200,000 bytes (like `| head -c 200000`)");
    o.balanced();
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.n("delivered") >= seen, "{seen} lines read, {} counted delivered", o.n("delivered"));
    assert!(o.n("shed") > 0, "{}", o.s);
}

/// Needs root (it mounts a 4 MiB tmpfs): `sudo -E cargo test --release -p spate --test faults
/// disk_full -- --ignored`. scripts/test.sh runs it when it runs as root.
#[test]
#[ignore = "mounts a tmpfs: needs root; scripts/test.sh runs it as root"]
fn disk_full_for_the_file_sink() {
    let dir = Dir::new("disk-full");
    let sum = dir.join("s.json");
    let mnt = dir.join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    assert!(mounted, "cannot mount a 4 MiB tmpfs at {} (needs root)", mnt.display());
    let out = mnt.join("events.jsonl");
    let sink = format!("file:{}", out.display());
    let t = Instant::now();
    let c = spate(
        &["run", "--sink", &sink, "--rate", "max", "--count", "100000", "--threads", "1"],
        &sum,
    )
    .spawn()
    .unwrap();
    let o = outcome(c, t, Duration::from_secs(20), &sum);
    let text = std::fs::read(&out).unwrap();
    let _ = Command::new("umount").arg(&mnt).status();
    o.report("disk full for the file sink (4 MiB tmpfs, 100,000 events)");
    o.balanced();
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.n("failed") > 0 && o.n("delivered") > 0, "{}", o.s);
    let lines = text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count() as u64;
    assert!(text.is_empty() || text.ends_with(b"\n"), "a torn last line was left in the file");
    assert_eq!(lines, o.n("delivered"), "the file holds exactly the events counted delivered");
}

#[test]
fn sigint_once_drains_and_succeeds() {
    let dir = Dir::new("sigint");
    let sum = dir.join("s.json");
    let t = Instant::now();
    let c = Watched::start(spate(
        &["run", "--sink", "null", "--rate", "1000", "--duration", "60s"],
        &sum,
    ));
    c.totals_until("events delivered", Duration::from_secs(20), |t| {
        t["delivered"].as_u64() > Some(0)
    });
    signal(&c.child, libc::SIGINT);
    let o = c.outcome(t, Duration::from_secs(20), &sum);
    o.report("SIGINT once (null sink)");
    o.balanced();
    assert!(o.elapsed < Duration::from_secs(5), "{:?}", o.elapsed);
    assert_eq!(o.code, 0, "{}", o.stderr);
}

#[test]
fn sigterm_twice_aborts_a_stuck_run() {
    let dir = Dir::new("sigterm2");
    let sum = dir.join("s.json");
    let sink = format!("tcp://127.0.0.1:{}", closed_port());
    let t = Instant::now();
    let c = Watched::start(spate(
        &["run", "--sink", &sink, "--rate", "100", "--duration", "60s", "--drain-timeout", "60s"],
        &sum,
    ));
    c.totals_until("events held for the unreachable sink", Duration::from_secs(20), |t| {
        t["generated"].as_u64() > Some(0)
    });
    signal(&c.child, libc::SIGTERM);
    c.line_with("spate: stopping: draining", Duration::from_secs(10));
    let second = Instant::now();
    signal(&c.child, libc::SIGTERM);
    let o = c.outcome(t, Duration::from_secs(20), &sum);
    o.report("SIGTERM twice, sink unreachable, 60 s drain");
    o.balanced();
    assert!(
        second.elapsed() < Duration::from_secs(3),
        "the second signal did not end the run at once: {:?}",
        second.elapsed()
    );
    assert_eq!(o.code, 4, "{}", o.stderr);
}

/// Under `spate serve`, a run whose sink is unreachable stops when told (`/v1/stop`, then
/// `?abort=true`), the server becomes ready for the next run, and SIGTERM ends the server.
#[test]
fn serve_stops_a_stuck_run_and_exits_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spate"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let addr = eventually(Duration::from_secs(20), "serve to print its address", || {
        let mut line = String::new();
        err.read_line(&mut line).ok()?;
        line.split("http://").nth(1).map(|a| a.trim().trim_end_matches('/').to_string())
    });
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let sink = format!("tcp://127.0.0.1:{}", closed_port());
    let (code, body) = http(
        &addr,
        "POST",
        "/v1/start",
        &format!(r#"{{"sink": "{sink}", "rate": 100, "duration": "60s", "drain_timeout": "60s"}}"#),
    );
    assert!((200..300).contains(&code), "start: {code} {body}");
    eventually(Duration::from_secs(20), "events held for the stuck sink", || {
        let (_, b) = http(&addr, "GET", "/v1/status", "");
        let v: Value = serde_json::from_str(&b).ok()?;
        (v["totals"]["generated"].as_u64() > Some(0)).then_some(())
    });
    let t = Instant::now();
    let (code, body) = http(&addr, "POST", "/v1/stop", "");
    assert!((200..300).contains(&code), "stop: {code} {body}");
    let (code, body) = http(&addr, "POST", "/v1/stop?abort=true", "");
    assert!((200..300).contains(&code), "abort: {code} {body}");
    let state = eventually(Duration::from_secs(10), "the run to finish after an abort", || {
        let (_, b) = http(&addr, "GET", "/v1/status", "");
        let v: Value = serde_json::from_str(&b).ok()?;
        (v["state"] == "finished" || v["state"] == "idle").then(|| v["state"].to_string())
    });
    let (_, ready) = http(&addr, "GET", "/readyz", "");
    let ready: Value = serde_json::from_str(&ready).unwrap();
    eprintln!(
        "FAULT | serve: stop then abort of a stuck run | {:.1} s to {state} | ready {}",
        t.elapsed().as_secs_f64(),
        ready["ready"]
    );
    assert_eq!(ready["ready"], true, "{ready}");
    signal(&child, libc::SIGTERM);
    let code = eventually(Duration::from_secs(10), "serve to exit on SIGTERM", || {
        child.try_wait().unwrap()
    });
    assert_eq!(code.code(), Some(0));
}

/// A full stderr (`2>/dev/full`) must not turn a good run into a crash: no panic, exit 0, and
/// the summary file written.
#[test]
fn a_full_stderr_changes_nothing() {
    let dir = Dir::new("stderr-full");
    let sum = dir.join("s.json");
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let t = Instant::now();
    let mut c = spate(&["run", "--sink", "null", "--rate", "max", "--count", "100000"], &sum);
    let status = c.stderr(full).status().unwrap();
    eprintln!(
        "FAULT | stderr full (2>/dev/full) | {:.1} s | exit {:?}",
        t.elapsed().as_secs_f64(),
        status.code()
    );
    assert_eq!(status.code(), Some(0));
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&sum).unwrap()).unwrap();
    assert_eq!(s["delivered"], 100000);
}

/// Off a terminal (CI, logs, containers) progress comes as plain lines every `--progress` s.
#[test]
fn progress_lines_off_a_terminal() {
    let dir = Dir::new("progress");
    let sum = dir.join("s.json");
    let t = Instant::now();
    let c = spate(
        &["run", "--sink", "null", "--rate", "1000", "--duration", "3s", "--progress", "1"],
        &sum,
    )
    .spawn()
    .unwrap();
    let o = outcome(c, t, Duration::from_secs(20), &sum);
    let lines: Vec<&str> = o.stderr.lines().filter(|l| l.starts_with("spate: progress:")).collect();
    eprintln!("FAULT | progress off a terminal | {} lines, e.g. {:?}", lines.len(), lines.first());
    assert!(lines.len() >= 2, "{}", o.stderr);
    assert!(lines.iter().all(|l| l.contains("delivered")
        && l.contains("in flight")
        && l.contains("breaker")
        && l.contains("limiter")));
    assert!(!o.stderr.contains('\r'), "no terminal redraws off a terminal");
}

#[test]
fn broker_refuses_zero_brokers() {
    let o = Command::new(env!("CARGO_BIN_EXE_spate"))
        .args(["broker", "--brokers", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("`--brokers`"));
}
