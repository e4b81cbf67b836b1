//! Shared helpers for the integration tests: a real server on an ephemeral
//! loopback port that stops when dropped, a client for it, and assertion
//! helpers that keep each test a few lines long. Waiting is always bounded
//! by a deadline; nothing sleeps to synchronise.

#![allow(dead_code)]

pub mod binary;
pub mod redis;
pub mod tls;
pub mod tokens;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chat_client::api::{status_of, Api, Inbox, InboxEvent, TlsOptions};
use chat_proto::chat::{
    ChannelType, CreateGroupChatRequest, JoinGroupChatRequest, LeaveGroupChatRequest,
    ListChannelsRequest, Message, SendMessageRequest, SendMessageResponse,
};
use chat_server::cluster::ClusterConfig;
use chat_server::config::Config;
use chat_server::logging;
use chat_server::server::{start, RunningServer};
use grpcio::{RpcStatus, RpcStatusCode};

/// How long a test waits for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(5);

/// How many cluster nodes [`TestServer`] starts instead of one embedded
/// server: `CHAT_TEST_CLUSTER=N` runs the same tests against N nodes on one
/// Redis (which the test starts), with consecutive clients and calls spread
/// over the nodes.
pub fn cluster_nodes() -> usize {
    std::env::var("CHAT_TEST_CLUSTER")
        .ok()
        .and_then(|nodes| nodes.parse().ok())
        .unwrap_or(0)
}

/// The package's directory, as the test runner gives it when the test
/// runs (a build cache shared by several checkouts may hold a test binary
/// built in another one, whose compile-time path is not this checkout's).
pub fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// A unique `--redis-prefix` for this test process.
pub fn unique_prefix() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A cluster on `redis` under a fresh prefix, with `lease`.
pub fn cluster_config(redis: &redis::TestRedis, lease: Duration) -> ClusterConfig {
    ClusterConfig {
        url: redis.url(),
        prefix: unique_prefix(),
        lease,
    }
}

/// The logger a test server writes to: debug lines on stderr with
/// `CHAT_TEST_LOG`, else nothing.
pub fn test_logger() -> slog::Logger {
    if std::env::var_os("CHAT_TEST_LOG").is_some() {
        logging::stderr_logger(logging::LogFormat::Term, slog::Level::Debug)
    } else {
        logging::discard()
    }
}

/// A server running in this process (or, with [`cluster_nodes`], several
/// nodes of one cluster); stopped on drop.
pub struct TestServer {
    pub server: Option<RunningServer>,
    /// A client of the first node.
    pub api: Api,
    /// The other nodes, in cluster mode.
    pub others: Vec<RunningServer>,
    /// One client per node.
    pub apis: Vec<Api>,
    next: AtomicUsize,
    /// The cluster's Redis, stopped after the nodes.
    pub redis: Option<redis::TestRedis>,
    /// The cluster's `--redis-prefix`.
    pub prefix: Option<String>,
}

impl TestServer {
    /// A server with the default configuration.
    pub fn start() -> TestServer {
        TestServer::start_with(|_| {})
    }

    /// A server whose default configuration `adjust` changes first.
    pub fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config::with_listen("127.0.0.1:0");
        adjust(&mut config);
        let nodes = cluster_nodes();
        if nodes == 0 {
            return TestServer::on_nodes(vec![config], None);
        }
        let redis = redis::TestRedis::start();
        config.cluster = Some(cluster_config(&redis, Duration::from_secs(5)));
        TestServer::on_nodes(vec![config; nodes], Some(redis))
    }

    /// Starts one server per configuration (cluster nodes when they name a
    /// cluster).
    pub fn on_nodes(configs: Vec<Config>, redis: Option<redis::TestRedis>) -> TestServer {
        TestServer::on_nodes_with(configs, redis, None)
    }

    /// A TLS server (`config.tls` set by `adjust`) whose clients connect
    /// with `tls`.
    pub fn start_tls(adjust: impl FnOnce(&mut Config), tls: &TlsOptions) -> TestServer {
        let mut config = Config::with_listen("127.0.0.1:0");
        adjust(&mut config);
        TestServer::on_nodes_with(vec![config], None, Some(tls))
    }

    /// Like [`TestServer::on_nodes`], the clients connecting over TLS when
    /// `tls` is given.
    pub fn on_nodes_with(
        configs: Vec<Config>,
        redis: Option<redis::TestRedis>,
        tls: Option<&TlsOptions>,
    ) -> TestServer {
        let log = test_logger();
        let mut servers: Vec<RunningServer> = configs
            .iter()
            .map(|config| start(config, &log).expect("server starts"))
            .collect();
        let apis: Vec<Api> = servers
            .iter()
            .map(|server| {
                Api::connect_with(&format!("127.0.0.1:{}", server.port()), WAIT, tls)
                    .expect("client reaches the server")
            })
            .collect();
        let first = servers.remove(0);
        let prefix = configs[0].cluster.as_ref().map(|c| c.prefix.clone());
        let api =
            Api::connect_with(apis[0].address(), WAIT, tls).expect("client reaches the server");
        TestServer {
            server: Some(first),
            api,
            others: servers,
            apis,
            next: AtomicUsize::new(0),
            redis,
            prefix,
        }
    }

    /// The client of the next node in turn: consecutive calls and clients
    /// land on different nodes of a cluster.
    pub fn next_api(&self) -> &Api {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        &self.apis[turn % self.apis.len()]
    }

    /// Another client on its own HTTP/2 connection, to the next node in
    /// turn.
    pub fn new_api(&self) -> Api {
        Api::connect(self.next_api().address(), WAIT).expect("client reaches the server")
    }

    /// Opens `user`'s inbox, panicking if the server refuses.
    pub fn connect(&self, user: &str) -> Inbox {
        self.next_api()
            .open_inbox(user, WAIT)
            .unwrap_or_else(|status| panic!("connect {user}: {status:?}"))
    }

    /// The status a Connect for `user` is refused with.
    pub fn connect_err(&self, user: &str) -> RpcStatus {
        match self.next_api().open_inbox(user, WAIT) {
            Ok(_) => panic!("connect {user:?} succeeded"),
            Err(status) => status,
        }
    }

    /// Every key in the cluster's Redis (none without one).
    pub fn redis_keys(&self) -> Vec<String> {
        let Some(redis) = &self.redis else {
            return Vec::new();
        };
        ::redis::cmd("KEYS")
            .arg("*")
            .query(&mut redis.client())
            .unwrap()
    }

    /// In cluster mode, waits until Redis holds no user, group, membership
    /// or history: only the cluster's own keys (epoch, sequence, nodes, the
    /// history counters at zero) and ended sessions kept for a resume,
    /// which expire with their window.
    pub fn assert_nothing_left_in_redis(&self) {
        let Some(redis) = &self.redis else { return };
        let mut client = redis.client();
        let mut left: Vec<String> = Vec::new();
        let settled = (0..200).any(|_| {
            let keys: Vec<String> = ::redis::cmd("KEYS").arg("*").query(&mut client).unwrap();
            left = keys
                .into_iter()
                .filter(|key| {
                    let rest = key.split_once("}:").map_or("", |(_, rest)| rest);
                    if rest.starts_with("r:") {
                        let ttl: i64 = ::redis::cmd("PTTL").arg(key).query(&mut client).unwrap();
                        return ttl <= 0;
                    }
                    if rest == "hist" {
                        let counts: Vec<i64> =
                            ::redis::cmd("HVALS").arg(key).query(&mut client).unwrap();
                        return counts.iter().any(|count| *count != 0);
                    }
                    !(rest == "epoch"
                        || rest == "seq"
                        || rest == "nodes"
                        || rest.starts_with("node:"))
                })
                .collect();
            let names: usize = ::redis::cmd("EVAL")
                .arg("local n = 0 for _, k in ipairs(redis.call('KEYS', '*:names')) do n = n + redis.call('HLEN', k) end return n")
                .arg(0)
                .query(&mut client)
                .unwrap();
            let users: usize = ::redis::cmd("EVAL")
                .arg("local n = 0 for _, k in ipairs(redis.call('KEYS', '*:users')) do n = n + redis.call('SCARD', k) end return n")
                .arg(0)
                .query(&mut client)
                .unwrap();
            let clean = left.is_empty() && names == 0 && users == 0;
            if !clean {
                std::thread::sleep(Duration::from_millis(10));
            }
            clean
        });
        assert!(settled, "redis still holds {left:?}");
    }

    /// Stops the server now.
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
        for node in self.others.drain(..) {
            node.stop();
        }
    }

    pub fn create(&self, user: &str, group: &str) -> Result<(), RpcStatus> {
        let mut request = CreateGroupChatRequest::new();
        request.name = group.to_owned();
        self.next_api()
            .client
            .create_group_chat_opt(&request, Api::as_user(user))
            .map(drop)
            .map_err(status_of)
    }

    pub fn join(&self, user: &str, group: &str) -> Result<(), RpcStatus> {
        let mut request = JoinGroupChatRequest::new();
        request.name = group.to_owned();
        self.next_api()
            .client
            .join_group_chat_opt(&request, Api::as_user(user))
            .map(drop)
            .map_err(status_of)
    }

    pub fn leave(&self, user: &str, group: &str) -> Result<(), RpcStatus> {
        let mut request = LeaveGroupChatRequest::new();
        request.name = group.to_owned();
        self.next_api()
            .client
            .leave_group_chat_opt(&request, Api::as_user(user))
            .map(drop)
            .map_err(status_of)
    }

    pub fn send(&self, user: &str, to: &str, text: &str) -> Result<SendMessageResponse, RpcStatus> {
        send_with(self.next_api(), user, to, text)
    }

    /// ListChannels as `user`, as (name, type, member_count, joined) rows.
    pub fn list(&self, user: &str) -> Result<Vec<(String, ChannelType, u32, bool)>, RpcStatus> {
        list_with(self.next_api(), user)
    }

    /// The names ListChannels shows, as seen by `user`.
    pub fn names(&self, user: &str) -> Vec<String> {
        self.list(user)
            .expect("list channels")
            .into_iter()
            .map(|row| row.0)
            .collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn send_with(
    api: &Api,
    user: &str,
    to: &str,
    text: &str,
) -> Result<SendMessageResponse, RpcStatus> {
    let mut request = SendMessageRequest::new();
    request.recipient = to.to_owned();
    request.text = text.to_owned();
    api.client
        .send_message_opt(&request, Api::as_user(user))
        .map_err(status_of)
}

pub fn list_with(
    api: &Api,
    user: &str,
) -> Result<Vec<(String, ChannelType, u32, bool)>, RpcStatus> {
    api.client
        .list_channels_opt(&ListChannelsRequest::new(), Api::as_user(user))
        .map_err(status_of)
        .map(|reply| {
            reply
                .channels
                .into_iter()
                .map(|c| {
                    (
                        c.name,
                        c.type_.enum_value_or_default(),
                        c.member_count,
                        c.joined,
                    )
                })
                .collect()
        })
}

/// Asserts that `result` failed with `code`.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(code: RpcStatusCode, result: Result<T, RpcStatus>) {
    match result {
        Ok(value) => panic!("expected {code:?}, got OK {value:?}"),
        Err(status) => assert_eq!(status.code(), code, "status {status:?}"),
    }
}

/// The next delivery's messages, waiting up to [`WAIT`].
#[track_caller]
pub fn next_delivery(inbox: &Inbox) -> Vec<Message> {
    match inbox.next_event(WAIT) {
        Some(InboxEvent::Messages(messages)) => messages,
        other => panic!("expected a delivery, got {other:?}"),
    }
}

/// Reads `count` messages, across as many deliveries as it takes.
#[track_caller]
pub fn receive(inbox: &Inbox, count: usize) -> Vec<Message> {
    let mut messages = Vec::with_capacity(count);
    while messages.len() < count {
        let delivery = next_delivery(inbox);
        assert!(!delivery.is_empty(), "an empty delivery");
        messages.extend(delivery);
    }
    assert_eq!(messages.len(), count, "more messages than expected");
    messages
}

/// Asserts that nothing arrives within `within`.
#[track_caller]
pub fn assert_silent(inbox: &Inbox, within: Duration) {
    if let Some(event) = inbox.next_event(within) {
        panic!("expected nothing, got {event:?}");
    }
}

/// The status the stream ends with, skipping deliveries before it.
#[track_caller]
pub fn end_status(inbox: &Inbox) -> RpcStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match inbox.next_event(left) {
            Some(InboxEvent::Ended(status)) => return status,
            Some(_) => continue,
            None => panic!("the stream did not end within {WAIT:?}"),
        }
    }
}

/// Polls `condition` until it holds; panics with `what` after [`WAIT`].
#[track_caller]
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while started.elapsed() < WAIT {
        if condition() {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("{what}: not within {WAIT:?}");
}
