//! Helpers shared by spate's integration tests (and the limiter benchmark): a `redis-server` of
//! their own, and waiting for a condition with a deadline instead of sleeping for a guessed time.
//!
//! No Redis client here: readiness is a `PING` over a raw socket, so crates that do not depend
//! on `redis` can use the server too.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often `wait_for` looks again.
const POLL: Duration = Duration::from_millis(2);
/// How long a starting `redis-server` may take to answer `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Ports tried when a free port is taken by someone else before the server binds it.
const START_ATTEMPTS: usize = 5;

/// Polls `f` until it returns Some, for at most `limit`; panics naming `what` then.
pub fn eventually<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        let now = Instant::now();
        assert!(now < end, "timed out after {limit:?} waiting for {what}");
        // The poll interval of a wait on a condition, bounded by the deadline.
        std::thread::sleep(POLL.min(end - now));
    }
}

/// Waits until `condition` holds, looking again every 2 ms, or until `deadline` passes.
/// Returns whether it held; the condition is checked once more at the deadline.
pub fn wait_for(deadline: Instant, mut condition: impl FnMut() -> bool) -> bool {
    loop {
        if condition() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        // The poll interval of a wait on a condition, bounded by the deadline.
        std::thread::sleep(POLL.min(deadline - now));
    }
}

/// A `redis-server` on 127.0.0.1 with no persistence, in a temporary directory of its own.
/// Dropping it kills the server and removes the directory.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// `requirepass`, if the server asks for one.
    password: Option<String>,
    /// TLS only (no plaintext port), with these certificates and this ACL file.
    tls: Option<TlsServer>,
}

/// How a TLS `redis-server` runs: certificates from [`make_certs`], and an ACL file.
#[derive(Clone, Debug)]
pub struct TlsServer {
    pub certs: PathBuf,
    pub acl_file: Option<PathBuf>,
    /// `tls-auth-clients yes`: clients must present a certificate signed by the test CA.
    pub require_client_cert: bool,
}

/// Makes a throwaway CA and certificates into `dir` with `scripts/tls-certs.sh` (the one
/// recipe, shared with the end-to-end scripts): `ca.pem`, `server.pem` (localhost,
/// 127.0.0.1), `other.pem` (another host name), `client.pem`, `rogue-ca.pem`, and
/// `client-enc.key` encrypted with `key_passphrase` if given.
pub fn make_certs(dir: &std::path::Path, key_passphrase: Option<&str>) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/tls-certs.sh");
    let mut c = Command::new("bash");
    c.arg(script).arg(dir);
    if let Some(p) = key_passphrase {
        c.env("KEY_PASSPHRASE", p);
    }
    let o = c.output().expect("run scripts/tls-certs.sh (needs openssl)");
    assert!(o.status.success(), "tls-certs.sh: {}", String::from_utf8_lossy(&o.stderr));
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it answers `PING`. Panics if
    /// `redis-server` is not installed or does not come up.
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like `start`, but says why the server could not be started instead of panicking (for
    /// callers that skip what needs Redis).
    pub fn try_start() -> Result<Self, String> {
        Self::try_start_with(None)
    }

    /// Like `start`, for a server that requires `password` (`requirepass`).
    pub fn start_with_password(password: &str) -> Self {
        Self::try_start_with(Some(password.to_string())).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A server that speaks only TLS (see [`TlsServer`]).
    pub fn start_tls(tls: TlsServer) -> Self {
        Self::try_start_full(None, Some(tls)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_start_with(password: Option<String>) -> Result<Self, String> {
        Self::try_start_full(password, None)
    }

    fn try_start_full(password: Option<String>, tls: Option<TlsServer>) -> Result<Self, String> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "spate-redis-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // Created before the loop so that Drop removes the directory on every error path.
        let mut s = Self { port: 0, dir, child: None, password, tls };
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            s.port = free_port().map_err(|e| format!("no free loopback port: {e}"))?;
            match s.spawn() {
                Ok(()) => return Ok(s),
                // Another process may have bound the port between our probe and the server.
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends one command (after `AUTH` when the server has a password) and returns the first
    /// line of its reply, e.g. `:1` for `EXISTS` of a key that is there. For single-line
    /// replies: integers, statuses, errors.
    pub fn query(&self, args: &[&str]) -> Result<String, String> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
            .map_err(|e| format!("connect: {e}"))?;
        c.set_read_timeout(Some(Duration::from_secs(1))).map_err(|e| e.to_string())?;
        let mut req = Vec::new();
        let mut replies = 1;
        if let Some(p) = &self.password {
            req.extend(resp(&["AUTH", p]));
            replies += 1;
        }
        req.extend(resp(args));
        c.write_all(&req).map_err(|e| format!("write: {e}"))?;
        let mut text = String::new();
        let mut buf = [0u8; 512];
        while text.matches("\r\n").count() < replies {
            let n = c.read(&mut buf).map_err(|e| format!("read: {e} after {text:?}"))?;
            if n == 0 {
                return Err(format!("closed after {text:?}"));
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        Ok(text.split("\r\n").nth(replies - 1).unwrap_or("").to_string())
    }

    /// Kills the server at once (SIGKILL, as in a crash, and whether or not it is paused);
    /// `restart` brings it back.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes the server (SIGSTOP), as a hung host or a stalled VM would: the kernel still
    /// accepts connections on its port, but nothing answers. `resume` thaws it.
    pub fn pause(&mut self) {
        self.signal(libc::SIGSTOP);
    }

    /// Thaws a server frozen by `pause` (SIGCONT).
    pub fn resume(&mut self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, sig: libc::c_int) {
        let child = self.child.as_ref().expect("redis-server is not running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill has no memory preconditions; the pid is our own child, not yet reaped
        // (it is only reaped in `kill`, which takes it out of `self.child`).
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig}): {}", std::io::Error::last_os_error());
    }

    /// Starts the server again on the same port, empty, after `kill`. Panics if it does not
    /// come up.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(e) = self.spawn() {
            panic!("{e}");
        }
    }

    /// Spawns `redis-server` on `self.port` and waits for `PING`. On failure nothing is left
    /// running.
    fn spawn(&mut self) -> Result<(), String> {
        let mut cmd = Command::new("redis-server");
        let port = self.port.to_string();
        match &self.tls {
            None => cmd.args(["--port", &port]),
            Some(t) => {
                cmd.args(["--port", "0", "--tls-port", &port]);
                cmd.arg("--tls-cert-file")
                    .arg(t.certs.join("server.pem"))
                    .arg("--tls-key-file")
                    .arg(t.certs.join("server.key"));
                cmd.arg("--tls-ca-cert-file").arg(t.certs.join("ca.pem"));
                cmd.args(["--tls-auth-clients", if t.require_client_cert { "yes" } else { "no" }]);
                if let Some(acl) = &t.acl_file {
                    cmd.arg("--aclfile").arg(acl);
                }
                &mut cmd
            }
        };
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir);
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server (is it installed?): {e}"))?;
        self.child = Some(child);
        let mut exited = false;
        let up = wait_for(Instant::now() + START_TIMEOUT, || {
            // Our own server must be the one answering: it may have exited because the port
            // was taken, and then the PING would reach someone else's.
            exited = match self.child.as_mut() {
                Some(c) => !matches!(c.try_wait(), Ok(None)),
                None => true,
            };
            // A TLS server cannot be PINGed over a raw socket: listening is the sign.
            exited || if self.tls.is_some() { listening(self.port) } else { pong(self.port) }
        });
        if up && !exited {
            return Ok(());
        }
        self.kill();
        Err(if exited {
            format!("redis-server exited at start on port {} (port taken?)", self.port)
        } else {
            format!(
                "redis-server did not answer PING on port {} within {START_TIMEOUT:?}",
                self.port
            )
        })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port nobody listened on a moment ago.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// A command in the Redis protocol (an array of bulk strings).
fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend(format!("${}\r\n{a}\r\n", a.len()).into_bytes());
    }
    out
}

/// Whether a Redis server on `port` answers `PING`: `+PONG`, or `-NOAUTH` from one that wants
/// a password first.
fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

fn pong(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut c) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 16];
    c.write_all(b"PING\r\n").is_ok()
        && c.read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"))
}

mod postgres;
pub use postgres::Postgres;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_for_reports_whether_the_condition_held() {
        let t = Instant::now();
        assert!(wait_for(t + Duration::from_secs(5), || t.elapsed() >= Duration::from_millis(10)));
        assert!(!wait_for(Instant::now() + Duration::from_millis(10), || false));
    }
}
