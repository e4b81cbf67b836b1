//! Bootstrap: builds the grpcio environment and server from a [`Config`],
//! starts it, and shuts it down when the injected [`ShutdownSignal`] fires.
//! Besides the chat service it serves health checking and reflection;
//! with `--admin-listen`, the operator's API on a listener of its own; and,
//! with `--metrics-listen`, Prometheus metrics over HTTP: the bootstrap
//! builds the [`Metrics`] handle and gives it to both adapters, and the
//! endpoint stops with the server.
//! Shutdown reports NOT_SERVING, refuses new work, ends every Connect stream
//! with UNAVAILABLE, waits up to [`SHUTDOWN_GRACE`] for calls to finish and
//! cancels the rest.

use std::ffi::CString;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use grpcio::{ChannelBuilder, EnvBuilder, Environment, ResourceQuota, Server, ServerBuilder};
use slog::{info, warn, Logger};

use crate::admin::{AdminConfig, AdminHandler};
use crate::auth::TokenAuth;
use crate::config::{Config, SHUTDOWN_GRACE};
use crate::domain::{ChatEngine, Registry, WakeTicker};
use crate::metrics::http::MetricsServer;
use crate::metrics::Metrics;
use crate::service::codec::RequestCodec;
use crate::service::health::HealthService;
use crate::service::reflection::ReflectionService;
use crate::service::ChatHandler;

/// The shortest interval between pings the server accepts from a client on
/// an idle connection.
const CLIENT_PING_MIN_INTERVAL: Duration = Duration::from_secs(5);

/// Fires a shutdown. Cheap to clone; firing twice is harmless.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger(Sender<()>);

/// Waits for a shutdown to be fired.
#[derive(Debug)]
pub struct ShutdownSignal(Receiver<()>);

/// A connected trigger and signal.
pub fn shutdown_channel() -> (ShutdownTrigger, ShutdownSignal) {
    let (sender, receiver) = crossbeam_channel::bounded(1);
    (ShutdownTrigger(sender), ShutdownSignal(receiver))
}

impl ShutdownTrigger {
    /// Asks the server to shut down.
    pub fn fire(&self) {
        let _ = self.0.try_send(());
    }
}

impl ShutdownSignal {
    /// Blocks until the trigger fires or every trigger is dropped.
    pub fn wait(self) {
        let _ = self.0.recv();
    }
}

/// The server could not start.
#[derive(Debug)]
pub enum StartError {
    /// The address could not be bound.
    Listen {
        /// The `--listen` address.
        listen: String,
        /// Why.
        source: grpcio::Error,
    },
    /// The `--write-delay` ticker thread could not be started.
    Ticker(std::io::Error),
    /// The node could not join the cluster (`--redis`).
    Cluster(crate::cluster::JoinError),
    /// The metrics endpoint could not be started.
    Metrics {
        /// The `--metrics-listen` address.
        listen: String,
        /// Why.
        source: std::io::Error,
    },
    /// Token mode could not be set up.
    Auth(String),
    /// The TLS certificate or key could not be loaded.
    Tls(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Listen { listen, source } => {
                write!(f, "cannot listen on {listen}: {source}")
            }
            StartError::Ticker(source) => {
                write!(f, "cannot start the write-delay ticker: {source}")
            }
            StartError::Cluster(source) => write!(f, "cannot join the cluster: {source}"),
            StartError::Metrics { listen, source } => {
                write!(f, "cannot serve metrics on {listen}: {source}")
            }
            StartError::Auth(problem) => write!(f, "cannot start token mode: {problem}"),
            StartError::Tls(problem) => write!(f, "cannot start TLS: {problem}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Listen { source, .. } => Some(source),
            StartError::Ticker(source) => Some(source),
            StartError::Cluster(source) => Some(source),
            StartError::Metrics { source, .. } => Some(source),
            StartError::Auth(_) | StartError::Tls(_) => None,
        }
    }
}

/// A started server. Stop it with [`RunningServer::stop`]; dropping it
/// stops it too.
pub struct RunningServer {
    server: Option<Server>,
    /// The admin listener, with `--admin-listen`.
    admin: Option<Server>,
    admin_port: Option<u16>,
    engine: Arc<dyn ChatEngine>,
    health: HealthService,
    port: u16,
    /// The metrics endpoint, with `--metrics-listen`.
    metrics: Option<MetricsServer>,
    log: Logger,
    // Dropped after the server: its threads drive the shutdown.
    _env: Arc<Environment>,
}

/// Builds and starts the server described by `config`, phase by phase:
/// the engine, the metrics endpoint, the chat listener, then the admin
/// listener. A phase that fails undoes the ones before it.
///
/// # Errors
/// [`StartError`] when an address cannot be bound, the write-delay
/// ticker, token mode or TLS cannot be set up, or the node cannot join its
/// cluster.
pub fn start(config: &Config, log: &Logger) -> Result<RunningServer, StartError> {
    let env = Arc::new(
        EnvBuilder::new()
            .cq_count(config.threads.get())
            .name_prefix("chat-cq")
            .build(),
    );
    // Before the engine, so a failure here leaves no cluster node joined.
    let tokens = match &config.auth {
        None => None,
        Some(auth) => Some(Arc::new(TokenAuth::start(auth).map_err(StartError::Auth)?)),
    };
    let health = HealthService::new(log.clone());
    let engine = start_engine(config, &health, log)?;
    let (metrics, metrics_server) = match start_metrics(config, &engine, log) {
        Ok(started) => started,
        Err(error) => {
            engine.stop();
            return Err(error);
        }
    };
    let listener = Listener {
        config,
        env: &env,
        engine: &engine,
        metrics: &metrics,
        health: &health,
        log,
    };
    let (server, port) = match listener.start_chat(tokens) {
        Ok(started) => started,
        Err(error) => {
            engine.stop();
            return Err(error);
        }
    };
    let admin = match &config.admin {
        None => None,
        Some(admin) => match listener.start_admin(admin) {
            Ok(started) => Some(started),
            Err(error) => {
                let mut server = server;
                let _ = wait_for(server.shutdown(), SHUTDOWN_GRACE);
                engine.stop();
                return Err(error);
            }
        },
    };
    log_started(
        config,
        port,
        &metrics_server,
        admin.as_ref().map(|(_, port)| *port),
        log,
    );
    Ok(RunningServer {
        server: Some(server),
        admin_port: admin.as_ref().map(|(_, port)| *port),
        admin: admin.map(|(server, _)| server),
        engine,
        health,
        port,
        metrics: metrics_server,
        log: log.clone(),
        _env: env,
    })
}

/// The engine phase: the embedded registry, or this node of the cluster
/// (`--redis`), with the write-delay ticker both give their mailboxes.
fn start_engine(
    config: &Config,
    health: &HealthService,
    log: &Logger,
) -> Result<Arc<dyn ChatEngine>, StartError> {
    let ticker = if !config.write_delay.is_zero() {
        Some(WakeTicker::start(config.write_delay).map_err(StartError::Ticker)?)
    } else if !config.busy_write_delay.is_zero() {
        Some(WakeTicker::under_load(config.busy_write_delay).map_err(StartError::Ticker)?)
    } else {
        None
    };
    Ok(match &config.cluster {
        None => Registry::with_ticker(config.limits, ticker),
        Some(cluster) => {
            let reporter = health.clone();
            let report = Box::new(move |serving| reporter.set_engine_serving(serving));
            Arc::new(
                crate::cluster::start(cluster, config.limits, ticker, report, log)
                    .map_err(StartError::Cluster)?,
            )
        }
    })
}

/// The metrics phase: the handle both adapters count into, and with
/// `--metrics-listen` the endpoint, bound before any gRPC listener so a
/// bad address fails the start with only the engine to undo.
fn start_metrics(
    config: &Config,
    engine: &Arc<dyn ChatEngine>,
    log: &Logger,
) -> Result<(Metrics, Option<MetricsServer>), StartError> {
    let Some(listen) = &config.metrics_listen else {
        return Ok((Metrics::off(), None));
    };
    let source = Arc::clone(engine);
    let metrics = Metrics::new(env!("CARGO_PKG_VERSION"), move || source.stats());
    match MetricsServer::start(listen, metrics.clone(), config.metrics_http, log) {
        Ok(endpoint) => Ok((metrics, Some(endpoint))),
        Err(source) => Err(StartError::Metrics {
            listen: listen.clone(),
            source,
        }),
    }
}

/// What the two gRPC listeners are built from.
struct Listener<'a> {
    config: &'a Config,
    env: &'a Arc<Environment>,
    engine: &'a Arc<dyn ChatEngine>,
    metrics: &'a Metrics,
    health: &'a HealthService,
    log: &'a Logger,
}

impl Listener<'_> {
    /// The chat listener phase: `chat.v1.ChatService`, health and
    /// reflection on `--listen`; answers the server and its port.
    fn start_chat(&self, tokens: Option<Arc<TokenAuth>>) -> Result<(Server, u16), StartError> {
        let (config, log) = (self.config, self.log);
        let handler = ChatHandler::with_tokens(
            Arc::clone(self.engine),
            self.metrics.clone(),
            log.clone(),
            tokens,
        );
        let reflection = ReflectionService::new(log.clone());
        let codec = RequestCodec::new(config.max_request_bytes);
        let builder = self
            .server_builder()
            .register_service(crate::service::chat_service(handler, codec))
            .register_service(crate::service::health::health_service(
                self.health.clone(),
                codec,
            ))
            .register_service(reflection.v1(codec))
            .register_service(reflection.v1alpha(codec));
        self.bind(builder, &config.listen)
    }

    /// The admin listener phase: `chat.admin.v1.AdminService`, health and
    /// reflection on `--admin-listen`, with the same TLS as the chat
    /// listener; answers the server and its port.
    fn start_admin(&self, admin: &AdminConfig) -> Result<(Server, u16), StartError> {
        let (config, log) = (self.config, self.log);
        let admin_log = log.new(slog::o!("listener" => "admin"));
        let handler = AdminHandler::new(
            Arc::clone(self.engine),
            admin.secret.clone(),
            self.metrics.clone(),
            admin_log.clone(),
        );
        let reflection = ReflectionService::for_admin(admin_log);
        let codec = RequestCodec::new(config.max_request_bytes);
        let builder = self
            .server_builder()
            .register_service(crate::admin::admin_service(handler, codec))
            .register_service(crate::service::health::health_service(
                self.health.clone(),
                codec,
            ))
            .register_service(reflection.v1(codec))
            .register_service(reflection.v1alpha(codec));
        self.bind(builder, &admin.listen)
    }

    /// Builds `builder`'s server, binds it to `listen` (with TLS when
    /// configured) and starts it.
    fn bind(&self, builder: ServerBuilder, listen: &str) -> Result<(Server, u16), StartError> {
        let config = self.config;
        let start_error = |source| StartError::Listen {
            listen: listen.to_owned(),
            source,
        };
        let mut server = builder.build().map_err(start_error)?;
        let credentials = crate::tls::server_credentials(config.tls.as_ref(), self.log)
            .map_err(StartError::Tls)?;
        let port =
            server
                .add_listening_port(listen, credentials)
                .map_err(|source| match config.tls {
                    // C-core reports a certificate it cannot use as a failed bind.
                    Some(_) => StartError::Tls(format!(
                        "cannot listen on {listen}: the address is taken, or --tls-cert and \
                     --tls-key are not a PEM certificate chain and its key (gRPC's log \
                     above says which)"
                    )),
                    None => start_error(source),
                })?;
        server.start();
        Ok((server, port))
    }

    /// A server builder with the channel arguments of both listeners.
    fn server_builder(&self) -> ServerBuilder {
        let config = self.config;
        let mut args = ChannelBuilder::new(Arc::clone(self.env));
        // No explicit quota by default: C-core then sizes its memory pressure
        // from the machine. A 1 GiB quota made deliveries stall under a burst
        // of concurrent group sends (memory pressure shrinks the transport's
        // buffers), so a quota is only set when asked for.
        if let Some(bytes) = config.memory_quota_bytes {
            args = args
                .set_resource_quota(ResourceQuota::new(Some("chat-server")).resize_memory(bytes));
        }
        let args = args
            // C-core's minimal channel stack: without its message-size and
            // deadline filters, each call costs about a tenth less CPU (see
            // BENCHMARKS.md). The request-size limit is the server's own
            // decoder ([`crate::service::codec`]), which refuses a request
            // over it with RESOURCE_EXHAUSTED as the filter did. Deadlines
            // stay the client's to enforce, as every gRPC client library
            // does: on expiry it cancels the call, and the server sees the
            // cancellation.
            .raw_cfg_int(CString::from(c"grpc.minimal_stack"), 1)
            // No channelz: C-core otherwise keeps a channelz node per
            // connection and counts every call in it, for a channelz
            // service this server does not offer (0.4 KB per connection,
            // BENCHMARKS.md).
            .raw_cfg_int(CString::from(c"grpc.enable_channelz"), 0)
            // TCP zerocopy sends are off, yet C-core allocates the records
            // for 4 simultaneous ones on every endpoint unless told to keep
            // none (tcp_posix.cc, TcpZerocopySendCtx): 1.2 KB per
            // connection. (It then notes "Disabling TCP TX zerocopy" at
            // C-core's INFO verbosity, which is off by default.)
            .raw_cfg_int(
                CString::from(c"grpc.experimental.tcp_tx_zerocopy_max_simultaneous_sends"),
                0,
            )
            // No bandwidth-delay-product probing: C-core otherwise pings
            // every new connection once its first data arrives, and again as
            // data keeps coming, to grow the window for what the client
            // sends us. Requests here are small (64 KiB at most by
            // default), so a window that stays at HTTP/2's initial 64 KiB
            // costs them at most one window update, while the ping and its
            // ack cost a write and a read on every connection
            // (BENCHMARKS.md).
            .http2_bdp_probe(false)
            .max_concurrent_stream(
                i32::try_from(config.max_streams_per_connection.get()).unwrap_or(i32::MAX),
            )
            // Dead peers: ping every connection after `keepalive` of
            // idleness, drop it when a ping goes unanswered for
            // `keepalive_timeout`. C-core by default stops pinging after two
            // pings without data and only pings while calls are open; an
            // idle Connect stream is exactly what must keep being checked.
            .keepalive_time(config.keepalive)
            .keepalive_timeout(config.keepalive_timeout)
            .keepalive_permit_without_calls(true)
            .http2_max_pings_without_data(0)
            .http2_min_sent_ping_interval_without_data(config.keepalive)
            // Clients may ping us too, as often as every 5 s, without being
            // told to go away (C-core's default minimum is 5 minutes).
            .http2_min_recv_ping_interval_without_data(CLIENT_PING_MIN_INTERVAL)
            .build_args();
        ServerBuilder::new(Arc::clone(self.env)).channel_args(args)
    }
}

/// Logs what the server started: its listeners and modes.
fn log_started(
    config: &Config,
    port: u16,
    metrics_server: &Option<MetricsServer>,
    admin_port: Option<u16>,
    log: &Logger,
) {
    // slog-term prints fields last to first: listed in reverse here, the
    // line reads "listening, address: .., port: .., threads: ..".
    info!(log, "listening";
        "keepalive_timeout_s" => config.keepalive_timeout.as_secs(),
        "keepalive_s" => config.keepalive.as_secs(),
        "max_groups_per_user" => config.limits.max_groups_per_user,
        "queue_bytes" => config.limits.queue_bytes,
        "busy_write_delay_us" => config.busy_write_delay.as_micros() as u64,
        "write_delay_us" => config.write_delay.as_micros() as u64,
        "max_text_bytes" => config.limits.max_text_bytes,
        "queue_depth" => config.limits.queue_depth,
        "max_connections" => config.limits.max_connections,
        "threads" => config.threads.get(), "port" => port, "address" => &config.listen);
    if let (Some(endpoint), Some(listen)) = (metrics_server, &config.metrics_listen) {
        info!(log, "serving metrics";
            "path" => "/metrics", "metrics_port" => endpoint.port(), "address" => listen);
    }
    if let (Some(admin), Some(admin_port)) = (&config.admin, admin_port) {
        info!(log, "serving admin"; "admin_port" => admin_port, "address" => &admin.listen);
        if config.tls.is_none() && !crate::tls::is_loopback(&admin.listen) {
            warn!(log, "admin API without TLS: its secret travels in clear text";
                "admin_listen" => &admin.listen);
        }
    }
    let limit = config.limits.send_limit;
    if limit.on() {
        info!(log, "send limit"; "burst" => limit.burst, "per_second" => limit.rate);
    }
    if config.auth.is_some() && config.tls.is_none() && !crate::tls::is_loopback(&config.listen) {
        warn!(log, "token mode without TLS: tokens travel in clear text";
            "listen" => &config.listen);
    }
    if let Some(auth) = &config.auth {
        info!(log, "token mode";
            "previous_secret" => auth.previous.is_some(),
            "audience" => auth.audience.as_deref().unwrap_or("-"),
            "issuer" => auth.issuer.as_deref().unwrap_or("-"),
            "leeway_s" => auth.leeway.as_secs());
    }
}

/// Runs the server until `shutdown` fires, then stops it.
///
/// # Errors
/// [`StartError`] when the server cannot start.
pub fn run(config: &Config, log: &Logger, shutdown: ShutdownSignal) -> Result<(), StartError> {
    let server = start(config, log)?;
    shutdown.wait();
    server.stop();
    Ok(())
}

impl RunningServer {
    /// The port the server listens on (the chosen one when asked for 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin listener's port, with `--admin-listen`.
    pub fn admin_port(&self) -> Option<u16> {
        self.admin_port
    }

    /// The metrics endpoint's port, with `--metrics-listen`.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(MetricsServer::port)
    }

    /// Shuts down: refuses new work, ends every stream with UNAVAILABLE,
    /// waits for in-flight calls up to the grace period, cancels the rest.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        let Some(mut server) = self.server.take() else {
            return;
        };
        info!(self.log, "shutting down";
            "connected" => self.engine.local_users(),
            "grace_ms" => SHUTDOWN_GRACE.as_millis() as u64);
        self.health.set_not_serving();
        self.engine.shutdown();
        let finished = wait_for(server.shutdown(), SHUTDOWN_GRACE);
        if !finished {
            warn!(
                self.log,
                "calls still open after the grace period; cancelling them"
            );
            server.cancel_all_calls();
        }
        if let Some(mut admin) = self.admin.take() {
            if !wait_for(admin.shutdown(), SHUTDOWN_GRACE) {
                admin.cancel_all_calls();
            }
        }
        self.engine.stop();
        // Last, so a scrape during shutdown still sees the streams end.
        if let Some(endpoint) = self.metrics.take() {
            endpoint.stop();
        }
        info!(self.log, "stopped");
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Raises this process's open-file soft limit to its hard limit, so the
/// server can hold as many connections as the system lets it; returns the
/// limit now in force.
///
/// # Errors
/// The OS error if the limit cannot be read or set.
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(limit.rlim_cur)
}

/// Drives `future` on a helper thread; true if it finished within `limit`.
fn wait_for<F>(future: F, limit: Duration) -> bool
where
    F: std::future::Future + Send + 'static,
{
    let (done, finished) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = futures::executor::block_on(future);
        let _ = done.send(());
    });
    finished.recv_timeout(limit).is_ok()
}
