//! Group history (GetHistory and JoinGroupChatResponse.position): the order
//! members received, every field as delivered, the exact boundary a join's
//! position draws, backward, forward and both-bounds reads with `more` and
//! `truncated`, eviction by count and by bytes, history turned off, who may
//! read, and history that lives and dies with its group.

mod common;

use chat_client::api::{status_of, Api, Inbox};
use chat_proto::chat::{GetHistoryRequest, GetHistoryResponse, JoinGroupChatRequest, Message};
use common::*;
use grpcio::{CallOption, RpcStatus, RpcStatusCode as Code};

/// GetHistory as `caller` through `api`.
fn history_with(
    api: &Api,
    caller: CallOption,
    group: &str,
    after_id: u64,
    before_id: u64,
    limit: u32,
) -> Result<GetHistoryResponse, RpcStatus> {
    let mut request = GetHistoryRequest::new();
    request.group = group.to_owned();
    request.after_id = after_id;
    request.before_id = before_id;
    request.limit = limit;
    api.client
        .get_history_opt(&request, caller)
        .map_err(status_of)
}

/// GetHistory as `caller` through the next node.
fn history(
    server: &TestServer,
    caller: &str,
    group: &str,
    after_id: u64,
    before_id: u64,
    limit: u32,
) -> Result<GetHistoryResponse, RpcStatus> {
    history_with(
        server.next_api(),
        Api::as_user(caller),
        group,
        after_id,
        before_id,
        limit,
    )
}

/// A page read that must succeed: its ids, `more` and `truncated`.
#[track_caller]
fn page(
    server: &TestServer,
    caller: &str,
    group: &str,
    after_id: u64,
    before_id: u64,
    limit: u32,
) -> (Vec<u64>, bool, bool) {
    let page = history(server, caller, group, after_id, before_id, limit)
        .unwrap_or_else(|status| panic!("GetHistory {group}: {status:?}"));
    let ids = page.messages.iter().map(|m| m.id).collect();
    (ids, page.more, page.truncated)
}

/// JoinGroupChat as `user`; its position.
#[track_caller]
fn join_at(server: &TestServer, user: &str, group: &str) -> u64 {
    let mut request = JoinGroupChatRequest::new();
    request.name = group.to_owned();
    server
        .next_api()
        .client
        .join_group_chat_opt(&request, Api::as_user(user))
        .map_err(status_of)
        .unwrap_or_else(|status| panic!("{user} joins {group}: {status:?}"))
        .position
}

/// Sends `count` messages from `user` to `group`; their ids.
#[track_caller]
fn send_many(server: &TestServer, user: &str, group: &str, count: usize) -> Vec<u64> {
    (0..count)
        .map(|k| {
            server
                .send(user, group, &format!("{user} #{k}"))
                .unwrap_or_else(|status| panic!("send #{k}: {status:?}"))
                .message_id
        })
        .collect()
}

/// Reads deliveries until at least `count` messages came.
#[track_caller]
fn receive_at_least(inbox: &Inbox, count: usize, into: &mut Vec<Message>) {
    while into.len() < count {
        into.extend(next_delivery(inbox));
    }
}

#[test]
fn history_is_the_order_every_member_received_with_every_field_as_delivered() {
    let server = TestServer::start();
    let users = ["ann", "ben", "cat"];
    let inboxes: Vec<Inbox> = users.iter().map(|user| server.connect(user)).collect();
    server.create("ann", "room").unwrap();
    server.join("ben", "room").unwrap();
    server.join("cat", "room").unwrap();
    let per_sender = 30;
    let senders: Vec<_> = users
        .iter()
        .map(|user| {
            let api = server.new_api();
            let user = user.to_string();
            std::thread::spawn(move || {
                for k in 0..per_sender {
                    send_with(&api, &user, "room", &format!("{user} #{k}")).unwrap();
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
    let total = users.len() * per_sender;
    let delivered = receive(&inboxes[0], total);
    for (user, inbox) in users.iter().zip(&inboxes).skip(1) {
        assert_eq!(receive(inbox, total), delivered, "{user}'s stream");
    }
    assert!(delivered.iter().all(|m| m.sent_at.is_some()));
    // Every member, through every node, reads the same history.
    for user in users {
        for api in &server.apis {
            let page = history_with(api, Api::as_user(user), "room", 0, 0, 500).unwrap();
            assert_eq!(page.messages, delivered, "{user} through {}", api.address());
            assert!(!page.more && !page.truncated);
        }
    }
}

#[test]
fn a_joins_position_splits_history_from_the_stream_exactly() {
    let server = TestServer::start();
    let alice = server.connect("alice");
    let bob = server.connect("bob");
    let carol = server.connect("carol");
    server.create("alice", "room").unwrap();
    // Nothing said yet: position 0, and nothing before it.
    assert_eq!(join_at(&server, "carol", "room"), 0);
    assert_eq!(
        page(&server, "carol", "room", 0, 1, 500),
        (vec![], false, false)
    );
    // Bob joins while alice is sending.
    let total = 60;
    let api = server.new_api();
    let sender = std::thread::spawn(move || {
        for k in 0..total {
            send_with(&api, "alice", "room", &format!("#{k}")).unwrap();
        }
    });
    let mut seen = Vec::new();
    receive_at_least(&alice, 10, &mut seen);
    let position = join_at(&server, "bob", "room");
    sender.join().unwrap();
    receive_at_least(&alice, total, &mut seen);
    assert_eq!(seen.len(), total);
    assert!(position >= seen[9].id, "bob joined after #9 was delivered");
    let (before, after): (Vec<Message>, Vec<Message>) =
        seen.iter().cloned().partition(|m| m.id <= position);
    // Every message bob's stream delivers has an id > position, and none
    // is missing...
    assert_eq!(receive(&bob, after.len()), after);
    assert_silent(&bob, std::time::Duration::from_millis(100));
    // ...and history below position + 1 is exactly what came before.
    let page = history(&server, "bob", "room", 0, position + 1, 500).unwrap();
    assert_eq!(page.messages, before);
    assert!(!page.more && !page.truncated);
    if let Some(last) = before.last() {
        assert_eq!(last.id, position, "the position is the newest message's id");
    }
    assert_eq!(receive(&carol, total), seen);
}

#[test]
fn a_member_reads_what_was_said_before_it_joined() {
    let server = TestServer::start();
    let _alice = server.connect("alice");
    let _bob = server.connect("bob");
    server.create("alice", "room").unwrap();
    let ids = send_many(&server, "alice", "room", 3);
    assert_eq!(join_at(&server, "bob", "room"), ids[2]);
    let page = history(&server, "bob", "room", 0, 0, 0).unwrap();
    let texts: Vec<&str> = page.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["alice #0", "alice #1", "alice #2"]);
    assert_eq!(page.messages.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
    assert!(page
        .messages
        .iter()
        .all(|m| m.sender == "alice" && m.recipient == "room"));
}

#[test]
fn backward_forward_and_both_bounds_reads() {
    let server = TestServer::start();
    let _alice = server.connect("alice");
    server.create("alice", "room").unwrap();
    let ids = send_many(&server, "alice", "room", 10);
    let read = |after, before, limit| page(&server, "alice", "room", after, before, limit);
    // Backward (scrollback): the newest `limit` below before_id, oldest first.
    assert_eq!(read(0, 0, 3), (ids[7..].to_vec(), true, false));
    assert_eq!(read(0, ids[5], 3), (ids[2..5].to_vec(), true, false));
    assert_eq!(read(0, ids[2], 3), (ids[..2].to_vec(), false, false));
    assert_eq!(read(0, ids[0], 3), (vec![], false, false));
    // Forward (catch-up): the oldest `limit` above after_id.
    assert_eq!(read(ids[3], 0, 4), (ids[4..8].to_vec(), true, false));
    assert_eq!(read(ids[7], 0, 4), (ids[8..].to_vec(), false, false));
    assert_eq!(read(ids[9], 0, 4), (vec![], false, false));
    // Both: the oldest `limit` strictly between.
    assert_eq!(read(ids[1], ids[6], 10), (ids[2..6].to_vec(), false, false));
    assert_eq!(read(ids[1], ids[6], 2), (ids[2..4].to_vec(), true, false));
    assert_eq!(read(ids[1], ids[2], 2), (vec![], false, false));
    // `more` exactly: a range of exactly `limit` messages has no more.
    assert_eq!(read(0, 0, 10), (ids.clone(), false, false));
    assert_eq!(read(0, 0, 9), (ids[1..].to_vec(), true, false));
    assert_eq!(read(ids[0], 0, 9), (ids[1..].to_vec(), false, false));
    assert_eq!(read(ids[0], 0, 8), (ids[1..9].to_vec(), true, false));
}

#[test]
fn a_limit_of_0_means_50_and_over_500_is_invalid() {
    let server = TestServer::start();
    let _alice = server.connect("alice");
    server.create("alice", "room").unwrap();
    let ids = send_many(&server, "alice", "room", 60);
    assert_eq!(
        page(&server, "alice", "room", 0, 0, 0),
        (ids[10..].to_vec(), true, false)
    );
    assert_eq!(
        page(&server, "alice", "room", ids[0], 0, 0),
        (ids[1..51].to_vec(), true, false)
    );
    assert_eq!(
        page(&server, "alice", "room", 0, 0, 500),
        (ids.clone(), false, false)
    );
    assert_code(
        Code::INVALID_ARGUMENT,
        history(&server, "alice", "room", 0, 0, 501),
    );
    assert_code(
        Code::INVALID_ARGUMENT,
        history(&server, "alice", "room", 0, 0, u32::MAX),
    );
}

#[test]
fn messages_evicted_by_count_read_as_truncated() {
    let server = TestServer::start_with(|config| config.limits.history.messages = 5);
    let _alice = server.connect("alice");
    server.create("alice", "room").unwrap();
    let ids = send_many(&server, "alice", "room", 12);
    let read = |after, before, limit| page(&server, "alice", "room", after, before, limit);
    let kept = ids[7..].to_vec();
    // Backward: truncated once the page reaches the oldest kept.
    assert_eq!(read(0, 0, 0), (kept.clone(), false, true));
    assert_eq!(read(0, 0, 5), (kept.clone(), false, true));
    assert_eq!(read(0, 0, 3), (ids[9..].to_vec(), true, false));
    assert_eq!(read(0, ids[9], 2), (ids[7..9].to_vec(), false, true));
    assert_eq!(read(0, ids[7], 0), (vec![], false, true));
    assert_eq!(read(0, ids[0], 0), (vec![], false, false), "nothing older");
    // Forward: truncated when evicted messages lie between after_id and
    // the first message returned.
    assert_eq!(read(ids[0], 0, 0), (kept.clone(), false, true));
    assert_eq!(read(ids[5], 0, 2), (ids[7..9].to_vec(), true, true));
    assert_eq!(read(ids[6], 0, 0), (kept.clone(), false, false));
    assert_eq!(read(ids[8], 0, 0), (ids[9..].to_vec(), false, false));
    assert_eq!(read(ids[11], 0, 0), (vec![], false, false));
    // Both bounds, reading forward.
    assert_eq!(read(ids[2], ids[9], 0), (ids[7..9].to_vec(), false, true));
    assert_eq!(read(ids[2], ids[6], 0), (vec![], false, true));
    assert_eq!(read(ids[7], ids[9], 0), (ids[8..9].to_vec(), false, false));
}

#[test]
fn messages_evicted_by_bytes_read_as_truncated() {
    let server = TestServer::start_with(|config| config.limits.history.bytes = 100);
    let _alice = server.connect("alice");
    server.create("alice", "room").unwrap();
    let texts: Vec<String> = (0..5).map(|k| format!("{k}").repeat(30)).collect();
    let ids: Vec<u64> = texts
        .iter()
        .map(|text| server.send("alice", "room", text).unwrap().message_id)
        .collect();
    // 3 x 30 bytes fit in 100; 4 do not.
    let newest = history(&server, "alice", "room", 0, 0, 0).unwrap();
    let kept: Vec<&str> = newest.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        kept,
        texts[2..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(!newest.more && newest.truncated);
    assert_eq!(
        page(&server, "alice", "room", ids[0], 0, 0),
        (ids[2..].to_vec(), false, true)
    );
    assert_eq!(
        page(&server, "alice", "room", ids[1], 0, 0),
        (ids[2..].to_vec(), false, false)
    );
    // A text longer than the whole budget is never kept: a forward read
    // past the last kept one says so.
    let big = server
        .send("alice", "room", &"b".repeat(101))
        .unwrap()
        .message_id;
    let (after, more, truncated) = page(&server, "alice", "room", ids[4], 0, 0);
    assert!(after.is_empty() && !more && truncated, "{after:?}");
    let (all, _, truncated) = page(&server, "alice", "room", 0, 0, 0);
    assert!(!all.contains(&big) && truncated, "{all:?}");
}

#[test]
fn history_off_keeps_nothing_but_positions_still_count() {
    let server = TestServer::start_with(|config| config.limits.history.messages = 0);
    let alice = server.connect("alice");
    let _bob = server.connect("bob");
    server.create("alice", "room").unwrap();
    let ids = send_many(&server, "alice", "room", 3);
    assert_eq!(receive(&alice, 3).len(), 3, "messages are still delivered");
    assert_eq!(join_at(&server, "bob", "room"), ids[2]);
    assert_eq!(page(&server, "bob", "room", 0, 0, 0), (vec![], false, true));
    assert_eq!(
        page(&server, "bob", "room", ids[2], 0, 0),
        (vec![], false, false)
    );
}

#[test]
fn only_members_read_history_and_bad_requests_are_refused() {
    let server = TestServer::start();
    let _alice = server.connect("alice");
    let _bob = server.connect("bob");
    server.create("alice", "room").unwrap();
    send_many(&server, "alice", "room", 2);
    assert_code(
        Code::PERMISSION_DENIED,
        history(&server, "bob", "room", 0, 0, 0),
    );
    assert_code(Code::NOT_FOUND, history(&server, "bob", "nothing", 0, 0, 0));
    assert_code(Code::NOT_FOUND, history(&server, "bob", "alice", 0, 0, 0));
    for bad in ["", "bad name", "a/b", "g".repeat(65).as_str()] {
        assert_code(
            Code::INVALID_ARGUMENT,
            history(&server, "bob", bad, 0, 0, 0),
        );
    }
    // Not connected, or no caller at all.
    assert_code(
        Code::UNAUTHENTICATED,
        history(&server, "nobody", "room", 0, 0, 0),
    );
    assert_code(
        Code::UNAUTHENTICATED,
        history_with(server.next_api(), CallOption::default(), "room", 0, 0, 0),
    );
    // The caller is checked first, as on every call, even with a bad limit.
    assert_code(
        Code::UNAUTHENTICATED,
        history(&server, "nobody", "room", 0, 0, 501),
    );
    // A member who leaves may no longer read.
    server.join("bob", "room").unwrap();
    assert_eq!(page(&server, "bob", "room", 0, 0, 0).0.len(), 2);
    server.leave("bob", "room").unwrap();
    assert_code(
        Code::PERMISSION_DENIED,
        history(&server, "bob", "room", 0, 0, 0),
    );
}

#[test]
fn history_is_gone_with_its_group_and_a_new_group_of_the_name_starts_empty() {
    let server = TestServer::start();
    let _alice = server.connect("alice");
    let bob = server.connect("bob");
    // Deleted by the last member's leave.
    server.create("alice", "room").unwrap();
    send_many(&server, "alice", "room", 3);
    server.leave("alice", "room").unwrap();
    assert_code(Code::NOT_FOUND, history(&server, "alice", "room", 0, 0, 0));
    server.create("alice", "room").unwrap();
    assert_eq!(
        page(&server, "alice", "room", 0, 0, 0),
        (vec![], false, false)
    );
    assert_eq!(join_at(&server, "bob", "room"), 0);
    // Deleted by the last member's disconnect.
    server.create("bob", "den").unwrap();
    send_many(&server, "bob", "den", 3);
    drop(bob);
    eventually("bob's group is deleted", || {
        !server.names("alice").contains(&"den".to_owned())
    });
    server.create("alice", "den").unwrap();
    assert_eq!(
        page(&server, "alice", "den", 0, 0, 0),
        (vec![], false, false)
    );
    assert_eq!(
        page(&server, "alice", "den", 1, 0, 0),
        (vec![], false, false)
    );
}
