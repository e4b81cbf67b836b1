//! The `streams` scenario: many users on every node of a cluster at once.
//! It connects `users_per_node` users to each node (spread over a fixed
//! number of channels per node, as one process can only hold so many file
//! descriptors), a sample of them on channels of their own with their
//! streams read. Then a group spread over every node (the sample, all
//! members), a few of the sample on every node list the channels (every
//! connected user must be listed, none missing, none extra), and every
//! sampled user sends one direct message to a sampled user on the next node
//! and one message to the group; every message is checked (lost,
//! duplicated, reordered, unexpected, one order per group). Last, node 0
//! gets SIGTERM, and a user on another node lists the channels until none
//! of node 0's users is left: the time a node's shutdown takes to free its
//! users cluster-wide. Reports connects per second, RSS per stream on each
//! node, Redis memory per connected user, `ListChannels`'s latency and
//! answer size, and that time.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_proto::chat::{ChannelType, ListChannelsRequest, ListChannelsResponse};
use chat_proto::chat_grpc::ChatServiceClient;
use protobuf::Message as _;

use crate::check::{self, Membership, Recipients, SendRec};
use crate::net::{
    connect_users, setup_groups, wait_gone, Bench, FlowMap, Online, RecvShared, User,
};
use crate::payload::{Payload, GROUP_BIT};
use crate::redis_info;
use crate::report::Report;
use crate::scenario::connections::{close_streams, open_streams, Opening};
use crate::util::{error_code, now_ns, secs_between, Deadline};

/// Sizes of a `streams` run.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Users connected to each node, the sample included.
    pub users_per_node: u32,
    /// Channels per node the users beyond the sample share.
    pub channels_per_node: u32,
    /// Connects waiting for `connected` at once.
    pub concurrency: u32,
    /// Users per node on channels of their own, streams read, who join the
    /// group and send.
    pub sample_per_node: u32,
    /// Sampled users per node who list the channels.
    pub listers_per_node: u32,
    /// Whether to stop node 0 with SIGTERM at the end and time how long
    /// its users take to leave the cluster.
    pub stop_node: bool,
}

/// What one node's listing showed, as checked against the users connected.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListingCheck {
    /// Connected users of this run the listing left out.
    pub missing: usize,
    /// Users of this run listed that are not connected.
    pub extra: usize,
    /// Whether the group was listed with every member.
    pub group_ok: bool,
}

/// What a listing must show.
pub struct Expected<'a> {
    /// The start of this run's names.
    pub prefix: &'a str,
    /// This run's connected users, all starting with `prefix`.
    pub users: &'a HashSet<String>,
    /// The group, if there is one, and its member count.
    pub group: Option<(&'a str, u32)>,
}

/// Checks one `ListChannels` answer: every expected user listed as a user,
/// no other user starting with the prefix, and the group, if there is
/// one, listed with its members.
pub fn check_listing(reply: &ListChannelsResponse, expected: &Expected<'_>) -> ListingCheck {
    let Expected {
        prefix,
        users: expected,
        group,
    } = *expected;
    let mut seen = 0usize;
    let mut extra = 0usize;
    let mut group_ok = group.is_none();
    for channel in &reply.channels {
        match channel.type_.enum_value() {
            Ok(ChannelType::CHANNEL_TYPE_USER) if channel.name.starts_with(prefix) => {
                if expected.contains(&channel.name) {
                    seen += 1;
                } else {
                    extra += 1;
                }
            }
            Ok(ChannelType::CHANNEL_TYPE_GROUP) => {
                if let Some((_, members)) = group.filter(|(name, _)| *name == channel.name) {
                    group_ok = channel.member_count == members;
                }
            }
            _ => {}
        }
    }
    ListingCheck {
        missing: expected.len().saturating_sub(seen),
        extra,
        group_ok,
    }
}

/// Runs the scenario and reports.
pub fn run(bench: &Bench, sizes: Sizes) -> Report {
    let deadline = Deadline::after(bench.timeout);
    let mut report = Report::new("streams", "connects/s");
    let nodes = bench.nodes() as u32;
    let sample = sizes.sample_per_node.clamp(2, sizes.users_per_node.max(2));
    let bulk_per_node = sizes.users_per_node.saturating_sub(sample);
    let mut params = serde_json::Map::new();
    params.insert("users_per_node".into(), sizes.users_per_node.into());
    params.insert("channels_per_node".into(), sizes.channels_per_node.into());
    params.insert("connect_concurrency".into(), sizes.concurrency.into());
    params.insert("sample_per_node".into(), sample.into());
    params.insert("listers_per_node".into(), sizes.listers_per_node.into());
    report.params = params;
    let prefix = bench.run_prefix("streams");
    let group = format!("{prefix}group");

    let fresh = bench.sample();
    let redis_fresh = bench.redis_addr.as_deref().map(redis_info::used_memory);

    // The sample: user i on node i % nodes, each on its own channel.
    let shared = RecvShared::new(FlowMap::None, None);
    let sample_names: Vec<String> = (0..sample * nodes)
        .map(|i| format!("{prefix}s{i}"))
        .collect();
    let start_ns = now_ns();
    let online = match connect_users(
        bench,
        sample_names.clone(),
        |i| (i % nodes) as usize,
        &shared,
        deadline,
    ) {
        Ok(online) => online,
        Err(error) => {
            report.failures.push(error);
            return report;
        }
    };

    // The rest: name i on node i % nodes, over the nodes' shared channels.
    let clients: Result<Vec<ChatServiceClient>, String> = (0..sizes.channels_per_node.max(1)
        * nodes)
        .map(|channel| bench.dedicated_client((channel % nodes) as usize))
        .collect();
    let clients = match clients {
        Ok(clients) => clients,
        Err(error) => {
            report.failures.push(error);
            online.close(deadline.cap(Duration::from_secs(10)));
            return report;
        }
    };
    let bulk_names: Vec<String> = (0..bulk_per_node * nodes)
        .map(|i| format!("{prefix}n{}-{i}", i % nodes))
        .collect();
    let Opening {
        streams,
        latencies,
        errors,
        timed_out,
    } = open_streams(&clients, &bulk_names, sizes.concurrency, deadline);
    let end_ns = now_ns();
    report.failures.extend(timed_out);
    report.errors = errors;
    let connected = (online.users.len() + streams.len()) as u64;
    report.elapsed_s = secs_between(start_ns, end_ns);
    if report.elapsed_s > 0.0 {
        report.throughput = connected as f64 / report.elapsed_s;
    }
    report.latency = check::latency(latencies);
    report.put("connected", connected);
    let wanted = u64::from(sizes.users_per_node) * u64::from(nodes);
    if connected < wanted && report.failures.is_empty() {
        report
            .failures
            .push(format!("{connected} of {wanted} users connected"));
    }

    // Memory with every stream open.
    std::thread::sleep(Duration::from_millis(500));
    let held = bench.sample();
    if let Some(cpu) = fresh.server_cpu_delta(&held) {
        report.server_cpu_us_per_unit = Some(cpu * 1e6 / connected.max(1) as f64);
    }
    let per_node = u64::from(sizes.users_per_node).max(1) as f64;
    let kib_per_stream: Vec<Option<f64>> = fresh
        .node_rss_kb
        .iter()
        .zip(&held.node_rss_kb)
        .map(|(&before, &after)| Some(round2((after? as f64 - before? as f64) / per_node)))
        .collect();
    report.put("node_kb_per_stream", kib_per_stream);
    report.rss_kb_before = fresh.server_rss_kb;
    report.rss_kb_after = held.server_rss_kb;
    if let (Some(Ok(before)), Some(addr)) = (&redis_fresh, bench.redis_addr.as_deref()) {
        match redis_info::used_memory(addr) {
            Ok(after) => {
                let per_user = (after as f64 - *before as f64) / connected.max(1) as f64;
                report.put("redis_bytes_per_user", per_user.round());
                report.put("redis_used_memory_bytes", after);
            }
            Err(error) => report.failures.push(error),
        }
    } else if let Some(Err(error)) = redis_fresh {
        report.failures.push(error);
    }

    let expected: HashSet<String> = sample_names.iter().chain(&bulk_names).cloned().collect();
    let members = sample * nodes;
    let joins: Vec<(u32, String)> = (1..members).map(|i| (i, group.clone())).collect();
    let grouped = match setup_groups(&online, &[(group.clone(), 0)], &joins) {
        Ok(()) => Some((group.as_str(), members)),
        Err(error) => {
            report.failures.push(error);
            None
        }
    };
    let listing = Expected {
        prefix: &prefix,
        users: &expected,
        group: grouped,
    };
    list_everywhere(&mut report, bench, &online, &sizes, nodes, &listing);
    let sends = send_and_check(
        &mut report,
        bench,
        &online,
        &shared,
        grouped.map(|(name, _)| name),
        deadline,
    );
    let outcomes = online.close(deadline.cap(Duration::from_secs(30)));
    let membership = Membership::fixed(vec![(0..members).collect()]);
    let checks = check::check(&sends, &outcomes, &membership, members);
    report.put("sent", sends.len() as u64);
    report.put(
        "received",
        outcomes
            .iter()
            .map(|o| o.receipts.len() as u64)
            .sum::<u64>(),
    );
    for outcome in &outcomes {
        if let Some(code) = &outcome.ended {
            *report.errors.entry(format!("stream:{code}")).or_default() += 1;
        }
    }
    report.checks = Some(checks);

    if sizes.stop_node && nodes > 1 {
        let on_zero = bulk_names.len().div_ceil(nodes as usize);
        stop_node_zero(&mut report, bench, on_zero, &prefix, deadline);
    }
    close_streams(streams);
    drop(clients);
    add_notes(&mut report);
    report
}

/// The figures the table has no column for, one line each.
fn add_notes(report: &mut Report) {
    let figure = |name: &str| report.extra.get(name).map(ToString::to_string);
    let mut notes = Vec::new();
    if let Some(kb) = figure("node_kb_per_stream") {
        let redis = figure("redis_bytes_per_user").unwrap_or_else(|| "-".into());
        notes.push(format!(
            "KiB of RSS per stream on each node {kb}; Redis bytes per connected user {redis}"
        ));
    }
    if let (Some(median), Some(bytes)) = (figure("list_ms_median"), figure("list_bytes")) {
        let redis = figure("list_redis_cpu_ms").unwrap_or_else(|| "-".into());
        notes.push(format!(
            "ListChannels of every user: median {median} ms, {bytes} bytes, {redis} ms of Redis CPU each"
        ));
    }
    if let (Some(users), Some(took)) = (figure("sigterm_freed_users"), figure("sigterm_freed_s")) {
        notes.push(format!(
            "SIGTERM of node 0 freed its {users} users cluster-wide in {took} s"
        ));
    }
    report.notes.extend(notes);
}

/// Has `listers_per_node` sampled users on every node list the channels,
/// timing each call and checking each answer.
fn list_everywhere(
    report: &mut Report,
    bench: &Bench,
    online: &Online,
    sizes: &Sizes,
    nodes: u32,
    expected: &Expected<'_>,
) {
    let listers = (sizes.listers_per_node.max(1) * nodes).min(online.users.len() as u32);
    let before = bench.sample();
    let mut took_ms = Vec::new();
    let mut bytes = 0u64;
    for user in &online.users[..listers as usize] {
        let started = Instant::now();
        match user
            .client
            .list_channels_opt(&ListChannelsRequest::new(), user.auth.clone())
        {
            Ok(reply) => {
                took_ms.push(started.elapsed().as_secs_f64() * 1e3);
                bytes = reply.compute_size();
                let found = check_listing(&reply, expected);
                if found
                    != (ListingCheck {
                        group_ok: true,
                        ..ListingCheck::default()
                    })
                {
                    report.failures.push(format!(
                        "ListChannels by {} (node {}): {} users missing, {} extra, group {}",
                        user.name,
                        user.idx % nodes,
                        found.missing,
                        found.extra,
                        if found.group_ok {
                            "listed"
                        } else {
                            "missing or miscounted"
                        }
                    ));
                }
            }
            Err(error) => {
                *report
                    .errors
                    .entry(format!("ListChannels:{}", error_code(&error)))
                    .or_default() += 1;
            }
        }
    }
    let after = bench.sample();
    if let (Some(cpu), false) = (before.redis_cpu_delta(&after), took_ms.is_empty()) {
        report.put(
            "list_redis_cpu_ms",
            round2(cpu * 1e3 / took_ms.len() as f64),
        );
    }
    took_ms.sort_by(f64::total_cmp);
    if let (Some(first), Some(last)) = (took_ms.first(), took_ms.last()) {
        report.put("list_calls", took_ms.len() as u64);
        report.put("list_ms_min", round2(*first));
        report.put("list_ms_median", round2(took_ms[took_ms.len() / 2]));
        report.put("list_ms_max", round2(*last));
        report.put("list_bytes", bytes);
    }
}

/// Every sampled user sends one message to the next sampled user (on the
/// next node) and one to the group (if it could be set up), all at once;
/// waits until every expected receipt arrived or the deadline. Answers
/// every send as recorded.
fn send_and_check(
    report: &mut Report,
    bench: &Bench,
    online: &Online,
    shared: &Arc<RecvShared>,
    group: Option<&str>,
    deadline: Deadline,
) -> Vec<SendRec> {
    let members = online.users.len() as u32;
    let before = bench.sample();
    let mut calls = Vec::new();
    for user in &online.users {
        let to = (user.idx + 1) % members;
        calls.push(send_one(
            user,
            to,
            Recipients::User(to),
            online.users[to as usize].name.clone(),
        ));
        if let Some(group) = group {
            let everyone = Recipients::Group {
                group: 0,
                version: 0,
            };
            calls.push(send_one(user, GROUP_BIT, everyone, group.to_owned()));
        }
    }
    let (sends, refused): (Vec<SendRec>, Vec<Option<String>>) =
        futures::executor::block_on(futures::future::join_all(calls))
            .into_iter()
            .unzip();
    for code in refused.into_iter().flatten() {
        *report
            .errors
            .entry(format!("SendMessage:{code}"))
            .or_default() += 1;
    }
    // Every accepted direct message reaches one user, every accepted
    // group message every member.
    let expected: u64 = sends
        .iter()
        .filter(|send| send.ok)
        .map(|send| match send.recipients {
            Recipients::User(_) => 1,
            Recipients::Group { .. } => u64::from(members),
        })
        .sum();
    while shared.received.load(std::sync::atomic::Ordering::Acquire) < expected
        && !deadline.passed()
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let after = bench.sample();
    if let Some(cpu) = before.redis_cpu_delta(&after) {
        report.put("messages_redis_cpu_s", (cpu * 1e3).round() / 1e3);
    }
    sends
}

/// Sends one benchmark message from `user`; answers its record, and the
/// status code name if the send failed.
async fn send_one(
    user: &User,
    chan: u32,
    recipients: Recipients,
    to: String,
) -> (SendRec, Option<String>) {
    let start_ns = now_ns();
    let text = Payload {
        sender: user.idx,
        chan,
        seq: 0,
        idx: 0,
        sent_ns: start_ns,
    }
    .encode();
    let answer = match user.send(&to, text) {
        Ok(call) => call.await,
        Err(error) => Err(error),
    };
    let failed = answer.as_ref().err().map(error_code);
    let answer = answer.ok();
    let record = SendRec {
        sender: user.idx,
        chan,
        seq: 0,
        start_ns,
        ack_ns: now_ns(),
        id: answer.as_ref().map_or(0, |a| a.message_id),
        ok: answer.is_some(),
        recipients,
    };
    (record, failed)
}

/// Stops node 0 with SIGTERM, then waits until a probe on another node
/// lists none of node 0's users (named `<prefix>n0-…`).
fn stop_node_zero(
    report: &mut Report,
    bench: &Bench,
    freed: usize,
    prefix: &str,
    deadline: Deadline,
) {
    let stopped = Instant::now();
    if let Err(error) = bench.stop_node(0) {
        report.failures.push(error);
        return;
    }
    match wait_gone(bench, &format!("{prefix}n0-"), deadline) {
        Ok(_) => {
            report.put("sigterm_freed_users", freed as u64);
            report.put("sigterm_freed_s", round3(stopped.elapsed().as_secs_f64()));
        }
        Err(error) => report
            .failures
            .push(format!("after node 0's SIGTERM: {error}")),
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::chat::Channel;

    fn reply(users: &[&str], group: Option<(&str, u32)>) -> ListChannelsResponse {
        let mut reply = ListChannelsResponse::new();
        for name in users {
            let mut channel = Channel::new();
            channel.name = (*name).to_owned();
            channel.type_ = ChannelType::CHANNEL_TYPE_USER.into();
            reply.channels.push(channel);
        }
        if let Some((name, members)) = group {
            let mut channel = Channel::new();
            channel.name = name.to_owned();
            channel.type_ = ChannelType::CHANNEL_TYPE_GROUP.into();
            channel.member_count = members;
            reply.channels.push(channel);
        }
        reply
    }

    fn names(names: &[&str]) -> HashSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn check(
        reply: &ListChannelsResponse,
        users: &[&str],
        group: Option<(&str, u32)>,
    ) -> ListingCheck {
        let users = names(users);
        let expected = Expected {
            prefix: "p",
            users: &users,
            group,
        };
        check_listing(reply, &expected)
    }

    #[test]
    fn a_complete_listing_passes_and_other_runs_users_are_ignored() {
        let found = check(
            &reply(&["p0", "p1", "q7"], Some(("pgroup", 2))),
            &["p0", "p1"],
            Some(("pgroup", 2)),
        );
        assert_eq!(
            found,
            ListingCheck {
                missing: 0,
                extra: 0,
                group_ok: true
            }
        );
    }

    #[test]
    fn a_missing_user_an_extra_user_and_a_wrong_group_are_caught() {
        let found = check(
            &reply(&["p0", "p9"], Some(("pgroup", 1))),
            &["p0", "p1"],
            Some(("pgroup", 2)),
        );
        assert_eq!(
            found,
            ListingCheck {
                missing: 1,
                extra: 1,
                group_ok: false
            }
        );
        let no_group = check(&reply(&["p0"], None), &["p0"], Some(("pg", 1)));
        assert!(!no_group.group_ok);
        let none_asked = check(&reply(&["p0"], None), &["p0"], None);
        assert!(none_asked.group_ok);
    }
}
