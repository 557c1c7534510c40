//! The `spate` binary: CLI front end of the engine. `anyhow` lives here, at the edge.

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// mimalloc returns freed pages to the OS 10 ms after they empty (its `purge_delay`). A Kafka
/// producer frees and reallocates its whole queue every second, so every page came back zeroed by
/// a page fault (`clear_page_erms` was 12 % of the flush thread). Never purging keeps RSS at its
/// high-water mark, which the in-flight byte budget caps; see tuning.md. `MIMALLOC_PURGE_DELAY`
/// in the environment still wins.
fn keep_freed_pages() {
    const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15; // mimalloc.h, enum mi_option_e (v2 and v3)
    extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set is mimalloc's documented, thread-safe option setter (the linked
        // allocator, see #[global_allocator]); the option index is from the bundled mimalloc.h.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

mod cli;
mod commands;
mod metrics;
mod serve;

use clap::Parser;

/// Exit codes: 0 ok, 1 the run failed or verification found problems, 2 bad input.
fn main() {
    keep_freed_pages();
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
