//! Command-line flags and the validated configuration built from them. Flags
//! are parsed once, in `main`, into an [`Opt`]; [`Config::from_opt`] checks
//! them and turns them into real types, and the rest of the server only ever
//! sees a [`Config`].

use std::fmt;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use slog::Level;
use structopt::StructOpt;

use crate::admin::AdminConfig;
use crate::auth::{self, TokenConfig};
use crate::cluster::ClusterConfig;
use crate::domain::{HistoryLimits, Limits, ResumeLimits, SendLimit};
use crate::logging::LogFormat;
use crate::metrics::http::HttpLimits;
use crate::service::codec::DEFAULT_MAX_REQUEST_BYTES;
use crate::service::delivery::MAX_DELIVERY_BYTES;
use crate::tls::TlsConfig;

/// Longest `--max-text-bytes` accepted: a message this long plus its sender,
/// recipient, id and timestamp still fits in one 64 KiB delivery, and its
/// request still fits under the 64 KiB request limit.
pub const MAX_TEXT_BYTES_LIMIT: usize = MAX_DELIVERY_BYTES - 1024;

/// `--busy-write-delay`'s default.
pub const DEFAULT_BUSY_WRITE_DELAY: Duration = Duration::from_millis(5);

/// How long shutdown waits for streams to take their closing status before
/// it cancels what is left.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The server's command-line flags.
#[derive(Debug, StructOpt)]
#[structopt(
    name = "chat-server",
    about = "In-memory real-time chat service over gRPC (chat.v1.ChatService)"
)]
pub struct Opt {
    /// Address to listen on, as host:port (port 0 picks a free port)
    #[structopt(long, default_value = "127.0.0.1:13111")]
    pub listen: String,

    /// Completion-queue threads that run the handlers [default: half the
    /// number of cores, at least 1]
    #[structopt(long)]
    pub threads: Option<usize>,

    /// Most users connected at once; past it Connect fails with RESOURCE_EXHAUSTED
    #[structopt(long, default_value = "10000")]
    pub max_connections: usize,

    /// Undelivered messages a connection may have queued; a connection whose
    /// queue is full is dropped as a slow consumer
    #[structopt(long, default_value = "1024")]
    pub queue_depth: usize,

    /// Bytes of undelivered messages a connection may have queued; past it
    /// the connection is dropped as a slow consumer
    #[structopt(long, default_value = "1048576")]
    pub queue_bytes: usize,

    /// Longest message text, in bytes of UTF-8 (at most 64512)
    #[structopt(long, default_value = "4096")]
    pub max_text_bytes: usize,

    /// Most groups one user may be in; past it CreateGroupChat and
    /// JoinGroupChat fail with RESOURCE_EXHAUSTED
    #[structopt(long, default_value = "100")]
    pub max_groups_per_user: usize,

    /// Most messages each group keeps in its history, for GetHistory (0:
    /// history off)
    #[structopt(long, default_value = "100")]
    pub history_size: usize,

    /// Most bytes of text each group keeps in its history
    #[structopt(long, default_value = "262144")]
    pub history_bytes: usize,

    /// How long after a stream ends its session may be resumed, e.g. 120s,
    /// 90 (seconds) or 0 (resume off; at most 3600s)
    #[structopt(long, default_value = "120s")]
    pub resume_window: String,

    /// Most messages kept per ended session for a resume (at most
    /// --queue-depth) [default: 300, or --queue-depth if smaller]
    #[structopt(long)]
    pub resume_size: Option<usize>,

    /// Most bytes of text kept per ended session for a resume (with 160
    /// bytes per --resume-size message, at most --queue-bytes) [default:
    /// 262144, or what --queue-bytes leaves if smaller]
    #[structopt(long)]
    pub resume_bytes: Option<usize>,

    /// Most members a group may have, before or after a join or leave, for
    /// the change to send membership events (larger groups send none:
    /// clients list their members instead)
    #[structopt(long, default_value = "1000")]
    pub membership_events_max_members: usize,

    /// Messages per second one user may send (SendMessage; bursts up to
    /// --send-burst); more are refused with RESOURCE_EXHAUSTED. In a
    /// cluster the limit is cluster-wide. 0: no limit
    #[structopt(long, default_value = "0")]
    pub send_rate: u32,

    /// Messages one user may send at once under --send-rate [default: twice
    /// --send-rate]
    #[structopt(long)]
    pub send_burst: Option<u32>,

    /// Seconds of idleness after which the server pings a connection
    #[structopt(long, default_value = "30")]
    pub keepalive_secs: u64,

    /// Seconds the server waits for a ping's answer before it drops the
    /// connection (and disconnects its users)
    #[structopt(long, default_value = "10")]
    pub keepalive_timeout_secs: u64,

    /// Most concurrent calls (streams) on one HTTP/2 connection
    #[structopt(long, default_value = "1024")]
    pub max_streams_per_connection: usize,

    /// Memory gRPC C-core may use for its buffers, in MiB (its resource
    /// quota); 0 leaves C-core's own default, sized from the machine's memory
    #[structopt(long, default_value = "0")]
    pub memory_quota_mib: usize,

    /// Least severe log level written
    #[structopt(
        long,
        default_value = "info",
        possible_values = &["critical", "error", "warning", "info", "debug", "trace"]
    )]
    pub log_level: String,

    /// How long a delivery may wait to collect more messages before it is
    /// written, e.g. 500us, 2ms (0: write at once; at most 1s)
    #[structopt(long, default_value = "0")]
    pub write_delay: String,

    /// While a completion-queue thread is waking many connections (more than
    /// 32 per millisecond), how long their deliveries may wait to collect
    /// more messages, e.g. 5ms (0: never; ignored with --write-delay)
    #[structopt(long, default_value = "5ms")]
    pub busy_write_delay: String,

    /// Log line format: term (human-readable) or json (one object per line)
    #[structopt(long, default_value = "term", possible_values = &["term", "json"])]
    pub log_format: LogFormat,

    /// Join the cluster that shares this Redis, as redis://HOST:PORT[/DB]
    /// (unset: a single embedded node)
    #[structopt(long)]
    pub redis: Option<String>,

    /// Name under which every Redis key of this cluster lives, so several
    /// clusters can share one Redis
    #[structopt(long, default_value = "chat")]
    pub redis_prefix: String,

    /// Seconds after which a cluster node that has not renewed its lease is
    /// dead for the others, and its users are freed (at least 1)
    #[structopt(long, default_value = "5")]
    pub node_lease_secs: u64,

    /// Serve Prometheus metrics at http://HOST:PORT/metrics (port 0 picks a
    /// free port, logged at start) [default: off]
    #[structopt(long, value_name = "HOST:PORT")]
    pub metrics_listen: Option<String>,

    /// Serve the operator's API (chat.admin.v1.AdminService, with health and
    /// reflection) on its own listener at this address, host:port (needs
    /// --admin-token-file; takes --tls-cert/--tls-key like --listen). Unset:
    /// no admin API anywhere
    #[structopt(long, value_name = "HOST:PORT")]
    pub admin_listen: Option<String>,

    /// The admin API's secret (at least 32 bytes; one trailing newline is
    /// ignored): every admin call carries `authorization: Bearer <secret>`
    #[structopt(long, parse(from_os_str))]
    pub admin_token_file: Option<PathBuf>,
    /// Token mode: every call must carry `authorization: Bearer <JWT>`, an
    /// HS256 token signed with the secret in this file (at least 32 bytes;
    /// a second line holds a previous secret still accepted). Unset: plain
    /// mode, where the header's bare name is trusted
    #[structopt(long, parse(from_os_str))]
    pub auth_token_secret_file: Option<PathBuf>,

    /// Token mode: the `aud` every token must name (unset: not checked)
    #[structopt(long)]
    pub auth_token_audience: Option<String>,

    /// Token mode: the `iss` every token must carry (unset: not checked)
    #[structopt(long)]
    pub auth_token_issuer: Option<String>,

    /// Token mode: seconds of clock skew allowed on `exp` and `nbf` (at most 300)
    #[structopt(long, default_value = "30")]
    pub auth_token_leeway_secs: u64,

    /// Serve TLS on --listen with this certificate chain (PEM; needs
    /// --tls-key). Reread for new connections when the file changes
    #[structopt(long, parse(from_os_str))]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM)
    #[structopt(long, parse(from_os_str))]
    pub tls_key: Option<PathBuf>,

    /// Mutual TLS: every client must present a certificate signed by this
    /// CA (PEM)
    #[structopt(long, parse(from_os_str))]
    pub tls_client_ca: Option<PathBuf>,
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on, as host:port.
    pub listen: String,
    /// Completion-queue threads.
    pub threads: NonZeroUsize,
    /// Limits the registry enforces.
    pub limits: Limits,
    /// Least severe log level written.
    pub log_level: Level,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// How long a delivery may wait to collect more messages.
    pub write_delay: Duration,
    /// How long a delivery may wait to collect more messages while the
    /// thread waking it is busy (when `write_delay` is zero).
    pub busy_write_delay: Duration,
    /// HTTP/2 keepalive: ping after this much idleness...
    pub keepalive: Duration,
    /// ...and drop the connection if the ping is not answered in this long.
    pub keepalive_timeout: Duration,
    /// Most concurrent streams per HTTP/2 connection.
    pub max_streams_per_connection: NonZeroUsize,
    /// gRPC C-core's memory quota, in bytes (`None`: C-core's default).
    pub memory_quota_bytes: Option<usize>,
    /// The cluster to join; `None` for the embedded single node.
    pub cluster: Option<ClusterConfig>,
    /// Where to serve metrics over HTTP, as host:port (`None`: metrics off).
    pub metrics_listen: Option<String>,
    /// The admin listener and its secret (`None`: no admin API).
    pub admin: Option<AdminConfig>,
    /// The metrics endpoint's timeouts and connection limit (not flags).
    pub metrics_http: HttpLimits,
    /// Largest request accepted, in bytes; the request decoder refuses a
    /// larger one with RESOURCE_EXHAUSTED before any handler runs. Not a
    /// flag: the contract fixes it at 64 KiB.
    pub max_request_bytes: usize,
    /// Token mode's secrets and rules; `None` in plain mode.
    pub auth: Option<TokenConfig>,
    /// TLS on `listen`; `None` for plain text.
    pub tls: Option<TlsConfig>,
}

/// A flag value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Checks the flags and builds the configuration.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first flag whose value cannot be used.
    pub fn from_opt(opt: Opt) -> Result<Config, ConfigError> {
        let positive = |flag: &str, value: usize| {
            NonZeroUsize::new(value)
                .ok_or_else(|| ConfigError(format!("--{flag} must be at least 1, got 0")))
        };
        let threads = match opt.threads {
            Some(threads) => positive("threads", threads)?,
            None => default_threads(),
        };
        let max_connections = positive("max-connections", opt.max_connections)?.get();
        let queue_depth = positive("queue-depth", opt.queue_depth)?.get();
        let max_text_bytes = positive("max-text-bytes", opt.max_text_bytes)?.get();
        let queue_bytes = positive("queue-bytes", opt.queue_bytes)?.get();
        let max_groups_per_user = positive("max-groups-per-user", opt.max_groups_per_user)?.get();
        let max_streams_per_connection =
            positive("max-streams-per-connection", opt.max_streams_per_connection)?;
        if max_streams_per_connection.get() > i32::MAX as usize {
            return Err(ConfigError(format!(
                "--max-streams-per-connection must be at most {}",
                i32::MAX
            )));
        }
        let keepalive_secs = positive("keepalive-secs", opt.keepalive_secs as usize)?.get();
        let keepalive_timeout_secs = positive(
            "keepalive-timeout-secs",
            opt.keepalive_timeout_secs as usize,
        )?
        .get();
        if queue_bytes < MAX_DELIVERY_BYTES {
            return Err(ConfigError(format!(
                "--queue-bytes must be at least {MAX_DELIVERY_BYTES} (one full delivery), got {queue_bytes}"
            )));
        }
        if max_text_bytes > MAX_TEXT_BYTES_LIMIT {
            return Err(ConfigError(format!(
                "--max-text-bytes must be at most {MAX_TEXT_BYTES_LIMIT}, got {max_text_bytes}"
            )));
        }
        let log_level: Level = opt.log_level.parse().map_err(|()| {
            ConfigError(format!(
                "--log-level must be one of critical, error, warning, info, debug, trace; got {:?}",
                opt.log_level
            ))
        })?;
        let history = HistoryLimits {
            messages: opt.history_size,
            bytes: opt.history_bytes,
        };
        let resume = resume_limits(&opt, queue_depth, queue_bytes)?;
        let send_limit = send_limit(opt.send_rate, opt.send_burst)?;
        let write_delay = delay_flag("write-delay", &opt.write_delay)?;
        let busy_write_delay = delay_flag("busy-write-delay", &opt.busy_write_delay)?;
        let cluster = cluster_config(opt.redis, opt.redis_prefix, opt.node_lease_secs)?;
        let auth = token_config(
            opt.auth_token_secret_file,
            opt.auth_token_audience,
            opt.auth_token_issuer,
            opt.auth_token_leeway_secs,
        )?;
        let tls = TlsConfig::from_flags(opt.tls_cert, opt.tls_key, opt.tls_client_ca)
            .map_err(ConfigError)?;
        if !opt.listen.contains(':') {
            return Err(ConfigError(format!(
                "--listen must be host:port, got {:?}",
                opt.listen
            )));
        }
        if let Some(listen) = &opt.admin_listen {
            if !is_host_port(listen) {
                return Err(ConfigError(format!(
                    "--admin-listen must be host:port with a port of 0-65535, got {listen:?}"
                )));
            }
        }
        let admin = AdminConfig::from_flags(opt.admin_listen, opt.admin_token_file.as_deref())
            .map_err(ConfigError)?;
        if let Some(listen) = &opt.metrics_listen {
            if !is_host_port(listen) {
                return Err(ConfigError(format!(
                    "--metrics-listen must be host:port with a port of 0-65535, got {listen:?}"
                )));
            }
        }
        Ok(Config {
            listen: opt.listen,
            threads,
            limits: Limits {
                max_connections,
                queue_depth,
                queue_bytes,
                max_text_bytes,
                max_groups_per_user,
                history,
                resume,
                membership_events_max_members: opt.membership_events_max_members,
                send_limit,
            },
            log_level,
            log_format: opt.log_format,
            write_delay,
            busy_write_delay,
            keepalive: Duration::from_secs(keepalive_secs as u64),
            keepalive_timeout: Duration::from_secs(keepalive_timeout_secs as u64),
            max_streams_per_connection,
            memory_quota_bytes: (opt.memory_quota_mib > 0)
                .then(|| opt.memory_quota_mib.saturating_mul(1024 * 1024)),
            cluster,
            metrics_listen: opt.metrics_listen,
            admin,
            metrics_http: HttpLimits::default(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            auth,
            tls,
        })
    }

    /// The defaults, listening on `listen`; what tests start from.
    pub fn with_listen(listen: &str) -> Config {
        Config {
            listen: listen.to_owned(),
            threads: default_threads(),
            limits: Limits {
                max_connections: 10_000,
                queue_depth: 1024,
                queue_bytes: 1024 * 1024,
                max_text_bytes: 4096,
                max_groups_per_user: 100,
                history: HistoryLimits::DEFAULT,
                resume: ResumeLimits::DEFAULT,
                membership_events_max_members: 1000,
                send_limit: SendLimit::OFF,
            },
            log_level: Level::Info,
            log_format: LogFormat::Term,
            write_delay: Duration::ZERO,
            busy_write_delay: DEFAULT_BUSY_WRITE_DELAY,
            keepalive: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            max_streams_per_connection: NonZeroUsize::new(1024).unwrap_or(NonZeroUsize::MIN),
            memory_quota_bytes: None,
            cluster: None,
            metrics_listen: None,
            admin: None,
            metrics_http: HttpLimits::default(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            auth: None,
            tls: None,
        }
    }
}

/// Longest `--redis-prefix`.
const MAX_PREFIX_LEN: usize = 64;

/// Checks the cluster flags; `None` without `--redis`.
fn cluster_config(
    url: Option<String>,
    prefix: String,
    lease_secs: u64,
) -> Result<Option<ClusterConfig>, ConfigError> {
    if lease_secs == 0 || lease_secs > 3600 {
        return Err(ConfigError(format!(
            "--node-lease-secs must be between 1 and 3600, got {lease_secs}"
        )));
    }
    let prefix_ok = !prefix.is_empty()
        && prefix.len() <= MAX_PREFIX_LEN
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !prefix_ok {
        return Err(ConfigError(format!(
            "--redis-prefix must be 1 to {MAX_PREFIX_LEN} letters, digits, '-', '_' or '.', got {prefix:?}"
        )));
    }
    // The URL itself is checked when the node joins the cluster: like an
    // unreachable Redis, a bad one is a start-up error (exit status 1).
    let Some(url) = url else {
        return Ok(None);
    };
    Ok(Some(ClusterConfig {
        url,
        prefix,
        lease: Duration::from_secs(lease_secs),
    }))
}

/// Whether `text` is `host:port` with a non-empty host (a name, an IPv4
/// address or a bracketed IPv6 one) and a port number.
fn is_host_port(text: &str) -> bool {
    match text.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok(),
        None => false,
    }
}

/// Checks the token-mode flags; `None` without `--auth-token-secret-file`.
fn token_config(
    secret_file: Option<PathBuf>,
    audience: Option<String>,
    issuer: Option<String>,
    leeway_secs: u64,
) -> Result<Option<TokenConfig>, ConfigError> {
    auth::check_leeway(leeway_secs).map_err(ConfigError)?;
    let Some(path) = secret_file else {
        for (flag, value) in [("audience", &audience), ("issuer", &issuer)] {
            if value.is_some() {
                return Err(ConfigError(format!(
                    "--auth-token-{flag} needs --auth-token-secret-file (token mode)"
                )));
            }
        }
        return Ok(None);
    };
    TokenConfig::from_flags(&path, audience, issuer, leeway_secs)
        .map(Some)
        .map_err(ConfigError)
}

/// The value of the delay flag `--flag`: a duration of at most 1s.
fn delay_flag(flag: &str, text: &str) -> Result<Duration, ConfigError> {
    parse_duration(text)
        .filter(|delay| *delay <= Duration::from_secs(1))
        .ok_or_else(|| {
            ConfigError(format!(
                "--{flag} must be a duration of at most 1s such as 0, 500us or 2ms; got {text:?}"
            ))
        })
}

/// Checks `--send-rate` and `--send-burst`: a burst needs a rate, and is
/// at least 1.
fn send_limit(rate: u32, burst: Option<u32>) -> Result<SendLimit, ConfigError> {
    match (rate, burst) {
        (0, None) => Ok(SendLimit::OFF),
        (0, Some(_)) => Err(ConfigError(
            "--send-burst needs --send-rate (a rate above 0)".to_owned(),
        )),
        (_, Some(0)) => Err(ConfigError("--send-burst must be at least 1".to_owned())),
        (rate, burst) => Ok(SendLimit {
            rate,
            burst: burst.unwrap_or(rate.saturating_mul(2)),
        }),
    }
}

/// Longest `--resume-window`.
const MAX_RESUME_WINDOW: Duration = Duration::from_secs(3600);

/// What a message counts for in a queue beyond its text, at most (two
/// 64-character names and the fixed allowance of `Message::queued_bytes`).
const QUEUED_OVERHEAD: usize = 2 * crate::domain::MAX_NAME_LEN + 32;

/// Checks the resume flags: a full replay must fit in a fresh queue.
fn resume_limits(
    opt: &Opt,
    queue_depth: usize,
    queue_bytes: usize,
) -> Result<ResumeLimits, ConfigError> {
    let text = opt.resume_window.as_str();
    let window = text
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
        .or_else(|| parse_duration(text))
        .filter(|window| *window <= MAX_RESUME_WINDOW)
        .ok_or_else(|| {
            ConfigError(format!(
                "--resume-window must be a duration of at most 3600s such as 0, 120s or 90; got {text:?}"
            ))
        })?;
    // The defaults shrink to fit a smaller queue; values given are checked.
    let resume_size = opt
        .resume_size
        .unwrap_or_else(|| ResumeLimits::DEFAULT.messages.min(queue_depth));
    if resume_size > queue_depth {
        return Err(ConfigError(format!(
            "--resume-size must be at most --queue-depth ({queue_depth}), got {resume_size}"
        )));
    }
    let overhead = resume_size.saturating_mul(QUEUED_OVERHEAD);
    let resume_bytes = opt.resume_bytes.unwrap_or_else(|| {
        ResumeLimits::DEFAULT
            .bytes
            .min(queue_bytes.saturating_sub(overhead))
    });
    let replay_bytes = resume_bytes.saturating_add(overhead);
    if replay_bytes > queue_bytes {
        return Err(ConfigError(format!(
            "--resume-bytes plus {QUEUED_OVERHEAD} bytes per --resume-size message must fit in --queue-bytes ({queue_bytes}), got {replay_bytes}"
        )));
    }
    Ok(ResumeLimits {
        window,
        messages: resume_size,
        bytes: resume_bytes,
    })
}

/// Parses `0`, `250us`, `2ms` or `1s` (whole numbers).
fn parse_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    match unit {
        "us" => Some(Duration::from_micros(number)),
        "ms" => Some(Duration::from_millis(number)),
        "s" => Some(Duration::from_secs(number)),
        _ => None,
    }
}

/// One completion-queue thread per two cores (at least one): the threads
/// that run the handlers also drive C-core's transport, and the other half
/// of the cores is left to what a message costs outside them, the kernel's
/// TCP work (about a third of the server's time) and C-core's own threads
/// (see BENCHMARKS.md).
pub fn default_threads() -> NonZeroUsize {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    NonZeroUsize::new(cores / 2).unwrap_or(NonZeroUsize::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let opt = Opt::from_iter_safe(std::iter::once("chat-server").chain(args.iter().copied()))
            .map_err(|e| ConfigError(e.to_string()))?;
        Config::from_opt(opt)
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.listen, "127.0.0.1:13111");
        assert_eq!(config.threads, default_threads());
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        assert_eq!(default_threads().get(), (cores / 2).max(1));
        assert_eq!(config.limits.max_connections, 10_000);
        assert_eq!(config.limits.queue_depth, 1024);
        assert_eq!(config.limits.max_text_bytes, 4096);
        assert_eq!(config.limits.queue_bytes, 1024 * 1024);
        assert_eq!(config.limits.max_groups_per_user, 100);
        assert_eq!(config.keepalive, Duration::from_secs(30));
        assert_eq!(config.keepalive_timeout, Duration::from_secs(10));
        assert_eq!(config.max_streams_per_connection.get(), 1024);
        assert_eq!(config.memory_quota_bytes, None);
        assert_eq!(
            parse(&["--memory-quota-mib", "64"])
                .unwrap()
                .memory_quota_bytes,
            Some(64 << 20)
        );
        let defaults = Config::with_listen("127.0.0.1:13111");
        assert_eq!(defaults.limits, config.limits);
        assert_eq!(defaults.keepalive, config.keepalive);
        assert_eq!(
            defaults.max_streams_per_connection,
            config.max_streams_per_connection
        );
        assert_eq!(config.log_level, Level::Info);
        assert_eq!(config.log_format, LogFormat::Term);
        assert_eq!(
            parse(&["--log-format", "json"]).unwrap().log_format,
            LogFormat::Json
        );
        assert!(parse(&["--log-format", "xml"]).is_err());
        assert_eq!(config.write_delay, Duration::ZERO);
        assert_eq!(config.busy_write_delay, Duration::from_millis(5));
        assert_eq!(defaults.busy_write_delay, config.busy_write_delay);
        assert_eq!(
            parse(&["--busy-write-delay", "0"])
                .unwrap()
                .busy_write_delay,
            Duration::ZERO
        );
        assert_eq!(config.metrics_listen, None);
        assert_eq!(
            parse(&["--metrics-listen", "127.0.0.1:0"])
                .unwrap()
                .metrics_listen
                .as_deref(),
            Some("127.0.0.1:0")
        );
        assert!(parse(&["--metrics-listen", "[::1]:9100"]).is_ok());
        for (text, delay) in [("500us", 500), ("2ms", 2000), ("1s", 1_000_000)] {
            let parsed = parse(&["--write-delay", text]).unwrap().write_delay;
            assert_eq!(parsed, Duration::from_micros(delay), "{text}");
        }
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_named() {
        for (args, flag) in [
            (&["--threads", "0"][..], "--threads"),
            (&["--queue-depth", "0"][..], "--queue-depth"),
            (&["--max-text-bytes", "70000"][..], "--max-text-bytes"),
            (&["--log-level", "loud"][..], "--log-level"),
            (&["--listen", "nowhere"][..], "--listen"),
            (&["--write-delay", "5"][..], "--write-delay"),
            (&["--queue-bytes", "1000"][..], "--queue-bytes"),
            (&["--max-groups-per-user", "0"][..], "--max-groups-per-user"),
            (&["--keepalive-secs", "0"][..], "--keepalive-secs"),
            (&["--write-delay", "2s"][..], "--write-delay"),
            (&["--write-delay", "ms"][..], "--write-delay"),
            (&["--busy-write-delay", "2s"][..], "--busy-write-delay"),
            (&["--busy-write-delay", "5"][..], "--busy-write-delay"),
            (&["--redis-prefix", "a b"][..], "--redis-prefix"),
            (&["--redis-prefix", ""][..], "--redis-prefix"),
            (&["--node-lease-secs", "0"][..], "--node-lease-secs"),
            (&["--metrics-listen", "9100"][..], "--metrics-listen"),
            (&["--metrics-listen", ":9100"][..], "--metrics-listen"),
            (
                &["--metrics-listen", "localhost:99999"][..],
                "--metrics-listen",
            ),
            (
                &["--auth-token-leeway-secs", "301"][..],
                "--auth-token-leeway-secs",
            ),
            (
                &["--auth-token-audience", "chat"][..],
                "--auth-token-audience",
            ),
            (&["--auth-token-issuer", "me"][..], "--auth-token-issuer"),
            (
                &["--auth-token-secret-file", "/nonexistent/secret"][..],
                "--auth-token-secret-file",
            ),
            (&["--tls-cert", "cert.pem"][..], "--tls-key"),
            (&["--tls-client-ca", "ca.pem"][..], "--tls-client-ca"),
        ] {
            let error = parse(args).unwrap_err();
            assert!(error.0.contains(flag), "{args:?}: {error}");
        }
    }

    /// A file under the temp directory holding `contents`, removed on drop.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn new(contents: &[u8]) -> TempFile {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "chat-config-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, contents).unwrap();
            TempFile(path)
        }

        fn flag(&self) -> String {
            self.0.display().to_string()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn plain_mode_is_the_default_and_token_mode_reads_the_secret_file() {
        assert_eq!(parse(&[]).unwrap().auth, None);
        let secret = "s".repeat(32);
        let file = TempFile::new(format!("{secret}\n").as_bytes());
        let config = parse(&["--auth-token-secret-file", &file.flag()]).unwrap();
        let auth = config.auth.unwrap();
        assert_eq!(auth.secret.bytes(), secret.as_bytes(), "newline trimmed");
        assert_eq!(auth.previous, None);
        assert_eq!(auth.leeway, Duration::from_secs(30));
        assert_eq!((auth.audience, auth.issuer), (None, None));
        // The secret's bytes never show in a logged config.
        assert!(
            !format!("{:?}", parse(&["--auth-token-secret-file", &file.flag()])).contains(&secret)
        );

        let previous = "p".repeat(40);
        let file = TempFile::new(format!("{secret}\r\n{previous}\n").as_bytes());
        let auth = parse(&[
            "--auth-token-secret-file",
            &file.flag(),
            "--auth-token-audience",
            "chat",
            "--auth-token-issuer",
            "backend",
            "--auth-token-leeway-secs",
            "300",
        ])
        .unwrap()
        .auth
        .unwrap();
        assert_eq!(auth.secret.bytes(), secret.as_bytes());
        assert_eq!(
            auth.previous.as_ref().map(|p| p.bytes()),
            Some(previous.as_bytes())
        );
        assert_eq!(auth.audience.as_deref(), Some("chat"));
        assert_eq!(auth.issuer.as_deref(), Some("backend"));
        assert_eq!(auth.leeway, Duration::from_secs(300));
    }

    #[test]
    fn a_short_secret_or_a_third_line_is_refused() {
        let long = "s".repeat(32);
        for (contents, problem) in [
            ("s".repeat(31), "at least 32 bytes"),
            (String::new(), "at least 32 bytes"),
            (format!("{}\n", "s".repeat(31)), "at least 32 bytes"),
            (format!("{long}\nshort\n"), "previous secret"),
            (format!("{long}\n{long}\n{long}\n"), "more than two lines"),
        ] {
            let file = TempFile::new(contents.as_bytes());
            let error = parse(&["--auth-token-secret-file", &file.flag()]).unwrap_err();
            assert!(error.0.contains("--auth-token-secret-file"), "{error}");
            assert!(error.0.contains(problem), "{contents:?}: {error}");
        }
    }

    #[test]
    fn history_and_resume_flags_have_their_defaults_and_bounds() {
        let limits = parse(&[]).unwrap().limits;
        assert_eq!(limits.history, HistoryLimits::DEFAULT);
        assert_eq!(limits.resume, ResumeLimits::DEFAULT);
        let off = parse(&["--history-size", "0", "--resume-window", "0"])
            .unwrap()
            .limits;
        assert_eq!(off.history.messages, 0);
        assert!(!off.resume.on());
        let window = |text: &str| parse(&["--resume-window", text]).map(|c| c.limits.resume.window);
        assert_eq!(window("90"), Ok(Duration::from_secs(90)));
        assert_eq!(window("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(window("3600s"), Ok(Duration::from_secs(3600)));
        for bad in ["3601", "2h", "-1", ""] {
            let error = window(bad).unwrap_err();
            assert!(error.0.contains("--resume-window"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn resume_defaults_shrink_to_a_small_queue_and_given_values_must_fit() {
        let small = parse(&["--queue-depth", "100", "--queue-bytes", "65536"]).unwrap();
        assert_eq!(small.limits.resume.messages, 100);
        assert_eq!(small.limits.resume.bytes, 65536 - 100 * QUEUED_OVERHEAD);
        let error = parse(&["--queue-depth", "100", "--resume-size", "101"]).unwrap_err();
        assert!(error.0.contains("--resume-size"), "{error}");
        let error = parse(&["--queue-bytes", "65536", "--resume-bytes", "65536"]).unwrap_err();
        assert!(error.0.contains("--resume-bytes"), "{error}");
    }
}
