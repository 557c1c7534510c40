//! A PostgreSQL cluster of a test's own.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{free_port, START_ATTEMPTS};

/// A PostgreSQL cluster of a test's own: `initdb` in a temporary directory, a free loopback port,
/// password authentication over TCP (user `postgres`, password [`Postgres::PASSWORD`]). As root
/// the server runs as the `postgres` system user (PostgreSQL refuses to run as root). Stopped and
/// removed on drop.
pub struct Postgres {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
}

impl Postgres {
    pub const PASSWORD: &'static str = "pg-test-pass";

    /// Where `initdb` is: on PATH, or Debian's `/usr/lib/postgresql/N/bin` (not on PATH).
    fn bin_dir() -> Option<PathBuf> {
        let on_path = std::env::var_os("PATH")
            .and_then(|p| std::env::split_paths(&p).find(|d| d.join("initdb").is_file()));
        on_path.or_else(|| {
            let mut v: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .flatten()
                .map(|e| e.path().join("bin"))
                .collect();
            v.sort();
            v.into_iter().rev().find(|d| d.join("initdb").is_file())
        })
    }

    /// Starts a fresh cluster; panics with the reason if it cannot.
    pub fn start() -> Self {
        let bin = Self::bin_dir().unwrap_or_else(|| {
            panic!("initdb not found: install Debian's postgresql package (scripts/test.sh does)")
        });
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "spate-pg-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        // SAFETY: geteuid has no preconditions and cannot fail.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let mut pg = Postgres { port: 0, dir, bin, as_postgres };
        std::fs::write(pg.dir.join("pw"), Self::PASSWORD).unwrap();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&pg.dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cannot hand {} to the postgres user", pg.dir.display());
        }
        let data = pg.dir.join("data");
        let out = pg
            .cmd("initdb")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pg.dir.join("pw").display()))
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        for _ in 0..START_ATTEMPTS {
            pg.port = free_port().unwrap();
            if pg.run_ctl("start") {
                return pg;
            }
        }
        panic!(
            "postgres did not start: {}",
            std::fs::read_to_string(pg.dir.join("log")).unwrap_or_default()
        );
    }

    fn cmd(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run_ctl(&self, what: &str) -> bool {
        let data = self.dir.join("data");
        let mut c = self.cmd("pg_ctl");
        c.args(["-D", data.to_str().unwrap(), "-w", "-t", "30", "-l"]).arg(self.dir.join("log"));
        if what == "start" {
            c.arg("-o").arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                self.port,
                self.dir.display()
            ));
        } else {
            c.args(["-m", "fast"]);
        }
        c.arg(what).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    }

    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres:{}@127.0.0.1:{}/postgres", Self::PASSWORD, self.port)
    }

    /// Stops the server (fast shutdown: connections are cut); `resume` starts it again.
    pub fn stop(&self) {
        assert!(self.run_ctl("stop"), "pg_ctl stop failed");
    }

    pub fn resume(&self) {
        assert!(
            self.run_ctl("start"),
            "pg_ctl start failed: {}",
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
    }

    /// Stops every process of the server (SIGSTOP): it keeps its sockets, and the kernel keeps
    /// accepting and acknowledging, but nothing answers: a hung server. `unpause` resumes it.
    pub fn pause(&self) {
        self.signal_all("-STOP");
    }

    /// Resumes a server stopped by `pause` (SIGCONT).
    pub fn unpause(&self) {
        self.signal_all("-CONT");
    }

    /// Sends `sig` to the postmaster and its children.
    fn signal_all(&self, sig: &str) {
        let pidfile =
            std::fs::read_to_string(self.dir.join("data").join("postmaster.pid")).unwrap();
        let main: u32 =
            pidfile.lines().next().and_then(|l| l.trim().parse().ok()).expect("postmaster.pid");
        let mut pids = vec![main.to_string()];
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
            // pid (comm) state ppid ...: the comm may hold spaces, so read after its ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(main) {
                pids.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        let ok = Command::new("kill").arg(sig).args(&pids).status().is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pids:?} failed");
    }

    /// Runs `sql` with psql over TCP as `postgres`; returns the unaligned, tuples-only output.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql).unwrap_or_else(|e| panic!("psql {sql:?}: {e}"))
    }

    /// Like `psql`, with psql's error instead of a panic.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-c")
            .arg(sql)
            .env("PGPASSWORD", Self::PASSWORD)
            .output()
            .expect("run psql");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.run_ctl("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
