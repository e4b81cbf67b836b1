//! Who is here: ListGroupMembers (sorted pages, stable under churn, its
//! errors), membership events (only for streams that asked, who gets which
//! kind, ordered with the group's messages on one node and across nodes,
//! the large-group threshold, the slow-consumer rule) and typing notices
//! (SendMessage's checks, who gets them, the throttle, never stored). Every
//! stream is read raw, so an event kind a stream did not ask for cannot
//! hide; "nothing arrived in between" is checked with a marker sent after,
//! which must be the next thing read, and "nothing more arrives" with a
//! deadline.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chat_client::api::{final_status, status_of, Api};
use chat_proto::chat::{
    connect_response, ChannelType, ConnectRequest, ConnectResponse, Connected, EventType,
    GetHistoryRequest, JoinGroupChatRequest, ListGroupMembersRequest, ListGroupMembersResponse,
    MembershipChange, MembershipChangeKind, Message, ResumeRequest, ResumeStatus,
    SendTypingRequest, TypingStarted,
};
use chat_proto::chat_grpc::ChatServiceClient;
use chat_server::config::Config;
use common::binary::Binary;
use common::redis::TestRedis;
use common::*;
use crossbeam_channel::Receiver;
use futures::channel::oneshot;
use futures::{future, StreamExt};
use grpcio::{ClientSStreamReceiver, RpcStatus, RpcStatusCode as Code};
use protobuf::EnumOrUnknown;

const MEMBERSHIP: EventType = EventType::EVENT_TYPE_MEMBERSHIP;
const TYPING: EventType = EventType::EVENT_TYPE_TYPING;
const JOINED: MembershipChangeKind = MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_JOINED;
const LEFT: MembershipChangeKind = MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_LEFT;
const DISCONNECTED: MembershipChangeKind =
    MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_DISCONNECTED;
const USER: ChannelType = ChannelType::CHANNEL_TYPE_USER;
const GROUP: ChannelType = ChannelType::CHANNEL_TYPE_GROUP;

/// The typing throttle's window, as the contract states it.
const THROTTLE: Duration = Duration::from_secs(2);
/// How long "nothing more arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);

/// One thing read from a Connect stream, every kind kept apart (a
/// delivery's messages one by one).
#[derive(Debug, Clone)]
enum Got {
    Connected(Connected),
    Message(Message),
    Membership(MembershipChange),
    Typing(TypingStarted),
    /// A response with no event this client knows.
    Empty,
    Ended(RpcStatus),
}

/// A Connect stream read raw on a helper thread; dropping it cancels the
/// stream.
struct Events {
    user: String,
    connected: Connected,
    got: Receiver<Got>,
    cancel: Option<oneshot::Sender<()>>,
    reader: Option<JoinHandle<()>>,
}

/// A ConnectRequest for `user` asking for `kinds`.
fn request(user: &str, kinds: &[EventType], resume: Option<ResumeRequest>) -> ConnectRequest {
    let mut request = ConnectRequest::new();
    request.username = user.to_owned();
    request.events = kinds.iter().map(|&kind| kind.into()).collect();
    request.resume = resume.into();
    request
}

impl Events {
    /// Opens `user`'s stream through `api` asking for `kinds`, and waits for
    /// `connected`.
    fn try_open(api: &Api, request: &ConnectRequest) -> Result<Events, RpcStatus> {
        let user = request.username.as_str();
        let mut stream = api
            .client
            .connect_opt(request, Api::as_user(user))
            .map_err(status_of)?;
        let (sender, got) = crossbeam_channel::unbounded();
        let (cancel, mut cancelled) = oneshot::channel::<()>();
        let reader = std::thread::spawn(move || loop {
            let next = futures::executor::block_on(future::select(stream.next(), &mut cancelled));
            let items = match next {
                future::Either::Left((Some(Ok(response)), _)) => match response.event {
                    Some(connect_response::Event::Connected(c)) => vec![Got::Connected(c)],
                    Some(connect_response::Event::Delivery(d)) => {
                        d.messages.into_iter().map(Got::Message).collect()
                    }
                    Some(connect_response::Event::Membership(m)) => vec![Got::Membership(m)],
                    Some(connect_response::Event::Typing(t)) => vec![Got::Typing(t)],
                    Some(_) | None => vec![Got::Empty],
                },
                future::Either::Left((Some(Err(error)), _)) => vec![Got::Ended(status_of(error))],
                future::Either::Left((None, _)) => vec![Got::Ended(RpcStatus::ok())],
                future::Either::Right(_) => return,
            };
            for item in items {
                let ended = matches!(item, Got::Ended(_));
                if sender.send(item).is_err() || ended {
                    return;
                }
            }
        });
        let mut events = Events {
            user: user.to_owned(),
            connected: Connected::new(),
            got,
            cancel: Some(cancel),
            reader: Some(reader),
        };
        match events.got.recv_timeout(WAIT) {
            Ok(Got::Connected(connected)) => {
                events.connected = connected;
                Ok(events)
            }
            Ok(Got::Ended(status)) => Err(status),
            other => panic!("{user}: expected `connected` first, got {other:?}"),
        }
    }

    /// [`Events::try_open`], panicking if refused.
    #[track_caller]
    fn open(api: &Api, user: &str, kinds: &[EventType]) -> Events {
        Events::try_open(api, &request(user, kinds, None))
            .unwrap_or_else(|status| panic!("connect {user}: {status:?}"))
    }

    /// The next thing read, waiting up to `within`.
    fn next_within(&self, within: Duration) -> Option<Got> {
        self.got.recv_timeout(within).ok()
    }

    /// The next thing read, waiting up to [`WAIT`].
    #[track_caller]
    fn next(&self) -> Got {
        self.next_within(WAIT)
            .unwrap_or_else(|| panic!("{}: nothing within {WAIT:?}", self.user))
    }

    #[track_caller]
    fn membership(&self) -> MembershipChange {
        match self.next() {
            Got::Membership(change) => change,
            other => panic!("{}: expected a membership change, got {other:?}", self.user),
        }
    }

    #[track_caller]
    fn typing(&self) -> TypingStarted {
        match self.next() {
            Got::Typing(typing) => typing,
            other => panic!("{}: expected a typing notice, got {other:?}", self.user),
        }
    }

    #[track_caller]
    fn message(&self) -> Message {
        match self.next() {
            Got::Message(message) => message,
            other => panic!("{}: expected a message, got {other:?}", self.user),
        }
    }

    /// Asserts that the next thing read is the message with `text`: nothing
    /// came before it.
    #[track_caller]
    fn marker(&self, text: &str) {
        let message = self.message();
        assert_eq!(message.text, text, "{}: {message:?}", self.user);
    }

    /// Asserts that the next thing read is `user`'s `kind` change in
    /// `group`, leaving `count` members; answers it.
    #[track_caller]
    fn change(
        &self,
        group: &str,
        user: &str,
        kind: MembershipChangeKind,
        count: u32,
    ) -> MembershipChange {
        let change = self.membership();
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
        assert_at_is_set(&change);
        change
    }

    /// Asserts that nothing arrives within `within`.
    #[track_caller]
    fn silent(&self, within: Duration) {
        if let Some(got) = self.next_within(within) {
            panic!("{}: expected nothing, got {got:?}", self.user);
        }
    }

    /// Cancels the stream.
    fn close(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            let _ = cancel.send(());
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.shut();
    }
}

/// Opens `user`'s stream asking for `kinds` and reads only `connected`: a
/// client that has stopped reading.
#[track_caller]
fn open_unread(
    client: &ChatServiceClient,
    user: &str,
    kinds: &[EventType],
) -> ClientSStreamReceiver<ConnectResponse> {
    open_unread_session(client, user, kinds).0
}

/// [`open_unread`], with the `connected` event.
#[track_caller]
fn open_unread_session(
    client: &ChatServiceClient,
    user: &str,
    kinds: &[EventType],
) -> (ClientSStreamReceiver<ConnectResponse>, Connected) {
    let mut stream = client
        .connect_opt(&request(user, kinds, None), Api::as_user(user))
        .unwrap_or_else(|error| panic!("connect {user}: {error:?}"));
    match futures::executor::block_on(stream.next()) {
        Some(Ok(ConnectResponse {
            event: Some(connect_response::Event::Connected(connected)),
            ..
        })) => (stream, connected),
        other => panic!("connect {user}: {other:?}"),
    }
}

#[track_caller]
fn assert_at_is_set(change: &MembershipChange) {
    let at = change
        .at
        .as_ref()
        .unwrap_or_else(|| panic!("no `at` in {change:?}"));
    // After 2020-01-01: a real time, not a default.
    assert!(at.seconds > 1_577_836_800, "{change:?}");
}

/// JoinGroupChat; answers the position.
fn join(api: &Api, user: &str, group: &str) -> Result<u64, RpcStatus> {
    let mut request = JoinGroupChatRequest::new();
    request.name = group.to_owned();
    api.client
        .join_group_chat_opt(&request, Api::as_user(user))
        .map(|reply| reply.position)
        .map_err(status_of)
}

/// `user` joins `group`; answers the position.
#[track_caller]
fn joined(server: &TestServer, user: &str, group: &str) -> u64 {
    join(server.next_api(), user, group)
        .unwrap_or_else(|status| panic!("{user} joins {group}: {status:?}"))
}

/// `sender` sends `text` to `to`; answers the message id.
#[track_caller]
fn sent(api: &Api, sender: &str, to: &str, text: &str) -> u64 {
    send_with(api, sender, to, text)
        .unwrap_or_else(|status| panic!("{sender} -> {to}: {status:?}"))
        .message_id
}

fn list_members(
    api: &Api,
    caller: &str,
    group: &str,
    limit: u32,
    token: &str,
) -> Result<ListGroupMembersResponse, RpcStatus> {
    let mut request = ListGroupMembersRequest::new();
    request.group = group.to_owned();
    request.limit = limit;
    request.page_token = token.to_owned();
    api.client
        .list_group_members_opt(&request, Api::as_user(caller))
        .map_err(status_of)
}

/// Every page of `group`'s members, `limit` at a time: the pages' names
/// and member counts.
#[track_caller]
fn all_pages(api: &Api, caller: &str, group: &str, limit: u32) -> (Vec<Vec<String>>, Vec<u32>) {
    let (mut pages, mut counts, mut token) = (Vec::new(), Vec::new(), String::new());
    loop {
        let page = list_members(api, caller, group, limit, &token)
            .unwrap_or_else(|status| panic!("list {group} after {token:?}: {status:?}"));
        pages.push(page.members);
        counts.push(page.member_count);
        if page.next_page_token.is_empty() {
            return (pages, counts);
        }
        assert!(pages.len() < 10_000, "the pages never end");
        token = page.next_page_token;
    }
}

/// The member count ListGroupMembers gives for `group`.
#[track_caller]
fn member_count(server: &TestServer, caller: &str, group: &str) -> u32 {
    list_members(server.next_api(), caller, group, 1, "")
        .unwrap_or_else(|status| panic!("list {group}: {status:?}"))
        .member_count
}

fn typing(api: &Api, caller: &str, to: &str) -> Result<(), RpcStatus> {
    let mut request = SendTypingRequest::new();
    request.recipient = to.to_owned();
    api.client
        .send_typing_opt(&request, Api::as_user(caller))
        .map(drop)
        .map_err(status_of)
}

#[track_caller]
fn types(server: &TestServer, caller: &str, to: &str) {
    typing(server.next_api(), caller, to)
        .unwrap_or_else(|status| panic!("{caller} types to {to}: {status:?}"));
}

#[track_caller]
fn assert_typing(notice: &TypingStarted, conversation: &str, kind: ChannelType, user: &str) {
    assert_eq!(
        (
            notice.conversation.as_str(),
            notice.conversation_type.enum_value_or_default(),
            notice.user.as_str()
        ),
        (conversation, kind, user),
        "{notice:?}"
    );
}

/// `nodes` in-process nodes with `lease` on a fresh Redis, whatever
/// CHAT_TEST_CLUSTER says.
fn cluster(nodes: usize, lease: Duration) -> TestServer {
    let redis = TestRedis::start();
    let mut config = Config::with_listen("127.0.0.1:0");
    config.cluster = Some(cluster_config(&redis, lease));
    TestServer::on_nodes(vec![config; nodes], Some(redis))
}

// ---------------------------------------------------------------- members

#[test]
fn members_are_listed_sorted_a_page_at_a_time_to_anyone_connected() {
    let server = TestServer::start();
    let _carol = server.connect("carol");
    // 150 members joining out of name order, spread over the nodes.
    let names: Vec<String> = (0..150).map(|i| format!("m{:03}", (i * 7) % 150)).collect();
    let _streams: Vec<_> = names
        .iter()
        .map(|name| open_unread(&server.next_api().client, name, &[]))
        .collect();
    server.create(&names[0], "room").unwrap();
    for name in &names[1..] {
        joined(&server, name, "room");
    }
    let mut sorted = names.clone();
    sorted.sort();

    // carol is no member, and may list it: pages of 40 in name order.
    let (pages, counts) = all_pages(server.next_api(), "carol", "room", 40);
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [40, 40, 40, 30]
    );
    assert_eq!(pages.concat(), sorted);
    assert!(counts.iter().all(|&count| count == 150), "{counts:?}");
    // Each token is the last name of its page.
    let first = list_members(server.next_api(), "carol", "room", 40, "").unwrap();
    assert_eq!(first.next_page_token, sorted[39]);
    // 0 means 100; 1000 is allowed; an exact last page has no token.
    let page = list_members(server.next_api(), "carol", "room", 0, "").unwrap();
    assert_eq!(page.members, sorted[..100]);
    assert_eq!(page.member_count, 150);
    assert!(!page.next_page_token.is_empty());
    let page = list_members(server.next_api(), "carol", "room", 1000, "").unwrap();
    assert_eq!(page.members, sorted);
    assert_eq!(page.next_page_token, "");
    let page = list_members(server.next_api(), "carol", "room", 150, "").unwrap();
    assert_eq!(
        (page.members.len(), page.next_page_token.as_str()),
        (150, "")
    );
    // A page token stays good after its member has left.
    let page = list_members(server.next_api(), "carol", "room", 3, "").unwrap();
    server.leave(&page.next_page_token, "room").unwrap();
    let next = list_members(server.next_api(), "carol", "room", 3, &page.next_page_token);
    assert_eq!(next.unwrap().members, sorted[3..6]);
    joined(&server, &page.next_page_token, "room");
    // A member lists the same.
    let page = list_members(server.next_api(), "m042", "room", 1000, "").unwrap();
    assert_eq!(page.members, sorted);
    // After a leave, the list and count follow.
    server.leave("m042", "room").unwrap();
    let page = list_members(server.next_api(), "carol", "room", 1000, "").unwrap();
    assert_eq!(page.member_count, 149);
    assert!(!page.members.contains(&"m042".to_owned()));
}

#[test]
fn listing_members_refuses_what_it_must() {
    let server = TestServer::start();
    let _alice = server.connect("alice");
    server.create("alice", "room").unwrap();
    let list = |caller: &str, group: &str, limit: u32, token: &str| {
        list_members(server.next_api(), caller, group, limit, token)
    };
    assert_code(Code::INVALID_ARGUMENT, list("alice", "room", 1001, ""));
    assert_code(Code::INVALID_ARGUMENT, list("alice", "room", u32::MAX, ""));
    assert_code(
        Code::INVALID_ARGUMENT,
        list("alice", "room", 10, "not a token!"),
    );
    assert_code(
        Code::INVALID_ARGUMENT,
        list("alice", "room", 10, &"x".repeat(65)),
    );
    assert_code(Code::INVALID_ARGUMENT, list("alice", "bad name!", 10, ""));
    assert_code(Code::INVALID_ARGUMENT, list("alice", "", 10, ""));
    assert_code(Code::NOT_FOUND, list("alice", "nosuch", 10, ""));
    // A connected user is no group.
    assert_code(Code::NOT_FOUND, list("alice", "alice", 10, ""));
    // Not connected, no header, a bad name as caller: UNAUTHENTICATED first.
    assert_code(Code::UNAUTHENTICATED, list("ghost", "room", 10, ""));
    assert_code(Code::UNAUTHENTICATED, list("", "room", 10, ""));
    assert_code(Code::UNAUTHENTICATED, list("ghost", "bad name!", 10, ""));
    assert_code(Code::UNAUTHENTICATED, list("ghost", "nosuch", 10, ""));
    assert_code(Code::UNAUTHENTICATED, list("ghost", "room", 1001, ""));
    assert_code(
        Code::UNAUTHENTICATED,
        list("ghost", "room", 10, "bad token!"),
    );
    // A group deleted by its last member's leave is gone.
    server.leave("alice", "room").unwrap();
    assert_code(Code::NOT_FOUND, list("alice", "room", 10, ""));
}

#[test]
fn a_member_for_the_whole_listing_appears_exactly_once_while_others_churn() {
    let server = TestServer::start();
    let _watcher = server.connect("watcher");
    // Even names stay; odd names, between them in name order, churn.
    let names: Vec<String> = (0..60).map(|i| format!("p{i:03}")).collect();
    let _streams: Vec<_> = names
        .iter()
        .map(|name| open_unread(&server.next_api().client, name, &[]))
        .collect();
    server.create(&names[0], "room").unwrap();
    for name in names.iter().step_by(2).skip(1) {
        joined(&server, name, "room");
    }
    let stable: BTreeSet<String> = names.iter().step_by(2).cloned().collect();
    let all: BTreeSet<String> = names.iter().cloned().collect();
    let stop = Arc::new(AtomicBool::new(false));
    let churners: Vec<JoinHandle<usize>> = (0..3)
        .map(|t| {
            let api = server.apis[t % server.apis.len()].clone();
            let mine: Vec<String> = names.iter().skip(1 + 2 * t).step_by(6).cloned().collect();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut changes = 0;
                let deadline = Instant::now() + 6 * WAIT;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    for name in &mine {
                        join(&api, name, "room").unwrap();
                        let mut request = chat_proto::chat::LeaveGroupChatRequest::new();
                        request.name = "room".to_owned();
                        api.client
                            .leave_group_chat_opt(&request, Api::as_user(name))
                            .unwrap();
                        changes += 2;
                    }
                }
                changes
            })
        })
        .collect();
    for round in 0..20 {
        let (pages, counts) = all_pages(server.next_api(), "watcher", "room", 4);
        let listed = pages.concat();
        assert!(
            listed.windows(2).all(|pair| pair[0] < pair[1]),
            "round {round}: not strictly in name order, or a name twice: {listed:?}"
        );
        let listed: BTreeSet<String> = listed.into_iter().collect();
        assert!(listed.is_subset(&all), "round {round}: {listed:?}");
        assert!(
            stable.is_subset(&listed),
            "round {round}: missing {:?}",
            stable.difference(&listed).collect::<Vec<_>>()
        );
        assert!(
            counts.iter().all(|&count| (30..=60).contains(&count)),
            "round {round}: {counts:?}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let changes: usize = churners.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(changes > 0);
    let (pages, _) = all_pages(server.next_api(), "watcher", "room", 7);
    assert_eq!(pages.concat().into_iter().collect::<BTreeSet<_>>(), stable);
}

// -------------------------------------------------------- membership events

#[test]
fn a_stream_that_asks_for_nothing_gets_no_new_event_kind() {
    let server = TestServer::start();
    let old = Events::open(server.next_api(), "old", &[]);
    // Unspecified and unknown kinds are ignored; a kind twice is once.
    let mut asks_unknown = request("unspecified", &[EventType::EVENT_TYPE_UNSPECIFIED], None);
    asks_unknown.events.push(EnumOrUnknown::from_i32(99));
    let unspecified = Events::try_open(server.next_api(), &asks_unknown).unwrap();
    let members_only = Events::open(server.next_api(), "members", &[MEMBERSHIP, MEMBERSHIP]);
    let typing_only = Events::open(server.next_api(), "typist", &[TYPING]);
    let both = Events::open(server.next_api(), "carol", &[MEMBERSHIP, TYPING]);
    let dave = Events::open(server.next_api(), "dave", &[]);
    server.create("old", "room").unwrap();
    for user in ["typist", "members", "unspecified", "carol"] {
        joined(&server, user, "room");
    }
    types(&server, "carol", "room");
    types(&server, "carol", "old");
    types(&server, "carol", "unspecified");
    types(&server, "carol", "members");
    types(&server, "carol", "typist");
    server.leave("carol", "room").unwrap();
    joined(&server, "dave", "room");
    dave.close();
    eventually("dave's stream is gone", || {
        member_count(&server, "old", "room") == 4
    });
    sent(server.next_api(), "typist", "room", "marker");

    // The old streams: `connected`, then the marker, then nothing.
    for stream in [&old, &unspecified] {
        stream.marker("marker");
        stream.silent(QUIET);
    }
    // Membership only: every change, no typing.
    members_only.change("room", "members", JOINED, 3);
    members_only.change("room", "unspecified", JOINED, 4);
    members_only.change("room", "carol", JOINED, 5);
    members_only.change("room", "carol", LEFT, 4);
    members_only.change("room", "dave", JOINED, 5);
    members_only.change("room", "dave", DISCONNECTED, 4);
    members_only.marker("marker");
    members_only.silent(QUIET);
    // Typing only: the group's notice and carol's direct one, no change.
    assert_typing(&typing_only.typing(), "room", GROUP, "carol");
    assert_typing(&typing_only.typing(), "carol", USER, "carol");
    typing_only.marker("marker");
    typing_only.silent(QUIET);
    // Both: carol's own JOINED, then nothing for its own typing.
    both.change("room", "carol", JOINED, 5);
    both.silent(QUIET);
}

#[test]
fn joined_reaches_every_member_with_the_joiner_and_its_position() {
    let server = TestServer::start();
    let alice = Events::open(server.next_api(), "alice", &[MEMBERSHIP]);
    let bob = Events::open(server.next_api(), "bob", &[MEMBERSHIP]);
    let carol = Events::open(server.next_api(), "carol", &[]);
    server.create("alice", "room").unwrap();
    let created = alice.change("room", "alice", JOINED, 1);
    assert_eq!(created.position, 0);
    let hello = sent(server.next_api(), "alice", "room", "hello");
    assert_eq!(alice.message().id, hello);

    let position = joined(&server, "bob", "room");
    assert_eq!(position, hello);
    for stream in [&alice, &bob] {
        let change = stream.change("room", "bob", JOINED, 2);
        assert_eq!(change.position, position, "{}", stream.user);
    }
    // The joiner learns of no one before itself.
    let position = joined(&server, "carol", "room");
    for stream in [&alice, &bob] {
        assert_eq!(stream.change("room", "carol", JOINED, 3).position, position);
    }
    let after = sent(server.next_api(), "carol", "room", "after");
    for stream in [&alice, &bob, &carol] {
        assert_eq!(stream.message().id, after, "{}", stream.user);
    }
    // A second group: its own count and position.
    server.create("bob", "other").unwrap();
    bob.change("other", "bob", JOINED, 1);
    let position = joined(&server, "alice", "other");
    assert_eq!(position, 0);
    for stream in [&alice, &bob] {
        let change = stream.change("other", "alice", JOINED, 2);
        assert_eq!(change.position, 0);
    }
    for stream in [&alice, &bob, &carol] {
        stream.silent(QUIET);
    }
}

#[test]
fn left_and_disconnected_reach_the_members_that_remain() {
    let server = TestServer::start();
    // alice and bob stream from one node, carol from another (on a cluster).
    let nodes = server.apis.len();
    let alice = Events::open(&server.apis[0], "alice", &[MEMBERSHIP]);
    let bob = Events::open(&server.apis[0], "bob", &[MEMBERSHIP]);
    let carol = Events::open(&server.apis[1 % nodes], "carol", &[MEMBERSHIP]);
    server.create("alice", "room").unwrap();
    joined(&server, "bob", "room");
    joined(&server, "carol", "room");
    alice.change("room", "alice", JOINED, 1);
    for stream in [&alice, &bob] {
        stream.change("room", "bob", JOINED, 2);
    }
    for stream in [&alice, &bob, &carol] {
        stream.change("room", "carol", JOINED, 3);
    }
    let last = sent(server.next_api(), "bob", "room", "bye");
    for stream in [&alice, &bob, &carol] {
        assert_eq!(stream.message().id, last);
    }

    server.leave("bob", "room").unwrap();
    for stream in [&alice, &carol] {
        let change = stream.change("room", "bob", LEFT, 2);
        assert_eq!(change.position, last);
    }
    // The leaver hears nothing of its own leave: the next thing it reads is
    // a direct message sent after.
    sent(server.next_api(), "alice", "bob", "marker");
    bob.marker("marker");

    carol.close();
    let change = alice.change("room", "carol", DISCONNECTED, 1);
    assert_eq!(change.position, last);

    // The last member's leave deletes the group: no event, not even to the
    // leaver.
    server.leave("alice", "room").unwrap();
    assert_code(
        Code::NOT_FOUND,
        list_members(server.next_api(), "alice", "room", 0, ""),
    );
    sent(server.next_api(), "alice", "alice", "self");
    alice.marker("self");
    // A disconnect in two groups tells both.
    server.create("alice", "one").unwrap();
    server.create("alice", "two").unwrap();
    alice.change("one", "alice", JOINED, 1);
    alice.change("two", "alice", JOINED, 1);
    joined(&server, "bob", "one");
    joined(&server, "bob", "two");
    alice.change("one", "bob", JOINED, 2);
    alice.change("two", "bob", JOINED, 2);
    bob.close();
    let mut gone: Vec<(String, u32)> = (0..2)
        .map(|_| {
            let change = alice.membership();
            assert_eq!(
                (change.user.as_str(), change.kind.enum_value_or_default()),
                ("bob", DISCONNECTED)
            );
            assert_at_is_set(&change);
            (change.group, change.member_count)
        })
        .collect();
    gone.sort();
    assert_eq!(gone, [("one".to_owned(), 1), ("two".to_owned(), 1)]);
    alice.silent(QUIET);
}

#[test]
fn a_join_or_leave_past_the_threshold_sends_no_event() {
    let server = TestServer::start_with(|config| config.limits.membership_events_max_members = 3);
    let streams: HashMap<&str, Events> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|user| (user, Events::open(server.next_api(), user, &[MEMBERSHIP])))
        .collect();
    let (a, b, c, d) = (&streams["a"], &streams["b"], &streams["c"], &streams["d"]);
    server.create("a", "room").unwrap();
    a.change("room", "a", JOINED, 1);
    joined(&server, "b", "room");
    joined(&server, "c", "room");
    for stream in [a, b] {
        stream.change("room", "b", JOINED, 2);
    }
    for stream in [a, b, c] {
        stream.change("room", "c", JOINED, 3);
    }
    // 3 -> 4: after the join the group has more than 3; 4 -> 3: before
    // the leave it had more. Neither is told.
    joined(&server, "d", "room");
    server.leave("d", "room").unwrap();
    // 3 -> 2 is told: the next change each member reads.
    server.leave("c", "room").unwrap();
    for stream in [a, b] {
        stream.change("room", "c", LEFT, 2);
    }
    sent(server.next_api(), "a", "d", "marker");
    sent(server.next_api(), "a", "c", "marker");
    d.marker("marker");
    c.marker("marker");

    // Again with a disconnect: 2 -> 3 told, 3 -> 4 not, 4 -> 3 not.
    joined(&server, "c", "room");
    for stream in [a, b, c] {
        stream.change("room", "c", JOINED, 3);
    }
    joined(&server, "d", "room");
    let mut streams = streams;
    streams.remove("d").unwrap().close();
    eventually("d's stream is gone", || {
        member_count(&server, "a", "room") == 3
    });
    sent(server.next_api(), "b", "room", "marker");
    for user in ["a", "b", "c"] {
        streams[user].marker("marker");
        streams[user].silent(QUIET);
    }
}

#[test]
fn a_member_asking_for_events_that_never_reads_is_dropped_as_a_slow_consumer() {
    let server = TestServer::start_with(|config| config.limits.queue_depth = 16);
    let alice = Events::open(server.next_api(), "alice", &[MEMBERSHIP]);
    // Long names: bigger events, fewer of them to fill the transport.
    let group = format!("room-{}", "g".repeat(59));
    let churner = format!("churn-{}", "c".repeat(58));
    let _churner = server.connect(&churner);
    // Its own channel with a fixed, small HTTP/2 window: the transport
    // holds little before the server's queue starts to fill.
    let env = Arc::new(grpcio::EnvBuilder::new().cq_count(1).build());
    let channel = grpcio::ChannelBuilder::new(env)
        .http2_bdp_probe(false)
        .stream_initial_window_size(16 * 1024)
        .connect(server.next_api().address());
    let slow_client = ChatServiceClient::new(channel);
    let slow = open_unread(&slow_client, "slow", &[MEMBERSHIP, TYPING]);
    server.create("alice", &group).unwrap();
    joined(&server, "slow", &group);
    // Only events, no message: join and leave until slow is dropped.
    let mut changes = 0;
    loop {
        let members = list_members(server.next_api(), "alice", &group, 0, "").unwrap();
        if !members.members.contains(&"slow".to_owned()) {
            break;
        }
        assert!(changes < 200_000, "slow was never dropped");
        for _ in 0..50 {
            joined(&server, &churner, &group);
            server.leave(&churner, &group).unwrap();
            changes += 2;
        }
    }
    assert!(changes > 16, "dropped after {changes} events");
    assert_eq!(
        final_status(slow, WAIT).expect("the stream ends").code(),
        Code::RESOURCE_EXHAUSTED
    );
    assert_eq!(member_count(&server, "alice", &group), 1);
    // alice, who reads, was told among the churn.
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match alice.next_within(left) {
            Some(Got::Membership(change))
                if change.user == "slow" && change.kind.enum_value_or_default() == DISCONNECTED =>
            {
                break;
            }
            Some(Got::Membership(change))
                if ["alice", "slow", churner.as_str()].contains(&change.user.as_str()) => {}
            other => panic!("alice: expected slow's DISCONNECTED, got {other:?}"),
        }
    }
}

// ------------------------------------------------------------------- order

/// The key of a group entry in the order check.
fn key(got: &Got) -> String {
    match got {
        Got::Message(message) => format!("message {} from {}", message.id, message.sender),
        Got::Membership(change) => format!(
            "{:?} {} count {} position {}",
            change.kind.enum_value_or_default(),
            change.user,
            change.member_count,
            change.position
        ),
        other => panic!("not a group entry: {other:?}"),
    }
}

/// Reads `stream` until `done` says the entries read so far are complete.
#[track_caller]
fn read_until(stream: &Events, mut done: impl FnMut(&[Got]) -> bool) -> Vec<Got> {
    let deadline = Instant::now() + 4 * WAIT;
    let mut read = Vec::new();
    while !done(&read) {
        let left = deadline.saturating_duration_since(Instant::now());
        match stream.next_within(left) {
            Some(got @ (Got::Message(_) | Got::Membership(_))) => read.push(got),
            Some(other) => panic!("{}: unexpected {other:?}", stream.user),
            None => panic!(
                "{}: incomplete after {:?}: {} entries",
                stream.user,
                4 * WAIT,
                read.len()
            ),
        }
    }
    read
}

/// Three members stay in a group while they and others send to it at once,
/// and joiners join, send, then leave or disconnect, each on its own node in
/// turn (with its stream on another): every member sees one order, each
/// joiner's JOINED before its first message and its LEFT or DISCONNECTED
/// after its last, every change's count and position true to that order.
fn events_and_messages_in_one_order(server: &TestServer) {
    let apis = &server.apis;
    let nodes = apis.len();
    let (senders, per_sender, joiners, per_joiner) = (3, 30, 8, 3);
    let stable: Vec<Events> = (0..senders)
        .map(|i| Events::open(&apis[i % nodes], &format!("s{i}"), &[MEMBERSHIP]))
        .collect();
    server.create("s0", "room").unwrap();
    for i in 1..senders {
        join(&apis[(i + 1) % nodes], &format!("s{i}"), "room").unwrap();
    }
    let start = sent(&apis[0], "s0", "room", "start");
    for stream in &stable {
        read_until(
            stream,
            |read| matches!(read.last(), Some(Got::Message(m)) if m.id == start),
        );
    }

    let mut threads: Vec<JoinHandle<Option<Vec<Got>>>> = Vec::new();
    for i in 0..senders {
        let api = Api::connect(apis[(i + 2) % nodes].address(), WAIT).unwrap();
        threads.push(std::thread::spawn(move || {
            for k in 0..per_sender {
                sent(&api, &format!("s{i}"), "room", &format!("s{i} #{k}"));
            }
            None
        }));
    }
    for j in 0..joiners {
        let stream_api = Api::connect(apis[(j + 1) % nodes].address(), WAIT).unwrap();
        let call_api = Api::connect(apis[j % nodes].address(), WAIT).unwrap();
        threads.push(std::thread::spawn(move || {
            let user = format!("j{j}");
            let stream = Events::open(&stream_api, &user, &[MEMBERSHIP]);
            let position = join(&call_api, &user, "room").unwrap();
            let mut last = 0;
            for k in 0..per_joiner {
                last = sent(&call_api, &user, "room", &format!("{user} #{k}"));
            }
            // What it read from its JOINED up to its last message.
            let read = read_until(
                &stream,
                |read| matches!(read.last(), Some(Got::Message(m)) if m.id == last),
            );
            match &read[0] {
                Got::Membership(change) => assert_eq!(
                    (change.user.as_str(), change.position),
                    (user.as_str(), position),
                    "{change:?}"
                ),
                other => panic!("{user} read {other:?} before its JOINED"),
            }
            if j % 2 == 0 {
                let mut request = chat_proto::chat::LeaveGroupChatRequest::new();
                request.name = "room".to_owned();
                call_api
                    .client
                    .leave_group_chat_opt(&request, Api::as_user(&user))
                    .unwrap();
            } else {
                stream.close();
            }
            Some(read)
        }));
    }
    let segments: Vec<Vec<Got>> = threads
        .into_iter()
        .filter_map(|thread| thread.join().unwrap())
        .collect();

    let messages = senders * per_sender + joiners * per_joiner;
    let changes = 2 * joiners;
    let orders: Vec<Vec<Got>> = stable
        .iter()
        .map(|stream| {
            let read = read_until(stream, |read| read.len() == messages + changes);
            stream.silent(QUIET);
            read
        })
        .collect();
    let keys: Vec<Vec<String>> = orders.iter().map(|o| o.iter().map(key).collect()).collect();
    for (i, other) in keys.iter().enumerate().skip(1) {
        assert_eq!(&keys[0], other, "s0 and s{i} read different orders");
    }

    // The order itself: ids rise; counts and positions follow it; each
    // joiner's change brackets its messages.
    let order = &orders[0];
    let (mut count, mut position) = (senders as u32, start);
    let mut seen: HashMap<String, Vec<(usize, String)>> = HashMap::new();
    for (index, got) in order.iter().enumerate() {
        match got {
            Got::Message(message) => {
                assert!(message.id > position, "ids out of order at {index}");
                position = message.id;
                seen.entry(message.sender.clone())
                    .or_default()
                    .push((index, "message".to_owned()));
            }
            Got::Membership(change) => {
                let kind = change.kind.enum_value_or_default();
                count = if kind == JOINED { count + 1 } else { count - 1 };
                assert_eq!(change.member_count, count, "{change:?} at {index}");
                assert_eq!(change.position, position, "{change:?} at {index}");
                assert_eq!(change.group, "room");
                assert_at_is_set(change);
                seen.entry(change.user.clone())
                    .or_default()
                    .push((index, format!("{kind:?}")));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(count, senders as u32);
    for j in 0..joiners {
        let user = format!("j{j}");
        let what: Vec<&str> = seen[&user].iter().map(|(_, what)| what.as_str()).collect();
        let end = if j % 2 == 0 { LEFT } else { DISCONNECTED };
        let mut expected = vec![format!("{JOINED:?}")];
        expected.extend((0..per_joiner).map(|_| "message".to_owned()));
        expected.push(format!("{end:?}"));
        assert_eq!(what, expected, "{user} in {:?}", keys[0]);
    }
    // Each joiner read a stretch of that one order, from its own JOINED.
    for segment in &segments {
        let segment: Vec<String> = segment.iter().map(key).collect();
        let from = keys[0]
            .iter()
            .position(|entry| *entry == segment[0])
            .unwrap_or_else(|| panic!("{} is not in the order", segment[0]));
        assert!(
            segment[0].starts_with(&format!("{JOINED:?}")),
            "{segment:?}"
        );
        assert_eq!(keys[0][from..from + segment.len()], segment[..]);
    }
}

#[test]
fn every_member_reads_changes_and_messages_in_one_order() {
    events_and_messages_in_one_order(&TestServer::start());
}

#[test]
fn every_member_reads_changes_and_messages_in_one_order_across_three_nodes() {
    events_and_messages_in_one_order(&cluster(3, Duration::from_secs(5)));
}

#[test]
fn a_killed_nodes_member_is_told_disconnected_after_its_last_message() {
    let server = cluster(2, Duration::from_secs(1));
    let url = server.redis.as_ref().expect("a cluster").url();
    let prefix = server.prefix.clone().expect("a cluster prefix");
    let (victim, _log) = Binary::start_with(&[
        "--redis",
        &url,
        "--redis-prefix",
        &prefix,
        "--node-lease-secs",
        "1",
    ]);
    let doomed_api = Api::connect(&format!("127.0.0.1:{}", victim.port), WAIT).unwrap();
    let _doomed = Events::open(&doomed_api, "doomed", &[MEMBERSHIP]);
    let keeper = Events::open(&server.apis[0], "keeper", &[MEMBERSHIP]);
    let other = Events::open(&server.apis[1], "other", &[MEMBERSHIP]);
    server.create("keeper", "shared").unwrap();
    join(&server.apis[1], "other", "shared").unwrap();
    join(&doomed_api, "doomed", "shared").unwrap();
    keeper.change("shared", "keeper", JOINED, 1);
    for stream in [&keeper, &other] {
        stream.change("shared", "other", JOINED, 2);
        stream.change("shared", "doomed", JOINED, 3);
    }
    let last = sent(&doomed_api, "doomed", "shared", "last words");
    victim.signal(libc::SIGKILL);
    for stream in [&keeper, &other] {
        assert_eq!(stream.message().id, last);
        let change = stream.change("shared", "doomed", DISCONNECTED, 2);
        assert_eq!(change.position, last);
    }
    sent(&server.apis[0], "keeper", "shared", "marker");
    for stream in [&keeper, &other] {
        stream.marker("marker");
        stream.silent(QUIET);
    }
}

// ------------------------------------------------------------------ typing

#[test]
fn typing_is_checked_as_a_message_is() {
    let server = TestServer::start();
    let _alice = server.connect("alice");
    let _bob = server.connect("bob");
    server.create("bob", "room").unwrap();
    let typing = |caller: &str, to: &str| typing(server.next_api(), caller, to);
    assert_code(Code::UNAUTHENTICATED, typing("ghost", "bob"));
    assert_code(Code::UNAUTHENTICATED, typing("", "bob"));
    assert_code(Code::UNAUTHENTICATED, typing("ghost", "bad name!"));
    assert_code(Code::INVALID_ARGUMENT, typing("alice", "bad name!"));
    assert_code(Code::INVALID_ARGUMENT, typing("alice", ""));
    assert_code(Code::INVALID_ARGUMENT, typing("alice", &"x".repeat(65)));
    assert_code(Code::NOT_FOUND, typing("alice", "nobody"));
    assert_code(Code::PERMISSION_DENIED, typing("alice", "room"));
    // To a user without events, to oneself, to one's group: OK.
    typing("alice", "bob").unwrap();
    typing("alice", "alice").unwrap();
    typing("bob", "room").unwrap();
    // And after a leave, the group is not one's own any more.
    joined(&server, "alice", "room");
    typing("alice", "room").unwrap();
    server.leave("alice", "room").unwrap();
    assert_code(Code::PERMISSION_DENIED, typing("alice", "room"));
}

#[test]
fn typing_reaches_the_recipient_or_every_other_member_that_asked() {
    let server = TestServer::start();
    let alice = Events::open(server.next_api(), "alice", &[TYPING]);
    let bob = Events::open(server.next_api(), "bob", &[TYPING]);
    let carol = Events::open(server.next_api(), "carol", &[TYPING, MEMBERSHIP]);
    let dave = Events::open(server.next_api(), "dave", &[]);
    let erin = Events::open(server.next_api(), "erin", &[MEMBERSHIP]);
    let _frank = Events::open(server.next_api(), "frank", &[TYPING]);
    server.create("bob", "room").unwrap();
    for user in ["alice", "carol", "dave", "erin"] {
        joined(&server, user, "room");
    }
    // carol and erin asked for membership: their changes first.
    carol.change("room", "carol", JOINED, 3);
    carol.change("room", "dave", JOINED, 4);
    carol.change("room", "erin", JOINED, 5);
    erin.change("room", "erin", JOINED, 5);

    // Direct: to alice only, named after bob.
    types(&server, "bob", "alice");
    assert_typing(&alice.typing(), "bob", USER, "bob");
    // Group: every other member that asked (frank is not in the group).
    types(&server, "bob", "room");
    for stream in [&alice, &carol] {
        assert_typing(&stream.typing(), "room", GROUP, "bob");
    }
    sent(server.next_api(), "bob", "room", "marker");
    for stream in [&alice, &bob, &carol, &dave, &erin] {
        stream.marker("marker");
    }
    // To a user who did not ask: nothing; another member types: bob hears.
    types(&server, "alice", "dave");
    types(&server, "carol", "room");
    for stream in [&alice, &bob] {
        assert_typing(&stream.typing(), "room", GROUP, "carol");
    }
    sent(server.next_api(), "carol", "room", "marker 2");
    for stream in [&alice, &bob, &carol, &dave, &erin] {
        stream.marker("marker 2");
        stream.silent(QUIET);
    }
    _frank.silent(QUIET);
}

#[test]
fn typing_is_throttled_per_sender_and_conversation() {
    let server = TestServer::start();
    let alice = Events::open(server.next_api(), "alice", &[TYPING]);
    let _bob = Events::open(server.next_api(), "bob", &[TYPING]);
    let _carol = Events::open(server.next_api(), "carol", &[TYPING]);
    server.create("bob", "room").unwrap();
    joined(&server, "alice", "room");
    joined(&server, "carol", "room");

    let started = Instant::now();
    types(&server, "bob", "room");
    let first_answered = Instant::now();
    assert_typing(&alice.typing(), "room", GROUP, "bob");
    // Again at once: OK, and dropped.
    types(&server, "bob", "room");
    types(&server, "bob", "room");
    assert!(
        started.elapsed() < THROTTLE,
        "the repeats were not within the throttle window"
    );
    // Another conversation, and another sender, go through.
    types(&server, "bob", "alice");
    types(&server, "carol", "room");
    sent(server.next_api(), "bob", "room", "marker");
    assert_typing(&alice.typing(), "bob", USER, "bob");
    assert_typing(&alice.typing(), "room", GROUP, "carol");
    alice.marker("marker");
    // Once the window is over, bob's next notice goes through.
    let over = first_answered + THROTTLE + Duration::from_millis(100);
    std::thread::sleep(over.saturating_duration_since(Instant::now()));
    types(&server, "bob", "room");
    assert_typing(&alice.typing(), "room", GROUP, "bob");
    alice.silent(QUIET);
}

#[test]
fn typing_is_never_stored_nor_counted_as_a_message() {
    let server = TestServer::start();
    let alice = Events::open(server.next_api(), "alice", &[TYPING]);
    let _bob = Events::open(server.next_api(), "bob", &[TYPING]);
    server.create("bob", "room").unwrap();
    joined(&server, "alice", "room");
    let first = sent(server.next_api(), "bob", "room", "first");
    types(&server, "bob", "room");
    types(&server, "alice", "room");
    types(&server, "bob", "alice");
    let second = sent(server.next_api(), "alice", "room", "second");
    // No id was spent on a notice.
    assert_eq!(second, first + 1);
    let mut read = GetHistoryRequest::new();
    read.group = "room".to_owned();
    let history = server
        .next_api()
        .client
        .get_history_opt(&read, Api::as_user("alice"))
        .unwrap();
    let texts: Vec<&str> = history.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["first", "second"]);
    // Nor replayed on resume: the resumed stream gets bob's direct message
    // and the group's, not the notices between them.
    let direct = sent(server.next_api(), "bob", "alice", "direct");
    assert_eq!(alice.message().id, first);
    assert_typing(&alice.typing(), "room", GROUP, "bob");
    assert_typing(&alice.typing(), "bob", USER, "bob");
    assert_eq!(alice.message().id, second);
    assert_eq!(alice.message().id, direct);
    let token = alice.connected.resume_token.clone();
    alice.close();
    let mut resume = ResumeRequest::new();
    resume.token = token;
    resume.after_id = 0;
    let mut resumed = None;
    eventually("alice resumes", || {
        match Events::try_open(
            server.next_api(),
            &request("alice", &[TYPING], Some(resume.clone())),
        ) {
            Ok(events) => {
                resumed = Some(events);
                true
            }
            Err(status) if status.code() == Code::ALREADY_EXISTS => false,
            Err(status) => panic!("resume: {status:?}"),
        }
    });
    let alice = resumed.unwrap();
    assert_eq!(
        alice.connected.resume_status.enum_value_or_default(),
        ResumeStatus::RESUME_STATUS_RESUMED
    );
    let replayed: Vec<u64> = (0..3).map(|_| alice.message().id).collect();
    assert_eq!(replayed, [first, second, direct]);
    // The resumed stream gets the events it asked for.
    let _carol = Events::open(server.next_api(), "carol", &[]);
    types(&server, "carol", "alice");
    assert_typing(&alice.typing(), "carol", USER, "carol");
    sent(server.next_api(), "bob", "alice", "marker");
    alice.marker("marker");
}

#[test]
fn events_unread_when_a_stream_ends_are_not_replayed_on_resume() {
    let server = TestServer::start();
    let _bob = Events::open(server.next_api(), "bob", &[]);
    // alice asks for both kinds and never reads past `connected`.
    let (stream, connected) =
        open_unread_session(&server.next_api().client, "alice", &[MEMBERSHIP, TYPING]);
    server.create("alice", "room").unwrap();
    joined(&server, "bob", "room");
    types(&server, "bob", "room");
    let first = sent(server.next_api(), "bob", "room", "first");
    types(&server, "bob", "alice");
    server.leave("bob", "room").unwrap();
    let second = sent(server.next_api(), "bob", "alice", "second");
    drop(stream);
    let mut resume = ResumeRequest::new();
    resume.token = connected.resume_token;
    let mut resumed = None;
    eventually("alice resumes", || {
        let asked = request("alice", &[MEMBERSHIP, TYPING], Some(resume.clone()));
        match Events::try_open(server.next_api(), &asked) {
            Ok(events) => {
                resumed = Some(events);
                true
            }
            Err(status) if status.code() == Code::ALREADY_EXISTS => false,
            Err(status) => panic!("resume: {status:?}"),
        }
    });
    let alice = resumed.unwrap();
    assert_eq!(
        alice.connected.resume_status.enum_value_or_default(),
        ResumeStatus::RESUME_STATUS_RESUMED
    );
    assert_eq!(alice.message().id, first);
    assert_eq!(alice.message().id, second);
    sent(server.next_api(), "bob", "alice", "marker");
    alice.marker("marker");
}

/// The sum of `chat_messages_total`'s series on the metrics port.
fn messages_counted(port: u16) -> f64 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("metrics port reachable");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("a whole response");
    raw.lines()
        .filter(|line| line.starts_with("chat_messages_total{"))
        .filter_map(|line| line.rsplit_once(' '))
        .map(|(_, value)| value.parse::<f64>().expect("a number"))
        .sum()
}

#[test]
fn typing_does_not_move_the_message_counter() {
    let server = TestServer::start_with(|config| {
        config.metrics_listen = Some("127.0.0.1:0".to_owned());
    });
    let port = server
        .server
        .as_ref()
        .and_then(|running| running.metrics_port())
        .expect("metrics are on");
    // Every call through the first node, whose counter is scraped.
    let api = &server.api;
    let _alice = Events::open(api, "alice", &[TYPING]);
    let _bob = Events::open(api, "bob", &[TYPING]);
    server.create("bob", "room").unwrap();
    join(api, "alice", "room").unwrap();
    let before = messages_counted(port);
    typing(api, "bob", "alice").unwrap();
    typing(api, "bob", "room").unwrap();
    typing(api, "alice", "room").unwrap();
    assert_eq!(messages_counted(port), before);
    sent(api, "bob", "room", "counted");
    assert_eq!(messages_counted(port), before + 1.0);
}
