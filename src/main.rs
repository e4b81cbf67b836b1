//! The `chat-server` binary: parses flags, sets up logging, wires SIGINT and
//! SIGTERM to the server's shutdown, and runs it. Exits 0 after a clean
//! shutdown, 2 on a bad flag and 1 when the server cannot start.

use std::process::ExitCode;

use chat_server::config::{Config, Opt};
use chat_server::logging::stderr_logger;
use chat_server::server::{raise_open_file_limit, run, shutdown_channel};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use structopt::StructOpt;

/// jemalloc for every allocation in the process: the Rust code's through
/// this, and gRPC C-core's too, as the crate's `unprefixed_malloc` feature
/// makes jemalloc the process's `malloc`. C-core allocates and frees a call
/// arena (about 10 KB) and a handful of small blocks per call, which glibc's
/// malloc serves slower (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let config = match Config::from_opt(Opt::from_args()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("chat-server: {error}");
            return ExitCode::from(2);
        }
    };
    let log = stderr_logger(config.log_format, config.log_level);
    match raise_open_file_limit() {
        Ok(limit) => slog::debug!(log, "open-file limit"; "limit" => limit),
        Err(error) => slog::warn!(log, "cannot raise the open-file limit"; "error" => %error),
    }

    let (trigger, shutdown) = shutdown_channel();
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(error) => {
            eprintln!("chat-server: cannot handle signals: {error}");
            return ExitCode::FAILURE;
        }
    };
    let signal_log = log.clone();
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            slog::info!(signal_log, "signal received"; "signal" => signal);
            trigger.fire();
        }
    });

    match run(&config, &log, shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            slog::error!(log, "cannot start"; "error" => %error);
            eprintln!("chat-server: {error}");
            ExitCode::FAILURE
        }
    }
}
