//! Builds the root logger: slog-term lines on stderr, filtered by level.
//! Everything else gets its logger passed in and makes children of it.

use slog::{Drain, Level, LevelFilter, Logger};

/// A logger writing plain (uncoloured) lines to stderr, at `level` and above.
pub fn stderr_logger(level: Level) -> Logger {
    let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
    let drain = slog_term::FullFormat::new(decorator).build().fuse();
    Logger::root(LevelFilter::new(drain, level).fuse(), slog::o!())
}

/// A logger that drops everything; for tests that do not look at logs.
pub fn discard() -> Logger {
    Logger::root(slog::Discard, slog::o!())
}
