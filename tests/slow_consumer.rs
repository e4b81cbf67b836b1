//! A recipient that stops reading: its bounded queue fills, it is
//! disconnected with RESOURCE_EXHAUSTED, and everyone else carries on.

mod common;

use chat_client::api::{final_status, open_unread};
use common::*;
use grpcio::RpcStatusCode as Code;

const BIG: usize = 4000;
const MAX_SENDS: usize = 20_000;

#[test]
fn a_direct_send_to_a_full_queue_fails_and_disconnects_the_recipient() {
    let server = TestServer::start_with(|config| config.limits.queue_depth = 16);
    let _alice = server.connect("alice");
    let slow = open_unread(&server.api, "slow").unwrap();
    server.create("slow", "slow-group").unwrap();
    let text = "x".repeat(BIG);
    let mut refused = None;
    for sent in 0..MAX_SENDS {
        if let Err(status) = server.send("alice", "slow", &text) {
            refused = Some((sent, status));
            break;
        }
    }
    let (sent, status) = refused.expect("the queue filled up");
    assert_eq!(status.code(), Code::RESOURCE_EXHAUSTED, "{status:?}");
    assert!(sent >= 16, "refused after only {sent} messages");
    // Gone at once: the name, the group it was alone in.
    assert_eq!(server.names("alice"), ["alice"]);
    assert_code(
        Code::NOT_FOUND,
        server.send("alice", "slow", "still there?"),
    );
    assert_eq!(
        final_status(slow, WAIT).expect("the stream ends").code(),
        Code::RESOURCE_EXHAUSTED
    );
    let _slow_again = server.connect("slow");
}

#[test]
fn a_full_group_member_is_dropped_and_the_others_lose_nothing() {
    let server = TestServer::start_with(|config| config.limits.queue_depth = 16);
    let alice = server.connect("alice");
    let bob = server.connect("bob");
    let slow = open_unread(&server.api, "slow").unwrap();
    server.create("alice", "room").unwrap();
    server.join("bob", "room").unwrap();
    server.join("slow", "room").unwrap();
    let text = "y".repeat(BIG);
    let mut sent = 0;
    // Every send succeeds; stop once the slow member has been dropped.
    while server.names("alice").contains(&"slow".to_owned()) {
        assert!(sent < MAX_SENDS, "the slow member was never dropped");
        server.send("alice", "room", &text).unwrap();
        sent += 1;
        // Keep the readers' queues short.
        receive(&alice, 1);
        receive(&bob, 1);
    }
    assert!(sent > 16);
    assert_eq!(
        server.list("alice").unwrap()[2],
        (
            "room".to_owned(),
            chat_proto::chat::ChannelType::CHANNEL_TYPE_GROUP,
            2,
            true
        )
    );
    assert_eq!(
        final_status(slow, WAIT).expect("the stream ends").code(),
        Code::RESOURCE_EXHAUSTED
    );
    server.send("bob", "room", "after").unwrap();
    assert_eq!(receive(&alice, 1)[0].text, "after");
    assert_eq!(receive(&bob, 1)[0].text, "after");
}
