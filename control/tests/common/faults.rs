//! The fault matrix's helpers: `spate` processes with a summary file, their stderr watched, a
//! broker of their own, signals, and a small HTTP client.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use spate_test_support::eventually;

/// A scratch directory per test, removed on drop.
pub(crate) struct Dir(pub PathBuf);

impl Dir {
    pub(crate) fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("spate-fault-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    pub(crate) fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn spate(args: &[&str], summary: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spate"));
    c.args(args)
        .arg("--summary-json")
        .arg(summary)
        .arg("--no-pin")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Collects a child's stderr on a thread: every line is also sent on the channel, so a test
/// can wait for a line (a readiness signal) and still get the whole text at the end.
pub(crate) fn watch_stderr(
    child: &mut Child,
) -> (mpsc::Receiver<String>, std::thread::JoinHandle<String>) {
    let err = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in err.lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    (rx, reader)
}

/// A `spate run` started with `--metrics-listen 127.0.0.1:0`, whose stderr is being read.
pub(crate) struct Watched {
    pub(crate) child: Child,
    pub(crate) lines: mpsc::Receiver<String>,
    pub(crate) reader: std::thread::JoinHandle<String>,
    /// The metrics server's address: printed after the signal handlers are installed and the
    /// run has started, so a signal sent after it arrives is a signal to a running run.
    pub(crate) addr: String,
}

impl Watched {
    pub(crate) fn start(mut c: Command) -> Watched {
        let mut child = c.args(["--metrics-listen", "127.0.0.1:0"]).spawn().unwrap();
        let (lines, reader) = watch_stderr(&mut child);
        let mut w = Watched { child, lines, reader, addr: String::new() };
        let line = w.line_with("spate: metrics on http://", Duration::from_secs(20));
        w.addr = line
            .split("http://")
            .nth(1)
            .unwrap()
            .trim_end_matches("/metrics (status on /v1/status)")
            .to_string();
        w
    }

    /// Waits for a stderr line containing `text`, at most `limit`.
    pub(crate) fn line_with(&self, text: &str, limit: Duration) -> String {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(text) => return l,
                Ok(_) => {}
                Err(e) => panic!("no stderr line with {text:?} within {limit:?} ({e})"),
            }
        }
    }

    /// Waits until the run's totals (`/v1/status`) satisfy `f`, at most `limit`.
    pub(crate) fn totals_until(&self, what: &str, limit: Duration, f: impl Fn(&Value) -> bool) {
        eventually(limit, what, || {
            let (_, body) = http(&self.addr, "GET", "/v1/status", "");
            let v: Value = serde_json::from_str(&body).ok()?;
            f(&v["totals"]).then_some(())
        });
    }

    pub(crate) fn outcome(self, started: Instant, limit: Duration, summary: &Path) -> Outcome {
        let code = wait_exit(self.child, started, limit);
        let stderr = self.reader.join().unwrap();
        outcome_of(code, started.elapsed(), stderr, summary)
    }
}

/// Waits for `child` at most `limit` (then kills it and fails): its exit code.
pub(crate) fn wait_exit(mut child: Child, started: Instant, limit: Duration) -> i32 {
    let status = eventually(limit, "spate to exit", || {
        let s = child.try_wait().unwrap();
        if s.is_none() && started.elapsed() + Duration::from_millis(5) >= limit {
            let _ = child.kill();
            let _ = child.wait();
        }
        s
    });
    status.code().unwrap_or(-1)
}

/// Waits for `child` at most `limit` (then kills it and fails): (exit code, elapsed, stderr).
pub(crate) fn finish(
    mut child: Child,
    started: Instant,
    limit: Duration,
) -> (i32, Duration, String) {
    let (_, reader) = watch_stderr(&mut child);
    let code = wait_exit(child, started, limit);
    (code, started.elapsed(), reader.join().unwrap())
}

pub(crate) struct Outcome {
    pub(crate) code: i32,
    pub(crate) elapsed: Duration,
    pub(crate) s: Value,
    pub(crate) stderr: String,
}

impl Outcome {
    pub(crate) fn n(&self, k: &str) -> u64 {
        self.s[k].as_u64().unwrap_or_else(|| panic!("summary has no {k}: {}", self.s))
    }

    /// The identity, with nothing left in flight.
    pub(crate) fn balanced(&self) {
        let (g, d, l, s, f, i) = (
            self.n("generated"),
            self.n("delivered"),
            self.n("dead_lettered"),
            self.n("shed"),
            self.n("failed"),
            self.n("in_flight"),
        );
        assert_eq!(g, d + l + s + f + i, "identity: {}\n{}", self.s, self.stderr);
        assert_eq!(i, 0, "in flight at exit: {}\n{}", self.s, self.stderr);
        assert!(g > 0, "nothing generated: {}", self.s);
    }

    pub(crate) fn report(&self, row: &str) {
        eprintln!(
            "FAULT | {row} | {:.1} s | exit {} | generated {} = delivered {} + dead-lettered {} + shed {} + failed {} + in flight {}",
            self.elapsed.as_secs_f64(),
            self.code,
            self.n("generated"),
            self.n("delivered"),
            self.n("dead_lettered"),
            self.n("shed"),
            self.n("failed"),
            self.n("in_flight")
        );
    }
}

pub(crate) fn outcome(child: Child, started: Instant, limit: Duration, summary: &Path) -> Outcome {
    let (code, elapsed, stderr) = finish(child, started, limit);
    outcome_of(code, elapsed, stderr, summary)
}

pub(crate) fn outcome_of(code: i32, elapsed: Duration, stderr: String, summary: &Path) -> Outcome {
    let text = std::fs::read_to_string(summary)
        .unwrap_or_else(|e| panic!("no summary ({e}); exit {code}; stderr:\n{stderr}"));
    Outcome { code, elapsed, s: serde_json::from_str(&text).unwrap(), stderr }
}

pub(crate) fn dlq_lines(p: &Path) -> u64 {
    std::fs::read_to_string(p).map_or(0, |t| t.lines().count() as u64)
}

pub(crate) fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub(crate) fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on a child we spawned and have not reaped.
    let r = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(r, 0, "kill failed");
}

/// `spate broker` on loopback: (child, bootstrap address).
pub(crate) fn broker(dir: &Dir) -> (Child, String) {
    let file = dir.join("bootstrap");
    let child = Command::new(env!("CARGO_BIN_EXE_spate"))
        .args(["broker", "--topic", "t", "--partitions", "4", "--bootstrap-file"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let b = eventually(Duration::from_secs(20), "spate broker's bootstrap file", || {
        std::fs::read_to_string(&file).ok().filter(|s| !s.trim().is_empty())
    });
    (child, b.trim().to_string())
}

/// One HTTP/1.1 request on its own connection: (status, body).
pub(crate) fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, body.to_string())
}
