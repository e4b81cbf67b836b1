//! Builds the root logger: human-readable slog-term lines or one JSON object
//! per line (for log collectors) on stderr, filtered by level. Everything
//! else gets its logger passed in and makes children of it.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use slog::{Drain, Level, LevelFilter, Logger};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// slog-term's `Nov 22 01:37:05.697 INFO connected, user: alice` lines.
    Term,
    /// One JSON object per line: `ts`, `level`, `msg` and the fields.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<LogFormat, String> {
        match text {
            "term" => Ok(LogFormat::Term),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("expected term or json, got {other:?}")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Term => "term",
            LogFormat::Json => "json",
        })
    }
}

/// A logger writing `format` lines to stderr, at `level` and above.
pub fn stderr_logger(format: LogFormat, level: Level) -> Logger {
    match format {
        LogFormat::Term => {
            let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
            let drain = slog_term::FullFormat::new(decorator).build().fuse();
            Logger::root(LevelFilter::new(drain, level).fuse(), slog::o!())
        }
        LogFormat::Json => {
            let drain = slog_json::Json::new(std::io::stderr())
                .add_default_keys()
                .build();
            let drain = Mutex::new(drain).fuse();
            Logger::root(LevelFilter::new(drain, level).fuse(), slog::o!())
        }
    }
}

/// A logger that drops everything; for tests that do not look at logs.
pub fn discard() -> Logger {
    Logger::root(slog::Discard, slog::o!())
}
