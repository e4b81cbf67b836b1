//! Dead peers: a client process that stops answering (frozen with SIGSTOP)
//! is found by HTTP/2 keepalive and disconnected, releasing its groups,
//! within keepalive + timeout + 2 seconds.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chat_proto::chat::ChannelType;
use common::*;

/// The `chat-client` binary built beside this test (`cargo build
/// --workspace` or `cargo test --workspace` builds it).
fn client_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let binary = dir.join("chat-client");
    assert!(
        binary.exists(),
        "{} is missing: build the workspace's binaries first",
        binary.display()
    );
    binary
}

/// A child process killed (after being resumed) when dropped.
struct Frozen(Child);

impl Frozen {
    fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.0.id()).expect("a pid fits i32");
        // SAFETY: kill(2) on the PID of a child this test started.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_frozen_client_is_disconnected_by_keepalive() {
    const KEEPALIVE: Duration = Duration::from_secs(1);
    const TIMEOUT: Duration = Duration::from_secs(1);
    let server = TestServer::start_with(|config| {
        config.keepalive = KEEPALIVE;
        config.keepalive_timeout = TIMEOUT;
    });
    let _alice = server.connect("alice");
    server.create("alice", "room").unwrap();
    let mut child = Command::new(client_binary())
        .args(["--server", server.api.address(), "chat", "--user", "frozen"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chat-client");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let frozen = Frozen(child);
    eventually("frozen connects", || {
        server.names("alice").contains(&"frozen".to_owned())
    });
    writeln!(stdin, "/join room").unwrap();
    let room_of = |members| {
        (
            "room".to_owned(),
            ChannelType::CHANNEL_TYPE_GROUP,
            members,
            true,
        )
    };
    eventually("frozen joins the room", || {
        server.list("alice").unwrap().contains(&room_of(2))
    });

    frozen.signal(libc::SIGSTOP);
    let stopped = Instant::now();
    let limit = KEEPALIVE + TIMEOUT + Duration::from_secs(2);
    while server.names("alice").contains(&"frozen".to_owned()) {
        assert!(
            stopped.elapsed() < limit,
            "frozen was still connected {limit:?} after it stopped answering"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Gone, and its membership released.
    assert_eq!(
        server.list("alice").unwrap(),
        vec![
            ("alice".to_owned(), ChannelType::CHANNEL_TYPE_USER, 0, false),
            room_of(1)
        ]
    );
    drop(stdin);
}
