//! The `spate` binary: CLI front end of the engine. `anyhow` lives here, at the edge.
#![warn(clippy::unwrap_used)]

use spate_engine::alloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

use clap::Parser;
use spate::{cli, commands, say};

/// Exit codes (README "Exit codes"): 0 everything delivered (or shed as asked, or the reader of
/// stdout went away); 1 an internal error, or verification found problems; 2 bad input;
/// 3 some events were dead-lettered or failed; 4 nothing could be delivered; 5 stopped by a
/// signal before the run started.
fn main() {
    spate_engine::alloc::keep_freed_pages();
    let cli = cli::Cli::parse();
    if let Err(e) = spate::logs::init(cli.log_level.as_deref(), cli.log_format) {
        say!("spate: {e}");
        std::process::exit(2);
    }
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(c) = e.downcast_ref::<spate_engine::ConfigError>() {
                say!("spate: {c}");
                2
            } else if let Some(spate_engine::EngineError::Config(c)) =
                e.downcast_ref::<spate_engine::EngineError>()
            {
                say!("spate: {c}");
                2
            } else if let Some(r @ spate_engine::EngineError::Registry { .. }) =
                e.downcast_ref::<spate_engine::EngineError>()
            {
                // A schema registry that refuses the schema or the credentials, or is not there.
                say!("spate: {r}");
                2
            } else {
                say!("spate: error: {e:#}");
                1
            }
        }
    };
    spate::logs::flush(std::time::Duration::from_millis(500));
    std::process::exit(code);
}
