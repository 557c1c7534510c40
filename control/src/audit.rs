//! The audit trail at the binary's edge: checking the database at start, and who started a run.

use std::time::Duration;

use serde_json::{json, Value};
use spate_engine::audit::{AuditConfig, Auditor, ConnectError};
use spate_engine::ConfigError;

use crate::redact::Secrets;

/// Starts the audit writer after one connection attempt: a refusal (wrong password, no
/// permission to create the tables) is a config error (exit 2); an unreachable database is
/// only a warning: the rows wait in memory until it answers.
pub fn start(cfg: &AuditConfig, secrets: &Secrets) -> Result<Auditor, anyhow::Error> {
    match Auditor::check(cfg, Duration::from_secs(3)) {
        Ok(()) => {}
        Err(ConnectError::Refused(m)) => {
            return Err(ConfigError::new(
                "audit.url",
                secrets.text(&format!("the audit database refused spate: {m}")),
                "check the user, password (audit.password_file or the URL), database, and that the user may create tables",
            )
            .into())
        }
        Err(ConnectError::Unreachable(m)) => {
            say!(
                "spate: warning: audit: {} does not answer ({}); the audit rows are kept and written when it does",
                cfg.display,
                secrets.text(&m)
            );
        }
    }
    Ok(Auditor::start(cfg)?)
}

/// A run started from the command line: the user, host and process.
pub fn cli_origin() -> Value {
    let host =
        std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).ok();
    json!({
        "via": "cli",
        "user": std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).ok(),
        "host": host,
        "pid": std::process::id(),
    })
}

/// A run started through the HTTP API: the client's address, and whether a token admitted it
/// (the token itself is never recorded).
pub fn api_origin(remote: Option<std::net::IpAddr>, token: bool) -> Value {
    json!({
        "via": "api",
        "remote": remote.map(|r| r.to_string()),
        "token": if token { "bearer (--token-file)" } else { "none (loopback, no token configured)" },
        "pid": std::process::id(),
    })
}
