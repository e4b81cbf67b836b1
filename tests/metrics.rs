//! `--metrics-listen`: the real server with its metrics endpoint on
//! 127.0.0.1:0, scraped over real HTTP. Calls move the counters by exact
//! amounts, the gauges follow the chat's state (and fall when users leave),
//! every series is there from the start, other paths and methods are
//! refused, a half-sent request holds up no one, and the endpoint stops
//! with the server.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use chat_client::api::{final_status, open_unread};
use chat_server::config::Config;
use common::*;
use grpcio::RpcStatusCode as Code;

const SERVICE: &str = "chat.v1.ChatService";
const METHODS: [&str; 6] = [
    "Connect",
    "CreateGroupChat",
    "JoinGroupChat",
    "LeaveGroupChat",
    "SendMessage",
    "ListChannels",
];
const CODES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// A server with metrics on 127.0.0.1:0; `adjust` changes the rest.
fn start(adjust: impl FnOnce(&mut Config)) -> (TestServer, u16) {
    let server = TestServer::start_with(|config| {
        config.metrics_listen = Some("127.0.0.1:0".to_owned());
        adjust(config);
    });
    let port = server
        .server
        .as_ref()
        .and_then(|running| running.metrics_port())
        .expect("metrics are on");
    (server, port)
}

/// An HTTP response: status code, head, body.
struct Response {
    status: u16,
    head: String,
    body: String,
}

/// Sends `request` as it is and reads the response to the end.
fn http(port: u16, request: &[u8]) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("metrics port reachable");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    stream.write_all(request).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("a whole response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    Response {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// One scrape: every sample by its series (name and labels as written).
struct Scrape(HashMap<String, f64>);

fn scrape(port: u16) -> Scrape {
    let response = http(
        port,
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n",
    );
    assert_eq!(response.status, 200, "{}", response.head);
    let samples = response
        .body
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("series value");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect();
    Scrape(samples)
}

impl Scrape {
    #[track_caller]
    fn get(&self, series: &str) -> f64 {
        match self.0.get(series) {
            Some(value) => *value,
            None => panic!("no series {series}"),
        }
    }
}

fn grpc_type(method: &str) -> &'static str {
    if method == "Connect" {
        "server_stream"
    } else {
        "unary"
    }
}

/// A per-method gRPC series, e.g. `grpc("grpc_server_started_total", "SendMessage")`.
fn grpc(name: &str, method: &str) -> String {
    format!(
        "{name}{{grpc_type=\"{}\",grpc_service=\"{SERVICE}\",grpc_method=\"{method}\"}}",
        grpc_type(method)
    )
}

fn handled(method: &str, code: &str) -> String {
    format!(
        "grpc_server_handled_total{{grpc_type=\"{}\",grpc_service=\"{SERVICE}\",grpc_method=\"{method}\",grpc_code=\"{code}\"}}",
        grpc_type(method)
    )
}

fn labelled(name: &str, label: &str, value: &str) -> String {
    format!("{name}{{{label}=\"{value}\"}}")
}

#[test]
fn a_fresh_server_shows_every_series_at_zero() {
    let (_server, port) = start(|_| {});
    let response = http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        response
            .head
            .contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{}",
        response.head
    );
    let now = scrape(port);
    for method in METHODS {
        for code in CODES {
            assert_eq!(now.get(&handled(method, code)), 0.0, "{method} {code}");
        }
        for name in [
            "grpc_server_started_total",
            "grpc_server_msg_received_total",
            "grpc_server_msg_sent_total",
        ] {
            assert_eq!(now.get(&grpc(name, method)), 0.0, "{name} {method}");
        }
        let count = grpc("grpc_server_handling_seconds_count", method);
        assert_eq!(now.0.contains_key(&count), method != "Connect", "{method}");
    }
    for code in &CODES[1..] {
        assert_eq!(now.get(&labelled("chat_refusals_total", "code", code)), 0.0);
    }
    for reason in ["client", "slow_consumer", "shutdown"] {
        assert_eq!(
            now.get(&labelled("chat_disconnects_total", "reason", reason)),
            0.0
        );
    }
    for kind in ["direct", "group"] {
        assert_eq!(now.get(&labelled("chat_messages_total", "kind", kind)), 0.0);
    }
    for gauge in [
        "chat_connected_users",
        "chat_groups",
        "chat_group_memberships",
        "chat_queued_messages",
        "chat_queued_bytes",
        "chat_connections_total",
        "chat_deliveries_total",
        "chat_delivery_writes_total",
    ] {
        assert_eq!(now.get(gauge), 0.0, "{gauge}");
    }
    let version = labelled("chat_build_info", "version", env!("CARGO_PKG_VERSION"));
    assert_eq!(now.get(&version), 1.0);
    assert!(now.get("process_resident_memory_bytes") > 0.0);
    assert!(now.get("process_open_fds") > 0.0);
    assert!(now.get("process_max_fds") >= now.get("process_open_fds"));
    assert!(now.get("process_start_time_seconds") > 1.5e9);
    assert!(now.get("process_cpu_seconds_total") >= 0.0);
}

#[test]
fn calls_move_the_counters_by_exact_amounts_and_the_gauges_follow() {
    let (server, port) = start(|_| {});
    let alice = server.connect("alice");
    let bob = server.connect("bob");
    server.create("alice", "room").unwrap();
    server.join("bob", "room").unwrap();
    server.send("alice", "bob", "hello bob").unwrap();
    receive(&bob, 1);
    server.send("alice", "room", "hello room").unwrap();
    receive(&alice, 1);
    receive(&bob, 1);
    assert_code(Code::NOT_FOUND, server.send("alice", "nobody", "hello?"));
    assert_eq!(server.connect_err("alice").code(), Code::ALREADY_EXISTS);
    assert_code(Code::UNAUTHENTICATED, server.list("carol"));

    let expected = [
        (grpc("grpc_server_started_total", "Connect"), 3.0),
        (grpc("grpc_server_msg_received_total", "Connect"), 3.0),
        (handled("Connect", "AlreadyExists"), 1.0),
        (handled("Connect", "OK"), 0.0),
        ("chat_connections_total".to_owned(), 2.0),
        (grpc("grpc_server_started_total", "CreateGroupChat"), 1.0),
        (handled("CreateGroupChat", "OK"), 1.0),
        (handled("JoinGroupChat", "OK"), 1.0),
        (grpc("grpc_server_started_total", "SendMessage"), 3.0),
        (grpc("grpc_server_msg_received_total", "SendMessage"), 3.0),
        (grpc("grpc_server_msg_sent_total", "SendMessage"), 2.0),
        (handled("SendMessage", "OK"), 2.0),
        (handled("SendMessage", "NotFound"), 1.0),
        (
            grpc("grpc_server_handling_seconds_count", "SendMessage"),
            3.0,
        ),
        (handled("ListChannels", "Unauthenticated"), 1.0),
        (grpc("grpc_server_msg_sent_total", "ListChannels"), 0.0),
        (labelled("chat_refusals_total", "code", "NotFound"), 1.0),
        (
            labelled("chat_refusals_total", "code", "AlreadyExists"),
            1.0,
        ),
        (
            labelled("chat_refusals_total", "code", "Unauthenticated"),
            1.0,
        ),
        (labelled("chat_messages_total", "kind", "direct"), 1.0),
        (labelled("chat_messages_total", "kind", "group"), 1.0),
        // bob's direct message, then the group message to both.
        ("chat_deliveries_total".to_owned(), 3.0),
        ("chat_delivery_writes_total".to_owned(), 3.0),
        (grpc("grpc_server_msg_sent_total", "Connect"), 3.0),
        ("chat_connected_users".to_owned(), 2.0),
        ("chat_groups".to_owned(), 1.0),
        ("chat_group_memberships".to_owned(), 2.0),
        ("chat_queued_messages".to_owned(), 0.0),
        ("chat_queued_bytes".to_owned(), 0.0),
    ];
    // A call is counted right after its answer is queued, so the client can
    // see the answer a moment before the count: wait until they all show.
    let mut now = scrape(port);
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline
        && expected
            .iter()
            .any(|(series, value)| now.get(series) != *value)
    {
        std::thread::sleep(Duration::from_millis(5));
        now = scrape(port);
    }
    for (series, value) in &expected {
        assert_eq!(now.get(series), *value, "{series}");
    }
    let sum = now.get(&grpc("grpc_server_handling_seconds_sum", "SendMessage"));
    assert!(sum > 0.0 && sum < 3.0 * 5.0, "{sum}");
    let inf = grpc("grpc_server_handling_seconds_bucket", "SendMessage")
        .replace("\"}", "\",le=\"+Inf\"}");
    assert_eq!(now.get(&inf), 3.0);

    // Leaving: the gauges fall, the disconnect is counted.
    drop(bob);
    eventually("bob's disconnect is counted", || {
        let now = scrape(port);
        now.get(&labelled("chat_disconnects_total", "reason", "client")) == 1.0
            && now.get("chat_connected_users") == 1.0
            && now.get("chat_group_memberships") == 1.0
            && now.get(&handled("Connect", "Canceled")) == 1.0
    });
    drop(alice);
    eventually("everyone has left", || {
        let now = scrape(port);
        now.get("chat_connected_users") == 0.0
            && now.get("chat_groups") == 0.0
            && now.get("chat_group_memberships") == 0.0
            && now.get(&labelled("chat_disconnects_total", "reason", "client")) == 2.0
    });
}

#[test]
fn a_slow_consumer_is_counted_and_its_queue_shows_until_it_is_dropped() {
    const DEPTH: usize = 16;
    let (server, port) = start(|config| config.limits.queue_depth = DEPTH);
    let _alice = server.connect("alice");
    let slow = open_unread(&server.api, "slow").unwrap();
    let text = "x".repeat(4000);
    // What one queued message counts for: text, sender, recipient, 32.
    let size = (4000 + "alice".len() + "slow".len() + 32) as f64;
    let mut queued = (0.0, 0.0);
    let mut refused = None;
    for _ in 0..20_000 {
        match server.send("alice", "slow", &text) {
            Ok(_) => {
                let now = scrape(port);
                queued = (
                    now.get("chat_queued_messages"),
                    now.get("chat_queued_bytes"),
                );
            }
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    let refused = refused.expect("the queue filled up");
    assert_eq!(refused.code(), Code::RESOURCE_EXHAUSTED, "{refused:?}");
    // The send before the refused one left the queue full.
    assert_eq!(queued, (DEPTH as f64, DEPTH as f64 * size));
    assert_eq!(
        final_status(slow, WAIT).expect("the stream ends").code(),
        Code::RESOURCE_EXHAUSTED
    );
    eventually("the slow consumer's disconnect is counted", || {
        let now = scrape(port);
        now.get(&labelled(
            "chat_disconnects_total",
            "reason",
            "slow_consumer",
        )) == 1.0
            && now.get(&handled("Connect", "ResourceExhausted")) == 1.0
    });
    let now = scrape(port);
    assert_eq!(now.get("chat_connected_users"), 1.0);
    assert_eq!(now.get("chat_queued_messages"), 0.0);
    assert_eq!(now.get("chat_queued_bytes"), 0.0);
    assert_eq!(now.get(&handled("SendMessage", "ResourceExhausted")), 1.0);
    assert_eq!(
        now.get(&labelled(
            "chat_refusals_total",
            "code",
            "ResourceExhausted"
        )),
        1.0
    );
    assert_eq!(
        now.get(&labelled("chat_disconnects_total", "reason", "client")),
        0.0
    );
}

#[test]
fn the_endpoint_stops_with_the_server() {
    let (mut server, port) = start(|_| {});
    let _alice = server.connect("alice");
    scrape(port);
    server.server.take().expect("running").stop();
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the metrics port still accepts connections after stop"
    );
}

#[test]
fn other_paths_and_methods_are_refused() {
    let (_server, port) = start(|_| {});
    let not_found = http(port, b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(not_found.status, 404);
    assert_eq!(http(port, b"GET / HTTP/1.1\r\n\r\n").status, 404);
    let not_allowed = http(port, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(not_allowed.status, 405);
    assert!(
        not_allowed.head.contains("\r\nAllow: GET"),
        "{}",
        not_allowed.head
    );
    assert_eq!(http(port, b"DELETE /metrics HTTP/1.1\r\n\r\n").status, 405);
    assert_eq!(http(port, b"nonsense\r\n\r\n").status, 400);
    // Still serving.
    scrape(port);
}

#[test]
fn a_half_sent_request_does_not_hold_up_a_scrape() {
    // A read timeout far longer than the test waits: only a responder that
    // serves connections side by side answers the scrape in time.
    let (_server, port) =
        start(|config| config.metrics_http.read_timeout = Duration::from_secs(600));
    let mut halves = Vec::new();
    for _ in 0..3 {
        let mut half = TcpStream::connect(("127.0.0.1", port)).unwrap();
        half.write_all(b"GET /metr").unwrap();
        halves.push(half);
    }
    let now = scrape(port);
    assert_eq!(now.get("chat_connected_users"), 0.0);
    // The half-sent requests can still be finished.
    for half in &mut halves {
        half.write_all(b"ics HTTP/1.1\r\n\r\n").unwrap();
        half.set_read_timeout(Some(WAIT)).unwrap();
        let mut raw = String::new();
        half.read_to_string(&mut raw).unwrap();
        assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
    }
}

#[test]
fn a_request_that_never_completes_is_closed_with_408() {
    let (_server, port) = start(|config| {
        config.metrics_http.read_timeout = Duration::from_millis(200);
    });
    let mut half = TcpStream::connect(("127.0.0.1", port)).unwrap();
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost:").unwrap();
    half.set_read_timeout(Some(WAIT)).unwrap();
    let mut raw = String::new();
    half.read_to_string(&mut raw).expect("closed before WAIT");
    assert!(raw.starts_with("HTTP/1.1 408 "), "{raw:?}");
    scrape(port);
}

#[test]
fn metrics_are_off_by_default() {
    let server = TestServer::start();
    let running = server.server.as_ref().expect("running");
    assert_eq!(running.metrics_port(), None);
}

/// A cluster node counts calls that wait on Redis where their answer is
/// sent, shows its own view of the chat, its work with Redis, and streams
/// it ended when fenced.
#[test]
fn a_cluster_node_counts_its_calls_its_redis_work_and_its_fenced_streams() {
    let mut redis = common::redis::TestRedis::start();
    let mut config = Config::with_listen("127.0.0.1:0");
    config.metrics_listen = Some("127.0.0.1:0".to_owned());
    config.cluster = Some(cluster_config(&redis, Duration::from_secs(1)));
    let log = test_logger();
    let node = chat_server::server::start(&config, &log).expect("the node starts");
    let port = node.metrics_port().expect("metrics are on");
    let api = chat_client::api::Api::connect(&format!("127.0.0.1:{}", node.port()), WAIT).unwrap();
    let alice = api.open_inbox("alice", WAIT).unwrap();
    let _bob = api.open_inbox("bob", WAIT).unwrap();
    assert_code(Code::ALREADY_EXISTS, api.open_inbox("bob", WAIT).map(drop));
    send_with(&api, "alice", "bob", "hi").unwrap();
    assert_code(Code::NOT_FOUND, send_with(&api, "alice", "nobody", "hi"));
    let s = scrape(port);
    assert_eq!(s.get(&grpc("grpc_server_started_total", "Connect")), 3.0);
    assert_eq!(s.get("chat_connections_total"), 2.0);
    assert_eq!(s.get(&handled("Connect", "AlreadyExists")), 1.0);
    assert_eq!(s.get(&handled("SendMessage", "OK")), 1.0);
    assert_eq!(s.get(&handled("SendMessage", "NotFound")), 1.0);
    assert_eq!(
        s.get("grpc_server_handling_seconds_count{grpc_type=\"unary\",grpc_service=\"chat.v1.ChatService\",grpc_method=\"SendMessage\"}"),
        2.0
    );
    assert_eq!(
        s.get(&labelled("chat_messages_total", "kind", "direct")),
        1.0
    );
    assert_eq!(s.get("chat_connected_users"), 2.0);
    assert!(s.get("chat_redis_round_trip_seconds_count") >= 5.0);
    assert_eq!(s.get("chat_redis_errors_total"), 0.0);
    assert!(s.get("chat_inbox_lag_seconds") >= 0.0);
    // Redis loses its data: the node fences, and counts why its streams
    // ended.
    redis.kill_and_restart_empty();
    assert_eq!(end_status(&alice).code(), Code::UNAVAILABLE);
    eventually("the fenced streams are counted", || {
        let s = scrape(port);
        s.get(&labelled("chat_disconnects_total", "reason", "fenced")) == 2.0
            && s.get(&labelled("chat_lease_renewals_total", "result", "failed")) >= 1.0
            && s.get("chat_redis_errors_total") >= 1.0
    });
    node.stop();
}

#[test]
fn token_refusals_and_a_stream_ended_by_its_token_expiry_are_counted() {
    use common::tokens::{now, sign, token_config};
    let (server, port) = start(|config| config.auth = Some(token_config(Duration::ZERO)));
    // Valid for two more seconds (whole seconds: at least one).
    let token = sign(&serde_json::json!({ "sub": "erin", "exp": now() + 2 }));
    let credentials = chat_client::api::Credentials::Token(token);
    let erin = server
        .api
        .clone()
        .with_credentials(credentials)
        .open_inbox("erin", WAIT)
        .unwrap();
    // A bare name is no identity in token mode.
    assert_code(Code::UNAUTHENTICATED, server.list("erin"));
    assert_eq!(end_status(&erin).message(), "token expired");
    eventually("the refusal and the expiry are counted", || {
        let now = scrape(port);
        now.get(&labelled(
            "chat_disconnects_total",
            "reason",
            "token_expired",
        )) == 1.0
            && now.get(&handled("ListChannels", "Unauthenticated")) == 1.0
            && now.get(&handled("Connect", "Unauthenticated")) == 1.0
    });
}
