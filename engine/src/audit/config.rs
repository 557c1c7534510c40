//! The `audit:` section: where the audit trail is written, and how long to wait for it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use spate_core::conf::{HumanDuration, SecretFile, SecretUrl};
use spate_core::secret::Secret;

/// `audit:` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    /// `postgres://user@host:port/db` (the password inline, `${ENV}` expanded, or in
    /// `password_file`).
    pub url: Option<SecretUrl>,
    /// A file holding the password.
    pub password_file: Option<SecretFile>,
    /// Records kept while PostgreSQL is unreachable, 1 to 10000000 (default 10000).
    pub queue: Option<usize>,
    /// How long a finishing `spate run` waits for the audit rows to be written, while the database
    /// answers (default `5s`; with it away the rows left are counted not written at once).
    pub flush_timeout: Option<HumanDuration>,
}

/// A checked `audit:` section.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The connection URL (with its password, if written there).
    pub url: String,
    /// The URL as messages show it: its password masked.
    pub display: String,
    /// The password read from `password_file`, if set.
    pub password: Option<Secret>,
    /// Records kept while PostgreSQL is unreachable.
    pub queue: usize,
    /// How long a finishing run waits for the audit rows to be written.
    pub flush_timeout: Duration,
}

impl RawAudit {
    /// None when no URL is set (the audit is off).
    pub fn validate(&self) -> Result<Option<AuditConfig>, ConfigError> {
        let Some(url) = &self.url else {
            if *self != RawAudit::default() {
                return Err(ConfigError::new(
                    "audit.url",
                    "audit settings without a URL",
                    "set audit.url (--audit postgres://...)",
                ));
            }
            return Ok(None);
        };
        let url = spate_core::secret::expand(url.as_str(), "audit.url")?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError::new(
                "audit.url",
                "not a PostgreSQL URL",
                "write postgres://USER@HOST:PORT/DATABASE (password in password_file or ${ENV})",
            ));
        }
        let parsed: postgres::Config = url.parse().map_err(|e| {
            ConfigError::new(
                "audit.url",
                format!("the URL does not parse: {e}"),
                "write postgres://USER@HOST:PORT/DATABASE",
            )
        })?;
        if parsed.get_user().is_none() {
            return Err(ConfigError::new(
                "audit.url",
                "no user in the URL",
                "write postgres://USER@HOST:PORT/DATABASE",
            ));
        }
        let password = spate_core::secret::resolve(
            None,
            self.password_file.as_ref().map(SecretFile::path),
            "audit.password",
            "audit.password_file",
        )?;
        let queue = self.queue.unwrap_or(10_000);
        if !(1..=10_000_000).contains(&queue) {
            return Err(ConfigError::new(
                "audit.queue",
                format!("{queue} records is out of range"),
                "use 1 to 10000000 (default 10000)",
            ));
        }
        let flush_timeout = self.flush_timeout.map_or(Duration::from_secs(5), HumanDuration::get);
        if flush_timeout > Duration::from_secs(600) {
            return Err(ConfigError::new(
                "audit.flush_timeout",
                format!("{flush_timeout:?} is longer than 10 minutes"),
                "use 0s to 10m (default 5s)",
            ));
        }
        let display = spate_core::conf::mask_url_password(&url);
        Ok(Some(AuditConfig { url, display, password, queue, flush_timeout }))
    }
}
