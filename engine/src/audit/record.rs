//! What goes to the audit tables, and the counts the writer keeps.

use std::time::SystemTime;

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::Value;

/// One record for the audit tables.
#[derive(Debug, Clone)]
pub(crate) enum Record {
    Started { run_id: String, at: SystemTime, origin: Value, seed: u64, config: Value },
    Change { run_id: String, at: SystemTime, kind: String, detail: Value },
    Ended { run_id: String, at: SystemTime, summary: Value, exit_status: i32 },
}

/// What the audit writer did, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// Records written to the database.
    pub written: u64,
    /// Dropped: the queue was full (PostgreSQL down for long), or refused by the database.
    pub dropped: u64,
    /// Not written when the writer was asked to finish.
    pub pending: u64,
}

pub(crate) struct Shared {
    pub written: std::sync::atomic::AtomicU64,
    pub dropped: std::sync::atomic::AtomicU64,
    pub pending: std::sync::atomic::AtomicU64,
    pub last_error: Mutex<Option<String>>,
    pub stop: std::sync::atomic::AtomicBool,
    /// Whether the writer holds a connection now (rows can still go out).
    pub connected: std::sync::atomic::AtomicBool,
}
