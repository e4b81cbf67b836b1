//! The operator actions and the send limit at the engine interface, with
//! one set of expectations for both engines: the embedded registry, and a
//! cluster of real nodes on a Redis this test starts, where every action is
//! issued on one node about users whose streams are on another. A stream is
//! read straight from its inbox, woken by the engine as the adapter's
//! stream would be; waits are bounded by deadlines.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant, SystemTime};

use chat_server::cluster::{self, ClusterEngine};
use chat_server::config::Config;
use chat_server::domain::mailbox::Poll;
use chat_server::domain::{
    ChannelKind, ChatEngine, ChatError, CloseReason, Departure, Event, EventKinds, HistoryQuery,
    Inbox, Item, Left, Limits, MemberQuery, MembershipKind, Message, Registry, ResumeRequest,
    ResumeStatus, SendLimit, Session,
};
use common::redis::TestRedis;
use common::{cluster_config, test_logger, WAIT};
use futures::executor::block_on;

/// Nodes of one chat: several cluster nodes on one Redis, or the one
/// embedded registry standing for every node.
struct Chat {
    nodes: Vec<Arc<dyn ChatEngine>>,
    /// Stopped when the chat is dropped.
    cluster: Vec<Arc<ClusterEngine>>,
    /// Dropped after the nodes.
    _redis: Option<TestRedis>,
}

impl Drop for Chat {
    fn drop(&mut self) {
        for node in &self.cluster {
            node.shutdown();
            node.stop();
        }
    }
}

impl Chat {
    fn node(&self, index: usize) -> &dyn ChatEngine {
        &*self.nodes[index % self.nodes.len()]
    }

    fn clustered(&self) -> bool {
        !self.cluster.is_empty()
    }
}

fn default_limits() -> Limits {
    Config::with_listen("127.0.0.1:0").limits
}

/// The embedded engine with `limits` for each node's (one registry).
fn embedded(limits: &[Limits]) -> Chat {
    let registry: Arc<dyn ChatEngine> = Registry::new(limits[0]);
    Chat {
        nodes: vec![registry],
        cluster: Vec::new(),
        _redis: None,
    }
}

/// A cluster of one node per entry of `limits`.
fn clustered(limits: &[Limits]) -> Chat {
    let redis = TestRedis::start();
    let config = cluster_config(&redis, Duration::from_secs(5));
    let log = test_logger();
    let cluster: Vec<Arc<ClusterEngine>> = limits
        .iter()
        .map(|limits| {
            let node = cluster::start(&config, *limits, None, Box::new(|_| {}), &log)
                .expect("the node joins");
            Arc::new(node)
        })
        .collect();
    Chat {
        nodes: cluster
            .iter()
            .map(|node| Arc::clone(node) as Arc<dyn ChatEngine>)
            .collect(),
        cluster,
        _redis: Some(redis),
    }
}

/// Runs `check` on the embedded engine, then on a cluster of
/// `limits.len()` nodes.
fn on_both(limits: &[Limits], check: impl Fn(&Chat)) {
    check(&embedded(limits));
    check(&clustered(limits));
}

/// A connected user: its session and the inbox its stream reads.
struct User {
    session: Session,
    inbox: Inbox,
    resume_token: String,
}

#[track_caller]
fn connect(chat: &Chat, node: usize, name: &str, events: EventKinds) -> User {
    let peer = format!("ipv4:10.0.{node}.1:4000");
    let connected = block_on(chat.node(node).connect(name, &peer, None, events))
        .unwrap_or_else(|error| panic!("connect {name}: {error:?}"));
    User {
        session: connected.session,
        inbox: connected.inbox,
        resume_token: connected.resume_token,
    }
}

/// Wakes the test's thread: what the engine wakes when it queues.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// What the stream reads next within `within`: an item, or the reason
/// the mailbox was closed (which it finds before anything still queued);
/// `None` when nothing came.
fn next(inbox: &Inbox, within: Duration) -> Option<Result<Item, CloseReason>> {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let deadline = Instant::now() + within;
    loop {
        match inbox.poll(&waker) {
            Poll::Item(item) => {
                // Kept for a resume, as the stream's writer keeps what it
                // takes.
                if let (Item::Message(message), Some(mut taking)) = (&item, inbox.taking()) {
                    taking.keep_one(message);
                }
                return Some(Ok(item));
            }
            Poll::Closed(reason) => return Some(Err(reason)),
            Poll::Empty => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::park_timeout(deadline - now);
    }
}

#[track_caller]
fn next_message(user: &User) -> Arc<Message> {
    match next(&user.inbox, WAIT) {
        Some(Ok(Item::Message(message))) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// The next membership event: (group, user, kind, member count).
#[track_caller]
fn next_membership(user: &User) -> (String, String, MembershipKind, u32) {
    match next(&user.inbox, WAIT) {
        Some(Ok(Item::Event(event))) => match &*event {
            Event::Membership {
                group,
                user,
                kind,
                member_count,
                ..
            } => (group.to_string(), user.to_string(), *kind, *member_count),
            other => panic!("expected a membership event, got {other:?}"),
        },
        other => panic!("expected a membership event, got {other:?}"),
    }
}

#[track_caller]
fn assert_silent(user: &User) {
    if let Some(item) = next(&user.inbox, Duration::from_millis(100)) {
        panic!("nothing more should arrive, got {item:?}");
    }
}

#[track_caller]
fn assert_closed_by_operator(user: &User, reason: &str) {
    assert_eq!(next(&user.inbox, WAIT), Some(Err(CloseReason::Operator)));
    assert_eq!(user.inbox.operator_reason(), Some(reason));
}

fn membership(
    group: &str,
    user: &str,
    kind: MembershipKind,
    count: u32,
) -> (String, String, MembershipKind, u32) {
    (group.to_owned(), user.to_owned(), kind, count)
}

/// Waits, within a deadline, until `condition` holds.
#[track_caller]
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn users(chat: &Chat, node: usize) -> Vec<String> {
    let query = MemberQuery::new(1000, "").unwrap();
    block_on(chat.node(node).list_users(query))
        .unwrap()
        .users
        .iter()
        .map(|user| user.name.to_string())
        .collect()
}

#[test]
fn an_operator_on_one_node_disconnects_a_user_streaming_on_another() {
    on_both(&[default_limits(); 2], |chat| {
        let alice = connect(chat, 1, "alice", EventKinds::MEMBERSHIP);
        let bob = connect(chat, 1, "bob", EventKinds::MEMBERSHIP);
        let carol = connect(chat, 0, "carol", EventKinds::MEMBERSHIP);
        block_on(chat.node(0).create_group("alice", "room")).unwrap();
        block_on(chat.node(1).create_group("alice", "solo")).unwrap();
        block_on(chat.node(0).join_group("bob", "room")).unwrap();
        block_on(chat.node(1).join_group("carol", "room")).unwrap();
        for _ in 0..4 {
            next_membership(&alice);
        }
        for _ in 0..2 {
            next_membership(&bob);
        }
        next_membership(&carol);

        let departure = block_on(chat.node(0).disconnect_user("alice", "spamming", None)).unwrap();
        assert_eq!(
            departure,
            Departure {
                groups_left: 2,
                groups_deleted: vec![Arc::from("solo")],
            }
        );
        assert_closed_by_operator(&alice, "spamming");
        // Her groups' members are told as on any disconnect.
        let gone = membership("room", "alice", MembershipKind::Disconnected, 2);
        assert_eq!(next_membership(&bob), gone);
        assert_eq!(next_membership(&carol), gone);
        assert_silent(&bob);
        // Gone everywhere, and nothing kept for a resume.
        for node in 0..2 {
            assert_eq!(
                block_on(chat.node(node).authenticate("alice")),
                Err(ChatError::Unauthenticated)
            );
            assert_eq!(users(chat, node), ["bob", "carol"]);
        }
        let token = alice.resume_token.clone();
        drop(alice);
        let again = block_on(chat.node(0).connect(
            "alice",
            "p",
            Some(ResumeRequest { token, after_id: 0 }),
            EventKinds::NONE,
        ))
        .unwrap();
        assert_eq!(again.resume_status, ResumeStatus::Unknown);
        drop(again);
        eventually("alice's new session ended", || {
            !users(chat, 1).contains(&"alice".to_owned())
        });

        assert_eq!(
            block_on(chat.node(1).disconnect_user("alice", "", None)),
            Err(ChatError::UserNotFound("alice".to_owned()))
        );
        assert!(matches!(
            block_on(chat.node(1).disconnect_user("no one", "", None)),
            Err(ChatError::InvalidName {
                field: "username",
                ..
            })
        ));
        drop((bob.session, carol.session));
    });
}

#[test]
fn a_ban_refuses_the_name_on_every_node_until_it_runs_out() {
    let mut full = default_limits();
    full.max_connections = 1;
    on_both(&[default_limits(), full], |chat| {
        let mallory = connect(chat, 1, "mallory", EventKinds::NONE);
        let ban = Some(Duration::from_millis(1500));
        let departure = block_on(chat.node(0).disconnect_user("mallory", "", ban)).unwrap();
        assert_eq!(departure, Departure::default());
        assert_closed_by_operator(&mallory, "");
        drop(mallory);
        // Not connected: banned all the same, and told so.
        assert_eq!(
            block_on(chat.node(1).disconnect_user("dave", "", ban)),
            Ok(Departure::default())
        );
        for name in ["mallory", "dave"] {
            for node in 0..2 {
                let refused = block_on(chat.node(node).connect(name, "p", None, EventKinds::NONE));
                assert!(
                    matches!(refused, Err(ChatError::Banned(1 | 2))),
                    "{name} on node {node}: {refused:?}"
                );
            }
        }
        // A full node refuses a banned name for the ban.
        if chat.clustered() {
            let _filler = connect(chat, 1, "filler", EventKinds::NONE);
            assert!(matches!(
                block_on(chat.node(1).connect("dave", "p", None, EventKinds::NONE)),
                Err(ChatError::Banned(_))
            ));
            assert_eq!(
                block_on(chat.node(1).connect("erin", "p", None, EventKinds::NONE)).err(),
                Some(ChatError::TooManyConnections(1))
            );
        }
        let mut back = None;
        eventually("the ban runs out", || {
            back = block_on(chat.node(0).connect("mallory", "p", None, EventKinds::NONE)).ok();
            back.is_some()
        });
    });
}

#[test]
fn an_operators_removal_and_deletion_reach_members_on_other_nodes() {
    on_both(&[default_limits(); 2], |chat| {
        let alice = connect(chat, 0, "alice", EventKinds::MEMBERSHIP);
        let bob = connect(chat, 1, "bob", EventKinds::MEMBERSHIP);
        let carol = connect(chat, 1, "carol", EventKinds::MEMBERSHIP);
        block_on(chat.node(0).create_group("alice", "room")).unwrap();
        block_on(chat.node(0).join_group("bob", "room")).unwrap();
        block_on(chat.node(1).join_group("carol", "room")).unwrap();
        for _ in 0..3 {
            next_membership(&alice);
        }
        for _ in 0..2 {
            next_membership(&bob);
        }
        next_membership(&carol);

        assert_eq!(
            block_on(chat.node(0).remove_member("room", "bob")),
            Ok(Left::GroupKept)
        );
        let removed = membership("room", "bob", MembershipKind::Removed, 2);
        for user in [&alice, &bob, &carol] {
            assert_eq!(next_membership(user), removed);
        }
        // He gets the room's messages no more.
        drop(block_on(chat.node(1).send("alice", "room", "without bob".to_owned())).unwrap());
        assert_eq!(next_message(&carol).text.as_ref(), "without bob");
        assert_eq!(next_message(&alice).text.as_ref(), "without bob");
        assert_silent(&bob);
        assert_eq!(
            block_on(chat.node(1).remove_member("room", "bob")),
            Err(ChatError::NotMember("room".to_owned()))
        );
        assert_eq!(
            block_on(chat.node(1).remove_member("nope", "bob")),
            Err(ChatError::GroupNotFound("nope".to_owned()))
        );

        // Deleted from the other node: each member told once, about itself.
        assert_eq!(block_on(chat.node(1).delete_group("room")), Ok(2));
        assert_eq!(
            next_membership(&alice),
            membership("room", "alice", MembershipKind::Removed, 0)
        );
        assert_eq!(
            next_membership(&carol),
            membership("room", "carol", MembershipKind::Removed, 0)
        );
        for user in [&alice, &bob, &carol] {
            assert_silent(user);
        }
        assert_eq!(
            block_on(chat.node(0).delete_group("room")),
            Err(ChatError::GroupNotFound("room".to_owned()))
        );
        assert_eq!(
            block_on(chat.node(0).send("alice", "room", "x".to_owned())).err(),
            Some(ChatError::RecipientNotFound("room".to_owned()))
        );
        // Its history went with it: a new group of that name has none.
        block_on(chat.node(1).create_group("carol", "room")).unwrap();
        let query = HistoryQuery::new(0, 0, 10).unwrap();
        let page = block_on(chat.node(0).history("carol", "room", query)).unwrap();
        assert!(page.messages.is_empty(), "{page:?}");
        // The last member removed deletes the group.
        assert_eq!(
            block_on(chat.node(0).remove_member("room", "carol")),
            Ok(Left::GroupDeleted)
        );
        assert_eq!(
            next_membership(&carol),
            membership("room", "carol", MembershipKind::Joined, 1)
        );
        assert_eq!(
            next_membership(&carol),
            membership("room", "carol", MembershipKind::Removed, 0)
        );
    });
}

#[test]
fn an_operators_message_reaches_other_nodes_in_the_groups_order_and_keeps_its_mark() {
    let mut limits = default_limits();
    // An operator's messages spend no send limit.
    limits.send_limit = SendLimit { rate: 1, burst: 1 };
    on_both(&[limits; 2], |chat| {
        let alice = connect(chat, 0, "alice", EventKinds::NONE);
        let bob = connect(chat, 1, "bob", EventKinds::NONE);
        block_on(chat.node(0).create_group("alice", "room")).unwrap();
        block_on(chat.node(1).join_group("bob", "room")).unwrap();
        drop(block_on(chat.node(0).send("alice", "room", "one".to_owned())).unwrap());
        for k in 0..3 {
            let (sent, _wake) = block_on(chat.node(k).publish(
                "room",
                format!("notice {k}"),
                "Ops team",
            ))
            .unwrap();
            assert_eq!(sent.recipients, 2);
        }
        let expected = ["one", "notice 0", "notice 1", "notice 2"];
        let mut ids = Vec::new();
        for user in [&alice, &bob] {
            let got: Vec<Arc<Message>> = (0..4).map(|_| next_message(user)).collect();
            let texts: Vec<&str> = got.iter().map(|m| m.text.as_ref()).collect();
            assert_eq!(texts, expected);
            let marks: Vec<bool> = got.iter().map(|m| m.from_operator).collect();
            assert_eq!(marks, [false, true, true, true]);
            assert_eq!(&*got[1].sender, "Ops team");
            ids.push(got.iter().map(|m| m.id).collect::<Vec<_>>());
        }
        assert_eq!(ids[0], ids[1], "one order on both nodes");
        // The history keeps the mark.
        let query = HistoryQuery::new(0, 0, 10).unwrap();
        let page = block_on(chat.node(0).history("bob", "room", query)).unwrap();
        let kept: Vec<(&str, bool)> = page
            .messages
            .iter()
            .map(|m| (m.text.as_ref(), m.from_operator))
            .collect();
        assert_eq!(
            kept,
            [
                ("one", false),
                ("notice 0", true),
                ("notice 1", true),
                ("notice 2", true)
            ]
        );
        // Directly, to a user on another node; and it is kept for a resume
        // with its mark.
        let (sent, _wake) =
            block_on(chat.node(0).publish("bob", "to bob".to_owned(), "server")).unwrap();
        let message = next_message(&bob);
        assert_eq!(
            (message.id, message.text.as_ref(), message.from_operator),
            (sent.id, "to bob", true)
        );
        assert_eq!(message.recipient_kind, ChannelKind::User);
        let token = bob.resume_token.clone();
        drop(bob);
        let mut resumed = None;
        eventually("bob's session is kept for a resume", || {
            let resume = ResumeRequest {
                token: token.clone(),
                after_id: ids[0][3],
            };
            resumed = block_on(
                chat.node(0)
                    .connect("bob", "p", Some(resume), EventKinds::NONE),
            )
            .ok()
            .filter(|connected| connected.resume_status == ResumeStatus::Resumed);
            resumed.is_some()
        });
        let resumed = resumed.unwrap();
        match next(&resumed.inbox, WAIT) {
            Some(Ok(Item::Message(replayed))) => {
                assert_eq!((replayed.id, replayed.from_operator), (sent.id, true));
            }
            other => panic!("expected the replay, got {other:?}"),
        }
        assert_eq!(
            block_on(chat.node(1).publish("nobody", "x".to_owned(), "server")).err(),
            Some(ChatError::RecipientNotFound("nobody".to_owned()))
        );
    });
}

#[test]
fn the_send_limit_is_one_budget_per_user_on_every_node() {
    let mut limits = default_limits();
    // 10 a second, bursts of 2.
    limits.send_limit = SendLimit { rate: 10, burst: 2 };
    on_both(&[limits; 2], |chat| {
        let _alice = connect(chat, 0, "alice", EventKinds::NONE);
        let _bob = connect(chat, 1, "bob", EventKinds::NONE);
        let send = |node: usize, from: &str, text: &str| {
            block_on(chat.node(node).send(from, "bob", text.to_owned())).map(|_| ())
        };
        assert_eq!(send(0, "alice", "one"), Ok(()));
        assert_eq!(send(1, "alice", "two"), Ok(()));
        let wait = match send(0, "alice", "three") {
            Err(ChatError::SendingTooFast(millis)) => millis,
            other => panic!("expected SendingTooFast, got {other:?}"),
        };
        assert!((1..=100).contains(&wait), "{wait}");
        // Another user's budget is its own.
        assert_eq!(send(1, "bob", "to myself"), Ok(()));
        // Refused by the limit before its text is looked at.
        assert!(matches!(
            send(1, "alice", " "),
            Err(ChatError::SendingTooFast(_))
        ));
        std::thread::sleep(Duration::from_millis(wait));
        // A send refused for its text still spends the budget.
        assert!(matches!(
            send(1, "alice", " "),
            Err(ChatError::InvalidText(_))
        ));
        assert!(matches!(
            send(0, "alice", "four"),
            Err(ChatError::SendingTooFast(_))
        ));
        assert_eq!(
            send(0, "nobody", "x"),
            Err(ChatError::Unauthenticated),
            "the caller is checked first"
        );
    });
}

#[test]
fn the_connected_users_of_every_node_are_listed_in_name_order_a_page_at_a_time() {
    on_both(&[default_limits(); 2], |chat| {
        let started = SystemTime::now() - Duration::from_secs(1);
        let _users: Vec<User> = [
            ("erin", 0),
            ("bob", 1),
            ("dave", 0),
            ("alice", 1),
            ("carol", 0),
        ]
        .into_iter()
        .map(|(name, node)| connect(chat, node, name, EventKinds::NONE))
        .collect();
        block_on(chat.node(0).create_group("alice", "room")).unwrap();
        block_on(chat.node(1).create_group("alice", "hall")).unwrap();
        block_on(chat.node(0).join_group("carol", "room")).unwrap();
        let page = |node: usize, limit: u32, after: &str| {
            block_on(
                chat.node(node)
                    .list_users(MemberQuery::new(limit, after).unwrap()),
            )
            .unwrap()
        };
        let first = page(0, 2, "");
        assert_eq!(first.user_count, 5);
        assert_eq!(first.next_page_token, "bob");
        let (alice, bob) = (&first.users[0], &first.users[1]);
        assert_eq!((&*alice.name, alice.group_count), ("alice", 2));
        assert_eq!((&*bob.name, bob.group_count), ("bob", 0));
        assert_eq!(alice.peer, "ipv4:10.0.1.1:4000");
        assert!(alice.connected_at >= started && alice.connected_at <= SystemTime::now());
        let second = page(1, 2, "bob");
        let names: Vec<&str> = second.users.iter().map(|u| &*u.name).collect();
        assert_eq!(names, ["carol", "dave"]);
        assert_eq!(second.users[0].group_count, 1);
        assert_eq!(second.next_page_token, "dave");
        let last = page(0, 2, "dave");
        let names: Vec<&str> = last.users.iter().map(|u| &*u.name).collect();
        assert_eq!(names, ["erin"]);
        assert!(last.next_page_token.is_empty());
        // Each user's node is the one holding its stream.
        let all = page(1, 10, "");
        let nodes: Vec<&str> = all.users.iter().map(|u| u.node.as_str()).collect();
        if chat.clustered() {
            let by_node = |node: usize| {
                all.users
                    .iter()
                    .filter(|u| u.peer == format!("ipv4:10.0.{node}.1:4000"))
                    .map(|u| u.node.as_str())
                    .collect::<BTreeSet<_>>()
            };
            let (zero, one) = (by_node(0), by_node(1));
            assert_eq!((zero.len(), one.len()), (1, 1), "{nodes:?}");
            assert_ne!(zero, one);
            assert!(!nodes.contains(&""));
        } else {
            assert!(nodes.iter().all(|node| node.is_empty()), "{nodes:?}");
        }
    });
}
