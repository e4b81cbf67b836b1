//! The `streams` scenario's verification at a small scale: 3 real
//! `chat-server` nodes on one real `redis-server` (both started here on
//! free loopback ports and stopped by their PIDs), 200 users per node. A
//! cluster passes every check and frees the stopped node's users; three
//! separate servers that share nothing fail it (users missing from every
//! listing, messages to other nodes refused), so the checks can fail.
//! Timing figures are reported by the scenario, never asserted here.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A process this test started, killed by its PID when dropped.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

fn redis_answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

fn start_redis() -> (Started, u16) {
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--logfile", ""])
        .args(["--daemonize", "no", "--protected-mode", "no"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| {
            panic!("cannot start redis-server (scripts/install-deps.sh installs it): {error}")
        });
    let redis = Started(child);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !redis_answers_ping(port) {
        assert!(
            Instant::now() < deadline,
            "redis-server on {port} did not answer PING"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    (redis, port)
}

/// The `chat-server` binary of this workspace's build: beside chat-bench.
fn server_binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_chat-bench")).with_file_name("chat-server");
    assert!(
        path.exists(),
        "{} is missing: build the workspace (cargo build --workspace)",
        path.display()
    );
    path
}

/// Starts a node with `flags` on a free port; returns it and its address.
fn start_node(flags: &[String]) -> (Started, String) {
    let mut child = Command::new(server_binary())
        .args(["--listen", "127.0.0.1:0", "--threads", "2"])
        .args(flags)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chat-server");
    let stderr = child.stderr.take().expect("piped stderr");
    let node = Started(child);
    let (port_tx, port_rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if line.contains("listening") {
                let port = line
                    .split("port: ")
                    .nth(1)
                    .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|digits| digits.parse::<u16>().ok());
                let _ = port_tx.send(port);
            }
        }
    });
    let port = port_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the node logs its port")
        .expect("the port parses");
    (node, format!("127.0.0.1:{port}"))
}

/// Runs `chat-bench` against `nodes` with the small `streams` scenario;
/// returns its output and its JSON report.
fn run_streams(nodes: &[(Started, String)], redis: Option<(&Started, u16)>) -> (Output, String) {
    let servers: Vec<&str> = nodes.iter().map(|(_, address)| address.as_str()).collect();
    let pids: Vec<String> = nodes
        .iter()
        .map(|(node, _)| node.0.id().to_string())
        .collect();
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat-bench"));
    command
        .args(["--server", &servers.join(",")])
        .args(["--server-pid", &pids.join(",")])
        .args(["--timeout-secs", "60"]);
    if let Some((redis, port)) = redis {
        command
            .args(["--redis-pid", &redis.0.id().to_string()])
            .args(["--redis-addr", &format!("127.0.0.1:{port}")]);
    }
    let output = command
        .args([
            "streams",
            "--users-per-node",
            "200",
            "--channels-per-node",
            "4",
        ])
        .args(["--sample-per-node", "5"])
        .output()
        .expect("run chat-bench");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let report = stdout
        .lines()
        .find(|line| line.starts_with('{'))
        .unwrap_or_default()
        .to_owned();
    (output, report)
}

fn field<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    &report[name]
}

#[test]
fn three_nodes_on_one_redis_pass_every_check_and_free_a_stopped_nodes_users() {
    let (redis, port) = start_redis();
    let flags: Vec<String> = [
        "--redis",
        &format!("redis://127.0.0.1:{port}"),
        "--redis-prefix",
        "streams-test",
        "--node-lease-secs",
        "5",
    ]
    .iter()
    .map(|flag| (*flag).to_owned())
    .collect();
    let mut nodes: Vec<(Started, String)> = (0..3).map(|_| start_node(&flags)).collect();
    let (output, report) = run_streams(&nodes, Some((&redis, port)));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "chat-bench failed: {report}\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&report).expect("a JSON report");
    assert_eq!(field(&report, "scenario"), "cluster-streams");
    assert_eq!(field(&report, "connected"), 600);
    assert_eq!(field(&report, "failures"), &serde_json::json!([]));
    // 15 sampled users, 5 per node: one direct message and one group
    // message each; each gets one direct and the 15 group messages.
    assert_eq!(field(&report, "sent"), 30);
    assert_eq!(field(&report, "received"), 15 * 16);
    for check in [
        "lost",
        "duplicated",
        "reordered",
        "unexpected",
        "order_mismatches",
    ] {
        assert_eq!(field(&report, check), 0, "{check}");
    }
    assert_eq!(field(&report, "list_calls"), 6);
    assert_eq!(field(&report, "sigterm_freed_users"), 195);
    assert!(
        field(&report, "redis_bytes_per_user")
            .as_f64()
            .unwrap_or(0.0)
            > 0.0
    );
    assert_eq!(
        field(&report, "node_kb_per_stream")
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    // The SIGTERM ended node 0, and cleanly.
    let node_zero = &mut nodes[0].0 .0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = node_zero.try_wait().expect("wait for node 0") {
            break status;
        }
        assert!(Instant::now() < deadline, "node 0 still runs after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "node 0 exited with {status}");
}

#[test]
fn three_servers_that_share_nothing_fail_the_checks() {
    let mut nodes: Vec<(Started, String)> = (0..3).map(|_| start_node(&[])).collect();
    let (output, report) = run_streams(&nodes, None);
    assert!(!output.status.success(), "chat-bench passed: {report}");
    let report: serde_json::Value = serde_json::from_str(&report).expect("a JSON report");
    let failures = field(&report, "failures").to_string();
    assert!(
        failures.contains("users missing"),
        "no listing failure in {failures}"
    );
    // Each node knows only its own users: direct messages to the next
    // node and group joins across nodes are refused.
    assert!(
        field(&report, "errors")
            .as_object()
            .is_some_and(|errors| !errors.is_empty())
            || failures.contains("JoinGroupChat"),
        "no refused call in {report}"
    );
    for (node, _) in &mut nodes {
        let _ = node.0.kill();
    }
}
