//! The `mixed` scenario: U users in G groups (each user in a few random
//! groups, from a fixed seed) send at a target total rate for a fixed time,
//! mostly to a group they are in and otherwise directly to a random user,
//! while a separate subset of users ("churners") keeps leaving one of their
//! groups and joining another. Against several nodes, user i is on node i.
//!
//! The main thread paces the sends (open loop, ticks of at most 1 ms; when
//! the bench falls behind, at most 20 ms of backlog is kept and the rest is
//! dropped and reported); completions and receipts are handled as futures
//! on the client's completion queues; a helper thread performs the churn.
//!
//! Flow control is one global window: messages started and not yet received
//! by every recipient. It bounds what the server queues for any user.
//!
//! Membership and the loss check: while a churn operation changes group g,
//! g is *gated*: no new send to g starts, and the operation waits for the
//! sends to g already in flight to be acknowledged before it calls
//! Join/Leave. So no send to a group is ever in flight while that group's
//! membership changes, every send's member set is known exactly (each send
//! records the membership version it saw), and churners are checked like
//! every other user: a message is lost only if it was not delivered to a
//! user who was a member for the whole send. Churners also send, only to
//! groups they are currently in. A churner never leaves a group of two or
//! fewer members, so no group is ever deleted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde_json::Map;

use super::closed_loop::stop_reason;
use super::{summarize, Measured};
use crate::check::{Membership, Recipients, SendRec};
use crate::flow::Flow;
use crate::net::{connect_users, setup_groups, Bench, ErrorCounts, FlowMap, RecvShared, User};
use crate::payload::{Payload, GROUP_BIT};
use crate::report::Report;
use crate::util::{error_code, now_ns, secs_between, Deadline, Rng};

/// Sizes of a `mixed` run.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Users.
    pub users: u32,
    /// Groups.
    pub groups: u32,
    /// Groups each user joins at the start.
    pub groups_per_user: u32,
    /// Target sends per second, all users together.
    pub rate: f64,
    /// How long to send, in seconds.
    pub duration_s: f64,
    /// Share of sends that go to a group (the rest are direct).
    pub group_share: f64,
    /// Share of operations that are a churn (leave one group, join another).
    pub churn_share: f64,
    /// Users that churn (the last ones).
    pub churn_users: u32,
    /// Seed for every random choice.
    pub seed: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// State the pacer, the completions and the churn thread share.
struct Shared {
    flow: Arc<Flow>,
    /// Unary calls in flight.
    inflight: AtomicU32,
    /// Sends in flight per group.
    group_inflight: Vec<AtomicU32>,
    /// Set while a churn operation changes the group.
    gate: Vec<AtomicBool>,
    /// The current membership version and member count per group.
    current: Vec<Mutex<(u32, u32)>>,
    /// The groups each user is in now.
    groups_of: Vec<Mutex<Vec<u32>>>,
    /// Every membership version.
    membership: Mutex<Membership>,
    /// Set when the pacing is over: the churn thread stops.
    stop: AtomicBool,
}

/// A send's answer, from its completion future.
struct Ack {
    idx: u32,
    ack_ns: u64,
    result: Result<u64, String>,
}

/// Runs the scenario and reports.
pub fn run(bench: &Bench, sizes: Sizes) -> Report {
    let deadline = Deadline::after(bench.timeout);
    let mut report = Report::new("mixed", "msgs/s");
    let users = sizes.users.max(2);
    let groups = sizes.groups.clamp(1, users);
    let per_user = sizes.groups_per_user.clamp(1, groups);
    let churners = sizes.churn_users.min(users);
    // One window for all senders; the server queue is the most any user
    // can then have queued, so it is safe as the default. It has to be
    // large: with --write-delay each message is in flight for longer.
    let window = bench
        .window_or(bench.server_queue)
        .min(bench.server_queue)
        .max(1);
    // SendMessage calls in flight, all users together: by default one per
    // user, as a chat client that waits for each send's answer would have.
    let max_inflight = bench.max_inflight_or(users);
    let capacity = (sizes.rate * sizes.duration_s).ceil() as usize + 16;
    let mut params = Map::new();
    params.insert("users".into(), users.into());
    params.insert("groups".into(), groups.into());
    params.insert("groups_per_user".into(), per_user.into());
    params.insert("target_rate".into(), sizes.rate.into());
    params.insert("duration_s".into(), sizes.duration_s.into());
    params.insert("group_share".into(), sizes.group_share.into());
    params.insert("churn_share".into(), sizes.churn_share.into());
    params.insert("churn_users".into(), churners.into());
    params.insert("seed".into(), sizes.seed.into());
    params.insert("window_global".into(), window.into());
    params.insert("max_inflight_global".into(), max_inflight.into());
    params.insert("text_bytes".into(), crate::payload::TEXT_LEN.into());
    report.params = params;
    report.put("server_cpu_unit", "delivery");

    // Memberships: user g < G starts (and creates) group g; everyone joins
    // random further groups up to `per_user`.
    let prefix = bench.run_prefix("mixed");
    let mut rng = Rng::new(sizes.seed);
    let mut groups_of: Vec<Vec<u32>> = Vec::with_capacity(users as usize);
    for user in 0..users {
        let mut mine = Vec::with_capacity(per_user as usize);
        if user < groups {
            mine.push(user);
        }
        while (mine.len() as u32) < per_user {
            let g = rng.below(groups);
            if !mine.contains(&g) {
                mine.push(g);
            }
        }
        groups_of.push(mine);
    }
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); groups as usize];
    let mut joins = Vec::new();
    let group_names: Vec<String> = (0..groups).map(|g| format!("{prefix}g{g}")).collect();
    for (user, mine) in groups_of.iter().enumerate() {
        for &g in mine {
            members[g as usize].push(user as u32);
            if g != user as u32 {
                joins.push((user as u32, group_names[g as usize].clone()));
            }
        }
    }
    let creators: Vec<(String, u32)> = (0..groups)
        .map(|g| (group_names[g as usize].clone(), g))
        .collect();
    let names: Vec<String> = (0..users).map(|u| format!("{prefix}u{u}")).collect();

    let flow = Arc::new(Flow::new(capacity));
    let shared = Arc::new(Shared {
        flow: Arc::clone(&flow),
        inflight: AtomicU32::new(0),
        group_inflight: (0..groups).map(|_| AtomicU32::new(0)).collect(),
        gate: (0..groups).map(|_| AtomicBool::new(false)).collect(),
        current: members
            .iter()
            .map(|m| Mutex::new((0, m.len() as u32)))
            .collect(),
        groups_of: groups_of.into_iter().map(Mutex::new).collect(),
        membership: Mutex::new(Membership::fixed(members)),
        stop: AtomicBool::new(false),
    });
    let recv = RecvShared::new(FlowMap::Single(Arc::clone(&flow)), None);
    let online = match connect_users(bench, names, |idx| idx as usize, &recv, deadline) {
        Ok(online) => online,
        Err(error) => {
            report.failures.push(error);
            return report;
        }
    };
    if let Err(error) = setup_groups(&online, &creators, &joins) {
        report.failures.push(error);
        online.close(Deadline::after(Duration::from_secs(10)));
        return report;
    }

    let before = bench.sample();
    let start_ns = now_ns();
    let (churn_tx, churn_rx) = crossbeam_channel::bounded::<()>(1);
    let churn = {
        let shared = Arc::clone(&shared);
        let users: Vec<Arc<User>> = online.users.clone();
        let names = group_names.clone();
        let seed = sizes.seed ^ 0x5eed;
        std::thread::Builder::new()
            .name("bench-churn".into())
            .spawn(move || churn_loop(&shared, &users, &names, churners, &churn_rx, seed))
    };
    let churn = match churn {
        Ok(handle) => Some(handle),
        Err(error) => {
            report
                .failures
                .push(format!("cannot start the churn thread: {error}"));
            None
        }
    };

    let (ack_tx, ack_rx) = crossbeam_channel::unbounded::<Ack>();
    let mut pacer = Pacer {
        sizes,
        shared: &shared,
        users: &online.users,
        group_names: &group_names,
        window: u64::from(window),
        max_inflight,
        rng: Rng::new(sizes.seed ^ 0xfeed),
        sends: Vec::with_capacity(capacity),
        seqs: HashMap::new(),
        acks: ack_tx,
        errors: ErrorCounts::new(),
        stats: PaceStats::default(),
    };
    if report.failures.is_empty() {
        if let Some(reason) = pacer.pace(&recv, deadline, &churn_tx, churners) {
            report.failures.push(reason);
        }
    }
    let send_end_ns = now_ns();
    shared.stop.store(true, Ordering::Release);
    drop(churn_tx);
    let churn_outcome = churn.and_then(|h| h.join().ok()).unwrap_or_default();

    // Collect every answer, then wait until everything sent has arrived.
    let Pacer {
        mut sends,
        mut errors,
        stats,
        ..
    } = pacer;
    let mut answered = 0usize;
    let answers_by = deadline.cap(bench.call_timeout + Duration::from_secs(2));
    while answered < sends.len() {
        match ack_rx.recv_deadline(answers_by.instant()) {
            Ok(ack) => {
                answered += 1;
                let send = &mut sends[ack.idx as usize];
                send.ack_ns = ack.ack_ns;
                match ack.result {
                    Ok(id) => {
                        send.ok = true;
                        send.id = id;
                    }
                    Err(code) => *errors.entry(code).or_default() += 1,
                }
            }
            Err(_) => {
                report
                    .failures
                    .push(format!("{} sends unanswered", sends.len() - answered));
                break;
            }
        }
    }
    while report.failures.is_empty() && flow.outstanding() > 0 {
        if let Some(reason) = stop_reason(&recv, deadline) {
            report.failures.push(reason);
            break;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let end_ns = now_ns();
    let after = bench.sample();
    let receivers = online.close(Deadline::after(Duration::from_secs(10)));
    for (code, n) in churn_outcome.errors {
        *errors.entry(format!("churn:{code}")).or_default() += n;
    }
    let membership = std::mem::take(&mut *lock(&shared.membership));
    summarize(
        &mut report,
        Measured {
            sends: &sends,
            receivers: &receivers,
            membership: &membership,
            users,
            start_ns,
            end_ns,
            before,
            after,
            errors,
        },
    );
    // The headline figure is the achieved send rate; deliveries per second
    // is what `summarize` computed.
    let delivered_per_s = report.throughput;
    let send_s = secs_between(start_ns, send_end_ns);
    let ok_sends = sends.iter().filter(|s| s.ok).count();
    report.throughput = if send_s > 0.0 {
        ok_sends as f64 / send_s
    } else {
        0.0
    };
    report.put("deliveries_per_s", delivered_per_s.round());
    report.put("send_phase_s", (send_s * 1000.0).round() / 1000.0);
    report.put("group_sends", stats.group_sends);
    report.put("direct_sends", stats.direct_sends);
    report.put("gated_retries", stats.gated);
    report.put("ops_dropped_behind_schedule", stats.dropped);
    report.put("churn_requested", stats.churn_requested);
    report.put("churn_ops", churn_outcome.ops);
    report
}

/// Counts the pacer keeps.
#[derive(Debug, Default)]
struct PaceStats {
    group_sends: u64,
    direct_sends: u64,
    gated: u64,
    dropped: u64,
    churn_requested: u64,
}

/// The open-loop sender, run on the main thread.
struct Pacer<'a> {
    sizes: Sizes,
    shared: &'a Arc<Shared>,
    users: &'a [Arc<User>],
    group_names: &'a [String],
    window: u64,
    /// Unary calls in flight, all senders together.
    max_inflight: u32,
    rng: Rng,
    /// Every send, indexed by its flow index.
    sends: Vec<SendRec>,
    /// Next sequence number per (sender, channel).
    seqs: HashMap<(u32, u32), u32>,
    acks: Sender<Ack>,
    errors: ErrorCounts,
    stats: PaceStats,
}

impl Pacer<'_> {
    /// Sends at the target rate for the scenario's duration; a reason if it
    /// had to stop early.
    fn pace(
        &mut self,
        recv: &RecvShared,
        deadline: Deadline,
        churn: &Sender<()>,
        churners: u32,
    ) -> Option<String> {
        let rate = self.sizes.rate.max(1.0);
        let duration = Duration::from_secs_f64(self.sizes.duration_s.max(0.0));
        let burst = ((rate * 0.02).ceil() as u64).max(1);
        let capacity = self.shared.flow.capacity();
        let started = Instant::now();
        let mut ops = 0u64;
        loop {
            let elapsed = started.elapsed();
            if elapsed >= duration {
                return None;
            }
            if let Some(reason) = stop_reason(recv, deadline) {
                return Some(reason);
            }
            let due = (rate * elapsed.as_secs_f64()) as u64;
            if due > ops + burst {
                self.stats.dropped += due - ops - burst;
                ops = due - burst;
            }
            let mut blocked = false;
            while ops < due {
                if self.shared.flow.outstanding() >= self.window
                    || self.shared.inflight.load(Ordering::Acquire) >= self.max_inflight
                    || self.sends.len() >= capacity
                {
                    blocked = true;
                    break;
                }
                ops += 1;
                if churners > 0 && self.rng.unit() < self.sizes.churn_share {
                    self.stats.churn_requested += 1;
                    let _ = churn.try_send(());
                    continue;
                }
                self.send_one();
            }
            let pause = if blocked {
                Duration::from_micros(100)
            } else {
                let next = Duration::from_secs_f64((ops + 1) as f64 / rate);
                next.saturating_sub(started.elapsed())
                    .clamp(Duration::from_micros(50), Duration::from_millis(1))
            };
            std::thread::sleep(pause);
        }
    }

    /// Picks a sender and a target and starts one send.
    fn send_one(&mut self) {
        let users = self.users.len() as u32;
        let sender = self.rng.below(users);
        let mut target = None;
        if self.rng.unit() < self.sizes.group_share {
            for _ in 0..3 {
                let g = {
                    let mine = lock(&self.shared.groups_of[sender as usize]);
                    if mine.is_empty() {
                        break;
                    }
                    mine[self.rng.below(mine.len() as u32) as usize]
                };
                let inflight = &self.shared.group_inflight[g as usize];
                inflight.fetch_add(1, Ordering::SeqCst);
                if self.shared.gate[g as usize].load(Ordering::SeqCst) {
                    inflight.fetch_sub(1, Ordering::SeqCst);
                    self.stats.gated += 1;
                    continue;
                }
                // Membership of g cannot change now; make sure it still
                // includes the sender.
                if !lock(&self.shared.groups_of[sender as usize]).contains(&g) {
                    inflight.fetch_sub(1, Ordering::SeqCst);
                    continue;
                }
                let (version, count) = *lock(&self.shared.current[g as usize]);
                target = Some((g, version, count));
                break;
            }
        }
        let (chan, recipients, fanout, name) = match target {
            Some((g, version, count)) => {
                self.stats.group_sends += 1;
                (
                    GROUP_BIT | g,
                    Recipients::Group { group: g, version },
                    count,
                    self.group_names[g as usize].as_str(),
                )
            }
            None => {
                self.stats.direct_sends += 1;
                let mut to = self.rng.below(users - 1);
                if to >= sender {
                    to += 1;
                }
                (
                    to,
                    Recipients::User(to),
                    1,
                    self.users[to as usize].name.as_str(),
                )
            }
        };
        let idx = self.sends.len() as u32;
        let seq = {
            let next = self.seqs.entry((sender, chan)).or_insert(0);
            *next += 1;
            *next - 1
        };
        self.shared.flow.begin(idx, fanout);
        let start_ns = now_ns();
        self.sends.push(SendRec {
            sender,
            chan,
            seq,
            start_ns,
            ack_ns: 0,
            id: 0,
            ok: false,
            recipients,
        });
        let text = Payload {
            sender,
            chan,
            seq,
            idx,
            sent_ns: start_ns,
        }
        .encode();
        let group = target.map(|(g, _, _)| g);
        let user = &self.users[sender as usize];
        match user.send(name, text) {
            Ok(call) => {
                self.shared.inflight.fetch_add(1, Ordering::AcqRel);
                let shared = Arc::clone(self.shared);
                let acks = self.acks.clone();
                user.client.spawn(async move {
                    let result = call.await;
                    let ack_ns = now_ns();
                    if let Some(g) = group {
                        shared.group_inflight[g as usize].fetch_sub(1, Ordering::SeqCst);
                    }
                    shared.inflight.fetch_sub(1, Ordering::AcqRel);
                    let result = match result {
                        Ok(reply) => Ok(reply.message_id),
                        Err(error) => {
                            shared.flow.failed(idx);
                            Err(error_code(&error))
                        }
                    };
                    let _ = acks.send(Ack {
                        idx,
                        ack_ns,
                        result,
                    });
                });
            }
            Err(error) => {
                if let Some(g) = group {
                    self.shared.group_inflight[g as usize].fetch_sub(1, Ordering::SeqCst);
                }
                self.shared.flow.failed(idx);
                let _ = self.acks.send(Ack {
                    idx,
                    ack_ns: now_ns(),
                    result: Err(error_code(&error)),
                });
            }
        }
    }
}

/// What the churn thread did.
#[derive(Debug, Default)]
struct ChurnOutcome {
    ops: u64,
    errors: ErrorCounts,
}

/// Performs one churn operation per request until the pacing stops: a
/// random churner joins a group it is not in and leaves one it is in, with
/// both groups gated meanwhile.
fn churn_loop(
    shared: &Shared,
    users: &[Arc<User>],
    group_names: &[String],
    churners: u32,
    requests: &Receiver<()>,
    seed: u64,
) -> ChurnOutcome {
    let mut outcome = ChurnOutcome::default();
    let mut rng = Rng::new(seed);
    let total = users.len() as u32;
    let groups = group_names.len() as u32;
    loop {
        match requests.recv_timeout(Duration::from_millis(2)) {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout) => {
                if shared.stop.load(Ordering::Acquire) {
                    return outcome;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return outcome,
        }
        if churners == 0 {
            continue;
        }
        let churner = total - churners + rng.below(churners);
        let mine = lock(&shared.groups_of[churner as usize]).clone();
        let leavable: Vec<u32> = mine
            .iter()
            .copied()
            .filter(|&g| lock(&shared.current[g as usize]).1 > 2)
            .collect();
        let joinable: Vec<u32> = (0..groups).filter(|g| !mine.contains(g)).collect();
        if leavable.is_empty() || joinable.is_empty() {
            continue;
        }
        let leave = leavable[rng.below(leavable.len() as u32) as usize];
        let join = joinable[rng.below(joinable.len() as u32) as usize];
        for g in [leave, join] {
            shared.gate[g as usize].store(true, Ordering::SeqCst);
        }
        let quiet_by = Instant::now() + Duration::from_secs(10);
        while [leave, join]
            .iter()
            .any(|&g| shared.group_inflight[g as usize].load(Ordering::SeqCst) > 0)
        {
            if Instant::now() > quiet_by {
                *outcome.errors.entry("GATE_TIMEOUT".into()).or_default() += 1;
                break;
            }
            std::thread::sleep(Duration::from_micros(20));
        }
        let user = &users[churner as usize];
        match user.join_group(&group_names[join as usize]) {
            Ok(()) => change(shared, churner, join, true),
            Err(code) => *outcome.errors.entry(code).or_default() += 1,
        }
        match user.leave_group(&group_names[leave as usize]) {
            Ok(()) => change(shared, churner, leave, false),
            Err(code) => *outcome.errors.entry(code).or_default() += 1,
        }
        for g in [leave, join] {
            shared.gate[g as usize].store(false, Ordering::SeqCst);
        }
        outcome.ops += 1;
    }
}

/// Records that `user` joined (or left) group `g`: a new membership version.
fn change(shared: &Shared, user: u32, g: u32, joined: bool) {
    let mut membership = lock(&shared.membership);
    let (_, members) = membership.latest(g);
    let mut members = members.to_vec();
    if joined {
        members.push(user);
    } else {
        members.retain(|&m| m != user);
    }
    let count = members.len() as u32;
    let version = membership.push(g, members);
    drop(membership);
    *lock(&shared.current[g as usize]) = (version, count);
    let mut mine = lock(&shared.groups_of[user as usize]);
    if joined {
        mine.push(g);
    } else {
        mine.retain(|&x| x != g);
    }
}
