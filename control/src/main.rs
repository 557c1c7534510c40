//! The `spate` binary: CLI front end of the engine. `anyhow` lives here, at the edge.

use spate_engine::alloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

mod cli;
mod commands;
mod http;
mod metrics;
mod serve;
mod status;

use clap::Parser;

/// Exit codes: 0 ok, 1 the run failed or verification found problems, 2 bad input.
fn main() {
    spate_engine::alloc::keep_freed_pages();
    let cli = cli::Cli::parse();
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(c) = e.downcast_ref::<spate_engine::ConfigError>() {
                eprintln!("spate: {c}");
                2
            } else if let Some(spate_engine::EngineError::Config(c)) = e.downcast_ref::<spate_engine::EngineError>() {
                eprintln!("spate: {c}");
                2
            } else {
                eprintln!("spate: error: {e:#}");
                1
            }
        }
    };
    std::process::exit(code);
}
