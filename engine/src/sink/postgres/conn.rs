//! Connections of the PostgreSQL sink: bounded connects and statements, and the server's own
//! words for what went wrong.

use std::time::Duration;

use postgres::{Client, NoTls};

use super::config::PgConfig;
pub(super) fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

pub(super) fn connect(target: &PgConfig, timeout: Duration) -> Result<Client, postgres::Error> {
    let mut pc: postgres::Config = target.url.parse()?;
    pc.connect_timeout(timeout);
    pc.application_name("spate");
    pc.options("-c statement_timeout=30000");
    pc.connect(NoTls)
}
