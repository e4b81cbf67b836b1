//! Shutdown: open streams end with UNAVAILABLE, and the real binary exits 0
//! promptly on SIGTERM and SIGINT.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use chat_client::api::Api;
use common::binary::Binary;
use common::*;
use grpcio::RpcStatusCode as Code;

#[test]
fn stopping_the_server_ends_every_stream_with_unavailable() {
    let mut server = TestServer::start();
    let alice = server.connect("alice");
    let bob = server.connect("bob");
    server.create("alice", "room").unwrap();
    server.join("bob", "room").unwrap();
    let started = Instant::now();
    server.stop();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(end_status(&alice).code(), Code::UNAVAILABLE);
    assert_eq!(end_status(&bob).code(), Code::UNAVAILABLE);
}

fn signal_ends_streams_and_exits_zero(signal: i32) {
    let mut binary = Binary::start();
    let api = Api::connect(&format!("127.0.0.1:{}", binary.port), WAIT).unwrap();
    let alice = api.open_inbox("alice", WAIT).unwrap();
    let _idle = api.open_inbox("idle", WAIT).unwrap();
    send_with(&api, "alice", "alice", "before the signal").unwrap();
    receive(&alice, 1);
    binary.signal(signal);
    assert_eq!(end_status(&alice).code(), Code::UNAVAILABLE);
    assert_eq!(binary.wait_exit(Duration::from_secs(5)), Some(0));
}

#[test]
fn sigterm_ends_streams_with_unavailable_and_exits_zero_within_5_seconds() {
    signal_ends_streams_and_exits_zero(libc::SIGTERM);
}

#[test]
fn sigint_does_the_same() {
    signal_ends_streams_and_exits_zero(libc::SIGINT);
}

#[test]
fn a_bad_flag_is_refused_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--queue-depth", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--queue-depth"), "{stderr}");
}

#[test]
fn json_logs_are_one_object_per_line_with_fields() {
    let (mut binary, lines) = Binary::start_with(&["--log-format", "json"]);
    let api = Api::connect(&format!("127.0.0.1:{}", binary.port), WAIT).unwrap();
    let alice = api.open_inbox("alice", WAIT).unwrap();
    alice.close();
    // Wait for the server to log alice's disconnection before stopping it,
    // so the reason is the client's cancel and not the shutdown.
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|line: &String| line.contains("\"msg\":\"disconnected\""))
    {
        match lines.recv_timeout(WAIT) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("no disconnected line in {seen:#?}"),
        }
    }
    binary.signal(libc::SIGTERM);
    assert_eq!(binary.wait_exit(Duration::from_secs(5)), Some(0));
    // The process has exited, so its stderr is closed and the reader ends.
    seen.extend(lines.iter());
    let lines = seen;
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
        assert!(
            line.contains("\"level\":") && line.contains("\"ts\":"),
            "{line}"
        );
    }
    let find = |msg: &str| {
        lines
            .iter()
            .find(|line| line.contains(&format!("\"msg\":\"{msg}\"")))
            .unwrap_or_else(|| panic!("no {msg:?} line in {lines:#?}"))
    };
    assert!(find("connected").contains("\"user\":\"alice\""));
    assert!(find("disconnected").contains("\"reason\":\"client closed the stream\""));
    find("stopped");
}

#[test]
fn sigterm_under_load_reports_not_serving_ends_every_stream_and_exits_zero() {
    use chat_proto::health::health_check_response::ServingStatus;
    use chat_proto::health::HealthCheckRequest;
    use chat_proto::health_grpc::HealthClient;
    use futures::StreamExt;
    use std::sync::atomic::{AtomicBool, Ordering};

    let mut binary = Binary::start();
    let address = format!("127.0.0.1:{}", binary.port);
    let users = ["u0", "u1", "u2", "u3"];
    let apis: Vec<Api> = users
        .iter()
        .map(|_| Api::connect(&address, WAIT).unwrap())
        .collect();
    let inboxes: Vec<_> = users
        .iter()
        .zip(&apis)
        .map(|(user, api)| api.open_inbox(user, WAIT).unwrap())
        .collect();
    let mut create = chat_proto::chat::CreateGroupChatRequest::new();
    create.name = "busy".into();
    apis[0]
        .client
        .create_group_chat_opt(&create, Api::as_user("u0"))
        .unwrap();
    for (user, api) in users.iter().zip(&apis).skip(1) {
        let mut join = chat_proto::chat::JoinGroupChatRequest::new();
        join.name = "busy".into();
        api.client
            .join_group_chat_opt(&join, Api::as_user(user))
            .unwrap();
    }
    let health = HealthClient::new(apis[0].client.client.channel().clone());
    let mut request = HealthCheckRequest::new();
    request.service = "chat.v1.ChatService".into();
    let mut watch = health.watch(&request).unwrap();
    let first = futures::executor::block_on(watch.next()).unwrap().unwrap();
    assert_eq!(first.status.enum_value_or_default(), ServingStatus::SERVING);

    let stop = AtomicBool::new(false);
    let sent = std::thread::scope(|scope| {
        let senders: Vec<_> = users
            .iter()
            .zip(&apis)
            .map(|(user, api)| {
                let stop = &stop;
                scope.spawn(move || {
                    // Until the server refuses: bounded by the signal below
                    // and by a count.
                    let mut sent = 0;
                    while !stop.load(Ordering::Relaxed) && sent < 200_000 {
                        if send_with(api, user, "busy", "load").is_err() {
                            break;
                        }
                        sent += 1;
                    }
                    sent
                })
            })
            .collect();
        // Let traffic flow: wait until a member has received plenty.
        let mut received = 0;
        while received < 500 {
            match inboxes[0].next_event(WAIT) {
                Some(chat_client::api::InboxEvent::Messages(messages)) => {
                    received += messages.len();
                }
                other => panic!("expected deliveries, got {other:?}"),
            }
        }
        binary.signal(libc::SIGTERM);
        let statuses: Vec<_> =
            futures::executor::block_on(watch.by_ref().take(2).collect::<Vec<_>>())
                .into_iter()
                .map(|item| item.map_err(chat_client::api::status_of))
                .collect();
        stop.store(true, Ordering::Relaxed);
        let total: usize = senders.into_iter().map(|s| s.join().unwrap()).sum();
        (total, statuses)
    });
    let (total, statuses) = sent;
    assert!(total > 0);
    // Health said NOT_SERVING, and the watch ended with UNAVAILABLE. The
    // grpcio client reports a call's status as soon as it arrives, even
    // before (or instead of) the last message, so the order seen here is
    // not the wire order (see tests/health_reflection.rs).
    let updates: Vec<_> = statuses
        .iter()
        .filter_map(|item| item.as_ref().ok())
        .collect();
    assert!(
        updates
            .iter()
            .all(|update| update.status.enum_value_or_default() == ServingStatus::NOT_SERVING),
        "{statuses:?}"
    );
    let ended: Vec<_> = statuses
        .iter()
        .filter_map(|item| item.as_ref().err())
        .collect();
    assert!(
        matches!(ended.as_slice(), [status] if status.code() == Code::UNAVAILABLE),
        "{statuses:?}"
    );
    for inbox in &inboxes {
        assert_eq!(end_status(inbox).code(), Code::UNAVAILABLE);
    }
    assert_eq!(binary.wait_exit(Duration::from_secs(5)), Some(0));
}
