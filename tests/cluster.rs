//! Cluster mode: what holds across nodes (group order, one namespace, calls
//! served by any node) and what happens when a node or Redis fails. Every
//! test starts its own `redis-server` and nodes on loopback; nodes that a
//! test kills or freezes are real `chat-server` processes.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chat_client::api::{Api, Inbox, InboxEvent};
use chat_proto::health::health_check_response::ServingStatus;
use chat_proto::health::HealthCheckRequest;
use chat_proto::health_grpc::HealthClient;
use chat_server::config::Config;
use common::binary::Binary;
use common::redis::TestRedis;
use common::*;
use grpcio::{ChannelBuilder, EnvBuilder, RpcStatusCode as Code};

/// `nodes` in-process nodes on a fresh Redis with `lease`.
fn cluster(nodes: usize, lease: Duration) -> TestServer {
    cluster_with(nodes, lease, |_| {})
}

fn cluster_with(nodes: usize, lease: Duration, adjust: impl Fn(&mut Config)) -> TestServer {
    let redis = TestRedis::start();
    let mut config = Config::with_listen("127.0.0.1:0");
    config.cluster = Some(cluster_config(&redis, lease));
    adjust(&mut config);
    TestServer::on_nodes(vec![config; nodes], Some(redis))
}

/// A node of `server`'s cluster as a separate process.
fn node_process(server: &TestServer, lease_secs: u64) -> Binary {
    let url = server.redis.as_ref().expect("a cluster").url();
    let prefix = server.prefix.clone().expect("a cluster prefix");
    let lease = lease_secs.to_string();
    Binary::start_with(&[
        "--redis",
        &url,
        "--redis-prefix",
        &prefix,
        "--node-lease-secs",
        &lease,
    ])
    .0
}

fn api_of(binary: &Binary) -> Api {
    Api::connect(&format!("127.0.0.1:{}", binary.port), WAIT).expect("reach the node")
}

fn users(api: &Api, caller: &str) -> BTreeSet<String> {
    list_with(api, caller)
        .expect("list")
        .into_iter()
        .filter(|row| row.1 == chat_proto::chat::ChannelType::CHANNEL_TYPE_USER)
        .map(|row| row.0)
        .collect()
}

fn members(api: &Api, caller: &str, group: &str) -> Option<u32> {
    list_with(api, caller)
        .expect("list")
        .into_iter()
        .find(|row| row.0 == group)
        .map(|row| row.2)
}

fn health(port: u16) -> Option<ServingStatus> {
    let env = std::sync::Arc::new(EnvBuilder::new().cq_count(1).build());
    let channel = ChannelBuilder::new(env).connect(&format!("127.0.0.1:{port}"));
    let client = HealthClient::new(channel);
    let option = grpcio::CallOption::default().timeout(Duration::from_secs(2));
    client
        .check_opt(&HealthCheckRequest::new(), option)
        .ok()
        .map(|reply| reply.status.enum_value_or_default())
}

/// Every message id in `inbox` until `count` arrived.
#[track_caller]
fn ids(inbox: &Inbox, count: usize) -> Vec<u64> {
    receive(inbox, count).iter().map(|m| m.id).collect()
}

#[test]
fn a_group_reads_in_one_order_on_every_node() {
    let server = cluster(3, Duration::from_secs(5));
    let members: Vec<(String, Inbox, usize)> = (0..6)
        .map(|i| {
            let user = format!("m{i}");
            let inbox = server.apis[i % 3].open_inbox(&user, WAIT).unwrap();
            (user, inbox, i % 3)
        })
        .collect();
    server.create("m0", "room").unwrap();
    for (user, _, _) in &members[1..] {
        server.join(user, "room").unwrap();
    }
    // Four senders on different nodes, sending at once, each through its
    // own node's client.
    let per_sender = 50;
    let handles: Vec<_> = (0..4)
        .map(|s| {
            let api = Api::connect(server.apis[s % 3].address(), WAIT).unwrap();
            let sender = format!("m{s}");
            std::thread::spawn(move || {
                for k in 0..per_sender {
                    send_with(&api, &sender, "room", &format!("{sender} #{k}")).unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let total = 4 * per_sender;
    let first = ids(&members[0].1, total);
    assert_eq!(
        first.iter().collect::<BTreeSet<_>>().len(),
        total,
        "exactly once"
    );
    assert!(first.windows(2).all(|w| w[0] < w[1]), "ids increase");
    for (user, inbox, node) in &members[1..] {
        assert_eq!(ids(inbox, total), first, "{user} on node {node}");
        assert_silent(inbox, Duration::from_millis(100));
    }
}

#[test]
fn concurrent_connects_of_one_name_on_different_nodes_admit_exactly_one() {
    let server = cluster(3, Duration::from_secs(5));
    for round in 0..10 {
        let name = format!("racer{round}");
        let handles: Vec<_> = (0..3)
            .map(|node| {
                let api = Api::connect(server.apis[node].address(), WAIT).unwrap();
                let name = name.clone();
                std::thread::spawn(move || (api.open_inbox(&name, WAIT), api))
            })
            .collect();
        let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners = outcomes.iter().filter(|(result, _)| result.is_ok()).count();
        assert_eq!(winners, 1, "round {round}");
        for (result, _) in &outcomes {
            if let Err(status) = result {
                assert_eq!(status.code(), Code::ALREADY_EXISTS);
            }
        }
    }
}

#[test]
fn any_node_serves_the_unary_calls_of_a_user_streaming_on_another() {
    let server = cluster(3, Duration::from_secs(5));
    let alice = server.apis[0].open_inbox("alice", WAIT).unwrap();
    let bob = server.apis[1].open_inbox("bob", WAIT).unwrap();
    // Alice's calls go to nodes 1 and 2 only (an L7 balancer's choice).
    let elsewhere = [&server.apis[1], &server.apis[2]];
    send_with(elsewhere[0], "alice", "bob", "hi from node 1").unwrap();
    send_with(elsewhere[1], "alice", "bob", "hi from node 2").unwrap();
    let texts: Vec<String> = receive(&bob, 2).into_iter().map(|m| m.text).collect();
    assert_eq!(texts, ["hi from node 1", "hi from node 2"]);
    send_with(&server.apis[2], "bob", "alice", "back").unwrap();
    assert_eq!(receive(&alice, 1)[0].text, "back");
    assert_eq!(
        users(&server.apis[2], "alice"),
        ["alice", "bob"].map(String::from).into()
    );
    // Connected nowhere: refused by every node.
    alice.close();
    for api in &server.apis {
        eventually("alice is gone everywhere", || {
            send_with(api, "alice", "bob", "ghost")
                .map(drop)
                .err()
                .map(|s| s.code())
                == Some(Code::UNAUTHENTICATED)
        });
    }
}

#[test]
fn a_full_remote_queue_answers_ok_and_drops_the_reader_on_its_node() {
    let server = cluster_with(2, Duration::from_secs(5), |config| {
        config.limits.queue_depth = 4;
    });
    let _sender = server.apis[0].open_inbox("sender", WAIT).unwrap();
    let reader = chat_client::api::open_unread(&server.apis[1], "reader").unwrap();
    // The reader never reads; HTTP/2 flow control fills first, then its
    // queue. Every send is OK (relaxed in a cluster) until it is dropped.
    let text = "x".repeat(4000);
    let mut dropped = false;
    for _ in 0..20_000 {
        match send_with(&server.apis[0], "sender", "reader", &text) {
            Ok(_) => continue,
            Err(status) => {
                // Once dropped, the name is free cluster-wide.
                assert_eq!(status.code(), Code::NOT_FOUND, "{status:?}");
                dropped = true;
                break;
            }
        }
    }
    assert!(dropped, "the reader was never dropped");
    let status = chat_client::api::final_status(reader, WAIT).expect("the stream ended");
    assert_eq!(status.code(), Code::RESOURCE_EXHAUSTED);
}

#[test]
fn a_killed_node_frees_its_users_within_the_lease_and_survivors_lose_nothing() {
    let server = cluster(2, Duration::from_secs(1));
    let victim = node_process(&server, 1);
    let doomed = api_of(&victim);
    let _d1 = doomed.open_inbox("doomed1", WAIT).unwrap();
    let _d2 = doomed.open_inbox("doomed2", WAIT).unwrap();
    let keeper = server.apis[0].open_inbox("keeper", WAIT).unwrap();
    let other = server.apis[1].open_inbox("other", WAIT).unwrap();
    server.create("doomed1", "theirs").unwrap();
    server.create("keeper", "shared").unwrap();
    server.join("doomed2", "shared").unwrap();
    server.join("other", "shared").unwrap();
    victim.signal(libc::SIGKILL);
    let killed = Instant::now();
    // Survivors go on meanwhile.
    for k in 0..20 {
        send_with(&server.apis[k % 2], "keeper", "shared", &format!("k{k}")).unwrap();
    }
    eventually("the dead node's users and groups are gone", || {
        users(&server.apis[1], "keeper") == ["keeper", "other"].map(String::from).into()
            && members(&server.apis[0], "keeper", "shared") == Some(2)
            && members(&server.apis[0], "keeper", "theirs").is_none()
    });
    assert!(killed.elapsed() < Duration::from_secs(3), "lease + 2 s");
    assert_eq!(ids(&keeper, 20), ids(&other, 20));
    let left = server.redis_keys();
    assert!(
        !left
            .iter()
            .any(|key| key.contains("doomed") || key.contains("theirs")),
        "{left:?}"
    );
}

#[test]
fn a_node_frozen_past_its_lease_fences_itself_and_comes_back_clean() {
    let server = cluster(1, Duration::from_secs(1));
    let mut frozen = node_process(&server, 1);
    let api = api_of(&frozen);
    let stale = api.open_inbox("stale", WAIT).unwrap();
    let _watcher = server.connect("watcher");
    frozen.signal(libc::SIGSTOP);
    eventually("the frozen node's user is freed", || {
        !users(&server.api, "watcher").contains("stale")
    });
    // Someone else takes the name meanwhile.
    let _taker = server.api.open_inbox("stale", WAIT).unwrap();
    frozen.signal(libc::SIGCONT);
    assert_eq!(end_status(&stale).code(), Code::UNAVAILABLE);
    // Back, registered anew: it serves new users, and its old identity
    // took nothing back.
    let mut newcomer = None;
    eventually("the node serves again", || {
        newcomer = api.open_inbox("newcomer", WAIT).ok();
        newcomer.is_some()
    });
    assert_eq!(
        users(&server.api, "watcher"),
        ["newcomer", "stale", "watcher"].map(String::from).into()
    );
    assert_eq!(frozen.child.try_wait().unwrap(), None, "still running");
}

#[test]
fn redis_frozen_for_less_than_the_lease_loses_nothing_and_drops_nobody() {
    let server = cluster(2, Duration::from_secs(5));
    let alice = server.apis[0].open_inbox("alice", WAIT).unwrap();
    let bob = server.apis[1].open_inbox("bob", WAIT).unwrap();
    send_with(&server.apis[0], "alice", "bob", "before").unwrap();
    let redis = server.redis.as_ref().unwrap();
    redis.pause();
    let started = Instant::now();
    let during = send_with(&server.apis[0], "alice", "bob", "during");
    let took = started.elapsed();
    // Refused, not hung: UNAVAILABLE within about a second. (Redis may
    // still carry it out once it runs again, as UNAVAILABLE allows.)
    assert_eq!(during.map(drop).unwrap_err().code(), Code::UNAVAILABLE);
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    std::thread::sleep(Duration::from_millis(500));
    redis.resume();
    eventually("sends go through again", || {
        send_with(&server.apis[1], "alice", "bob", "after").is_ok()
    });
    let mut texts: Vec<String> = Vec::new();
    while !texts.iter().any(|text| text == "after") {
        texts.extend(next_delivery(&bob).into_iter().map(|m| m.text));
    }
    texts.retain(|text| text != "during");
    assert_eq!(texts, ["before", "after"]);
    assert_silent(&bob, Duration::from_millis(100));
    send_with(&server.apis[0], "bob", "alice", "still here").unwrap();
    assert_eq!(receive(&alice, 1)[0].text, "still here");
}

#[test]
fn redis_restarted_empty_ends_every_stream_and_clients_start_clean() {
    let mut server = cluster(2, Duration::from_secs(1));
    let alice = server.apis[0].open_inbox("alice", WAIT).unwrap();
    let bob = server.apis[1].open_inbox("bob", WAIT).unwrap();
    server.create("alice", "room").unwrap();
    let restarted = Instant::now();
    server.redis.as_mut().unwrap().kill_and_restart_empty();
    assert_eq!(end_status(&alice).code(), Code::UNAVAILABLE);
    assert_eq!(end_status(&bob).code(), Code::UNAVAILABLE);
    assert!(restarted.elapsed() < Duration::from_secs(3), "lease + 2 s");
    // Reconnect into a clean, working chat.
    let mut alice = None;
    eventually("alice reconnects", || {
        alice = server.apis[0].open_inbox("alice", WAIT).ok();
        alice.is_some()
    });
    let mut bob = None;
    eventually("bob reconnects", || {
        bob = server.apis[1].open_inbox("bob", WAIT).ok();
        bob.is_some()
    });
    assert_eq!(
        users(&server.apis[1], "bob"),
        ["alice", "bob"].map(String::from).into()
    );
    assert_eq!(members(&server.apis[1], "bob", "room"), None);
    send_with(&server.apis[1], "bob", "alice", "hello again").unwrap();
    assert_eq!(receive(alice.as_ref().unwrap(), 1)[0].text, "hello again");
    drop(bob);
    let port = server.server.as_ref().unwrap().port();
    assert_eq!(health(port), Some(ServingStatus::SERVING));
}

#[test]
fn health_is_not_serving_while_redis_is_unreachable() {
    let mut server = cluster(1, Duration::from_secs(1));
    let port = server.server.as_ref().unwrap().port();
    assert_eq!(health(port), Some(ServingStatus::SERVING));
    let redis = server.redis.take().unwrap();
    let redis_port = redis.port();
    drop(redis);
    eventually("not serving", || {
        health(port) == Some(ServingStatus::NOT_SERVING)
    });
    assert_eq!(
        server.send("anyone", "anyone", "x").unwrap_err().code(),
        Code::UNAVAILABLE
    );
    let _back = TestRedis::start_on(redis_port);
    eventually("serving again", || {
        health(port) == Some(ServingStatus::SERVING)
    });
}

#[test]
fn sigterm_on_a_node_ends_its_streams_frees_its_users_and_spares_the_others() {
    let server = cluster(1, Duration::from_secs(5));
    let mut leaving = node_process(&server, 5);
    let api = api_of(&leaving);
    let gone = api.open_inbox("gone", WAIT).unwrap();
    let stays = server.connect("stays");
    server.create("gone", "room").unwrap();
    server.join("stays", "room").unwrap();
    leaving.signal(libc::SIGTERM);
    assert_eq!(end_status(&gone).code(), Code::UNAVAILABLE);
    assert_eq!(leaving.wait_exit(Duration::from_secs(5)), Some(0));
    eventually("its user left cluster-wide", || {
        users(&server.api, "stays") == ["stays"].map(String::from).into()
            && members(&server.api, "stays", "room") == Some(1)
    });
    send_with(&server.api, "stays", "room", "still on").unwrap();
    assert_eq!(receive(&stays, 1)[0].text, "still on");
    assert!(matches!(
        stays.next_event(Duration::from_millis(50)),
        None | Some(InboxEvent::Messages(_))
    ));
}

#[test]
fn a_bad_redis_url_or_an_unreachable_redis_fails_at_once_with_exit_status_1() {
    let unreachable = format!("redis://127.0.0.1:{}", common::redis::free_port());
    for url in ["localhost:6379", "redis://", unreachable.as_str()] {
        let started = Instant::now();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(["--listen", "127.0.0.1:0", "--redis", url])
            .output()
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5), "{url}");
        assert_eq!(output.status.code(), Some(1), "{url}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("");
        assert!(
            last.starts_with("chat-server: cannot join the cluster"),
            "{url}: {stderr}"
        );
    }
}
