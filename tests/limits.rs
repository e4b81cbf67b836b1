//! Per-user and per-connection limits: groups per user, queued bytes, the
//! request size the config passes to the decoder, and a
//! reader that never reads while others exchange 100k messages through the
//! real binary (its memory stays bounded, the others lose nothing).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use chat_client::api::{final_status, open_unread, Api};
use chat_proto::chat::SendMessageRequest;
use common::*;
use futures::future::join_all;
use grpcio::RpcStatusCode as Code;

#[test]
fn a_user_may_be_in_at_most_max_groups_per_user_groups() {
    let server = TestServer::start_with(|config| config.limits.max_groups_per_user = 2);
    let _alice = server.connect("alice");
    let _bob = server.connect("bob");
    server.create("alice", "a1").unwrap();
    server.create("alice", "a2").unwrap();
    assert_code(Code::RESOURCE_EXHAUSTED, server.create("alice", "a3"));
    server.create("bob", "b1").unwrap();
    assert_code(Code::RESOURCE_EXHAUSTED, server.join("alice", "b1"));
    server.leave("alice", "a2").unwrap();
    server.join("alice", "b1").unwrap();
}

#[test]
fn a_queue_is_bounded_in_bytes_too() {
    // Deep enough in messages that only the byte bound can trip.
    let server = TestServer::start_with(|config| {
        config.limits.queue_depth = 100_000;
        config.limits.queue_bytes = 64 * 1024;
    });
    let _alice = server.connect("alice");
    let stalled = open_unread(&server.api, "stalled").unwrap();
    let text = "q".repeat(4000);
    let mut refused = None;
    for sent in 0..20_000 {
        if let Err(status) = server.send("alice", "stalled", &text) {
            refused = Some((sent, status));
            break;
        }
    }
    let (sent, status) = refused.expect("the byte bound was reached");
    assert_eq!(status.code(), Code::RESOURCE_EXHAUSTED);
    // Far fewer than the 100,000-message depth: the bytes bound tripped.
    assert!(sent < 10_000, "refused only after {sent} messages");
    assert_eq!(
        final_status(stalled, WAIT).expect("the stream ends").code(),
        Code::RESOURCE_EXHAUSTED
    );
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

#[test]
fn a_reader_that_never_reads_costs_bounded_memory_and_nobody_else_loses_anything() {
    const MESSAGES: usize = 100_000;
    const IN_FLIGHT: usize = 64;
    let mut server = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(["--listen", "127.0.0.1:0", "--threads", "2"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = server.0.id();
    let stderr = BufReader::new(server.0.stderr.take().unwrap());
    let (port_tx, port_rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(rest) = line.split("port: ").nth(1) {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let _ = port_tx.send(digits);
            }
        }
    });
    let port = port_rx
        .recv_timeout(WAIT)
        .expect("the server logs its port");
    let address = format!("127.0.0.1:{port}");
    let sender = Api::connect(&address, WAIT).unwrap();
    let listener = Api::connect(&address, WAIT).unwrap();
    let stalled_api = Api::connect(&address, WAIT).unwrap();
    let alice = sender.open_inbox("alice", WAIT).unwrap();
    let bob = listener.open_inbox("bob", WAIT).unwrap();
    let stalled = open_unread(&stalled_api, "stalled").unwrap();
    let create = |user: &str| {
        let mut request = chat_proto::chat::CreateGroupChatRequest::new();
        request.name = "room".into();
        sender
            .client
            .create_group_chat_opt(&request, Api::as_user(user))
    };
    create("alice").unwrap();
    for (api, user) in [(&listener, "bob"), (&stalled_api, "stalled")] {
        let mut request = chat_proto::chat::JoinGroupChatRequest::new();
        request.name = "room".into();
        api.client
            .join_group_chat_opt(&request, Api::as_user(user))
            .unwrap();
    }
    let rss_before = rss_kib(pid);

    // alice sends 100k group messages, IN_FLIGHT at a time, while alice and
    // bob read everything; "stalled" reads nothing.
    let readers = [(&alice, "alice"), (&bob, "bob")].map(|(inbox, name)| {
        let events = inbox.events().clone();
        std::thread::spawn(move || {
            let mut texts = Vec::with_capacity(MESSAGES);
            while texts.len() < MESSAGES {
                match events.recv_timeout(Duration::from_secs(30)) {
                    Ok(chat_client::api::InboxEvent::Messages(messages)) => {
                        texts.extend(messages.into_iter().map(|m| m.text));
                    }
                    other => panic!("{name}: unexpected {other:?} after {}", texts.len()),
                }
            }
            texts
        })
    });
    let mut peak = rss_before;
    for batch in 0..MESSAGES / IN_FLIGHT {
        let calls: Vec<_> = (0..IN_FLIGHT)
            .map(|i| {
                let mut request = SendMessageRequest::new();
                request.recipient = "room".into();
                request.text = format!("{:06}", batch * IN_FLIGHT + i);
                sender
                    .client
                    .send_message_async_opt(&request, Api::as_user("alice"))
                    .unwrap()
            })
            .collect();
        for reply in futures::executor::block_on(join_all(calls)) {
            reply.unwrap();
        }
        if batch % 100 == 0 {
            peak = peak.max(rss_kib(pid));
        }
    }
    let remainder: Vec<_> = (MESSAGES / IN_FLIGHT * IN_FLIGHT..MESSAGES).collect();
    for i in remainder {
        send_with(&sender, "alice", "room", &format!("{i:06}")).unwrap();
    }
    peak = peak.max(rss_kib(pid));
    // Calls in flight together have no defined order, so check that each
    // reader got every message exactly once, and both in the same order.
    let [alice_got, bob_got] = readers.map(|reader| reader.join().unwrap());
    let expected: Vec<String> = (0..MESSAGES).map(|i| format!("{i:06}")).collect();
    let mut sorted = alice_got.clone();
    sorted.sort();
    assert!(sorted == expected, "alice lost or duplicated messages");
    assert!(alice_got == bob_got, "alice and bob saw different orders");
    // The stalled reader was dropped, with RESOURCE_EXHAUSTED.
    assert_eq!(
        final_status(stalled, WAIT).expect("the stream ends").code(),
        Code::RESOURCE_EXHAUSTED
    );
    let growth = peak.saturating_sub(rss_before);
    println!("server RSS: {rss_before} KiB before, peak {peak} KiB, growth {growth} KiB");
    assert!(growth < 64 * 1024, "server RSS grew by {growth} KiB");
    // SAFETY: kill(2) on the PID of the child this test started.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    assert!(server.0.wait().unwrap().success());
}

/// The server process, killed if the test fails before stopping it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn the_request_size_limit_is_the_one_the_config_passes_in() {
    let server = TestServer::start_with(|config| config.max_request_bytes = 1024);
    let _bob = server.connect("bob");
    server.send("bob", "bob", &"x".repeat(900)).unwrap();
    let status = server.send("bob", "bob", &"x".repeat(1100)).unwrap_err();
    assert_eq!(status.code(), Code::RESOURCE_EXHAUSTED, "{status:?}");
    assert!(
        status.message().contains("over the limit of 1024"),
        "{status:?}"
    );
}
