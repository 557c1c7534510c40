//! # spate (the binary crate)
//!
//! The command line, the HTTP control plane and the tools around a run (`spate verify`, `spate
//! dlq replay`); the engine crates do the work. `anyhow` lives here, at the edge.
#![warn(clippy::unwrap_used)]

/// Like `eprintln!`, but a closed or full stderr is ignored instead of panicking: the run's
/// outcome (and `--summary-json`) must not depend on whether anyone reads its messages.
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

mod allowlist;
pub mod audit;
pub mod cli;
pub mod commands;
mod confine;
pub mod dlq_replay;
pub mod exit;
mod http;
pub mod logs;
mod metrics;
mod profiles;
mod redact;
mod serve;
mod status;
pub mod verify;
