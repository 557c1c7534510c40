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
        std::thread::sleep(POLL.min(deadline - now));
    }
}

/// A `redis-server` on 127.0.0.1 with no persistence, in a temporary directory of its own.
/// Dropping it kills the server and removes the directory.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
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
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!("spate-redis-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // Created before the loop so that Drop removes the directory on every error path.
        let mut s = Self { port: 0, dir, child: None };
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

    /// Kills the server at once (SIGKILL, as in a crash); `restart` brings it back.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
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
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
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
            exited || pong(self.port)
        });
        if up && !exited {
            return Ok(());
        }
        self.kill();
        Err(if exited {
            format!("redis-server exited at start on port {} (port taken?)", self.port)
        } else {
            format!("redis-server did not answer PING on port {} within {START_TIMEOUT:?}", self.port)
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

/// Whether a Redis server on `port` answers `PING` with `+PONG`.
fn pong(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut c) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 16];
    c.write_all(b"PING\r\n").is_ok() && c.read(&mut buf).is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
}

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
