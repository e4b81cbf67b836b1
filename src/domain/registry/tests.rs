//! Unit tests of the registry's rules, without any network.

use super::*;
use crate::domain::mailbox::CloseReason;
use crate::domain::Item;

fn registry() -> Arc<Registry> {
    registry_with(Limits {
        max_connections: 100,
        queue_depth: 16,
        queue_bytes: 1 << 20,
        max_text_bytes: 64,
        max_groups_per_user: 100,
        history: crate::domain::HistoryLimits::DEFAULT,
        resume: crate::domain::ResumeLimits::DEFAULT,
        membership_events_max_members: 1000,
        send_limit: crate::domain::SendLimit::OFF,
    })
}

fn registry_with(limits: Limits) -> Arc<Registry> {
    Registry::new(limits)
}

fn drain(inbox: &Inbox) -> Vec<Arc<Message>> {
    std::iter::from_fn(|| inbox.try_take())
        .filter_map(Item::message)
        .collect()
}

fn texts(inbox: &Inbox) -> Vec<String> {
    drain(inbox).iter().map(|m| m.text.to_string()).collect()
}

fn names(channels: &[ChannelInfo]) -> Vec<(&str, ChannelKind, u32, bool)> {
    channels
        .iter()
        .map(|c| (&*c.name, c.kind, c.member_count, c.joined))
        .collect()
}

#[test]
fn connect_validates_and_reserves_the_name() {
    let reg = registry();
    assert!(matches!(
        reg.connect("bad name"),
        Err(ChatError::InvalidName {
            field: "username",
            ..
        })
    ));
    let (_alice, _inbox) = reg.connect("alice").unwrap();
    assert_eq!(
        reg.connect("alice").unwrap_err(),
        ChatError::NameTaken("alice".into())
    );
    // Case-sensitive: a different name.
    let (_upper, _inbox2) = reg.connect("Alice").unwrap();
    reg.create_group("alice", "room").unwrap();
    assert_eq!(
        reg.connect("room").unwrap_err(),
        ChatError::NameTaken("room".into())
    );
}

#[test]
fn connect_refuses_past_the_connection_limit() {
    let reg = registry_with(Limits {
        max_connections: 2,
        queue_depth: 4,
        queue_bytes: 1 << 20,
        max_text_bytes: 64,
        max_groups_per_user: 100,
        history: crate::domain::HistoryLimits::DEFAULT,
        resume: crate::domain::ResumeLimits::DEFAULT,
        membership_events_max_members: 1000,
        send_limit: crate::domain::SendLimit::OFF,
    });
    let _a = reg.connect("a").unwrap();
    let b = reg.connect("b").unwrap();
    assert_eq!(
        reg.connect("c").unwrap_err(),
        ChatError::TooManyConnections(2)
    );
    drop(b);
    let _c = reg.connect("c").unwrap();
}

#[test]
fn dropping_the_session_frees_the_name_and_leaves_every_group() {
    let reg = registry();
    let (alice, _ai) = reg.connect("alice").unwrap();
    let (_bob, _bi) = reg.connect("bob").unwrap();
    reg.create_group("alice", "solo").unwrap();
    reg.create_group("alice", "shared").unwrap();
    reg.join_group("bob", "shared").unwrap();
    drop(alice);
    let channels = reg.list_channels("bob").unwrap();
    assert_eq!(
        names(&channels),
        vec![
            ("bob", ChannelKind::User, 0, false),
            ("shared", ChannelKind::Group, 1, true)
        ]
    );
    assert_eq!(
        reg.list_channels("alice").unwrap_err(),
        ChatError::Unauthenticated
    );
    let _again = reg.connect("alice").unwrap();
    // "solo" was deleted with its last member, so its name is free.
    reg.create_group("alice", "solo").unwrap();
}

#[test]
fn session_end_reports_departure_once() {
    let reg = registry();
    let (mut alice, _ai) = reg.connect("alice").unwrap();
    let (_bob, _bi) = reg.connect("bob").unwrap();
    reg.create_group("alice", "solo").unwrap();
    reg.create_group("alice", "shared").unwrap();
    reg.join_group("bob", "shared").unwrap();
    let departure = alice.end().unwrap();
    assert_eq!(departure.groups_left, 2);
    assert_eq!(departure.groups_deleted, vec![Name::from("solo")]);
    assert_eq!(alice.end(), None);
}

#[test]
fn a_stale_session_does_not_remove_a_newer_owner_of_the_name() {
    let reg = registry_with(Limits {
        max_connections: 10,
        queue_depth: 1,
        queue_bytes: 1 << 20,
        max_text_bytes: 64,
        max_groups_per_user: 100,
        history: crate::domain::HistoryLimits::DEFAULT,
        resume: crate::domain::ResumeLimits::DEFAULT,
        membership_events_max_members: 1000,
        send_limit: crate::domain::SendLimit::OFF,
    });
    let (_a, _ai) = reg.connect("a").unwrap();
    let (old_b, _bi) = reg.connect("b").unwrap();
    reg.send("a", "b", "one".into()).unwrap();
    // b's queue (depth 1) is full: b is evicted and the name is free.
    assert_eq!(
        reg.send("a", "b", "two".into()).unwrap_err(),
        ChatError::RecipientOverloaded("b".into())
    );
    let (_new_b, _nbi) = reg.connect("b").unwrap();
    drop(old_b);
    assert_eq!(reg.connected_users(), 2);
}

#[test]
fn groups_follow_the_create_join_leave_rules() {
    let reg = registry();
    let (_a, _ai) = reg.connect("alice").unwrap();
    let (_b, _bi) = reg.connect("bob").unwrap();
    assert_eq!(
        reg.create_group("nobody", "g").unwrap_err(),
        ChatError::Unauthenticated
    );
    assert!(matches!(
        reg.create_group("alice", "a b"),
        Err(ChatError::InvalidName {
            field: "group name",
            ..
        })
    ));
    assert_eq!(
        reg.create_group("alice", "bob").unwrap_err(),
        ChatError::NameTaken("bob".into())
    );
    reg.create_group("alice", "g").unwrap();
    assert_eq!(
        reg.create_group("bob", "g").unwrap_err(),
        ChatError::NameTaken("g".into())
    );
    assert_eq!(
        reg.join_group("alice", "g").unwrap_err(),
        ChatError::AlreadyMember("g".into())
    );
    assert_eq!(
        reg.join_group("bob", "nope").unwrap_err(),
        ChatError::GroupNotFound("nope".into())
    );
    // A user's name is not a group.
    assert_eq!(
        reg.join_group("bob", "alice").unwrap_err(),
        ChatError::GroupNotFound("alice".into())
    );
    assert!(matches!(
        reg.join_group("bob", ""),
        Err(ChatError::InvalidName { .. })
    ));
    assert_eq!(
        reg.leave_group("bob", "g").unwrap_err(),
        ChatError::NotMember("g".into())
    );
    reg.join_group("bob", "g").unwrap();
    assert_eq!(reg.leave_group("alice", "g").unwrap(), Left::GroupKept);
    assert_eq!(reg.leave_group("bob", "g").unwrap(), Left::GroupDeleted);
    assert_eq!(
        reg.leave_group("bob", "g").unwrap_err(),
        ChatError::GroupNotFound("g".into())
    );
    assert_eq!(reg.group_count(), 0);
}

#[test]
fn list_channels_shows_users_then_groups_sorted() {
    let reg = registry();
    let (_c, _ci) = reg.connect("carol").unwrap();
    let (_a, _ai) = reg.connect("alice").unwrap();
    reg.create_group("carol", "zeta").unwrap();
    reg.create_group("carol", "beta").unwrap();
    reg.join_group("alice", "zeta").unwrap();
    assert_eq!(
        names(&reg.list_channels("alice").unwrap()),
        vec![
            ("alice", ChannelKind::User, 0, false),
            ("carol", ChannelKind::User, 0, false),
            ("beta", ChannelKind::Group, 1, false),
            ("zeta", ChannelKind::Group, 2, true),
        ]
    );
}

#[test]
fn send_validates_text_and_recipient() {
    let reg = registry();
    let (_a, _ai) = reg.connect("alice").unwrap();
    let bad_text = [String::new(), " \t\n".into(), "x".repeat(65)];
    for text in bad_text {
        assert!(
            matches!(
                reg.send("alice", "alice", text.clone()),
                Err(ChatError::InvalidText(_))
            ),
            "{text:?}"
        );
    }
    reg.send("alice", "alice", "x".repeat(64)).unwrap();
    assert!(matches!(
        reg.send("alice", "no way", "hi".into()),
        Err(ChatError::InvalidName {
            field: "recipient",
            ..
        })
    ));
    assert_eq!(
        reg.send("alice", "ghost", "hi".into()).unwrap_err(),
        ChatError::RecipientNotFound("ghost".into())
    );
    assert_eq!(
        reg.send("", "alice", "hi".into()).unwrap_err(),
        ChatError::Unauthenticated
    );
}

#[test]
fn direct_messages_reach_the_recipient_only_and_in_order() {
    let reg = registry();
    let (_a, ai) = reg.connect("alice").unwrap();
    let (_b, bi) = reg.connect("bob").unwrap();
    let first = reg.send("alice", "bob", "one".into()).unwrap();
    let second = reg.send("alice", "bob", "two".into()).unwrap();
    assert!(second.id > first.id);
    let got = drain(&bi);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, first.id);
    assert_eq!(got[0].sent_at, first.sent_at);
    assert_eq!(&*got[0].sender, "alice");
    assert_eq!(&*got[0].recipient, "bob");
    assert_eq!(got[0].recipient_kind, ChannelKind::User);
    assert_eq!(&*got[1].text, "two");
    assert!(drain(&ai).is_empty());
    // To oneself: once.
    reg.send("alice", "alice", "me".into()).unwrap();
    assert_eq!(texts(&ai), vec!["me"]);
}

#[test]
fn group_messages_reach_members_only_sender_included() {
    let reg = registry();
    let (_a, ai) = reg.connect("alice").unwrap();
    let (_b, bi) = reg.connect("bob").unwrap();
    let (_c, ci) = reg.connect("carol").unwrap();
    reg.create_group("alice", "g").unwrap();
    reg.join_group("bob", "g").unwrap();
    assert_eq!(
        reg.send("carol", "g", "hi".into()).unwrap_err(),
        ChatError::NotMemberOfRecipient("g".into())
    );
    let sent = reg.send("bob", "g", "hello".into()).unwrap();
    assert_eq!(sent.recipients, 2);
    for inbox in [&ai, &bi] {
        let got = drain(inbox);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, sent.id);
        assert_eq!(&*got[0].recipient, "g");
        assert_eq!(got[0].recipient_kind, ChannelKind::Group);
    }
    assert!(drain(&ci).is_empty());
}

#[test]
fn a_full_group_member_is_evicted_and_the_others_still_receive() {
    let reg = registry_with(Limits {
        max_connections: 10,
        queue_depth: 2,
        queue_bytes: 1 << 20,
        max_text_bytes: 64,
        max_groups_per_user: 100,
        history: crate::domain::HistoryLimits::DEFAULT,
        resume: crate::domain::ResumeLimits::DEFAULT,
        membership_events_max_members: 1000,
        send_limit: crate::domain::SendLimit::OFF,
    });
    let (_a, ai) = reg.connect("alice").unwrap();
    let (mut slow, si) = reg.connect("slow").unwrap();
    reg.create_group("alice", "g").unwrap();
    reg.join_group("slow", "g").unwrap();
    reg.create_group("slow", "slow-only").unwrap();
    for i in 0..2 {
        reg.send("alice", "g", format!("m{i}")).unwrap();
        drain(&ai);
    }
    let sent = reg.send("alice", "g", "m2".into()).unwrap();
    assert_eq!(sent.evicted, vec![Name::from("slow")]);
    assert_eq!(sent.recipients, 1);
    assert_eq!(texts(&ai), vec!["m2"]);
    assert_eq!(si.close_reason(), Some(CloseReason::SlowConsumer));
    let channels = reg.list_channels("alice").unwrap();
    assert_eq!(
        names(&channels),
        vec![
            ("alice", ChannelKind::User, 0, false),
            ("g", ChannelKind::Group, 1, true)
        ]
    );
    // The session reports what the eviction changed, once.
    let departure = slow.end().unwrap();
    assert_eq!(departure.groups_left, 2);
    assert_eq!(departure.groups_deleted, vec![Name::from("slow-only")]);
    assert_eq!(slow.end(), None);
}

#[test]
fn shutdown_closes_every_mailbox_and_refuses_new_work() {
    let reg = registry();
    let (_a, ai) = reg.connect("alice").unwrap();
    reg.shutdown();
    assert_eq!(ai.close_reason(), Some(CloseReason::Shutdown));
    assert_eq!(reg.connect("bob").unwrap_err(), ChatError::ShuttingDown);
    assert_eq!(
        reg.send("alice", "alice", "hi".into()).unwrap_err(),
        ChatError::ShuttingDown
    );
}

#[test]
fn concurrent_group_senders_give_every_member_the_same_order() {
    let reg = registry_with(Limits {
        max_connections: 10,
        queue_depth: 4096,
        queue_bytes: 1 << 20,
        max_text_bytes: 64,
        max_groups_per_user: 100,
        history: crate::domain::HistoryLimits::DEFAULT,
        resume: crate::domain::ResumeLimits::DEFAULT,
        membership_events_max_members: 1000,
        send_limit: crate::domain::SendLimit::OFF,
    });
    let mut sessions = Vec::new();
    let mut inboxes = Vec::new();
    for name in ["m0", "m1", "m2", "m3"] {
        let (session, inbox) = reg.connect(name).unwrap();
        sessions.push(session);
        inboxes.push(inbox);
    }
    reg.create_group("m0", "g").unwrap();
    for name in ["m1", "m2", "m3"] {
        reg.join_group(name, "g").unwrap();
    }
    std::thread::scope(|scope| {
        for name in ["m0", "m1", "m2", "m3"] {
            let reg = &reg;
            scope.spawn(move || {
                for i in 0..500 {
                    reg.send(name, "g", format!("{name}-{i}")).unwrap();
                }
            });
        }
    });
    let orders: Vec<Vec<u64>> = inboxes
        .iter()
        .map(|inbox| drain(inbox).iter().map(|m| m.id).collect())
        .collect();
    assert_eq!(orders[0].len(), 2000);
    for order in &orders[1..] {
        assert_eq!(order, &orders[0]);
    }
}

/// Counts its wake-ups.
#[derive(Default)]
struct WakeCount(std::sync::atomic::AtomicUsize);

impl std::task::Wake for WakeCount {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn waiting_reader(inbox: &Inbox) -> Arc<WakeCount> {
    let count = Arc::new(WakeCount::default());
    let waker = std::task::Waker::from(Arc::clone(&count));
    assert!(matches!(
        inbox.poll(&waker),
        crate::domain::mailbox::Poll::Empty
    ));
    count
}

/// A registry whose wake-ups wait at a ticker with a period no test run
/// reaches, so only the ticker's stop or a flush can wake a reader. Resume
/// is off: an ended session's queue is then left to its reader.
fn registry_with_idle_ticker() -> Arc<Registry> {
    let ticker = WakeTicker::start(std::time::Duration::from_secs(3600)).unwrap();
    let limits = Limits {
        resume: crate::domain::ResumeLimits::OFF,
        ..registry().limits()
    };
    Registry::with_ticker(limits, Some(ticker))
}

#[test]
fn send_queued_wakes_the_readers_only_when_its_wakeups_are_dropped() {
    let reg = registry();
    let (_alice, _alice_inbox) = reg.connect("alice").unwrap();
    let (_bob, bob_inbox) = reg.connect("bob").unwrap();
    let woken = waiting_reader(&bob_inbox);
    let (sent, wakeups) = reg.send_queued("alice", "bob", "hi".into()).unwrap();
    assert_eq!(sent.recipients, 1);
    assert_eq!(woken.0.load(Ordering::SeqCst), 0);
    drop(wakeups);
    assert_eq!(woken.0.load(Ordering::SeqCst), 1);
    assert_eq!(texts(&bob_inbox), ["hi"]);
}

#[test]
fn a_send_wakes_at_once_and_a_ticker_defers_the_wake_to_its_tick() {
    let reg = registry();
    let (_alice, _alice_inbox) = reg.connect("alice").unwrap();
    let (_bob, bob_inbox) = reg.connect("bob").unwrap();
    let woken = waiting_reader(&bob_inbox);
    reg.send("alice", "bob", "now".into()).unwrap();
    assert_eq!(woken.0.load(Ordering::SeqCst), 1);

    // Only the ticker's stop can wake now.
    let reg = registry_with_idle_ticker();
    let (_alice, _alice_inbox) = reg.connect("alice").unwrap();
    let (bob, bob_inbox) = reg.connect("bob").unwrap();
    let woken = waiting_reader(&bob_inbox);
    reg.send("alice", "bob", "later".into()).unwrap();
    reg.send("alice", "bob", "and more".into()).unwrap();
    assert_eq!(woken.0.load(Ordering::SeqCst), 0);
    // The last handles to the ticker go with the registry and the mailboxes;
    // stopping it wakes what is due, once.
    drop((bob, _alice, _alice_inbox, reg));
    assert_eq!(texts(&bob_inbox), ["later", "and more"]);
    drop(bob_inbox);
    assert_eq!(woken.0.load(Ordering::SeqCst), 1);
}

#[test]
fn shutdown_wakes_a_reader_whose_wake_waits_at_the_ticker() {
    // Only the close can wake the reader.
    let reg = registry_with_idle_ticker();
    let (_alice, _alice_inbox) = reg.connect("alice").unwrap();
    let (_bob, bob_inbox) = reg.connect("bob").unwrap();
    let woken = waiting_reader(&bob_inbox);
    reg.send("alice", "bob", "held".into()).unwrap();
    assert_eq!(woken.0.load(Ordering::SeqCst), 0);
    reg.shutdown();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while woken.0.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(woken.0.load(Ordering::SeqCst), 1);
    assert_eq!(bob_inbox.close_reason(), Some(CloseReason::Shutdown));
}
