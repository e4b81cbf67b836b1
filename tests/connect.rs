//! Connect: the first event, name rules, the connection limit, and prompt
//! cleanup when a stream ends.

mod common;

use std::time::Duration;

use chat_proto::chat::ChannelType;
use common::*;
use grpcio::RpcStatusCode as Code;

#[test]
fn connected_is_the_first_event_and_the_user_is_registered_by_then() {
    let server = TestServer::start();
    let _alice = server.connect("alice");
    // No wait: the user is registered before `connected` is sent.
    assert_eq!(
        server.list("alice").unwrap(),
        vec![("alice".to_owned(), ChannelType::CHANNEL_TYPE_USER, 0, false)]
    );
}

#[test]
fn invalid_usernames_are_refused() {
    let server = TestServer::start();
    let too_long = "a".repeat(65);
    for name in [
        "",
        "has space",
        "slash/",
        "ümlaut",
        "tab\t",
        too_long.as_str(),
    ] {
        assert_eq!(
            server.connect_err(name).code(),
            Code::INVALID_ARGUMENT,
            "{name:?}"
        );
    }
    let longest = "a".repeat(64);
    let _ok = server.connect(&longest);
    let _ok2 = server.connect("A-z_0.9");
}

#[test]
fn a_name_held_by_a_user_or_a_group_is_taken_and_names_are_case_sensitive() {
    let server = TestServer::start();
    let _alice = server.connect("alice");
    assert_eq!(server.connect_err("alice").code(), Code::ALREADY_EXISTS);
    let _upper = server.connect("Alice");
    server.create("alice", "lobby").unwrap();
    assert_eq!(server.connect_err("lobby").code(), Code::ALREADY_EXISTS);
}

#[test]
fn connections_past_the_limit_are_refused() {
    // The limit is per node (in a cluster too): every stream goes to one.
    let server = TestServer::start_with(|config| config.limits.max_connections = 2);
    let _a = server.api.open_inbox("a", WAIT).unwrap();
    let b = server.api.open_inbox("b", WAIT).unwrap();
    let refused = server.api.open_inbox("c", WAIT).map(drop).unwrap_err();
    assert_eq!(refused.code(), Code::RESOURCE_EXHAUSTED);
    b.close();
    eventually("b's slot is freed", || {
        server.api.open_inbox("c", WAIT).is_ok()
    });
}

#[test]
fn cancelling_an_idle_stream_removes_the_user_promptly() {
    let server = TestServer::start();
    let observer = server.connect("observer");
    let alice = server.connect("alice");
    server.create("alice", "solo").unwrap();
    server.create("observer", "shared").unwrap();
    server.join("alice", "shared").unwrap();
    alice.close();
    let took = eventually("alice is gone", || {
        server.names("observer") == ["observer", "shared"]
    });
    assert!(took < Duration::from_secs(1), "cleanup took {took:?}");
    // She left "shared" (1 member now), "solo" was deleted, and both names
    // are free again.
    assert_eq!(
        server.list("observer").unwrap()[1],
        (
            "shared".to_owned(),
            ChannelType::CHANNEL_TYPE_GROUP,
            1,
            true
        )
    );
    let _alice_again = server.connect("alice");
    server.create("alice", "solo").unwrap();
    drop(observer);
}

#[test]
fn a_dropped_client_connection_removes_the_user() {
    let server = TestServer::start();
    let _observer = server.connect("observer");
    {
        // Its own HTTP/2 connection, dropped entirely.
        let other = server.new_api();
        let _bob = other.open_inbox("bob", WAIT).unwrap();
        server.create("bob", "bobs").unwrap();
    }
    eventually("bob is gone", || server.names("observer") == ["observer"]);
}
