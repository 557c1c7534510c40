//! Helpers shared by the control-plane tests: a spawned `spate` that prints its address, a
//! minimal HTTP/1.1 client, temporary directories and the Prometheus tools.

// Each test crate uses its own subset of these.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

pub(crate) mod faults;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_spate");

/// A spawned `spate` process that prints its address on stderr; killed on drop.
pub(crate) struct Proc {
    pub child: Child,
    pub addr: String,
    /// Everything the process wrote on stderr so far.
    pub stderr: Arc<Mutex<String>>,
}

impl Proc {
    /// Spawns `spate args...` and waits (up to 30 s) for the stderr line starting with `marker`
    /// followed by `http://ADDR` (or `https://ADDR`).
    pub(crate) fn spawn(args: &[&str], marker: &str) -> Proc {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn spate");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let needle = marker.to_string();
        let log = Arc::new(Mutex::new(String::new()));
        let log2 = log.clone();
        // Keeps draining stderr for the life of the process so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log2.lock().unwrap().push_str(&format!("{line}\n"));
                if let Some(rest) = line.split_once(&needle).map(|(_, r)| r) {
                    let rest = rest.trim();
                    if let Some(a) =
                        rest.strip_prefix("http://").or_else(|| rest.strip_prefix("https://"))
                    {
                        let _ = tx.send(a.split('/').next().unwrap_or("").to_string());
                    }
                }
            }
        });
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            panic!(
                "spate {args:?} did not print `{marker} http://...` within 30 s: {}",
                log.lock().unwrap()
            );
        };
        Proc { child, addr, stderr: log }
    }

    pub(crate) fn serve(extra: &[&str]) -> Proc {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Proc::spawn(&args, "serve listening on")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub(crate) fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field: {}", self.body))
            .to_string()
    }
}

/// A minimal HTTP/1.1 client: one request per connection.
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&request(addr, method, path, headers, body)).expect("write request");
    read_response(s)
}

/// One request's bytes, `Connection: close`, with a `Content-Length`.
pub(crate) fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut buf = req.into_bytes();
    buf.extend_from_slice(body);
    buf
}

pub(crate) fn read_response(mut s: TcpStream) -> Resp {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
        .unwrap_or_else(|| panic!("no response head: {:?}", String::from_utf8_lossy(&raw)))
}

pub(crate) fn get(addr: &str, path: &str) -> Resp {
    http(addr, "GET", path, &[], b"")
}

pub(crate) fn post(addr: &str, path: &str, body: &str) -> Resp {
    http(addr, "POST", path, &[("Content-Type", "application/json")], body.as_bytes())
}

pub(crate) fn put(addr: &str, path: &str, body: &str) -> Resp {
    http(addr, "PUT", path, &[("Content-Type", "application/json")], body.as_bytes())
}

pub(crate) fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("spate-serve-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub(crate) fn deploy(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(file)
}

pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// Where `name` (promtool or prometheus) is on PATH. When it is not there: panics, unless
/// SPATE_SKIP_PROMTOOL=1, in which case it reports the skipped check and returns None.
pub(crate) fn prometheus_tool(name: &str, check: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()));
    if found.is_some() {
        return found;
    }
    if std::env::var("SPATE_SKIP_PROMTOOL").as_deref() == Ok("1") {
        // Straight to the stderr handle: the test harness captures eprintln! of passing tests,
        // and a skipped check must not go unnoticed.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {check}: `{name}` is not on PATH (SPATE_SKIP_PROMTOOL=1)"
        );
        return None;
    }
    panic!(
        "{check} needs `{name}`, which is not on PATH: install Debian's `prometheus` package (scripts/test.sh does), \
         or set SPATE_SKIP_PROMTOOL=1 to skip this check"
    );
}

pub(crate) fn promtool_check_metrics(text: &str) {
    let Some(promtool) = prometheus_tool("promtool", "promtool check metrics") else {
        return;
    };
    let mut c = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition ---\n{text}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs `spate args...` to completion, killing it (and failing) if it is still running after
/// `limit`: a command expected to refuse must not hang the test instead.
pub(crate) fn run_bounded(args: &[&str], limit: Duration) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn spate");
    let end = std::time::Instant::now() + limit;
    while child.try_wait().expect("wait for spate").is_none() {
        if std::time::Instant::now() >= end {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "spate {args:?} still running after {limit:?}; stderr: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        // The poll interval of a wait on the child's exit, which has a deadline (above).
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Sends `request` as is and reads the response, giving up after `timeout` (then None, as for
/// a connection closed without a response).
pub(crate) fn raw(addr: &str, request: &[u8], timeout: Duration) -> Option<Resp> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(timeout)).unwrap();
    s.set_write_timeout(Some(timeout)).unwrap();
    s.write_all(request).ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse_response(&buf)
}

/// A response from its bytes, or None if they hold no complete head.
pub(crate) fn parse_response(raw: &[u8]) -> Option<Resp> {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status =
        lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok())?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Resp { status, headers, body: body.to_string() })
}

pub(crate) fn post_json(addr: &str, path: &str, body: &Value) -> Resp {
    post(addr, path, &body.to_string())
}

pub(crate) fn port(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap()
}

/// A memory figure of a process in kB (`VmRSS`, `VmHWM`), from /proc.
pub(crate) fn status_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s
        .lines()
        .find(|l| l.split(':').next() == Some(field))
        .unwrap_or_else(|| panic!("no {field} line"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Connects from `from` (a loopback address of this host) to 127.0.0.1:`port`.
pub(crate) fn socket2_connect(from: [u8; 4], port: u16) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket/bind/connect calls on a descriptor this function owns until it is
    // handed to `TcpStream` (which then closes it); the addresses are valid sockaddr_in values.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let addr = |ip: [u8; 4], port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(ip) },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let local = addr(from, 0);
        if libc::bind(fd, (&raw const local).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let remote = addr([127, 0, 0, 1], port);
        if libc::connect(fd, (&raw const remote).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}
