//! Shared helpers for the integration tests: a real server on an ephemeral
//! loopback port that stops when dropped, a client for it, and assertion
//! helpers that keep each test a few lines long. Waiting is always bounded
//! by a deadline; nothing sleeps to synchronise.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use chat_client::api::{status_of, Api, Inbox, InboxEvent};
use chat_proto::chat::{
    ChannelType, CreateGroupChatRequest, JoinGroupChatRequest, LeaveGroupChatRequest,
    ListChannelsRequest, Message, SendMessageRequest, SendMessageResponse,
};
use chat_server::config::Config;
use chat_server::logging;
use chat_server::server::{start, RunningServer};
use grpcio::{RpcStatus, RpcStatusCode};

/// How long a test waits for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(5);

/// A server running in this process; stopped on drop.
pub struct TestServer {
    pub server: Option<RunningServer>,
    pub api: Api,
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
        let log = if std::env::var_os("CHAT_TEST_LOG").is_some() {
            logging::stderr_logger(logging::LogFormat::Term, slog::Level::Debug)
        } else {
            logging::discard()
        };
        let server = start(&config, &log).expect("server starts");
        let api = Api::connect(&format!("127.0.0.1:{}", server.port()), WAIT)
            .expect("client reaches the server");
        TestServer {
            server: Some(server),
            api,
        }
    }

    /// Another client on its own HTTP/2 connection.
    pub fn new_api(&self) -> Api {
        Api::connect(self.api.address(), WAIT).expect("client reaches the server")
    }

    /// Opens `user`'s inbox, panicking if the server refuses.
    pub fn connect(&self, user: &str) -> Inbox {
        self.api
            .open_inbox(user, WAIT)
            .unwrap_or_else(|status| panic!("connect {user}: {status:?}"))
    }

    /// The status a Connect for `user` is refused with.
    pub fn connect_err(&self, user: &str) -> RpcStatus {
        match self.api.open_inbox(user, WAIT) {
            Ok(_) => panic!("connect {user:?} succeeded"),
            Err(status) => status,
        }
    }

    /// Stops the server now.
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }

    pub fn create(&self, user: &str, group: &str) -> Result<(), RpcStatus> {
        let mut request = CreateGroupChatRequest::new();
        request.name = group.to_owned();
        self.api
            .client
            .create_group_chat_opt(&request, Api::as_user(user))
            .map(drop)
            .map_err(status_of)
    }

    pub fn join(&self, user: &str, group: &str) -> Result<(), RpcStatus> {
        let mut request = JoinGroupChatRequest::new();
        request.name = group.to_owned();
        self.api
            .client
            .join_group_chat_opt(&request, Api::as_user(user))
            .map(drop)
            .map_err(status_of)
    }

    pub fn leave(&self, user: &str, group: &str) -> Result<(), RpcStatus> {
        let mut request = LeaveGroupChatRequest::new();
        request.name = group.to_owned();
        self.api
            .client
            .leave_group_chat_opt(&request, Api::as_user(user))
            .map(drop)
            .map_err(status_of)
    }

    pub fn send(&self, user: &str, to: &str, text: &str) -> Result<SendMessageResponse, RpcStatus> {
        send_with(&self.api, user, to, text)
    }

    /// ListChannels as `user`, as (name, type, member_count, joined) rows.
    pub fn list(&self, user: &str) -> Result<Vec<(String, ChannelType, u32, bool)>, RpcStatus> {
        list_with(&self.api, user)
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
