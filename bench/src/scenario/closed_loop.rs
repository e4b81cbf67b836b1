//! The closed-loop driver behind `direct` and `fanout`: a fixed set of
//! senders, each sending a fixed number of messages to one channel (a user
//! or a group) as fast as its window allows. Every sender is a future on
//! the client's completion queues that pipelines `SendMessage` calls: it
//! starts the next one as soon as fewer than `max_inflight` are in flight
//! and fewer than `window` of its messages are still unreceived by some
//! recipient. The measured phase runs from the first send to the last
//! receipt. Against several nodes, each scenario places its users so that
//! messages cross nodes: a direct sender and its receiver are on different
//! nodes, and a group's members (senders included) alternate between them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use serde_json::{Map, Value};

use super::{summarize, Measured};
use crate::check::{Membership, Recipients, SendRec};
use crate::flow::Flow;
use crate::net::{connect_users, setup_groups, Bench, ErrorCounts, FlowMap, RecvShared, User};
use crate::payload::Payload;
use crate::report::Report;
use crate::util::{error_code, now_ns, Deadline};

/// Messages a sender may have unreceived, unless `--window` says otherwise.
const WINDOW: u32 = 256;
/// SendMessage calls a sender may have in flight, unless `--max-inflight`
/// says otherwise.
const MAX_INFLIGHT: u32 = 32;

/// One sender of a closed-loop scenario.
#[derive(Debug, Clone)]
pub struct SenderSpec {
    /// The name it sends to.
    pub recipient: String,
    /// The channel number of `recipient`.
    pub chan: u32,
    /// Who receives its messages.
    pub recipients: Recipients,
    /// How many receipts each message makes.
    pub fanout: u32,
}

/// A closed-loop scenario. Sender `i` is user `i`.
pub struct ClosedLoop {
    /// Scenario name.
    pub scenario: &'static str,
    /// Report unit.
    pub unit: &'static str,
    /// Parameters to report.
    pub params: Map<String, Value>,
    /// Every user's name; the senders come first.
    pub names: Vec<String>,
    /// The node of each user, by index (taken modulo the nodes).
    pub nodes: Vec<usize>,
    /// Groups to create, with their creators.
    pub groups: Vec<(String, u32)>,
    /// (user, group) joins after creation.
    pub joins: Vec<(u32, String)>,
    /// The groups' members, for the checks.
    pub membership: Membership,
    /// The senders.
    pub senders: Vec<SenderSpec>,
    /// Messages per sender.
    pub messages: u32,
    /// Per-sender window.
    pub window: u32,
}

/// What a sender hands back.
struct SenderOutcome {
    sends: Vec<SendRec>,
    errors: ErrorCounts,
}

/// Runs `spec` against the server and reports.
pub fn run(bench: &Bench, spec: ClosedLoop) -> Report {
    let deadline = Deadline::after(bench.timeout);
    let mut report = Report::new(spec.scenario, spec.unit);
    report.params = spec.params;
    let inflight = bench.max_inflight_or(MAX_INFLIGHT);
    report.params.insert("max_inflight".into(), inflight.into());
    let users = spec.names.len() as u32;
    let flows: Vec<Arc<Flow>> = spec
        .senders
        .iter()
        .map(|_| Arc::new(Flow::new(spec.messages as usize)))
        .collect();
    let shared = RecvShared::new(FlowMap::PerSender(flows.clone()), None);
    let nodes = spec.nodes;
    let node_of = |idx: u32| nodes.get(idx as usize).copied().unwrap_or(0);
    let online = match connect_users(bench, spec.names, node_of, &shared, deadline) {
        Ok(online) => online,
        Err(error) => {
            report.failures.push(error);
            return report;
        }
    };
    if let Err(error) = setup_groups(&online, &spec.groups, &spec.joins) {
        report.failures.push(error);
        online.close(Deadline::after(Duration::from_secs(10)));
        return report;
    }

    let before = bench.sample();
    let start_ns = now_ns();
    let abort = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    for (i, sender) in spec.senders.iter().enumerate() {
        let user = Arc::clone(&online.users[i]);
        let task = send_all(
            Arc::clone(&user),
            sender.clone(),
            spec.messages,
            Arc::clone(&flows[i]),
            Limits {
                window: u64::from(spec.window),
                inflight: inflight as usize,
            },
            Arc::clone(&abort),
            done_tx.clone(),
        );
        user.client.spawn(task);
    }

    // Wait for the senders, then for every message to be received.
    let mut outcomes = Vec::new();
    while outcomes.len() < spec.senders.len() {
        match done_rx.recv_timeout(Duration::from_millis(10)) {
            Ok(outcome) => outcomes.push(outcome),
            Err(RecvTimeoutError::Timeout) => {
                if let Some(reason) = stop_reason(&shared, deadline) {
                    report.failures.push(reason);
                    break;
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    while report.failures.is_empty() && flows.iter().any(|f| f.outstanding() > 0) {
        if let Some(reason) = stop_reason(&shared, deadline) {
            report.failures.push(reason);
            break;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let end_ns = now_ns();
    let after = bench.sample();
    if !report.failures.is_empty() {
        abort.store(true, Ordering::Release);
        flows.iter().for_each(|f| f.wake());
        let wait = Deadline::after(bench.call_timeout + Duration::from_secs(2));
        while outcomes.len() < spec.senders.len() {
            match done_rx.recv_deadline(wait.instant()) {
                Ok(outcome) => outcomes.push(outcome),
                Err(_) => break,
            }
        }
    }
    let receivers = online.close(Deadline::after(Duration::from_secs(10)));

    let mut sends = Vec::new();
    let mut errors = ErrorCounts::new();
    for outcome in outcomes {
        sends.extend(outcome.sends);
        for (code, n) in outcome.errors {
            *errors.entry(code).or_default() += n;
        }
    }
    summarize(
        &mut report,
        Measured {
            sends: &sends,
            receivers: &receivers,
            membership: &spec.membership,
            users,
            start_ns,
            end_ns,
            before,
            after,
            errors,
        },
    );
    report
}

/// Why a scenario must stop early, if it must.
pub fn stop_reason(shared: &RecvShared, deadline: Deadline) -> Option<String> {
    if shared.broken.load(Ordering::Acquire) {
        return Some("a Connect stream ended during the run".to_owned());
    }
    if deadline.passed() {
        return Some("timed out".to_owned());
    }
    None
}

/// A sender's bounds.
#[derive(Debug, Clone, Copy)]
struct Limits {
    window: u64,
    inflight: usize,
}

/// Sends `messages` messages as `user` under `limits`, recording each.
async fn send_all(
    user: Arc<User>,
    spec: SenderSpec,
    messages: u32,
    flow: Arc<Flow>,
    limits: Limits,
    abort: Arc<AtomicBool>,
    done: Sender<SenderOutcome>,
) {
    let mut inflight = FuturesUnordered::new();
    let mut outcome = SenderOutcome {
        sends: Vec::with_capacity(messages as usize),
        errors: ErrorCounts::new(),
    };
    let record = |outcome: &mut SenderOutcome,
                  (seq, start_ns, result): (u32, u64, grpcio::Result<_>)| {
        let ack_ns = now_ns();
        let (ok, id) = match result {
            Ok(reply) => {
                let reply: chat_proto::chat::SendMessageResponse = reply;
                (true, reply.message_id)
            }
            Err(error) => {
                *outcome.errors.entry(error_code(&error)).or_default() += 1;
                flow.failed(seq);
                (false, 0)
            }
        };
        outcome.sends.push(SendRec {
            sender: user.idx,
            chan: spec.chan,
            seq,
            start_ns,
            ack_ns,
            id,
            ok,
            recipients: spec.recipients,
        });
    };
    for seq in 0..messages {
        let go = futures::future::poll_fn(|cx| {
            while let Poll::Ready(Some(done)) = inflight.poll_next_unpin(cx) {
                record(&mut outcome, done);
            }
            if abort.load(Ordering::Acquire) {
                return Poll::Ready(false);
            }
            if inflight.len() >= limits.inflight {
                // `poll_next` returned Pending: a completion wakes us.
                return Poll::Pending;
            }
            flow.register(cx.waker());
            if flow.outstanding() >= limits.window {
                return Poll::Pending;
            }
            Poll::Ready(true)
        })
        .await;
        if !go {
            break;
        }
        let start_ns = now_ns();
        flow.begin(seq, spec.fanout);
        let text = Payload {
            sender: user.idx,
            chan: spec.chan,
            seq,
            idx: seq,
            sent_ns: start_ns,
        }
        .encode();
        match user.send(&spec.recipient, text) {
            Ok(call) => inflight.push(async move { (seq, start_ns, call.await) }),
            Err(error) => record(&mut outcome, (seq, start_ns, Err(error))),
        }
    }
    while let Some(done) = inflight.next().await {
        record(&mut outcome, done);
    }
    let _ = done.send(outcome);
}

/// Builds the `direct` scenario: `pairs` senders (users 0..P), each sending
/// `messages` messages to its own receiver (user P + i). Sender i is on node
/// i and its receiver on node i + 1: on different nodes whenever there are
/// several.
pub fn direct(bench: &Bench, pairs: u32, messages: u32) -> ClosedLoop {
    let prefix = bench.run_prefix("direct");
    let pairs = pairs.max(1);
    let names = (0..pairs)
        .map(|i| format!("{prefix}s{i}"))
        .chain((0..pairs).map(|i| format!("{prefix}r{i}")))
        .collect::<Vec<_>>();
    let window = bench.window_or(WINDOW).min(bench.server_queue).max(1);
    let senders = (0..pairs)
        .map(|i| SenderSpec {
            recipient: names[(pairs + i) as usize].clone(),
            chan: pairs + i,
            recipients: Recipients::User(pairs + i),
            fanout: 1,
        })
        .collect();
    let mut params = Map::new();
    params.insert("pairs".into(), pairs.into());
    params.insert("messages_per_sender".into(), messages.into());
    params.insert("window".into(), window.into());
    params.insert("text_bytes".into(), crate::payload::TEXT_LEN.into());
    ClosedLoop {
        scenario: "direct",
        unit: "msgs/s",
        params,
        names,
        nodes: (0..pairs as usize).chain(1..=pairs as usize).collect(),
        groups: Vec::new(),
        joins: Vec::new(),
        membership: Membership::default(),
        senders,
        messages,
        window,
    }
}

/// Builds the `fanout` scenario: one group of `members` users, the first
/// `senders` of whom each send `messages` messages to it. The per-sender
/// window is cut so that all senders' windows together stay within the
/// server's queue. Member i is on node i, so members and senders alike are
/// spread over every node.
pub fn fanout(bench: &Bench, members: u32, senders: u32, messages: u32) -> ClosedLoop {
    let prefix = bench.run_prefix("fanout");
    let members = members.max(1);
    let senders = senders.clamp(1, members);
    let names = (0..members)
        .map(|i| format!("{prefix}m{i}"))
        .collect::<Vec<_>>();
    let group = format!("{prefix}group");
    let window = bench
        .window_or(WINDOW)
        .min(bench.server_queue / senders)
        .max(1);
    let specs = (0..senders)
        .map(|_| SenderSpec {
            recipient: group.clone(),
            chan: crate::payload::GROUP_BIT,
            recipients: Recipients::Group {
                group: 0,
                version: 0,
            },
            fanout: members,
        })
        .collect();
    let mut params = Map::new();
    params.insert("members".into(), members.into());
    params.insert("senders".into(), senders.into());
    params.insert("messages_per_sender".into(), messages.into());
    params.insert("window_per_sender".into(), window.into());
    params.insert("text_bytes".into(), crate::payload::TEXT_LEN.into());
    ClosedLoop {
        scenario: "fanout",
        unit: "deliveries/s",
        params,
        nodes: (0..names.len()).collect(),
        names,
        groups: vec![(group.clone(), 0)],
        joins: (1..members).map(|m| (m, group.clone())).collect(),
        membership: Membership::fixed(vec![(0..members).collect()]),
        senders: specs,
        messages,
        window,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::Pids;

    fn two_nodes() -> Bench {
        let servers = vec!["127.0.0.1:1".to_owned(), "127.0.0.1:2".to_owned()];
        Bench::new(
            1,
            servers,
            Pids::default(),
            Duration::from_secs(1),
            None,
            None,
            1024,
            None,
        )
    }

    #[test]
    fn direct_puts_every_receiver_on_another_node_than_its_sender() {
        let bench = two_nodes();
        let spec = direct(&bench, 8, 1);
        for (i, sender) in spec.senders.iter().enumerate() {
            let receiver = sender.chan as usize;
            assert_ne!(spec.nodes[i] % 2, spec.nodes[receiver] % 2, "pair {i}");
        }
        let on_first = (0..8).filter(|&i| spec.nodes[i].is_multiple_of(2)).count();
        assert_eq!(on_first, 4, "senders split evenly");
    }

    #[test]
    fn fanout_spreads_members_and_senders_over_both_nodes() {
        let bench = two_nodes();
        let spec = fanout(&bench, 200, 4, 1);
        let on_first = spec.nodes.iter().filter(|&&n| n.is_multiple_of(2)).count();
        assert_eq!(on_first, 100);
        let senders_first = spec.nodes[..4]
            .iter()
            .filter(|&&n| n.is_multiple_of(2))
            .count();
        assert_eq!(senders_first, 2);
    }
}
