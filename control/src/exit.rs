//! The exit code of a finished run (documented in `main.rs` and the README).

use spate_engine::Summary;

/// A signal came while the run was starting (its sink opening): nothing was generated.
pub const STOPPED_BEFORE_START: i32 = 5;

/// The documented exit codes.
pub fn exit_code(s: &Summary) -> i32 {
    use spate_engine::Outcome;
    if s.reader_gone {
        return 0;
    }
    match s.outcome {
        Outcome::NothingDelivered => 4,
        Outcome::Partial => 3,
        Outcome::Delivered if s.error.is_some() => 1,
        Outcome::Delivered => 0,
    }
}
