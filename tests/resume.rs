//! Session resume: the token, epoch and status every `connected` carries;
//! an exact replay (after a cancel, after a dead peer, of messages written
//! or still queued) before anything newer; GAP past --resume-size and
//! --resume-bytes; UNKNOWN for a used, expired, foreign, made-up or
//! other-epoch token; what a plain or refused Connect does to the kept
//! state; the memory bounds under a flood of maximum-size texts; and, on a
//! cluster of our own, resume on another node and history from any node.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_client::api::{status_of, Api, Inbox};
use chat_proto::chat::{
    ChannelType, ConnectRequest, Connected, GetHistoryRequest, Message, ResumeRequest, ResumeStatus,
};
use chat_server::config::Config;
use common::binary::Binary;
use common::redis::TestRedis;
use common::*;
use futures::StreamExt;
use grpcio::{RpcStatus, RpcStatusCode as Code};

/// A resume of the session `token` names, after message `after_id`.
fn resume(token: &str, after_id: u64) -> Option<ResumeRequest> {
    let mut request = ResumeRequest::new();
    request.token = token.to_owned();
    request.after_id = after_id;
    Some(request)
}

/// Opens `user`'s session through `api`, panicking if refused.
#[track_caller]
fn open(api: &Api, user: &str, resume: Option<ResumeRequest>) -> (Inbox, Connected) {
    api.open_session(user, resume, WAIT)
        .unwrap_or_else(|status| panic!("connect {user}: {status:?}"))
}

/// What became of a Connect's resume.
fn status_of_resume(connected: &Connected) -> ResumeStatus {
    connected.resume_status.enum_value_or_default()
}

/// Waits until `watcher` no longer sees `user` connected.
#[track_caller]
fn wait_gone(server: &TestServer, watcher: &str, user: &str) {
    eventually(&format!("{user} is disconnected"), || {
        !server.names(watcher).contains(&user.to_owned())
    });
}

/// Ends `inbox`'s stream from the client and waits until the server has
/// let `user` go.
#[track_caller]
fn cancel(server: &TestServer, inbox: Inbox, watcher: &str, user: &str) {
    inbox.close();
    wait_gone(server, watcher, user);
}

/// The message `recipient` is delivered for a send of `text` from `sender`
/// that the server accepted with `reply`'s id and time.
fn sent(server: &TestServer, sender: &str, recipient: &str, text: &str) -> Message {
    sent_with(server.next_api(), sender, recipient, text)
}

fn sent_with(api: &Api, sender: &str, recipient: &str, text: &str) -> Message {
    let reply = send_with(api, sender, recipient, text)
        .unwrap_or_else(|status| panic!("{sender} -> {recipient}: {status:?}"));
    let mut message = Message::new();
    message.id = reply.message_id;
    message.sender = sender.to_owned();
    message.recipient = recipient.to_owned();
    message.text = text.to_owned();
    message.sent_at = reply.sent_at;
    message
}

/// `message` as a member of group `to` receives it.
fn in_group(mut message: Message) -> Message {
    message.recipient_type = ChannelType::CHANNEL_TYPE_GROUP.into();
    message
}

/// `message` as its direct recipient receives it.
fn direct(mut message: Message) -> Message {
    message.recipient_type = ChannelType::CHANNEL_TYPE_USER.into();
    message
}

/// Asserts that `inbox` delivers exactly `expected` and then nothing.
#[track_caller]
fn assert_replay(inbox: &Inbox, expected: &[Message]) {
    assert_eq!(receive(inbox, expected.len()), expected);
    assert_silent(inbox, Duration::from_millis(200));
}

#[test]
fn every_connected_carries_a_fresh_token_and_the_epoch_and_an_old_client_sees_unspecified() {
    let server = TestServer::start();
    let (_alice, a) = open(server.next_api(), "alice", None);
    let (bob, b) = open(server.next_api(), "bob", None);
    for connected in [&a, &b] {
        assert_eq!(
            status_of_resume(connected),
            ResumeStatus::RESUME_STATUS_UNSPECIFIED
        );
        assert!(
            connected.resume_token.len() >= 32
                && connected
                    .resume_token
                    .chars()
                    .all(|c| c.is_ascii_hexdigit()),
            "{:?}",
            connected.resume_token
        );
        assert!(!connected.epoch.is_empty());
    }
    assert_ne!(a.resume_token, b.resume_token);
    assert_eq!(a.epoch, b.epoch, "one server, one epoch");
    // The next session of the same name has a token of its own.
    cancel(&server, bob, "alice", "bob");
    let (_bob, again) = open(server.next_api(), "bob", None);
    assert_ne!(again.resume_token, b.resume_token);
    assert_ne!(again.resume_token, a.resume_token);
    assert_eq!(again.epoch, a.epoch);
}

#[test]
fn a_resume_after_a_cancel_replays_exactly_what_came_after_the_last_id_received() {
    let server = TestServer::start();
    let _bob = server.connect("bob");
    let (alice, first) = open(server.next_api(), "alice", None);
    server.create("bob", "room").unwrap();
    server.join("alice", "room").unwrap();
    let read: Vec<Message> = vec![
        direct(sent(&server, "bob", "alice", "one")),
        in_group(sent(&server, "bob", "room", "two")),
    ];
    assert_eq!(receive(&alice, 2), read);
    // Delivered on the stream (written or still queued) but never read.
    let unread = vec![
        direct(sent(&server, "bob", "alice", "three")),
        in_group(sent(&server, "bob", "room", "four")),
        direct(sent(&server, "bob", "alice", "five")),
    ];
    cancel(&server, alice, "bob", "alice");
    let (alice, second) = open(
        server.next_api(),
        "alice",
        resume(&first.resume_token, read[1].id),
    );
    assert_eq!(
        status_of_resume(&second),
        ResumeStatus::RESUME_STATUS_RESUMED
    );
    assert_eq!(second.epoch, first.epoch);
    assert_ne!(second.resume_token, first.resume_token);
    assert_replay(&alice, &unread);
    // Membership is not restored: the group's later messages do not come.
    let room = server
        .list("alice")
        .unwrap()
        .into_iter()
        .find(|row| row.0 == "room");
    assert_eq!(room.map(|row| (row.2, row.3)), Some((1, false)));
    sent(&server, "bob", "room", "six");
    assert_silent(&alice, Duration::from_millis(100));
}

#[test]
fn a_resume_from_zero_replays_everything_kept_in_order() {
    let server = TestServer::start();
    let _bob = server.connect("bob");
    let (alice, first) = open(server.next_api(), "alice", None);
    let all: Vec<Message> = (0..5)
        .map(|k| direct(sent(&server, "bob", "alice", &format!("m{k}"))))
        .collect();
    assert_eq!(receive(&alice, 5), all);
    cancel(&server, alice, "bob", "alice");
    let (alice, second) = open(server.next_api(), "alice", resume(&first.resume_token, 0));
    assert_eq!(
        status_of_resume(&second),
        ResumeStatus::RESUME_STATUS_RESUMED
    );
    assert_replay(&alice, &all);
    // The newest id received: nothing to replay, and still RESUMED.
    cancel(&server, alice, "bob", "alice");
    let (alice, third) = open(
        server.next_api(),
        "alice",
        resume(&second.resume_token, all[4].id),
    );
    assert_eq!(
        status_of_resume(&third),
        ResumeStatus::RESUME_STATUS_RESUMED
    );
    assert_replay(&alice, &[]);
}

#[test]
fn messages_still_queued_when_the_stream_ends_are_replayed_too() {
    let server = TestServer::start_with(|config| {
        config.limits.resume.bytes = 1 << 20;
    });
    let _bob = server.connect("bob");
    // A client that reads `connected` and nothing more: HTTP/2 flow
    // control fills, and the rest stays queued in its mailbox.
    let api = server.next_api();
    let mut request = ConnectRequest::new();
    request.username = "alice".to_owned();
    let mut stream = api
        .client
        .connect_opt(&request, grpcio::CallOption::default())
        .map_err(status_of)
        .unwrap();
    let first = match futures::executor::block_on(stream.next()) {
        Some(Ok(response)) => response.connected().clone(),
        other => panic!("expected connected, got {other:?}"),
    };
    let text = "q".repeat(4000);
    let unread: Vec<Message> = (0..150)
        .map(|_| direct(sent(&server, "bob", "alice", &text)))
        .collect();
    drop(stream);
    wait_gone(&server, "bob", "alice");
    let (alice, second) = open(server.next_api(), "alice", resume(&first.resume_token, 0));
    assert_eq!(
        status_of_resume(&second),
        ResumeStatus::RESUME_STATUS_RESUMED
    );
    assert_replay(&alice, &unread);
}

#[test]
fn the_replay_comes_before_anything_newer() {
    let server = TestServer::start();
    let _bob = server.connect("bob");
    let (alice, first) = open(server.next_api(), "alice", None);
    let missed: Vec<Message> = (0..20)
        .map(|k| direct(sent(&server, "bob", "alice", &format!("old {k}"))))
        .collect();
    cancel(&server, alice, "bob", "alice");
    // A sender that keeps trying while alice comes back: refused while she
    // is away, then accepted, each accepted one after the replay.
    let api = server.new_api();
    let newer = 30;
    let sender = std::thread::spawn(move || {
        let mut accepted = Vec::new();
        let deadline = Instant::now() + WAIT;
        while accepted.len() < newer {
            assert!(Instant::now() < deadline, "alice never came back");
            let text = format!("new {}", accepted.len());
            match send_with(&api, "bob", "alice", &text) {
                Ok(reply) => accepted.push(reply.message_id),
                Err(status) => assert_eq!(status.code(), Code::NOT_FOUND, "{status:?}"),
            }
        }
        accepted
    });
    let (alice, second) = open(server.next_api(), "alice", resume(&first.resume_token, 0));
    assert_eq!(
        status_of_resume(&second),
        ResumeStatus::RESUME_STATUS_RESUMED
    );
    let accepted = sender.join().unwrap();
    let got = receive(&alice, missed.len() + newer);
    assert_eq!(got[..missed.len()], missed[..]);
    assert_eq!(
        got[missed.len()..].iter().map(|m| m.id).collect::<Vec<_>>(),
        accepted
    );
    assert_silent(&alice, Duration::from_millis(100));
    // And when nothing is sent meanwhile, a message sent right after the
    // reconnect comes after the replay.
    let last = got.last().unwrap().id;
    let more: Vec<Message> = (0..3)
        .map(|k| direct(sent(&server, "bob", "alice", &format!("more {k}"))))
        .collect();
    cancel(&server, alice, "bob", "alice");
    let (alice, third) = open(
        server.next_api(),
        "alice",
        resume(&second.resume_token, last),
    );
    assert_eq!(
        status_of_resume(&third),
        ResumeStatus::RESUME_STATUS_RESUMED
    );
    let after = direct(sent(&server, "bob", "alice", "right after"));
    let mut expected = more;
    expected.push(after);
    assert_replay(&alice, &expected);
}

#[test]
fn more_than_resume_size_messages_after_the_last_id_is_a_gap() {
    let server = TestServer::start_with(|config| config.limits.resume.messages = 5);
    let _bob = server.connect("bob");
    let (alice, first) = open(server.next_api(), "alice", None);
    let ids: Vec<u64> = (0..8)
        .map(|k| sent(&server, "bob", "alice", &format!("m{k}")).id)
        .collect();
    cancel(&server, alice, "bob", "alice");
    // Kept: the last 5. After ids[2], exactly those 5 are missed.
    let (alice, second) = open(
        server.next_api(),
        "alice",
        resume(&first.resume_token, ids[2]),
    );
    assert_eq!(
        status_of_resume(&second),
        ResumeStatus::RESUME_STATUS_RESUMED
    );
    let replayed: Vec<u64> = receive(&alice, 5).iter().map(|m| m.id).collect();
    assert_eq!(replayed, ids[3..]);
    assert_silent(&alice, Duration::from_millis(100));
    // After ids[1], one that was missed is no longer kept: a gap, and
    // nothing replayed.
    let ids: Vec<u64> = (0..8)
        .map(|k| sent(&server, "bob", "alice", &format!("n{k}")).id)
        .collect();
    cancel(&server, alice, "bob", "alice");
    let (alice, third) = open(
        server.next_api(),
        "alice",
        resume(&second.resume_token, ids[1]),
    );
    assert_eq!(status_of_resume(&third), ResumeStatus::RESUME_STATUS_GAP);
    assert_silent(&alice, Duration::from_millis(200));
    // A gap uses the token up, like a resume.
    cancel(&server, alice, "bob", "alice");
    let (_alice, fourth) = open(server.next_api(), "alice", resume(&second.resume_token, 0));
    assert_eq!(
        status_of_resume(&fourth),
        ResumeStatus::RESUME_STATUS_UNKNOWN
    );
}

#[test]
fn group_messages_are_replayed_from_the_join_on_also_after_the_group_is_left_or_gone() {
    let server = TestServer::start();
    let _bob = server.connect("bob");
    let (alice, first) = open(server.next_api(), "alice", None);
    server.create("bob", "kept").unwrap();
    // Said before alice joined: not addressed to her, never replayed.
    sent(&server, "bob", "kept", "before the join");
    server.join("alice", "kept").unwrap();
    server.create("alice", "gone").unwrap();
    let mut expected = vec![
        in_group(sent(&server, "bob", "kept", "k1")),
        in_group(sent(&server, "alice", "gone", "g1")),
        direct(sent(&server, "bob", "alice", "d1")),
        in_group(sent(&server, "bob", "kept", "k2")),
    ];
    // Left (and, her being its last member, deleted) before the stream
    // ends: what it said to her still counts.
    server.leave("alice", "gone").unwrap();
    expected.push(in_group(sent(&server, "bob", "kept", "k3")));
    // Left while the group goes on: only what it said while she was in.
    server.leave("alice", "kept").unwrap();
    sent(&server, "bob", "kept", "after the leave");
    assert_eq!(receive(&alice, expected.len()), expected);
    cancel(&server, alice, "bob", "alice");
    let (alice, second) = open(server.next_api(), "alice", resume(&first.resume_token, 0));
    assert_eq!(
        status_of_resume(&second),
        ResumeStatus::RESUME_STATUS_RESUMED
    );
    assert_replay(&alice, &expected);
}

#[test]
fn group_and_direct_messages_share_one_resume_size() {
    let server = TestServer::start_with(|config| config.limits.resume.messages = 4);
    let _bob = server.connect("bob");
    let (alice, first) = open(server.next_api(), "alice", None);
    server.create("bob", "lab").unwrap();
    server.join("alice", "lab").unwrap();
    let sent_all = vec![
        in_group(sent(&server, "bob", "lab", "g1")),
        direct(sent(&server, "bob", "alice", "d1")),
        in_group(sent(&server, "bob", "lab", "g2")),
        in_group(sent(&server, "bob", "lab", "g3")),
        direct(sent(&server, "bob", "alice", "d2")),
    ];
    assert_eq!(receive(&alice, sent_all.len()), sent_all);
    cancel(&server, alice, "bob", "alice");
    // Kept: the session's last 4, whatever their kind. From the first, the
    // rest is exactly what was missed.
    let (alice, second) = open(
        server.next_api(),
        "alice",
        resume(&first.resume_token, sent_all[0].id),
    );
    assert_eq!(
        status_of_resume(&second),
        ResumeStatus::RESUME_STATUS_RESUMED
    );
    assert_replay(&alice, &sent_all[1..]);
    // From before the first, the first is no longer kept: a gap.
    server.join("alice", "lab").unwrap();
    let sent_all = vec![
        in_group(sent(&server, "bob", "lab", "h1")),
        in_group(sent(&server, "bob", "lab", "h2")),
        direct(sent(&server, "bob", "alice", "e1")),
        in_group(sent(&server, "bob", "lab", "h3")),
        in_group(sent(&server, "bob", "lab", "h4")),
    ];
    assert_eq!(receive(&alice, sent_all.len()), sent_all);
    cancel(&server, alice, "bob", "alice");
    let (alice, third) = open(
        server.next_api(),
        "alice",
        resume(&second.resume_token, sent_all[0].id - 1),
    );
    assert_eq!(status_of_resume(&third), ResumeStatus::RESUME_STATUS_GAP);
    assert_silent(&alice, Duration::from_millis(200));
}

#[test]
fn more_than_resume_bytes_after_the_last_id_is_a_gap() {
    let server = TestServer::start_with(|config| config.limits.resume.bytes = 100);
    let _bob = server.connect("bob");
    let (alice, first) = open(server.next_api(), "alice", None);
    let ids: Vec<u64> = (0..5)
        .map(|k| sent(&server, "bob", "alice", &format!("{k}").repeat(30)).id)
        .collect();
    cancel(&server, alice, "bob", "alice");
    // 3 x 30 bytes fit in 100.
    let (alice, second) = open(
        server.next_api(),
        "alice",
        resume(&first.resume_token, ids[0]),
    );
    assert_eq!(status_of_resume(&second), ResumeStatus::RESUME_STATUS_GAP);
    assert_silent(&alice, Duration::from_millis(200));
    let ids: Vec<u64> = (0..5)
        .map(|k| sent(&server, "bob", "alice", &format!("{k}").repeat(30)).id)
        .collect();
    cancel(&server, alice, "bob", "alice");
    let (alice, third) = open(
        server.next_api(),
        "alice",
        resume(&second.resume_token, ids[1]),
    );
    assert_eq!(
        status_of_resume(&third),
        ResumeStatus::RESUME_STATUS_RESUMED
    );
    let replayed: Vec<u64> = receive(&alice, 3).iter().map(|m| m.id).collect();
    assert_eq!(replayed, ids[2..]);
    assert_silent(&alice, Duration::from_millis(100));
}

#[test]
fn a_used_token_is_unknown() {
    let server = TestServer::start();
    let _bob = server.connect("bob");
    let (alice, first) = open(server.next_api(), "alice", None);
    let message = direct(sent(&server, "bob", "alice", "once"));
    cancel(&server, alice, "bob", "alice");
    let (alice, second) = open(server.next_api(), "alice", resume(&first.resume_token, 0));
    assert_eq!(
        status_of_resume(&second),
        ResumeStatus::RESUME_STATUS_RESUMED
    );
    assert_replay(&alice, std::slice::from_ref(&message));
    cancel(&server, alice, "bob", "alice");
    // The first token again: used. It answers UNKNOWN, which discards what
    // the second session left too.
    let (alice, third) = open(server.next_api(), "alice", resume(&first.resume_token, 0));
    assert_eq!(
        status_of_resume(&third),
        ResumeStatus::RESUME_STATUS_UNKNOWN
    );
    assert_silent(&alice, Duration::from_millis(100));
    cancel(&server, alice, "bob", "alice");
    let (_alice, fourth) = open(server.next_api(), "alice", resume(&second.resume_token, 0));
    assert_eq!(
        status_of_resume(&fourth),
        ResumeStatus::RESUME_STATUS_UNKNOWN
    );
}

#[test]
fn an_expired_token_is_unknown() {
    let window = Duration::from_secs(1);
    let server = TestServer::start_with(|config| config.limits.resume.window = window);
    let _bob = server.connect("bob");
    let (alice, first) = open(server.next_api(), "alice", None);
    sent(&server, "bob", "alice", "too late");
    cancel(&server, alice, "bob", "alice");
    // Wait out the window (with a margin), then try.
    let past = Instant::now() + window + Duration::from_millis(500);
    while Instant::now() < past {
        std::thread::sleep(past.saturating_duration_since(Instant::now()));
    }
    let (alice, second) = open(server.next_api(), "alice", resume(&first.resume_token, 0));
    assert_eq!(
        status_of_resume(&second),
        ResumeStatus::RESUME_STATUS_UNKNOWN
    );
    assert_silent(&alice, Duration::from_millis(100));
}

#[test]
fn a_token_of_another_username_or_a_made_up_one_is_unknown() {
    let server = TestServer::start();
    let _bob = server.connect("bob");
    let (alice, first) = open(server.next_api(), "alice", None);
    let message = direct(sent(&server, "bob", "alice", "for alice"));
    cancel(&server, alice, "bob", "alice");
    // Carol presents alice's token: unknown to her, and alice's kept
    // session is untouched.
    let (carol, theirs) = open(server.next_api(), "carol", resume(&first.resume_token, 0));
    assert_eq!(
        status_of_resume(&theirs),
        ResumeStatus::RESUME_STATUS_UNKNOWN
    );
    assert_silent(&carol, Duration::from_millis(100));
    // Made-up tokens: never issued, the wrong length, empty.
    for (user, token) in [
        ("dave", "0".repeat(32)),
        ("erin", "f".repeat(64)),
        ("fred", "not a token".to_owned()),
        ("gina", String::new()),
    ] {
        let (_inbox, connected) = open(server.next_api(), user, resume(&token, 0));
        assert_eq!(
            status_of_resume(&connected),
            ResumeStatus::RESUME_STATUS_UNKNOWN,
            "{token:?}"
        );
    }
    let (alice, second) = open(server.next_api(), "alice", resume(&first.resume_token, 0));
    assert_eq!(
        status_of_resume(&second),
        ResumeStatus::RESUME_STATUS_RESUMED
    );
    assert_replay(&alice, &[message]);
}

#[test]
fn a_made_up_token_for_the_name_discards_what_it_left() {
    let server = TestServer::start();
    let _bob = server.connect("bob");
    let (alice, first) = open(server.next_api(), "alice", None);
    sent(&server, "bob", "alice", "lost");
    cancel(&server, alice, "bob", "alice");
    let wrong = "0".repeat(first.resume_token.len());
    let (alice, second) = open(server.next_api(), "alice", resume(&wrong, 0));
    assert_eq!(
        status_of_resume(&second),
        ResumeStatus::RESUME_STATUS_UNKNOWN
    );
    cancel(&server, alice, "bob", "alice");
    let (_alice, third) = open(server.next_api(), "alice", resume(&first.resume_token, 0));
    assert_eq!(
        status_of_resume(&third),
        ResumeStatus::RESUME_STATUS_UNKNOWN
    );
}

#[test]
fn a_token_of_another_epoch_is_unknown() {
    let first_server = TestServer::start();
    let _bob = first_server.connect("bob");
    let (alice, first) = open(first_server.next_api(), "alice", None);
    sent(&first_server, "bob", "alice", "from the old server");
    cancel(&first_server, alice, "bob", "alice");
    // A server started since (on one node: a restart) knows nothing of it.
    let second_server = TestServer::start();
    let (alice, second) = open(
        second_server.next_api(),
        "alice",
        resume(&first.resume_token, 0),
    );
    assert_eq!(
        status_of_resume(&second),
        ResumeStatus::RESUME_STATUS_UNKNOWN
    );
    assert_ne!(second.epoch, first.epoch);
    assert!(!second.epoch.is_empty());
    assert_silent(&alice, Duration::from_millis(100));
}

#[test]
fn a_plain_connect_discards_the_kept_session() {
    let server = TestServer::start();
    let _bob = server.connect("bob");
    let (alice, first) = open(server.next_api(), "alice", None);
    sent(&server, "bob", "alice", "forgotten");
    cancel(&server, alice, "bob", "alice");
    let (alice, plain) = open(server.next_api(), "alice", None);
    assert_eq!(
        status_of_resume(&plain),
        ResumeStatus::RESUME_STATUS_UNSPECIFIED
    );
    assert_silent(&alice, Duration::from_millis(100));
    cancel(&server, alice, "bob", "alice");
    let (_alice, later) = open(server.next_api(), "alice", resume(&first.resume_token, 0));
    assert_eq!(
        status_of_resume(&later),
        ResumeStatus::RESUME_STATUS_UNKNOWN
    );
}

#[test]
fn a_refused_connect_changes_nothing() {
    // Every Connect goes to one node, whose limit it is.
    let server = TestServer::start_with(|config| config.limits.max_connections = 3);
    let _bob = open(&server.api, "bob", None).0;
    let (alice, first) = open(&server.api, "alice", None);
    let message = direct(sent(&server, "bob", "alice", "keep me"));
    // While alice is connected, another Connect of the name (even with
    // her token) is refused.
    let refused = server
        .api
        .open_session("alice", resume(&first.resume_token, 0), WAIT)
        .map(drop);
    assert_code(Code::ALREADY_EXISTS, refused);
    assert_code(
        Code::ALREADY_EXISTS,
        server.api.open_session("alice", None, WAIT).map(drop),
    );
    cancel(&server, alice, "bob", "alice");
    // A bad name with her token, and her name while the server is full.
    assert_code(
        Code::INVALID_ARGUMENT,
        server
            .api
            .open_session("al ice", resume(&first.resume_token, 0), WAIT)
            .map(drop),
    );
    let carol = open(&server.api, "carol", None).0;
    let _dave = open(&server.api, "dave", None).0;
    assert_code(
        Code::RESOURCE_EXHAUSTED,
        server
            .api
            .open_session("alice", resume(&first.resume_token, 0), WAIT)
            .map(drop),
    );
    assert_code(
        Code::RESOURCE_EXHAUSTED,
        server.api.open_session("alice", None, WAIT).map(drop),
    );
    cancel(&server, carol, "bob", "carol");
    let (alice, second) = open(&server.api, "alice", resume(&first.resume_token, 0));
    assert_eq!(
        status_of_resume(&second),
        ResumeStatus::RESUME_STATUS_RESUMED
    );
    assert_replay(&alice, &[message]);
}

#[test]
fn resume_off_answers_unknown_but_still_issues_tokens() {
    let server = TestServer::start_with(|config| config.limits.resume.window = Duration::ZERO);
    let _bob = server.connect("bob");
    let (alice, first) = open(server.next_api(), "alice", None);
    assert!(first.resume_token.len() >= 32 && !first.epoch.is_empty());
    sent(&server, "bob", "alice", "not kept");
    receive(&alice, 1);
    cancel(&server, alice, "bob", "alice");
    let (alice, second) = open(server.next_api(), "alice", resume(&first.resume_token, 0));
    assert_eq!(
        status_of_resume(&second),
        ResumeStatus::RESUME_STATUS_UNKNOWN
    );
    assert_silent(&alice, Duration::from_millis(100));
}

/// A TCP relay in front of the server that can stop relaying while it
/// keeps both connections open: to the server, a peer that went silent
/// (a phone that lost its network, a frozen process).
struct Relay {
    address: String,
    frozen: Arc<AtomicBool>,
    stopping: Arc<AtomicBool>,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    /// Dropped to release the pipes held while frozen.
    thaw: Option<crossbeam_channel::Sender<()>>,
}

impl Relay {
    fn to(target: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let address = listener.local_addr().unwrap().to_string();
        let frozen = Arc::new(AtomicBool::new(false));
        let stopping = Arc::new(AtomicBool::new(false));
        let sockets = Arc::new(Mutex::new(Vec::new()));
        let (thaw, thawed) = crossbeam_channel::bounded::<()>(0);
        let target = target.to_owned();
        {
            let (frozen, stopping, sockets) = (frozen.clone(), stopping.clone(), sockets.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect(&target) else {
                        continue;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let mut held = sockets.lock().unwrap();
                    held.push(client.try_clone().unwrap());
                    held.push(server.try_clone().unwrap());
                    drop(held);
                    for (from, to) in [
                        (client.try_clone().unwrap(), server.try_clone().unwrap()),
                        (server, client),
                    ] {
                        let (frozen, thawed) = (frozen.clone(), thawed.clone());
                        std::thread::spawn(move || pipe(from, to, &frozen, &thawed));
                    }
                }
            });
        }
        Relay {
            address,
            frozen,
            stopping,
            sockets,
            thaw: Some(thaw),
        }
    }

    /// Stops relaying in both directions; the connections stay open.
    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until either ends; once frozen, holds what it
/// read until `thawed` is closed.
fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    frozen: &AtomicBool,
    thawed: &crossbeam_channel::Receiver<()>,
) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if frozen.load(Ordering::SeqCst) {
            let _ = thawed.recv();
            break;
        }
        if to.write_all(&buffer[..read]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.thaw.take();
        for socket in self.sockets.lock().unwrap().drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
        // Wakes the accept loop so that it sees `stopping`.
        let _ = TcpStream::connect(&self.address);
    }
}

#[test]
fn a_resume_after_a_dead_peer_replays_what_was_in_flight() {
    const KEEPALIVE: Duration = Duration::from_secs(1);
    const TIMEOUT: Duration = Duration::from_secs(1);
    let server = TestServer::start_with(|config| {
        config.keepalive = KEEPALIVE;
        config.keepalive_timeout = TIMEOUT;
    });
    let _bob = server.connect("bob");
    let relay = Relay::to(server.next_api().address());
    let far = Api::connect(&relay.address, WAIT).expect("reach the server through the relay");
    let (alice, first) = open(&far, "alice", None);
    let read = direct(sent(&server, "bob", "alice", "read"));
    assert_eq!(receive(&alice, 1), std::slice::from_ref(&read));
    let mut missed = vec![direct(sent(&server, "bob", "alice", "unread"))];
    relay.freeze();
    // Accepted while the server still thinks alice is there, and never
    // reaching her.
    missed.push(direct(sent(&server, "bob", "alice", "in flight 1")));
    missed.push(direct(sent(&server, "bob", "alice", "in flight 2")));
    // Keepalive finds the dead peer and ends the session.
    let frozen = Instant::now();
    let limit = KEEPALIVE + TIMEOUT + Duration::from_secs(3);
    while server.names("bob").contains(&"alice".to_owned()) {
        assert!(
            frozen.elapsed() < limit,
            "alice was still connected {limit:?} after her peer went silent"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (alice_again, second) = open(
        server.next_api(),
        "alice",
        resume(&first.resume_token, read.id),
    );
    assert_eq!(
        status_of_resume(&second),
        ResumeStatus::RESUME_STATUS_RESUMED
    );
    assert_replay(&alice_again, &missed);
    drop(alice);
    drop(far);
}

/// One scrape of the metrics endpoint at `port`: each sample by series.
fn scrape(port: u16) -> std::collections::HashMap<String, f64> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("metrics port reachable");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("a whole response");
    let (_, body) = raw.split_once("\r\n\r\n").expect("a response head");
    body.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[test]
fn a_flood_of_maximum_size_texts_stays_within_the_history_and_resume_bounds() {
    const TEXT: usize = 4096;
    const KEPT_PER_GROUP: usize = 3;
    const KEPT_PER_SESSION: usize = 10;
    const GROUPS: usize = 4;
    let history_bytes = KEPT_PER_GROUP * TEXT + 100;
    let resume_bytes = KEPT_PER_SESSION * TEXT + 100;
    let server = TestServer::start_with(|config| {
        config.metrics_listen = Some("127.0.0.1:0".to_owned());
        config.limits.history.bytes = history_bytes;
        config.limits.resume.bytes = resume_bytes;
    });
    let port = server
        .server
        .as_ref()
        .and_then(|running| running.metrics_port())
        .expect("metrics are on");
    let _bob = server.connect("bob");
    let (alice, first) = open(server.next_api(), "alice", None);
    let text = "x".repeat(TEXT);
    for g in 0..GROUPS {
        let group = format!("g{g}");
        server.create("bob", &group).unwrap();
        server.join("alice", &group).unwrap();
    }
    // Groups: each keeps at most --history-bytes of text, whatever is sent.
    for round in 0..20 {
        for g in 0..GROUPS {
            sent(&server, "bob", &format!("g{g}"), &text);
        }
        if round % 5 == 4 {
            let metrics = scrape(port);
            let bytes = metrics["chat_history_bytes"] as usize;
            assert!(bytes <= GROUPS * history_bytes, "{bytes} bytes of history");
        }
    }
    eventually("history holds exactly what fits", || {
        let metrics = scrape(port);
        metrics["chat_history_bytes"] as usize == GROUPS * KEPT_PER_GROUP * TEXT
            && metrics["chat_history_messages"] as usize == GROUPS * KEPT_PER_GROUP
    });
    for g in 0..GROUPS {
        let mut request = GetHistoryRequest::new();
        request.group = format!("g{g}");
        let page = server
            .next_api()
            .client
            .get_history_opt(&request, Api::as_user("alice"))
            .unwrap();
        assert_eq!(page.messages.len(), KEPT_PER_GROUP);
        assert!(page.truncated);
    }
    // Sessions: a resume replays at most --resume-bytes of what came.
    let flood = |from: &str| -> Vec<u64> {
        (0..50)
            .map(|_| sent(&server, from, "alice", &text).id)
            .collect()
    };
    flood("bob");
    cancel(&server, alice, "bob", "alice");
    let (alice, second) = open(server.next_api(), "alice", resume(&first.resume_token, 0));
    assert_eq!(status_of_resume(&second), ResumeStatus::RESUME_STATUS_GAP);
    assert_silent(&alice, Duration::from_millis(200));
    let ids_again = flood("bob");
    cancel(&server, alice, "bob", "alice");
    // Kept: the last KEPT_PER_SESSION; a client that saw the one before
    // them gets exactly those.
    let (seen, last_kept) = ids_again.split_at(ids_again.len() - KEPT_PER_SESSION);
    let (alice, third) = open(
        server.next_api(),
        "alice",
        resume(&second.resume_token, seen[seen.len() - 1]),
    );
    assert_eq!(
        status_of_resume(&third),
        ResumeStatus::RESUME_STATUS_RESUMED
    );
    let replayed = receive(&alice, KEPT_PER_SESSION);
    assert_eq!(replayed.iter().map(|m| m.id).collect::<Vec<_>>(), last_kept);
    let replayed_bytes: usize = replayed.iter().map(|m| m.text.len()).sum();
    assert!(replayed_bytes <= resume_bytes);
    assert_silent(&alice, Duration::from_millis(100));
}

// The cluster: resume on another node, history from any node, a token from
// before Redis lost its data. Each test starts its own Redis and nodes.

/// `nodes` in-process nodes of one cluster on a fresh Redis.
fn cluster(nodes: usize, lease: Duration) -> TestServer {
    let redis = TestRedis::start();
    let mut config = Config::with_listen("127.0.0.1:0");
    config.cluster = Some(cluster_config(&redis, lease));
    TestServer::on_nodes(vec![config; nodes], Some(redis))
}

/// Another node of `server`'s cluster, as a separate process.
fn node_process(server: &TestServer) -> Binary {
    let url = server.redis.as_ref().expect("a cluster").url();
    let prefix = server.prefix.clone().expect("a cluster prefix");
    Binary::start_with(&[
        "--redis",
        &url,
        "--redis-prefix",
        &prefix,
        "--node-lease-secs",
        "5",
    ])
    .0
}

#[test]
fn a_session_cancelled_on_one_node_resumes_on_another() {
    let server = cluster(3, Duration::from_secs(5));
    let _bob = open(&server.apis[0], "bob", None).0;
    let (alice, first) = open(&server.apis[1], "alice", None);
    server.create("bob", "room").unwrap();
    server.join("alice", "room").unwrap();
    let read = vec![
        direct(sent_with(&server.apis[0], "bob", "alice", "one")),
        in_group(sent_with(&server.apis[2], "bob", "room", "two")),
    ];
    assert_eq!(receive(&alice, 2), read);
    let unread = vec![
        direct(sent_with(&server.apis[2], "bob", "alice", "three")),
        in_group(sent_with(&server.apis[0], "bob", "room", "four")),
        direct(sent_with(&server.apis[1], "bob", "alice", "five")),
    ];
    cancel(&server, alice, "bob", "alice");
    let (alice, second) = open(
        &server.apis[2],
        "alice",
        resume(&first.resume_token, read[1].id),
    );
    assert_eq!(
        status_of_resume(&second),
        ResumeStatus::RESUME_STATUS_RESUMED
    );
    assert_eq!(second.epoch, first.epoch, "one cluster, one epoch");
    assert_replay(&alice, &unread);
    // Used up on every node.
    cancel(&server, alice, "bob", "alice");
    let (_alice, third) = open(&server.apis[0], "alice", resume(&first.resume_token, 0));
    assert_eq!(
        status_of_resume(&third),
        ResumeStatus::RESUME_STATUS_UNKNOWN
    );
}

#[test]
fn a_session_on_a_node_that_shuts_down_resumes_on_another_with_nothing_lost() {
    let server = cluster(1, Duration::from_secs(5));
    let mut leaving = node_process(&server);
    let far = Api::connect(&format!("127.0.0.1:{}", leaving.port), WAIT).unwrap();
    let _bob = open(&server.api, "bob", None).0;
    let (alice, first) = open(&far, "alice", None);
    let read = direct(sent_with(&server.api, "bob", "alice", "read"));
    assert_eq!(receive(&alice, 1), std::slice::from_ref(&read));
    let unread: Vec<Message> = (0..5)
        .map(|k| {
            direct(sent_with(
                &server.api,
                "bob",
                "alice",
                &format!("unread {k}"),
            ))
        })
        .collect();
    // A rolling deploy: the node gets SIGTERM.
    leaving.signal(libc::SIGTERM);
    assert_eq!(end_status(&alice).code(), Code::UNAVAILABLE);
    assert_eq!(leaving.wait_exit(Duration::from_secs(5)), Some(0));
    wait_gone(&server, "bob", "alice");
    let (alice, second) = open(&server.api, "alice", resume(&first.resume_token, read.id));
    assert_eq!(
        status_of_resume(&second),
        ResumeStatus::RESUME_STATUS_RESUMED
    );
    assert_replay(&alice, &unread);
}

#[test]
fn history_reads_the_same_from_every_node() {
    let server = cluster(3, Duration::from_secs(5));
    let users = ["ann", "ben", "cat"];
    let inboxes: Vec<Inbox> = users
        .iter()
        .enumerate()
        .map(|(node, user)| open(&server.apis[node], user, None).0)
        .collect();
    server.create("ann", "room").unwrap();
    server.join("ben", "room").unwrap();
    server.join("cat", "room").unwrap();
    for k in 0..30 {
        let (node, user) = (k % 3, users[(k / 3) % 3]);
        send_with(&server.apis[node], user, "room", &format!("{user} #{k}")).unwrap();
    }
    let delivered = receive(&inboxes[0], 30);
    for inbox in &inboxes[1..] {
        assert_eq!(receive(inbox, 30), delivered);
    }
    for api in &server.apis {
        for user in users {
            let mut request = GetHistoryRequest::new();
            request.group = "room".to_owned();
            let page = api
                .client
                .get_history_opt(&request, Api::as_user(user))
                .unwrap();
            assert_eq!(page.messages, delivered, "{user} through {}", api.address());
            assert!(!page.more && !page.truncated);
        }
    }
}

#[test]
fn a_token_from_before_redis_lost_its_data_is_unknown() {
    let mut server = cluster(2, Duration::from_secs(1));
    let bob = open(&server.apis[0], "bob", None).0;
    let (alice, first) = open(&server.apis[1], "alice", None);
    sent_with(&server.apis[0], "bob", "alice", "before");
    alice.close();
    server.redis.as_mut().unwrap().kill_and_restart_empty();
    assert_eq!(end_status(&bob).code(), Code::UNAVAILABLE);
    let mut outcome: Option<Result<(Inbox, Connected), RpcStatus>> = None;
    eventually("alice reconnects", || {
        let attempt = server.apis[0].open_session("alice", resume(&first.resume_token, 0), WAIT);
        let done = attempt.is_ok();
        outcome = Some(attempt);
        done
    });
    let (alice, second) = outcome.unwrap().unwrap();
    assert_eq!(
        status_of_resume(&second),
        ResumeStatus::RESUME_STATUS_UNKNOWN
    );
    assert_ne!(second.epoch, first.epoch);
    assert_silent(&alice, Duration::from_millis(100));
}

#[test]
fn a_kept_session_lives_in_redis_for_the_window_and_goes_at_the_next_connect() {
    // White-box (the key layout src/cluster/scripts.rs documents): on one
    // node, what a plain Connect or an UNKNOWN resume discards is only
    // seen in memory; in a cluster it is a key.
    let window = Duration::from_secs(60);
    let redis = TestRedis::start();
    let mut config = Config::with_listen("127.0.0.1:0");
    config.cluster = Some(cluster_config(&redis, Duration::from_secs(5)));
    config.limits.resume.window = window;
    let server = TestServer::on_nodes(vec![config; 2], Some(redis));
    let key = format!("{{{}}}:r:alice", server.prefix.as_ref().unwrap());
    let mut redis = server.redis.as_ref().unwrap().client();
    let mut kept_for = || -> i64 { ::redis::cmd("PTTL").arg(&key).query(&mut redis).unwrap() };
    let _bob = open(&server.apis[0], "bob", None).0;
    for resume_with in [None, Some("0".repeat(32))] {
        let (alice, _) = open(&server.apis[1], "alice", None);
        sent_with(&server.apis[0], "bob", "alice", "kept a while");
        cancel(&server, alice, "bob", "alice");
        let ttl = kept_for();
        assert!(
            ttl > 0 && ttl <= window.as_millis() as i64,
            "kept for {ttl} ms"
        );
        let request = resume_with.as_deref().and_then(|token| resume(token, 0));
        let (alice, _) = open(&server.apis[0], "alice", request);
        assert_eq!(kept_for(), -2, "discarded by the next connect");
        cancel(&server, alice, "bob", "alice");
    }
}
