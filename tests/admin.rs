//! The operator's API (`chat.admin.v1.AdminService` on the admin listener)
//! and per-user send limits, end to end: the secret every call needs, the
//! chat listener that never serves the admin service, DisconnectUser (the
//! stream's end, the groups left, no resume, bans), RemoveGroupMember,
//! DeleteGroup, Publish, ListUsers, and `--send-rate`/`--send-burst`. Every
//! rule runs on one node and across three nodes on one Redis
//! (`one_node::*`, `three_nodes::*`); there the operator always calls node
//! A's admin listener while the users it acts on stream from nodes B and C.
//! Streams are read one message at a time, so an event that should not be
//! there cannot hide in a delivery; "nothing in between" is checked with a
//! marker sent after, which must be the next thing read.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use chat_client::api::{bearer, open_unread, status_of, Api, Inbox, InboxEvent};
use chat_proto::admin::{
    DeleteGroupRequest, DisconnectUserRequest, ListUsersRequest, ListUsersResponse, PublishRequest,
    PublishResponse, RemoveGroupMemberRequest,
};
use chat_proto::admin_grpc::AdminServiceClient;
use chat_proto::chat::{
    ChannelType, Connected, EventType, GetHistoryRequest, JoinGroupChatRequest,
    ListGroupMembersRequest, MembershipChange, MembershipChangeKind, Message, ResumeRequest,
    ResumeStatus, SendMessageRequest, SendMessageResponse, SendTypingRequest,
};
use chat_proto::chat_grpc::ChatServiceClient;
use chat_server::admin::AdminConfig;
use chat_server::config::Config;
use chat_server::domain::SendLimit;
use common::redis::TestRedis;
use common::*;
use futures::StreamExt;
use grpcio::{CallOption, Method, MethodType, RpcStatus, RpcStatusCode as Code};

/// The operator's secret the test servers are started with.
const SECRET: &str = "an-operator-secret-of-at-least-32-bytes";
/// How long "nothing more arrives" is watched for.
const QUIET: Duration = Duration::from_millis(200);

const MEMBERSHIP: &[EventType] = &[EventType::EVENT_TYPE_MEMBERSHIP];
const NO_EVENTS: &[EventType] = &[];
const REMOVED: MembershipChangeKind = MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_REMOVED;
const DISCONNECTED: MembershipChangeKind =
    MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_DISCONNECTED;
const USER: ChannelType = ChannelType::CHANNEL_TYPE_USER;
const GROUP: ChannelType = ChannelType::CHANNEL_TYPE_GROUP;

/// Every rule as a test on one node (`one_node::<rule>`) and one across
/// three nodes on one Redis (`three_nodes::<rule>`), where one more test
/// takes each action on one node to users on the others.
macro_rules! on_one_node_and_across_three {
    ($($rule:ident),+ $(,)?) => {
        mod one_node {
            $( #[test] fn $rule() { super::$rule(1) } )+
        }
        mod three_nodes {
            $( #[test] fn $rule() { super::$rule(3) } )+
            #[test]
            fn every_action_on_one_admin_listener_reaches_users_on_the_other_nodes() {
                super::every_action_on_one_admin_listener_reaches_users_on_the_other_nodes()
            }
        }
    };
}

on_one_node_and_across_three!(
    every_admin_call_needs_the_secret,
    the_chat_listener_does_not_serve_the_admin_service,
    a_disconnected_user_is_told_why_and_leaves_every_group,
    a_disconnected_session_cannot_be_resumed,
    disconnecting_refuses_bad_names_and_users_not_connected,
    a_ban_refuses_connect_until_it_runs_out,
    a_removed_member_and_the_rest_of_the_group_are_told,
    removing_the_last_member_deletes_the_group,
    removing_a_member_refuses_what_it_must,
    deleting_a_group_removes_every_member_and_its_history,
    a_publish_reaches_a_user_from_the_operator,
    a_publish_to_a_group_takes_its_place_in_order_and_history,
    a_publish_is_checked_as_a_message_is,
    users_are_listed_sorted_a_page_at_a_time,
    a_listed_user_shows_its_node_time_peer_and_groups,
    a_flood_is_cut_at_the_burst_and_told_when_to_retry,
    the_send_budget_outlives_a_reconnect,
    typing_and_publish_spend_no_budget_and_invalid_sends_do,
    sends_through_every_node_share_one_budget,
);

// ---------------------------------------------------------------- fixture

/// Chat nodes with admin listeners (one embedded server, or cluster nodes
/// on one Redis), a chat client and an operator's client for each.
struct Chat {
    server: TestServer,
    admins: Vec<AdminServiceClient>,
}

impl Chat {
    fn start(nodes: usize) -> Chat {
        Chat::start_with(nodes, |_| {})
    }

    /// `nodes` nodes whose configuration `adjust` changes first.
    fn start_with(nodes: usize, adjust: impl FnOnce(&mut Config)) -> Chat {
        let mut config = Config::with_listen("127.0.0.1:0");
        config.admin = Some(
            AdminConfig::new("127.0.0.1:0", SECRET.as_bytes().to_vec()).expect("a valid secret"),
        );
        adjust(&mut config);
        let server = if nodes == 1 {
            TestServer::on_nodes(vec![config], None)
        } else {
            let redis = TestRedis::start();
            config.cluster = Some(cluster_config(&redis, Duration::from_secs(5)));
            TestServer::on_nodes(vec![config; nodes], Some(redis))
        };
        let admins = server
            .server
            .iter()
            .chain(&server.others)
            .map(|node| {
                let port = node.admin_port().expect("the node has an admin listener");
                let api = Api::connect(&format!("127.0.0.1:{port}"), WAIT)
                    .expect("the admin listener answers");
                AdminServiceClient::new(api.channel().clone())
            })
            .collect();
        Chat { server, admins }
    }

    fn nodes(&self) -> usize {
        self.server.apis.len()
    }

    /// The chat client of node `node` (modulo the node count).
    fn api(&self, node: usize) -> &Api {
        &self.server.apis[node % self.nodes()]
    }

    /// The operator on node A's admin listener.
    fn operator(&self) -> Operator<'_> {
        self.operator_on(0)
    }

    /// The operator on node `node`'s admin listener.
    fn operator_on(&self, node: usize) -> Operator<'_> {
        Operator(&self.admins[node % self.nodes()])
    }

    /// Opens `user`'s stream on node `node` asking for `events`.
    #[track_caller]
    fn open(&self, node: usize, user: &str, events: &[EventType]) -> Stream {
        self.try_open(node, user, events, None)
            .unwrap_or_else(|status| panic!("connect {user}: {status:?}"))
    }

    fn try_open(
        &self,
        node: usize,
        user: &str,
        events: &[EventType],
        resume: Option<ResumeRequest>,
    ) -> Result<Stream, RpcStatus> {
        let (inbox, connected) = self
            .api(node)
            .open_session_with(user, resume, events, WAIT)?;
        Ok(Stream {
            user: user.to_owned(),
            inbox,
            connected,
            pending: RefCell::new(VecDeque::new()),
        })
    }

    /// Opens `user`'s stream once the name is free again (a closed stream
    /// frees it a moment later), resuming with `resume`.
    #[track_caller]
    fn reopen(&self, node: usize, user: &str, resume: Option<ResumeRequest>) -> Stream {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.try_open(node, user, NO_EVENTS, resume.clone()) {
                Ok(stream) => return stream,
                Err(status) if status.code() == Code::ALREADY_EXISTS => {
                    assert!(Instant::now() < deadline, "{user} stays connected");
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(status) => panic!("reconnect {user}: {status:?}"),
            }
        }
    }

    /// `user` creates `group` through node `node`.
    #[track_caller]
    fn create(&self, node: usize, user: &str, group: &str) {
        let mut request = chat_proto::chat::CreateGroupChatRequest::new();
        request.name = group.to_owned();
        self.api(node)
            .client
            .create_group_chat_opt(&request, Api::as_user(user))
            .unwrap_or_else(|error| panic!("{user} creates {group}: {error:?}"));
    }

    fn join(&self, node: usize, user: &str, group: &str) -> Result<(), RpcStatus> {
        let mut request = JoinGroupChatRequest::new();
        request.name = group.to_owned();
        self.api(node)
            .client
            .join_group_chat_opt(&request, Api::as_user(user))
            .map(drop)
            .map_err(status_of)
    }

    #[track_caller]
    fn joins(&self, node: usize, user: &str, group: &str) {
        self.join(node, user, group)
            .unwrap_or_else(|status| panic!("{user} joins {group}: {status:?}"));
    }

    fn send(&self, node: usize, user: &str, to: &str, text: &str) -> Result<u64, RpcStatus> {
        send_with(self.api(node), user, to, text).map(|reply| reply.message_id)
    }

    #[track_caller]
    fn sends(&self, node: usize, user: &str, to: &str, text: &str) -> u64 {
        self.send(node, user, to, text)
            .unwrap_or_else(|status| panic!("{user} -> {to}: {status:?}"))
    }

    /// `group`'s members as `caller` lists them (one page).
    fn members(&self, node: usize, caller: &str, group: &str) -> Result<Vec<String>, RpcStatus> {
        let mut request = ListGroupMembersRequest::new();
        request.group = group.to_owned();
        self.api(node)
            .client
            .list_group_members_opt(&request, Api::as_user(caller))
            .map(|page| page.members)
            .map_err(status_of)
    }

    /// `group`'s kept history as `caller` reads it (the newest 500).
    fn history(&self, node: usize, caller: &str, group: &str) -> Result<Vec<Message>, RpcStatus> {
        let mut request = GetHistoryRequest::new();
        request.group = group.to_owned();
        request.limit = 500;
        self.api(node)
            .client
            .get_history_opt(&request, Api::as_user(caller))
            .map(|page| page.messages)
            .map_err(status_of)
    }

    /// The channel names `caller` sees.
    #[track_caller]
    fn channels(&self, node: usize, caller: &str) -> Vec<String> {
        list_with(self.api(node), caller)
            .unwrap_or_else(|status| panic!("{caller} lists channels: {status:?}"))
            .into_iter()
            .map(|row| row.0)
            .collect()
    }

    /// Every connected user's name, as the operator lists them.
    #[track_caller]
    fn user_names(&self) -> Vec<String> {
        let page = self.operator().users(1000, "").expect("list users");
        page.users.into_iter().map(|user| user.username).collect()
    }

    /// Waits until the operator no longer lists `user`.
    #[track_caller]
    fn wait_gone(&self, user: &str) {
        eventually(&format!("{user} is gone"), || {
            !self.user_names().contains(&user.to_owned())
        });
    }

    /// Every registered node id in the cluster's Redis (none on one node).
    fn node_ids(&self) -> BTreeSet<String> {
        let Some(redis) = &self.server.redis else {
            return BTreeSet::new();
        };
        let mut client = redis.client();
        let keys: Vec<String> = ::redis::cmd("KEYS")
            .arg("*:nodes")
            .query(&mut client)
            .unwrap();
        let mut ids = BTreeSet::new();
        for key in keys {
            let members: Vec<String> = ::redis::cmd("SMEMBERS")
                .arg(&key)
                .query(&mut client)
                .unwrap();
            ids.extend(members);
        }
        ids
    }
}

/// The operator's calls, with the secret, on one admin listener.
struct Operator<'a>(&'a AdminServiceClient);

fn with_secret() -> CallOption {
    bearer(SECRET)
}

impl Operator<'_> {
    fn disconnect(&self, user: &str, reason: &str, ban_secs: u32) -> Result<(), RpcStatus> {
        let mut request = DisconnectUserRequest::new();
        request.username = user.to_owned();
        request.reason = reason.to_owned();
        request.ban_secs = ban_secs;
        self.0
            .disconnect_user_opt(&request, with_secret())
            .map(drop)
            .map_err(status_of)
    }

    fn remove(&self, group: &str, user: &str) -> Result<(), RpcStatus> {
        let mut request = RemoveGroupMemberRequest::new();
        request.group = group.to_owned();
        request.username = user.to_owned();
        self.0
            .remove_group_member_opt(&request, with_secret())
            .map(drop)
            .map_err(status_of)
    }

    fn delete(&self, group: &str) -> Result<u32, RpcStatus> {
        let mut request = DeleteGroupRequest::new();
        request.group = group.to_owned();
        self.0
            .delete_group_opt(&request, with_secret())
            .map(|reply| reply.removed)
            .map_err(status_of)
    }

    fn publish(&self, to: &str, text: &str, sender: &str) -> Result<PublishResponse, RpcStatus> {
        let mut request = PublishRequest::new();
        request.recipient = to.to_owned();
        request.text = text.to_owned();
        request.sender = sender.to_owned();
        self.0
            .publish_opt(&request, with_secret())
            .map_err(status_of)
    }

    #[track_caller]
    fn publishes(&self, to: &str, text: &str, sender: &str) -> PublishResponse {
        self.publish(to, text, sender)
            .unwrap_or_else(|status| panic!("publish to {to}: {status:?}"))
    }

    fn users(&self, limit: u32, token: &str) -> Result<ListUsersResponse, RpcStatus> {
        let mut request = ListUsersRequest::new();
        request.limit = limit;
        request.page_token = token.to_owned();
        self.0
            .list_users_opt(&request, with_secret())
            .map_err(status_of)
    }
}

/// One thing read from a stream (a delivery's messages one by one).
#[derive(Debug)]
enum Got {
    Message(Message),
    Membership(MembershipChange),
    /// Anything else (a typing notice, a second `connected`): shown in a
    /// failure's message only.
    Other(#[allow(dead_code)] InboxEvent),
    Ended(RpcStatus),
}

/// A user's Connect stream, read one message at a time; dropping it
/// cancels the stream.
struct Stream {
    user: String,
    inbox: Inbox,
    connected: Connected,
    pending: RefCell<VecDeque<Got>>,
}

impl Stream {
    fn next_within(&self, within: Duration) -> Option<Got> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(got) = self.pending.borrow_mut().pop_front() {
                return Some(got);
            }
            let event = self
                .inbox
                .next_event(deadline.saturating_duration_since(Instant::now()))?;
            let got = match event {
                InboxEvent::Messages(messages) => {
                    let mut pending = self.pending.borrow_mut();
                    pending.extend(messages.into_iter().map(Got::Message));
                    continue;
                }
                InboxEvent::Membership(change) => Got::Membership(change),
                InboxEvent::Ended(status) => Got::Ended(status),
                other => Got::Other(other),
            };
            return Some(got);
        }
    }

    #[track_caller]
    fn next(&self) -> Got {
        self.next_within(WAIT)
            .unwrap_or_else(|| panic!("{}: nothing within {WAIT:?}", self.user))
    }

    #[track_caller]
    fn message(&self) -> Message {
        match self.next() {
            Got::Message(message) => message,
            other => panic!("{}: expected a message, got {other:?}", self.user),
        }
    }

    /// Asserts that the next thing read is the message with `text`.
    #[track_caller]
    fn marker(&self, text: &str) {
        let message = self.message();
        assert_eq!(message.text, text, "{}: {message:?}", self.user);
    }

    /// Reads past everything up to and including the message with `text`.
    #[track_caller]
    fn skip_to(&self, text: &str) {
        loop {
            match self.next() {
                Got::Message(message) if message.text == text => return,
                Got::Ended(status) => panic!("{}: ended with {status:?}", self.user),
                _ => {}
            }
        }
    }

    /// Asserts that the next thing read is `user`'s `kind` change in
    /// `group`, leaving `count` members.
    #[track_caller]
    fn change(&self, group: &str, user: &str, kind: MembershipChangeKind, count: u32) {
        let change = match self.next() {
            Got::Membership(change) => change,
            other => panic!("{}: expected a membership change, got {other:?}", self.user),
        };
        assert_eq!(
            (
                change.group.as_str(),
                change.user.as_str(),
                change.kind.enum_value_or_default(),
                change.member_count
            ),
            (group, user, kind, count),
            "{}: {change:?}",
            self.user
        );
    }

    /// The status the stream ends with, past whatever was queued before.
    #[track_caller]
    fn end(&self) -> RpcStatus {
        loop {
            if let Got::Ended(status) = self.next() {
                return status;
            }
        }
    }

    /// Asserts that nothing arrives within [`QUIET`].
    #[track_caller]
    fn silent(&self) {
        if let Some(got) = self.next_within(QUIET) {
            panic!("{}: expected nothing, got {got:?}", self.user);
        }
    }

    fn close(self) {
        self.inbox.close();
    }
}

/// A ResumeRequest for `stream`'s session after nothing read.
fn resume_of(stream: &Stream) -> Option<ResumeRequest> {
    let mut request = ResumeRequest::new();
    request.token = stream.connected.resume_token.clone();
    request.after_id = 0;
    Some(request)
}

fn resume_status(stream: &Stream) -> ResumeStatus {
    stream.connected.resume_status.enum_value_or_default()
}

/// Asserts that `result` failed with `code` and exactly `message`.
#[track_caller]
fn assert_status<T: std::fmt::Debug>(code: Code, message: &str, result: Result<T, RpcStatus>) {
    match result {
        Ok(value) => panic!("expected {code:?} {message:?}, got OK {value:?}"),
        Err(status) => assert_eq!(
            (status.code(), status.message()),
            (code, message),
            "{status:?}"
        ),
    }
}

// ----------------------------------------------------------------- secret

fn every_admin_call_needs_the_secret(nodes: usize) {
    let chat = Chat::start(nodes);
    let alice = chat.open(1, "alice", NO_EVENTS);
    chat.create(1, "alice", "room");
    let truncated = &SECRET[..SECRET.len() - 1];
    let wrong = format!("{}X", truncated);
    let longer = format!("{SECRET}X");
    let refusals: Vec<(&str, CallOption)> = vec![
        ("no header", CallOption::default()),
        ("a wrong secret", bearer(&wrong)),
        ("a truncated secret", bearer(truncated)),
        ("a longer secret", bearer(&longer)),
        ("an empty secret", bearer("")),
        ("no Bearer scheme", Api::as_user(SECRET)),
    ];
    for node in 0..nodes {
        let admin = &chat.admins[node];
        for (what, option) in &refusals {
            let mut disconnect = DisconnectUserRequest::new();
            disconnect.username = "alice".to_owned();
            disconnect.ban_secs = 60;
            let mut remove = RemoveGroupMemberRequest::new();
            remove.group = "room".to_owned();
            remove.username = "alice".to_owned();
            let mut delete = DeleteGroupRequest::new();
            delete.group = "room".to_owned();
            let mut publish = PublishRequest::new();
            publish.recipient = "alice".to_owned();
            publish.text = "unauthorised".to_owned();
            let codes = [
                admin
                    .disconnect_user_opt(&disconnect, option.clone())
                    .map(drop),
                admin
                    .remove_group_member_opt(&remove, option.clone())
                    .map(drop),
                admin.delete_group_opt(&delete, option.clone()).map(drop),
                admin.publish_opt(&publish, option.clone()).map(drop),
                admin
                    .list_users_opt(&ListUsersRequest::new(), option.clone())
                    .map(drop),
            ]
            .map(|result| result.map_err(status_of).err().map(|status| status.code()));
            assert_eq!(
                codes,
                [Some(Code::UNAUTHENTICATED); 5],
                "node {node}, {what}"
            );
        }
    }
    // Nothing of it was done: alice is still connected, in her group, with
    // nothing delivered, and not banned.
    assert_eq!(chat.members(2, "alice", "room").unwrap(), ["alice"]);
    alice.silent();
    // The right secret, on every node.
    for node in 0..nodes {
        let page = chat.operator_on(node).users(0, "").expect("list users");
        assert_eq!(page.user_count, 1, "node {node}");
    }
}

fn the_chat_listener_does_not_serve_the_admin_service(nodes: usize) {
    let chat = Chat::start(nodes);
    let alice = chat.open(0, "alice", NO_EVENTS);
    for node in 0..nodes {
        // `/chat.admin.v1.AdminService/ListUsers` on the chat listener.
        let admin_on_chat = AdminServiceClient::new(chat.api(node).channel().clone());
        assert_code(
            Code::UNIMPLEMENTED,
            admin_on_chat
                .list_users_opt(&ListUsersRequest::new(), with_secret())
                .map_err(status_of),
        );
        let mut request = DisconnectUserRequest::new();
        request.username = "alice".to_owned();
        assert_code(
            Code::UNIMPLEMENTED,
            admin_on_chat
                .disconnect_user_opt(&request, with_secret())
                .map_err(status_of),
        );
        // And the chat service is not on the admin listener.
        let chat_on_admin = ChatServiceClient::new(chat.admins[node].client.channel().clone());
        let mut send = SendMessageRequest::new();
        send.recipient = "alice".to_owned();
        send.text = "hi".to_owned();
        assert_code(
            Code::UNIMPLEMENTED,
            chat_on_admin
                .send_message_opt(&send, Api::as_user("alice"))
                .map_err(status_of),
        );
    }
    alice.silent();
}

// ------------------------------------------------------------- disconnect

fn a_disconnected_user_is_told_why_and_leaves_every_group(nodes: usize) {
    let chat = Chat::start(nodes);
    let alice = chat.open(1, "alice", MEMBERSHIP);
    let bob = chat.open(2, "bob", MEMBERSHIP);
    let carol = chat.open(0, "carol", NO_EVENTS);
    chat.create(1, "alice", "room");
    chat.joins(2, "bob", "room");
    chat.joins(0, "carol", "room");
    chat.create(1, "alice", "solo");
    chat.sends(0, "carol", "room", "ready");
    bob.skip_to("ready");

    chat.operator()
        .disconnect("alice", "spamming the lobby", 0)
        .expect("disconnect alice");
    let end = alice.end();
    assert_eq!(
        (end.code(), end.message()),
        (
            Code::PERMISSION_DENIED,
            "disconnected by an operator: spamming the lobby"
        ),
        "{end:?}"
    );
    // The members that asked are told she disconnected, before anything
    // sent after.
    bob.change("room", "alice", DISCONNECTED, 2);
    chat.sends(0, "carol", "room", "after");
    bob.marker("after");
    carol.skip_to("after");
    assert_eq!(chat.members(1, "bob", "room").unwrap(), ["bob", "carol"]);
    // The group she alone was in is gone, and she is no longer listed.
    assert_code(Code::NOT_FOUND, chat.join(2, "bob", "solo"));
    let channels = chat.channels(0, "carol");
    assert!(!channels.contains(&"solo".to_owned()), "{channels:?}");
    assert!(!channels.contains(&"alice".to_owned()), "{channels:?}");
    assert!(!chat.user_names().contains(&"alice".to_owned()));
    // No longer connected: without a ban, a second disconnect finds no one.
    assert_code(Code::NOT_FOUND, chat.operator().disconnect("alice", "", 0));
    // Not banned: she may come back at once, in no group.
    let alice = chat.reopen(1, "alice", None);
    assert_eq!(chat.members(0, "carol", "room").unwrap(), ["bob", "carol"]);
    // Once everyone has gone, nothing of it is left in a cluster's store.
    for stream in [alice, bob, carol] {
        stream.close();
    }
    chat.server.assert_nothing_left_in_redis();
}

fn a_disconnected_session_cannot_be_resumed(nodes: usize) {
    let chat = Chat::start(nodes);
    let alice = chat.open(1, "alice", NO_EVENTS);
    let carol = chat.open(2, "carol", NO_EVENTS);
    let _bob = chat.open(0, "bob", NO_EVENTS);
    chat.sends(0, "bob", "alice", "kept");
    chat.sends(0, "bob", "carol", "kept");
    alice.marker("kept");
    carol.marker("kept");
    let (alice_resume, carol_resume) = (resume_of(&alice), resume_of(&carol));

    // The control: carol's stream ends the usual way, and resumes.
    carol.close();
    let carol = chat.reopen(2, "carol", carol_resume);
    assert_eq!(resume_status(&carol), ResumeStatus::RESUME_STATUS_RESUMED);
    carol.marker("kept");

    // alice's is ended by the operator: nothing is kept for a resume.
    chat.operator()
        .disconnect("alice", "resume test", 0)
        .expect("disconnect alice");
    assert_eq!(alice.end().code(), Code::PERMISSION_DENIED);
    let alice = chat.reopen(1, "alice", alice_resume);
    assert_eq!(resume_status(&alice), ResumeStatus::RESUME_STATUS_UNKNOWN);
    alice.silent();
}

fn disconnecting_refuses_bad_names_and_users_not_connected(nodes: usize) {
    let chat = Chat::start(nodes);
    let alice = chat.open(1, "alice", NO_EVENTS);
    let operator = chat.operator();
    assert_code(Code::NOT_FOUND, operator.disconnect("bob", "why", 0));
    for bad in ["", "bad name", "émile", &"x".repeat(65)] {
        assert_code(Code::INVALID_ARGUMENT, operator.disconnect(bad, "why", 0));
        assert_code(Code::INVALID_ARGUMENT, operator.disconnect(bad, "why", 1));
    }
    // None of it touched alice.
    alice.silent();
    assert_eq!(chat.user_names(), ["alice"]);
}

/// Connects `user` on node `node` as soon as a ban issued at `since` for
/// `ban` runs out, checking that it did not let the user in earlier.
#[track_caller]
fn connect_after_ban(chat: &Chat, node: usize, user: &str, since: Instant, ban: Duration) {
    let deadline = since + ban + WAIT;
    loop {
        match chat.try_open(node, user, NO_EVENTS, None) {
            Ok(stream) => {
                // A ban counted from the call's arrival, in whole
                // milliseconds at worst.
                let waited = since.elapsed();
                assert!(
                    waited + Duration::from_millis(20) >= ban,
                    "{user} let in after {waited:?} of a {ban:?} ban"
                );
                stream.close();
                return;
            }
            Err(status) if status.code() == Code::PERMISSION_DENIED => {
                assert!(Instant::now() < deadline, "{user}'s ban never ran out");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(status) => panic!("connect {user}: {status:?}"),
        }
    }
}

/// The seconds a `banned for N more seconds` refusal names.
#[track_caller]
fn banned_secs(status: &RpcStatus) -> u64 {
    assert_eq!(status.code(), Code::PERMISSION_DENIED, "{status:?}");
    status
        .message()
        .strip_prefix("banned for ")
        .and_then(|rest| rest.strip_suffix(" more seconds"))
        .and_then(|secs| secs.parse().ok())
        .unwrap_or_else(|| panic!("not a ban's message: {status:?}"))
}

fn a_ban_refuses_connect_until_it_runs_out(nodes: usize) {
    let chat = Chat::start(nodes);
    let alice = chat.open(1, "alice", NO_EVENTS);
    let _bob = chat.open(2, "bob", NO_EVENTS);
    chat.create(2, "bob", "lobby");
    // eve's stream ended the usual way: a session kept for a resume.
    let eve = chat.open(0, "eve", NO_EVENTS);
    chat.sends(2, "bob", "eve", "kept");
    eve.marker("kept");
    let eve_resume = resume_of(&eve);
    eve.close();
    chat.wait_gone("eve");

    let operator = chat.operator();
    let one = Duration::from_secs(1);
    let since = Instant::now();
    operator
        .disconnect("alice", "flooding", 1)
        .expect("ban alice");
    let end = alice.end();
    assert_eq!(
        (end.code(), end.message()),
        (
            Code::PERMISSION_DENIED,
            "disconnected by an operator: flooding"
        )
    );
    // A ban does not need the user connected: dave never was, eve was.
    let dave_since = Instant::now();
    operator.disconnect("dave", "", 2).expect("ban dave");
    let dave_banned = Instant::now();
    operator.disconnect("eve", "", 1).expect("ban eve");
    // A ban comes before the name's other checks: "lobby" is a group's.
    operator.disconnect("lobby", "", 1).expect("ban lobby");

    for node in 0..nodes {
        assert_eq!(
            banned_secs(&chat.try_open(node, "alice", NO_EVENTS, None).err().unwrap()),
            1
        );
        assert_eq!(
            banned_secs(&chat.try_open(node, "dave", NO_EVENTS, None).err().unwrap()),
            2
        );
        assert_eq!(
            banned_secs(&chat.try_open(node, "eve", NO_EVENTS, None).err().unwrap()),
            1
        );
        assert_eq!(
            banned_secs(&chat.try_open(node, "lobby", NO_EVENTS, None).err().unwrap()),
            1
        );
    }
    // The first second runs out; what is left of dave's is rounded up.
    connect_after_ban(&chat, 1, "alice", since, one);
    // The ban began between `dave_since` and `dave_banned`; give the
    // clocks 5 ms either way.
    let before = dave_banned
        .elapsed()
        .saturating_sub(Duration::from_millis(5));
    let refused = chat.try_open(2, "dave", NO_EVENTS, None);
    let after = dave_since.elapsed() + Duration::from_millis(5);
    if after < 2 * one {
        let left = banned_secs(&refused.err().expect("dave is still banned"));
        let rounded_up = |past: Duration| (2 * one - past).as_secs_f64().ceil() as u64;
        assert!(
            (rounded_up(after)..=rounded_up(before)).contains(&left),
            "{left} s left between {before:?} and {after:?} into a 2 s ban"
        );
    }
    connect_after_ban(&chat, 2, "dave", dave_since, 2 * one);
    // Past its ban, eve's kept session is gone, and "lobby" a group again.
    let eve = chat.reopen(0, "eve", eve_resume);
    assert_eq!(resume_status(&eve), ResumeStatus::RESUME_STATUS_UNKNOWN);
    eve.silent();
    assert_code(
        Code::ALREADY_EXISTS,
        chat.try_open(0, "lobby", NO_EVENTS, None).map(drop),
    );
}

// ----------------------------------------------------------------- remove

fn a_removed_member_and_the_rest_of_the_group_are_told(nodes: usize) {
    let chat = Chat::start(nodes);
    let alice = chat.open(1, "alice", MEMBERSHIP);
    let bob = chat.open(2, "bob", MEMBERSHIP);
    let carol = chat.open(0, "carol", MEMBERSHIP);
    let dave = chat.open(1, "dave", NO_EVENTS);
    chat.create(1, "alice", "room");
    for (node, user) in [(2, "bob"), (0, "carol"), (1, "dave")] {
        chat.joins(node, user, "room");
    }
    chat.sends(1, "alice", "room", "ready");
    for stream in [&alice, &bob, &carol, &dave] {
        stream.skip_to("ready");
    }

    chat.operator().remove("room", "bob").expect("remove bob");
    // bob is told, with the count that remains; so are the members that
    // asked, before anything sent after; dave did not ask.
    bob.change("room", "bob", REMOVED, 3);
    alice.change("room", "bob", REMOVED, 3);
    carol.change("room", "bob", REMOVED, 3);
    chat.sends(0, "carol", "room", "after");
    for stream in [&alice, &carol, &dave] {
        stream.marker("after");
    }
    chat.sends(1, "dave", "bob", "direct");
    bob.marker("direct");
    // bob is out: not listed, may not send there, and may join again.
    assert_eq!(
        chat.members(2, "bob", "room").unwrap(),
        ["alice", "carol", "dave"]
    );
    assert_code(Code::PERMISSION_DENIED, chat.send(2, "bob", "room", "hi"));
    assert_eq!(chat.user_names(), ["alice", "bob", "carol", "dave"]);
    chat.joins(2, "bob", "room");
}

fn removing_the_last_member_deletes_the_group(nodes: usize) {
    let chat = Chat::start(nodes);
    let carol = chat.open(2, "carol", MEMBERSHIP);
    let _bob = chat.open(1, "bob", NO_EVENTS);
    chat.create(2, "carol", "solo");
    chat.sends(2, "carol", "solo", "ready");
    carol.skip_to("ready");

    chat.operator()
        .remove("solo", "carol")
        .expect("remove carol");
    carol.change("solo", "carol", REMOVED, 0);
    chat.sends(1, "bob", "carol", "after");
    carol.marker("after");
    assert_code(Code::NOT_FOUND, chat.join(1, "bob", "solo"));
    assert!(!chat.channels(0, "bob").contains(&"solo".to_owned()));
    assert_code(Code::NOT_FOUND, chat.operator().remove("solo", "carol"));
    // The name is free: a new group of that name starts empty.
    chat.create(1, "bob", "solo");
    assert!(chat.history(0, "bob", "solo").unwrap().is_empty());
}

fn removing_a_member_refuses_what_it_must(nodes: usize) {
    let chat = Chat::start(nodes);
    let _alice = chat.open(1, "alice", NO_EVENTS);
    let _bob = chat.open(2, "bob", NO_EVENTS);
    chat.create(1, "alice", "room");
    let operator = chat.operator();
    assert_code(Code::NOT_FOUND, operator.remove("nosuch", "alice"));
    assert_code(Code::FAILED_PRECONDITION, operator.remove("room", "bob"));
    assert_code(Code::FAILED_PRECONDITION, operator.remove("room", "nobody"));
    assert_code(Code::INVALID_ARGUMENT, operator.remove("bad name", "alice"));
    assert_code(Code::INVALID_ARGUMENT, operator.remove("room", "bad name"));
    assert_code(Code::INVALID_ARGUMENT, operator.remove("", "alice"));
    // A user is not a group.
    assert_code(Code::NOT_FOUND, operator.remove("bob", "alice"));
    assert_eq!(chat.members(0, "bob", "room").unwrap(), ["alice"]);
}

// ----------------------------------------------------------------- delete

fn deleting_a_group_removes_every_member_and_its_history(nodes: usize) {
    let chat = Chat::start(nodes);
    let alice = chat.open(1, "alice", MEMBERSHIP);
    let bob = chat.open(2, "bob", MEMBERSHIP);
    let carol = chat.open(0, "carol", NO_EVENTS);
    chat.create(1, "alice", "room");
    chat.joins(2, "bob", "room");
    chat.joins(0, "carol", "room");
    chat.sends(1, "alice", "room", "one");
    chat.sends(2, "bob", "room", "ready");
    for stream in [&alice, &bob, &carol] {
        stream.skip_to("ready");
    }
    assert_eq!(chat.history(0, "carol", "room").unwrap().len(), 2);

    assert_eq!(chat.operator().delete("room").unwrap(), 3);
    // Each member that asked gets one event, about itself; then nothing
    // but what is sent after.
    alice.change("room", "alice", REMOVED, 0);
    bob.change("room", "bob", REMOVED, 0);
    for stream in [&alice, &bob, &carol] {
        chat.sends(0, "carol", &stream.user, "after");
        stream.marker("after");
    }
    // The group is gone; its members are still connected, in no group.
    assert_code(Code::NOT_FOUND, chat.join(0, "carol", "room"));
    assert_code(Code::NOT_FOUND, chat.send(1, "alice", "room", "hi"));
    assert!(!chat.channels(2, "bob").contains(&"room".to_owned()));
    let page = chat.operator().users(0, "").unwrap();
    let groups: Vec<u32> = page.users.iter().map(|user| user.group_count).collect();
    assert_eq!(groups, [0, 0, 0], "{page:?}");
    // Its history went with it: a new group of that name starts empty.
    chat.create(2, "bob", "room");
    assert!(chat.history(1, "bob", "room").unwrap().is_empty());
    assert_eq!(chat.members(0, "bob", "room").unwrap(), ["bob"]);
    // Errors.
    assert_code(Code::NOT_FOUND, chat.operator().delete("nosuch"));
    assert_code(Code::NOT_FOUND, chat.operator().delete("alice"));
    assert_code(Code::INVALID_ARGUMENT, chat.operator().delete("bad name"));
    assert_code(Code::INVALID_ARGUMENT, chat.operator().delete(""));
    // Once everyone has gone, nothing of it is left in a cluster's store.
    for stream in [alice, bob, carol] {
        stream.close();
    }
    chat.server.assert_nothing_left_in_redis();
}

// ---------------------------------------------------------------- publish

/// Asserts that `message` is the one `reply` accepted, from the operator
/// named `sender`, to `to` of type `kind`, with `text`.
#[track_caller]
fn assert_published(
    message: &Message,
    reply: &PublishResponse,
    sender: &str,
    to: &str,
    kind: ChannelType,
    text: &str,
) {
    assert_eq!(
        (
            message.id,
            message.sender.as_str(),
            message.recipient.as_str(),
            message.recipient_type.enum_value_or_default(),
            message.text.as_str(),
            message.from_operator,
        ),
        (reply.message_id, sender, to, kind, text, true),
        "{message:?}"
    );
    assert_eq!(message.sent_at, reply.sent_at, "{message:?} {reply:?}");
    assert!(reply.sent_at.seconds > 1_577_836_800, "{reply:?}");
}

fn a_publish_reaches_a_user_from_the_operator(nodes: usize) {
    let chat = Chat::start(nodes);
    let alice = chat.open(1, "alice", NO_EVENTS);
    let bob = chat.open(2, "bob", NO_EVENTS);
    let operator = chat.operator();

    let reply = operator.publishes("alice", "maintenance at noon", "");
    assert_published(
        &alice.message(),
        &reply,
        "server",
        "alice",
        USER,
        "maintenance at noon",
    );
    // A sender may be any printable name, a username's too: only
    // `from_operator` tells them apart.
    let reply = operator.publishes("alice", "from ops", "bob");
    assert_published(&alice.message(), &reply, "bob", "alice", USER, "from ops");
    let id = chat.sends(2, "bob", "alice", "from bob");
    let message = alice.message();
    assert_eq!(
        (
            message.id,
            message.sender.as_str(),
            message.text.as_str(),
            message.from_operator
        ),
        (id, "bob", "from bob", false),
        "{message:?}"
    );
    for sender in ["Ops Team", "~!@#$%^&*()", &"s".repeat(64)] {
        let reply = operator.publishes("alice", "hello", sender);
        assert_published(&alice.message(), &reply, sender, "alice", USER, "hello");
    }
    // Only the recipient gets it.
    bob.silent();
    alice.silent();
}

fn a_publish_to_a_group_takes_its_place_in_order_and_history(nodes: usize) {
    let chat = Chat::start(nodes);
    let alice = chat.open(1, "alice", NO_EVENTS);
    let bob = chat.open(2, "bob", NO_EVENTS);
    let carol = chat.open(0, "carol", NO_EVENTS);
    chat.create(1, "alice", "room");
    chat.joins(2, "bob", "room");

    // No membership needed: the operator is in no group.
    let one = chat.sends(1, "alice", "room", "one");
    let reply = chat.operator().publishes("room", "two", "mod");
    let three = chat.sends(2, "bob", "room", "three");
    assert!(one < reply.message_id && reply.message_id < three);
    for stream in [&alice, &bob] {
        stream.marker("one");
        assert_published(&stream.message(), &reply, "mod", "room", GROUP, "two");
        stream.marker("three");
    }
    // Kept in the history as delivered.
    let history = chat.history(0, "alice", "room").unwrap();
    let kept: Vec<(u64, &str, bool)> = history
        .iter()
        .map(|m| (m.id, m.sender.as_str(), m.from_operator))
        .collect();
    assert_eq!(
        kept,
        [
            (one, "alice", false),
            (reply.message_id, "mod", true),
            (three, "bob", false)
        ]
    );
    assert_published(&history[1], &reply, "mod", "room", GROUP, "two");

    // Under concurrent sends, every member reads one order, which is the
    // history's.
    let publisher = {
        let admin = chat.admins[1 % nodes].clone();
        std::thread::spawn(move || {
            for i in 0..20 {
                Operator(&admin).publishes("room", &format!("p{i}"), "");
            }
        })
    };
    for i in 0..20 {
        chat.sends(i, "alice", "room", &format!("a{i}"));
    }
    publisher.join().unwrap();
    let read = |stream: &Stream| -> Vec<(u64, String)> {
        (0..40)
            .map(|_| stream.message())
            .map(|m| (m.id, m.text))
            .collect()
    };
    let (at_alice, at_bob) = (read(&alice), read(&bob));
    assert_eq!(at_alice, at_bob);
    let kept: Vec<(u64, String)> = chat.history(2, "bob", "room").unwrap()[3..]
        .iter()
        .map(|m| (m.id, m.text.clone()))
        .collect();
    assert_eq!(kept, at_alice);
    // carol, not a member, got none of it.
    carol.silent();
}

fn a_publish_is_checked_as_a_message_is(nodes: usize) {
    let chat = Chat::start(nodes);
    let alice = chat.open(1, "alice", NO_EVENTS);
    chat.create(1, "alice", "room");
    let operator = chat.operator();
    // The text: as SendMessage's (4096 bytes at most by default).
    let too_long = "x".repeat(4097);
    for text in ["", "   ", " \t\n ", too_long.as_str()] {
        assert_code(Code::INVALID_ARGUMENT, operator.publish("alice", text, ""));
        assert_code(Code::INVALID_ARGUMENT, operator.publish("room", text, ""));
    }
    // The sender: 1-64 printable ASCII characters, no space at either end.
    let too_long_sender = "s".repeat(65);
    for sender in [
        " ops",
        "ops ",
        " ",
        too_long_sender.as_str(),
        "opé",
        "ops\tteam",
        "ops\u{7f}",
        "ops\n",
    ] {
        assert_code(
            Code::INVALID_ARGUMENT,
            operator.publish("alice", "hi", sender),
        );
    }
    // The recipient.
    assert_code(Code::NOT_FOUND, operator.publish("nobody", "hi", ""));
    for bad in ["", "bad name", "émile"] {
        assert_code(Code::INVALID_ARGUMENT, operator.publish(bad, "hi", ""));
    }
    // None of it was delivered; the longest text is.
    let longest = "x".repeat(4096);
    let reply = operator.publishes("alice", &longest, "");
    assert_published(&alice.message(), &reply, "server", "alice", USER, &longest);
    let reply = operator.publishes("room", "room", "");
    assert_published(&alice.message(), &reply, "server", "room", GROUP, "room");
    alice.silent();
}

// -------------------------------------------------------------- list users

fn users_are_listed_sorted_a_page_at_a_time(nodes: usize) {
    let chat = Chat::start(nodes);
    let mut names: Vec<String> = (0..105).map(|i| format!("u{i:03}")).collect();
    // Connected out of name order, over every node.
    let mut streams = Vec::new();
    for (i, name) in names.iter().rev().enumerate() {
        streams.push(open_unread(chat.api(i), name).expect("connect"));
    }
    names.sort();
    let operator = chat.operator();
    // limit 0 is 100.
    let first = operator.users(0, "").unwrap();
    assert_eq!(first.users.len(), 100);
    assert_eq!(first.user_count, 105);
    assert!(!first.next_page_token.is_empty());
    let second = operator.users(0, &first.next_page_token).unwrap();
    assert_eq!(second.user_count, 105);
    assert!(
        second.next_page_token.is_empty(),
        "{:?}",
        second.next_page_token
    );
    let listed: Vec<String> = first
        .users
        .iter()
        .chain(&second.users)
        .map(|user| user.username.clone())
        .collect();
    assert_eq!(listed, names);
    // Smaller pages, from every node's admin listener.
    for node in 0..nodes {
        let (mut listed, mut token, mut pages) = (Vec::new(), String::new(), 0);
        loop {
            let page = chat.operator_on(node).users(10, &token).unwrap();
            assert_eq!(page.user_count, 105);
            assert!(page.users.len() <= 10);
            listed.extend(page.users.into_iter().map(|user| user.username));
            pages += 1;
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
            assert!(pages < 100, "the pages never end");
        }
        assert_eq!(pages, 11);
        assert_eq!(listed, names, "node {node}");
    }
    // At most 1000 a page.
    let all = operator.users(1000, "").unwrap();
    assert_eq!(all.users.len(), 105);
    assert!(all.next_page_token.is_empty());
    assert_code(Code::INVALID_ARGUMENT, operator.users(1001, ""));
    assert_code(Code::INVALID_ARGUMENT, operator.users(u32::MAX, ""));
    // A user gone is no longer counted.
    streams.truncate(100);
    eventually("five users gone", || {
        operator.users(1, "").unwrap().user_count == 100
    });
}

fn a_listed_user_shows_its_node_time_peer_and_groups(nodes: usize) {
    let chat = Chat::start(nodes);
    let before = SystemTime::now();
    let alice = chat.open(0, "alice", NO_EVENTS);
    let _bob = chat.open(1, "bob", NO_EVENTS);
    let _carol = chat.open(2, "carol", NO_EVENTS);
    let after = SystemTime::now();
    chat.create(0, "alice", "one");
    chat.create(1, "alice", "two");
    chat.joins(2, "bob", "two");

    let page = chat.operator().users(0, "").unwrap();
    assert_eq!(page.user_count, 3);
    let names: Vec<&str> = page.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    let groups: Vec<u32> = page.users.iter().map(|u| u.group_count).collect();
    assert_eq!(groups, [2, 1, 0]);
    let seconds = |time: SystemTime| {
        time.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    for user in &page.users {
        let at = user
            .connected_at
            .as_ref()
            .unwrap_or_else(|| panic!("no connected_at: {user:?}"));
        let at = at.seconds as f64 + f64::from(at.nanos) / 1e9;
        assert!(
            at >= seconds(before) - 1.0 && at <= seconds(after) + 1.0,
            "{user:?} connected at {at}, between {before:?} and {after:?}"
        );
        assert!(user.peer.contains("127.0.0.1"), "{user:?}");
    }
    let on_node: Vec<&str> = page.users.iter().map(|u| u.node.as_str()).collect();
    if nodes == 1 {
        assert_eq!(on_node, ["", "", ""]);
    } else {
        // Each stream's node: three different registered nodes.
        let registered = chat.node_ids();
        assert_eq!(registered.len(), 3, "{registered:?}");
        let distinct: BTreeSet<&str> = on_node.iter().copied().collect();
        assert_eq!(distinct.len(), 3, "{on_node:?}");
        for node in &on_node {
            assert!(registered.contains(*node), "{node:?} not in {registered:?}");
        }
        // A user on node 0 shows node 0's id whichever listener lists it.
        for listener in 0..nodes {
            let again = chat.operator_on(listener).users(0, "").unwrap();
            let seen: Vec<&str> = again.users.iter().map(|u| u.node.as_str()).collect();
            assert_eq!(seen, on_node, "listener {listener}");
        }
    }
    // Its group count follows it.
    chat.operator().remove("two", "alice").unwrap();
    let page = chat.operator().users(0, "").unwrap();
    let groups: Vec<u32> = page.users.iter().map(|u| u.group_count).collect();
    assert_eq!(groups, [1, 1, 0]);
    alice.close();
    chat.wait_gone("alice");
    assert_eq!(chat.operator().users(0, "").unwrap().user_count, 2);
}

// ------------------------------------------------------------ send limits

/// SendMessage as a server-streaming call, which grpcio's client lets read
/// the response headers of a failed call too (its unary calls drop them).
const SEND_MESSAGE_WITH_HEADERS: Method<SendMessageRequest, SendMessageResponse> = Method {
    ty: MethodType::ServerStreaming,
    name: "/chat.v1.ChatService/SendMessage",
    req_mar: grpcio::Marshaller {
        ser: grpcio::pb_ser,
        de: grpcio::pb_de,
    },
    resp_mar: grpcio::Marshaller {
        ser: grpcio::pb_ser,
        de: grpcio::pb_de,
    },
};

/// A send's outcome, and the `retry-after-ms` header it came with.
fn send_reading_retry(
    api: &Api,
    user: &str,
    to: &str,
    text: &str,
) -> (Result<u64, RpcStatus>, Option<String>) {
    let mut request = SendMessageRequest::new();
    request.recipient = to.to_owned();
    request.text = text.to_owned();
    let client = grpcio::Client::new(api.channel().clone());
    let mut call = match client.server_streaming(
        &SEND_MESSAGE_WITH_HEADERS,
        &request,
        Api::as_user(user).timeout(WAIT),
    ) {
        Ok(call) => call,
        Err(error) => return (Err(status_of(error)), None),
    };
    futures::executor::block_on(async {
        let retry = call.headers().await.ok().and_then(|headers| {
            headers
                .iter()
                .find(|(key, _)| *key == "retry-after-ms")
                .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
        });
        let reply = match call.next().await {
            Some(Ok(reply)) => Ok(reply.message_id),
            Some(Err(error)) => Err(status_of(error)),
            None => Err(RpcStatus::with_message(Code::INTERNAL, "no reply".into())),
        };
        if reply.is_ok() {
            // Read the call to its end.
            while call.next().await.is_some() {}
        }
        (reply, retry)
    })
}

/// The wait a send refused for going too fast names, in milliseconds,
/// checked to be the same in its message and its `retry-after-ms` header.
#[track_caller]
fn retry_in(status: &RpcStatus, header: Option<&str>) -> u64 {
    assert_eq!(status.code(), Code::RESOURCE_EXHAUSTED, "{status:?}");
    let millis: u64 = status
        .message()
        .strip_prefix("sending too fast: retry in ")
        .and_then(|rest| rest.strip_suffix(" ms"))
        .and_then(|millis| millis.parse().ok())
        .unwrap_or_else(|| panic!("not a send limit's message: {status:?}"));
    assert_eq!(
        header,
        Some(millis.to_string().as_str()),
        "retry-after-ms of {status:?}"
    );
    assert!(millis >= 1, "{status:?}");
    // The same wait as a `google.rpc.RetryInfo` in the status details.
    let retry_info = b"type.googleapis.com/google.rpc.RetryInfo";
    assert!(
        status
            .details()
            .windows(retry_info.len())
            .any(|window| window == retry_info),
        "no RetryInfo in {status:?}"
    );
    millis
}

fn limited(rate: u32, burst: u32) -> impl FnOnce(&mut Config) {
    move |config| config.limits.send_limit = SendLimit { rate, burst }
}

fn a_flood_is_cut_at_the_burst_and_told_when_to_retry(nodes: usize) {
    let chat = Chat::start_with(nodes, limited(5, 5));
    let _alice = chat.open(1, "alice", NO_EVENTS);
    let _carol = chat.open(2, "carol", NO_EVENTS);
    let _dave = chat.open(0, "dave", NO_EVENTS);
    let bob = chat.open(2, "bob", NO_EVENTS);

    // alice floods 20 at once, while carol sends 5 of her own among them.
    let started = Instant::now();
    let mut alice_results = Vec::new();
    let mut carol_sent = Vec::new();
    for i in 0..20 {
        let text = format!("a{i}");
        let (result, retry) = send_reading_retry(chat.api(i), "alice", "bob", &text);
        alice_results.push((text, result, retry));
        if i % 4 == 0 {
            let text = format!("c{i}");
            chat.send(i + 1, "carol", "bob", &text)
                .unwrap_or_else(|status| panic!("carol is limited too: {status:?}"));
            carol_sent.push(text);
        }
    }
    let took = started.elapsed();
    // One message's worth of budget comes back every 200 ms: a slow run
    // may let one more through per 200 ms it took.
    let refills = usize::try_from(took.as_millis() / 200).unwrap();
    let accepted: Vec<&String> = alice_results
        .iter()
        .filter(|(_, result, _)| result.is_ok())
        .map(|(text, _, _)| text)
        .collect();
    for (text, result, _) in &alice_results[..5] {
        assert!(result.is_ok(), "{text} within the burst: {result:?}");
    }
    assert!(
        accepted.len() >= 5 && accepted.len() <= 5 + refills,
        "{} accepted in {took:?}",
        accepted.len()
    );
    if refills == 0 {
        assert_eq!(accepted.len(), 5);
    }
    for (text, result, retry) in &alice_results {
        if let Err(status) = result {
            let millis = retry_in(status, retry.as_deref());
            assert!(millis <= 200, "{text}: retry in {millis} ms at 5 a second");
        } else {
            assert_eq!(retry, &None, "{text} was accepted");
        }
    }
    // Only what was accepted is delivered.
    chat.sends(0, "dave", "bob", "marker");
    let mut got = BTreeSet::new();
    loop {
        let message = bob.message();
        if message.text == "marker" {
            break;
        }
        got.insert(message.text);
    }
    let expected: BTreeSet<String> = accepted
        .into_iter()
        .cloned()
        .chain(carol_sent.iter().cloned())
        .collect();
    assert_eq!(got, expected);
    bob.silent();
}

fn the_send_budget_outlives_a_reconnect(nodes: usize) {
    let chat = Chat::start_with(nodes, limited(1, 3));
    let alice = chat.open(1, "alice", NO_EVENTS);
    let _bob = chat.open(2, "bob", NO_EVENTS);
    for i in 0..3 {
        chat.sends(i, "alice", "bob", "within the burst");
    }
    let (result, retry) = send_reading_retry(chat.api(0), "alice", "bob", "over");
    let first_wait = retry_in(&result.unwrap_err(), retry.as_deref());
    assert!(first_wait <= 1000, "{first_wait} ms at 1 a second");
    // A new stream does not bring a new budget.
    alice.close();
    let _alice = chat.reopen(2, "alice", None);
    let (result, retry) = send_reading_retry(chat.api(1), "alice", "bob", "still over");
    let wait = retry_in(&result.unwrap_err(), retry.as_deref());
    assert!(wait <= first_wait, "{wait} ms after {first_wait} ms");
    // A refused send spends nothing: once the wait is over, one goes.
    std::thread::sleep(Duration::from_millis(wait));
    chat.sends(0, "alice", "bob", "after the wait");
    let (result, retry) = send_reading_retry(chat.api(2), "alice", "bob", "over again");
    retry_in(&result.unwrap_err(), retry.as_deref());
}

fn typing_and_publish_spend_no_budget_and_invalid_sends_do(nodes: usize) {
    let chat = Chat::start_with(nodes, limited(1, 3));
    let _alice = chat.open(1, "alice", NO_EVENTS);
    let _bob = chat.open(2, "bob", NO_EVENTS);
    let _dave = chat.open(0, "dave", NO_EVENTS);
    chat.create(2, "bob", "room");
    // Typing, and the operator's messages, under alice's name too.
    for i in 0..10 {
        let mut request = SendTypingRequest::new();
        request.recipient = "bob".to_owned();
        chat.api(i)
            .client
            .send_typing_opt(&request, Api::as_user("alice"))
            .expect("typing is not limited");
        chat.operator().publishes("bob", "notice", "alice");
        chat.operator().publishes("alice", "notice", "");
    }
    // alice's burst is whole.
    for i in 0..3 {
        chat.sends(i, "alice", "bob", "mine");
    }
    let (result, retry) = send_reading_retry(chat.api(0), "alice", "bob", "over");
    retry_in(&result.unwrap_err(), retry.as_deref());

    // Every send dave makes counts, refused or not (but for the limit's
    // own refusals).
    assert_code(Code::NOT_FOUND, chat.send(0, "dave", "nobody", "hi"));
    assert_code(Code::INVALID_ARGUMENT, chat.send(1, "dave", "bob", " "));
    assert_code(Code::PERMISSION_DENIED, chat.send(2, "dave", "room", "hi"));
    let (result, retry) = send_reading_retry(chat.api(0), "dave", "bob", "valid");
    retry_in(&result.unwrap_err(), retry.as_deref());
}

fn sends_through_every_node_share_one_budget(nodes: usize) {
    let chat = Chat::start_with(nodes, limited(1, 3));
    let _alice = chat.open(0, "alice", NO_EVENTS);
    let _bob = chat.open(1, "bob", NO_EVENTS);
    // Three sends, each through another node (one node: another
    // connection) spend one budget.
    for i in 0..3 {
        let api = Api::connect(chat.api(i).address(), WAIT).unwrap();
        send_with(&api, "alice", "bob", "spread").expect("within the burst");
    }
    for i in 0..3 {
        let (result, retry) = send_reading_retry(chat.api(i), "alice", "bob", "over");
        retry_in(&result.unwrap_err(), retry.as_deref());
    }
    // bob's is his own.
    for i in 0..3 {
        chat.sends(i + 1, "bob", "alice", "his");
    }
}

// ------------------------------------------------------------ cluster-wide

fn every_action_on_one_admin_listener_reaches_users_on_the_other_nodes() {
    let chat = Chat::start(3);
    // The operator calls node A (0); the users stream from B (1) and C (2).
    let operator = chat.operator_on(0);
    let alice = chat.open(1, "alice", MEMBERSHIP);
    let bob = chat.open(2, "bob", MEMBERSHIP);
    chat.create(1, "alice", "room");
    chat.joins(2, "bob", "room");
    chat.sends(2, "bob", "room", "ready");
    alice.skip_to("ready");
    bob.skip_to("ready");
    let listed: Vec<(String, String)> = operator
        .users(0, "")
        .unwrap()
        .users
        .into_iter()
        .map(|user| (user.username, user.node))
        .collect();
    assert_eq!(listed.len(), 2);
    assert_ne!(listed[0].1, listed[1].1, "{listed:?}");

    // Publish, to a user and to the group.
    let reply = operator.publishes("alice", "to alice", "");
    assert_published(
        &alice.message(),
        &reply,
        "server",
        "alice",
        USER,
        "to alice",
    );
    let reply = operator.publishes("room", "to room", "ops");
    for stream in [&alice, &bob] {
        assert_published(&stream.message(), &reply, "ops", "room", GROUP, "to room");
    }
    // Removal.
    operator.remove("room", "bob").unwrap();
    bob.change("room", "bob", REMOVED, 1);
    alice.change("room", "bob", REMOVED, 1);
    // Deletion.
    chat.joins(0, "bob", "room");
    alice.change(
        "room",
        "bob",
        MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_JOINED,
        2,
    );
    bob.change(
        "room",
        "bob",
        MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_JOINED,
        2,
    );
    assert_eq!(operator.delete("room").unwrap(), 2);
    alice.change("room", "alice", REMOVED, 0);
    bob.change("room", "bob", REMOVED, 0);
    // Disconnect, and a ban that every node enforces.
    operator.disconnect("alice", "bye", 0).unwrap();
    let end = alice.end();
    assert_eq!(
        (end.code(), end.message()),
        (Code::PERMISSION_DENIED, "disconnected by an operator: bye")
    );
    let since = Instant::now();
    operator.disconnect("bob", "banned", 1).unwrap();
    let end = bob.end();
    assert_eq!(
        (end.code(), end.message()),
        (
            Code::PERMISSION_DENIED,
            "disconnected by an operator: banned"
        )
    );
    for node in 0..3 {
        assert_status(
            Code::PERMISSION_DENIED,
            "banned for 1 more seconds",
            chat.try_open(node, "bob", NO_EVENTS, None).map(drop),
        );
    }
    connect_after_ban(&chat, 2, "bob", since, Duration::from_secs(1));
    let _alice = chat.reopen(1, "alice", None);
}
