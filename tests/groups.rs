//! Group channels: create, join, leave, deletion of empty groups, and what
//! ListChannels shows.

mod common;

use chat_proto::chat::ChannelType::{CHANNEL_TYPE_GROUP as GROUP, CHANNEL_TYPE_USER as USER};
use common::*;
use grpcio::RpcStatusCode as Code;

#[test]
fn create_follows_the_rules_and_the_creator_is_a_member() {
    let server = TestServer::start();
    let _alice = server.connect("alice");
    let _bob = server.connect("bob");
    assert_code(Code::INVALID_ARGUMENT, server.create("alice", ""));
    assert_code(Code::INVALID_ARGUMENT, server.create("alice", "no spaces"));
    assert_code(
        Code::INVALID_ARGUMENT,
        server.create("alice", &"g".repeat(65)),
    );
    assert_code(Code::ALREADY_EXISTS, server.create("alice", "bob"));
    server.create("alice", "room").unwrap();
    assert_code(Code::ALREADY_EXISTS, server.create("bob", "room"));
    // Case-sensitive: "Room" is another name.
    server.create("bob", "Room").unwrap();
    assert_eq!(
        server.list("alice").unwrap(),
        vec![
            ("alice".to_owned(), USER, 0, false),
            ("bob".to_owned(), USER, 0, false),
            ("Room".to_owned(), GROUP, 1, false),
            ("room".to_owned(), GROUP, 1, true),
        ]
    );
}

#[test]
fn join_follows_the_rules() {
    let server = TestServer::start();
    let _alice = server.connect("alice");
    let _bob = server.connect("bob");
    server.create("alice", "room").unwrap();
    assert_code(Code::INVALID_ARGUMENT, server.join("bob", "bad/name"));
    assert_code(Code::NOT_FOUND, server.join("bob", "nothing"));
    assert_code(Code::NOT_FOUND, server.join("bob", "alice"));
    assert_code(Code::ALREADY_EXISTS, server.join("alice", "room"));
    server.join("bob", "room").unwrap();
    assert_code(Code::ALREADY_EXISTS, server.join("bob", "room"));
    assert_eq!(
        server.list("bob").unwrap()[2],
        ("room".to_owned(), GROUP, 2, true)
    );
}

#[test]
fn leave_follows_the_rules_and_the_last_member_deletes_the_group() {
    let server = TestServer::start();
    let _alice = server.connect("alice");
    let _bob = server.connect("bob");
    server.create("alice", "room").unwrap();
    server.join("bob", "room").unwrap();
    assert_code(Code::INVALID_ARGUMENT, server.leave("bob", ""));
    assert_code(Code::NOT_FOUND, server.leave("bob", "nothing"));
    server.leave("bob", "room").unwrap();
    assert_code(Code::FAILED_PRECONDITION, server.leave("bob", "room"));
    assert_eq!(
        server.list("bob").unwrap()[2],
        ("room".to_owned(), GROUP, 1, false)
    );
    server.leave("alice", "room").unwrap();
    assert_eq!(server.names("alice"), ["alice", "bob"]);
    assert_code(Code::NOT_FOUND, server.leave("alice", "room"));
    assert_code(Code::NOT_FOUND, server.join("bob", "room"));
    // The name is free again, for a group or a user.
    let _room_user = server.connect("room");
}

#[test]
fn list_channels_shows_every_user_and_group_with_the_callers_view() {
    let server = TestServer::start();
    let _carol = server.connect("carol");
    let _alice = server.connect("alice");
    let _bob = server.connect("bob");
    server.create("carol", "zeta").unwrap();
    server.create("bob", "alpha").unwrap();
    server.join("alice", "zeta").unwrap();
    let expected_for = |joined_alpha: bool, joined_zeta: bool| {
        vec![
            ("alice".to_owned(), USER, 0, false),
            ("bob".to_owned(), USER, 0, false),
            ("carol".to_owned(), USER, 0, false),
            ("alpha".to_owned(), GROUP, 1, joined_alpha),
            ("zeta".to_owned(), GROUP, 2, joined_zeta),
        ]
    };
    assert_eq!(server.list("alice").unwrap(), expected_for(false, true));
    assert_eq!(server.list("bob").unwrap(), expected_for(true, false));
    assert_eq!(server.list("carol").unwrap(), expected_for(false, true));
}
