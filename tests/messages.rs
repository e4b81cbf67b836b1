//! SendMessage: validation, who receives what, ids and timestamps, ordering,
//! and the shape of deliveries.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use chat_proto::chat::ChannelType;
use common::*;
use grpcio::RpcStatusCode as Code;

#[test]
fn bad_texts_and_recipients_are_refused() {
    let server = TestServer::start_with(|config| config.limits.max_text_bytes = 100);
    let alice = server.connect("alice");
    let _bob = server.connect("bob");
    server.create("bob", "bobs").unwrap();
    for text in ["", " ", "\t\n \r", "\u{3000}"] {
        assert_code(Code::INVALID_ARGUMENT, server.send("alice", "bob", text));
    }
    assert_code(
        Code::INVALID_ARGUMENT,
        server.send("alice", "bob", &"x".repeat(101)),
    );
    // The limit counts bytes: 34 three-byte characters are 102 bytes.
    assert_code(
        Code::INVALID_ARGUMENT,
        server.send("alice", "bob", &"€".repeat(34)),
    );
    server.send("alice", "bob", &"x".repeat(100)).unwrap();
    assert_code(Code::INVALID_ARGUMENT, server.send("alice", "", "hi"));
    assert_code(Code::INVALID_ARGUMENT, server.send("alice", "b o b", "hi"));
    assert_code(Code::NOT_FOUND, server.send("alice", "nobody", "hi"));
    assert_code(Code::PERMISSION_DENIED, server.send("alice", "bobs", "hi"));
    assert_silent(&alice, Duration::from_millis(100));
}

#[test]
fn the_default_text_limit_is_4096_bytes() {
    let server = TestServer::start();
    let _alice = server.connect("alice");
    server.send("alice", "alice", &"x".repeat(4096)).unwrap();
    assert_code(
        Code::INVALID_ARGUMENT,
        server.send("alice", "alice", &"x".repeat(4097)),
    );
}

#[test]
fn requests_over_64_kib_are_refused_by_grpc() {
    let server = TestServer::start_with(|config| config.limits.max_text_bytes = 60_000);
    let _alice = server.connect("alice");
    assert_code(
        Code::RESOURCE_EXHAUSTED,
        server.send("alice", "alice", &"x".repeat(70_000)),
    );
    server.send("alice", "alice", &"x".repeat(60_000)).unwrap();
}

#[test]
fn a_direct_message_reaches_the_recipient_only_with_the_returned_id_and_time() {
    let server = TestServer::start();
    let alice = server.connect("alice");
    let bob = server.connect("bob");
    let carol = server.connect("carol");
    let reply = server.send("alice", "bob", "hi bob").unwrap();
    let delivery = next_delivery(&bob);
    assert_eq!(delivery.len(), 1, "a lone message goes out alone");
    let message = &delivery[0];
    assert_eq!(message.id, reply.message_id);
    assert_eq!(message.sent_at, reply.sent_at);
    assert!(message.sent_at.is_some());
    assert_eq!(message.sender, "alice");
    assert_eq!(message.recipient, "bob");
    assert_eq!(
        message.recipient_type.enum_value_or_default(),
        ChannelType::CHANNEL_TYPE_USER
    );
    assert_eq!(message.text, "hi bob");
    assert_silent(&alice, Duration::from_millis(100));
    assert_silent(&carol, Duration::ZERO);
}

#[test]
fn a_message_to_oneself_arrives_once() {
    let server = TestServer::start();
    let alice = server.connect("alice");
    let reply = server.send("alice", "alice", "note").unwrap();
    let delivery = next_delivery(&alice);
    assert_eq!(delivery.len(), 1);
    assert_eq!(delivery[0].id, reply.message_id);
    assert_silent(&alice, Duration::from_millis(100));
}

#[test]
fn a_group_message_reaches_every_member_sender_included_and_nobody_else() {
    let server = TestServer::start();
    let alice = server.connect("alice");
    let bob = server.connect("bob");
    let carol = server.connect("carol");
    server.create("alice", "room").unwrap();
    server.join("bob", "room").unwrap();
    let reply = server.send("bob", "room", "hello room").unwrap();
    for inbox in [&alice, &bob] {
        let message = &receive(inbox, 1)[0];
        assert_eq!(message.id, reply.message_id);
        assert_eq!(message.sent_at, reply.sent_at);
        assert_eq!(message.sender, "bob");
        assert_eq!(message.recipient, "room");
        assert_eq!(
            message.recipient_type.enum_value_or_default(),
            ChannelType::CHANNEL_TYPE_GROUP
        );
    }
    assert_silent(&carol, Duration::from_millis(100));
}

#[test]
fn one_senders_messages_arrive_in_send_order_with_unique_ids() {
    let server = TestServer::start();
    let _alice = server.connect("alice");
    let bob = server.connect("bob");
    let mut ids = Vec::new();
    for i in 0..300 {
        ids.push(
            server
                .send("alice", "bob", &format!("m{i}"))
                .unwrap()
                .message_id,
        );
    }
    let got = receive(&bob, 300);
    let texts: Vec<String> = got.iter().map(|m| m.text.clone()).collect();
    let expected: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected);
    assert_eq!(got.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 300);
}

#[test]
fn concurrent_group_senders_give_every_member_the_same_complete_order() {
    check_group_order(&TestServer::start());
}

#[test]
fn with_a_write_delay_every_member_still_gets_the_same_complete_order() {
    check_group_order(&TestServer::start_with(|config| {
        config.write_delay = Duration::from_millis(2);
    }));
}

fn check_group_order(server: &TestServer) {
    const SENDERS: usize = 4;
    const EACH: usize = 250;
    let names: Vec<String> = (0..SENDERS).map(|i| format!("m{i}")).collect();
    let inboxes: Vec<_> = names.iter().map(|n| server.connect(n)).collect();
    let listener = server.connect("listener");
    server.create("m0", "busy").unwrap();
    for name in names.iter().skip(1).chain(["listener".to_owned()].iter()) {
        server.join(name, "busy").unwrap();
    }
    std::thread::scope(|scope| {
        for name in &names {
            // Each sender on its own HTTP/2 connection.
            let api = server.new_api();
            scope.spawn(move || {
                for i in 0..EACH {
                    send_with(&api, name, "busy", &format!("{name}/{i}")).unwrap();
                }
            });
        }
    });
    let total = SENDERS * EACH;
    let reference: Vec<u64> = receive(&listener, total).iter().map(|m| m.id).collect();
    assert_eq!(
        reference.iter().collect::<HashSet<_>>().len(),
        total,
        "duplicates"
    );
    for inbox in &inboxes {
        let got = receive(inbox, total);
        assert_eq!(got.iter().map(|m| m.id).collect::<Vec<_>>(), reference);
        // Per sender, the texts are in send order.
        for name in &names {
            let own: Vec<&str> = got
                .iter()
                .filter(|m| &m.sender == name)
                .map(|m| m.text.as_str())
                .collect();
            let expected: Vec<String> = (0..EACH).map(|i| format!("{name}/{i}")).collect();
            assert_eq!(own, expected);
        }
    }
}

#[test]
fn deliveries_hold_at_most_256_messages_and_64_kib() {
    check_delivery_caps(&TestServer::start());
}

#[test]
fn with_a_write_delay_deliveries_still_hold_at_most_256_messages_and_64_kib() {
    check_delivery_caps(&TestServer::start_with(|config| {
        config.write_delay = Duration::from_millis(20);
    }));
}

fn check_delivery_caps(server: &TestServer) {
    use protobuf::Message as _;
    let _alice = server.connect("alice");
    let bob = server.connect("bob");
    let other = server.new_api();
    // Large and small messages sent fast from two connections, so some
    // queue up behind writes in flight.
    let big = "b".repeat(4000);
    let api = &server.api;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..100 {
                send_with(api, "alice", "bob", &big).unwrap();
            }
        });
        scope.spawn(|| {
            for i in 0..1000 {
                send_with(&other, "alice", "bob", &format!("s{i}")).unwrap();
            }
        });
    });
    let mut received = 0;
    while received < 1100 {
        let delivery = next_delivery(&bob);
        assert!(
            (1..=256).contains(&delivery.len()),
            "{} messages",
            delivery.len()
        );
        let mut encoded = chat_proto::chat::Delivery::new();
        encoded.messages = delivery;
        assert!(
            encoded.compute_size() <= 64 * 1024,
            "{} bytes",
            encoded.compute_size()
        );
        received += encoded.messages.len();
    }
    assert_eq!(received, 1100);
}
