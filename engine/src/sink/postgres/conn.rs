//! Connections of the PostgreSQL sink: every call bounded (`crate::pgconn`), statements bounded
//! on the server too.

use std::time::Duration;

use crate::pgconn::{PgConn, PgError};

use super::config::PgConfig;

/// The server's words for what went wrong, or the client's.
pub(super) fn describe(e: &PgError) -> String {
    e.describe()
}

/// A connection to `target` within `deadline`; its calls wait at most `target.call_timeout`.
pub(super) fn connect(target: &PgConfig, deadline: Duration) -> Result<PgConn, PgError> {
    let mut pc: tokio_postgres::Config = target.url.parse().map_err(PgError::Pg)?;
    pc.connect_timeout(deadline);
    pc.application_name("spate");
    pc.options("-c statement_timeout=30000");
    let mut c = PgConn::connect(&pc, deadline)?;
    c.set_deadline(target.call_timeout);
    Ok(c)
}
