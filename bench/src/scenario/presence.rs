//! The `presence` scenario: what membership events cost in a group at the
//! size where they stop (`--membership-events-max-members`, 1000 by
//! default). Every user is connected with `EVENT_TYPE_MEMBERSHIP`, each on
//! its own channel (user i on node i): an anchor, who creates the group and
//! stays in it throughout, `members` members and `joins` joiners.
//!
//! * Join: the anchor and the first `join_size - 2` members are in the
//!   group, so each measured join makes it `join_size` members (default the
//!   threshold: the largest group whose joins still send events). Each
//!   joiner in turn joins and leaves, one at a time; after each call the
//!   bench waits until every member has its event. Reported per join:
//!   `JoinGroupChat` latency (the report's latency), the time until the
//!   last member had the event, the server's CPU over that window (and
//!   Redis's), and the events delivered; likewise per leave.
//! * Mass rejoin: the other members join (the last one takes the group past
//!   the threshold: no event), then all `members` leave and rejoin, at most
//!   `concurrency` calls in flight, while the anchor stays. Every change
//!   sends one event to each member after it (a join, the joiner included)
//!   or each that remains (a leave), unless the group has more than the
//!   threshold before or after: the expected totals are exact whatever the
//!   interleaving ([`joins_events`], [`leaves_events`]). Reported: events,
//!   time (first leave to the last member's last event), events/s, server
//!   (and Redis) CPU per event, and the streams dropped as slow consumers.
//! * Checks (any failure fails the run): every phase's total; every member
//!   saw the measured joins and leaves exactly, in order; in the concurrent
//!   phases every event's `member_count` names one user for every member
//!   that saw it, and each member saw exactly the events of the changes
//!   while it was in the group, in the group's order (counts rising by one
//!   for joins, falling by one for leaves); no stream ended.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_proto::chat::EventType;
use futures::StreamExt;
use serde_json::{json, Map};

use super::closed_loop::stop_reason;
use crate::check;
use crate::event::{Membership, JOINED, LEFT};
use crate::net::{connect_users_asking, Bench, Online, RecvShared, User};
use crate::procfs::Sample;
use crate::report::Report;
use crate::util::{now_ns, secs_between, Deadline};

/// The scenario's sizes.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Members that leave and rejoin in the mass rejoin.
    pub members: u32,
    /// Members of the group after each measured join, the joiner included.
    pub join_size: u32,
    /// Measured joins (each by its own joiner, followed by its leave).
    pub joins: u32,
    /// Join or leave calls in flight at once in the concurrent phases.
    pub concurrency: u32,
    /// The server's `--membership-events-max-members`.
    pub events_max_members: u32,
}

/// Events a join sends when the group had `before` members: one to each
/// member after it, the joiner included; none when the group has more
/// than `most` members after it.
pub fn join_events(before: u64, most: u64) -> u64 {
    let after = before + 1;
    if before <= most && after <= most {
        after
    } else {
        0
    }
}

/// Events a leave sends when the group had `before` (> 0) members: one to
/// each member that remains; none when the group had more than `most`.
pub fn leave_events(before: u64, most: u64) -> u64 {
    let after = before.saturating_sub(1);
    if before <= most && after <= most {
        after
    } else {
        0
    }
}

/// Events of joins taking a group from `from` to `to` members.
pub fn joins_events(from: u64, to: u64, most: u64) -> u64 {
    (from..to).map(|before| join_events(before, most)).sum()
}

/// Events of leaves taking a group from `from` down to `to` members.
pub fn leaves_events(from: u64, to: u64, most: u64) -> u64 {
    (to + 1..=from)
        .map(|before| leave_events(before, most))
        .sum()
}

/// The phases, in order; each event is tagged with the phase it arrived in
/// (a phase starts only when every event of the one before has arrived).
const SETUP: u8 = 0;
const JOINS: u8 = 1;
const FILL: u8 = 2;
const LEAVE: u8 = 3;
const REJOIN: u8 = 4;
/// After the phases: the streams are closing, and each end sends the
/// remaining members a DISCONNECTED event that nothing checks.
const CLOSING: u8 = 5;
const PHASE_NAMES: [&str; 5] = ["setup", "joins", "fill", "mass leave", "mass rejoin"];

/// One membership event as a member saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// The phase it arrived in.
    pub phase: u8,
    /// [`JOINED`] or [`LEFT`] (anything else fails the check).
    pub kind: u32,
    /// `member_count`.
    pub count: u32,
    /// The user's index; [`UNKNOWN`] for a name the scenario did not use.
    pub user: u32,
}

/// The user index of a name the scenario did not use.
pub const UNKNOWN: u32 = u32::MAX;

/// What the receivers' membership hook records.
struct Recorder {
    phase: AtomicU8,
    group: String,
    index: HashMap<String, u32>,
    /// Per user, the events in arrival order (only its receiver writes).
    logs: Vec<Mutex<Vec<Seen>>>,
    /// Events about another group.
    foreign: AtomicU64,
}

impl Recorder {
    fn record(&self, user: u32, change: &Membership) {
        let phase = self.phase.load(Ordering::Acquire);
        if phase == CLOSING {
            return;
        }
        if change.group != self.group {
            self.foreign.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let seen = Seen {
            phase,
            kind: change.kind,
            count: change.member_count,
            user: self.index.get(&change.user).copied().unwrap_or(UNKNOWN),
        };
        if let Some(log) = self.logs.get(user as usize) {
            log.lock().unwrap_or_else(|e| e.into_inner()).push(seen);
        }
    }
}

/// A concurrent phase as the checks see it: the group goes from `from` to
/// `to` members by changes of one `kind`, each by one of `movers`, while
/// `present` stay in it throughout.
pub struct Mass<'a> {
    /// [`JOINED`] or [`LEFT`].
    pub kind: u32,
    /// Members before the phase.
    pub from: u64,
    /// Members after it.
    pub to: u64,
    /// Users in the group for the whole phase.
    pub present: &'a [u32],
    /// Users who join (or leave) in the phase.
    pub movers: &'a [u32],
}

/// Checks what every user saw of a concurrent phase (`seen[user]`, that
/// phase's events in arrival order) against `mass` with the threshold
/// `most`: each event's count names one user for everyone; each mover
/// changes at one count; every change that sends events was seen; and each
/// user saw exactly the events of the changes while it was a member, in
/// the group's order (a joiner from its own join on, a leaver until its
/// own leave, a user present throughout all of them, anyone else none).
///
/// # Errors
/// The first few problems, and how many users saw something else.
pub fn check_mass(seen: &[Vec<Seen>], mass: &Mass<'_>, most: u64) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let mut who: HashMap<u32, u32> = HashMap::new();
    for event in seen.iter().flatten() {
        if event.kind != mass.kind {
            problems.push(format!("an event of kind {} in the phase", event.kind));
            return Err(problems);
        }
        let named = *who.entry(event.count).or_insert(event.user);
        if named != event.user {
            problems.push(format!(
                "count {} names user {named} for one member and {} for another",
                event.count, event.user
            ));
            return Err(problems);
        }
    }
    // The changes that send events, by the count after them, in the
    // group's order.
    let counts: Vec<u32> = if mass.kind == JOINED {
        (mass.from..mass.to)
            .filter(|&before| join_events(before, most) > 0)
            .map(|before| (before + 1) as u32)
            .collect()
    } else {
        (mass.to + 1..=mass.from)
            .rev()
            .filter(|&before| leave_events(before, most) > 0)
            .map(|before| (before - 1) as u32)
            .collect()
    };
    if let Some(count) = counts.iter().find(|c| !who.contains_key(c)) {
        problems.push(format!("nobody saw the change to {count} members"));
    }
    if who.len() != counts.len() {
        problems.push(format!(
            "{} member counts seen, {} changes send events",
            who.len(),
            counts.len()
        ));
    }
    let mut at: HashMap<u32, u32> = HashMap::new();
    for (&count, &user) in &who {
        if at.insert(user, count).is_some() {
            problems.push(format!("user {user} changed twice"));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut wrong = 0;
    for (user, got) in seen.iter().enumerate() {
        let user = user as u32;
        let expected: Vec<u32> = if mass.present.contains(&user) {
            counts.clone()
        } else if mass.movers.contains(&user) {
            match at.get(&user) {
                // A joiner sees its own join and those after it; a leaver
                // those before its own.
                Some(&own) if mass.kind == JOINED => {
                    counts.iter().copied().filter(|&c| c >= own).collect()
                }
                Some(&own) => counts.iter().copied().filter(|&c| c > own).collect(),
                // Its change sent no event, so neither did the changes
                // after it (a join) or before it (a leave) that it saw.
                None => Vec::new(),
            }
        } else {
            Vec::new()
        };
        let got_counts: Vec<u32> = got.iter().map(|e| e.count).collect();
        if got_counts != expected {
            wrong += 1;
            if problems.len() < 3 {
                problems.push(format!(
                    "user {user} saw {} events (counts {}), expected {} (counts {})",
                    got_counts.len(),
                    span(&got_counts),
                    expected.len(),
                    span(&expected)
                ));
            }
        }
    }
    if wrong > 0 {
        problems.push(format!("{wrong} users saw other events than expected"));
        return Err(problems);
    }
    Ok(())
}

/// `first..last` of a list of counts, for messages.
fn span(counts: &[u32]) -> String {
    match (counts.first(), counts.last()) {
        (Some(first), Some(last)) => format!("{first}..{last}"),
        _ => "none".to_owned(),
    }
}

/// Waits until the receivers have read `target` membership events in all.
fn wait_events(shared: &RecvShared, target: u64, deadline: Deadline) -> Result<(), String> {
    loop {
        let got = shared.membership_events.load(Ordering::Acquire);
        if got >= target {
            return Ok(());
        }
        if let Some(reason) = stop_reason(shared, deadline) {
            return Err(format!(
                "{reason} with {} membership events still to come",
                target - got
            ));
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// Joins (or leaves) `group` as each of `users`, at most `concurrency`
/// calls in flight.
///
/// # Errors
/// The first failed call, named.
fn drive(
    online: &Online,
    users: &[u32],
    group: &str,
    join: bool,
    concurrency: u32,
) -> Result<(), String> {
    let call = |user: &Arc<User>| {
        let user = Arc::clone(user);
        async move {
            let name = if join {
                "JoinGroupChat"
            } else {
                "LeaveGroupChat"
            };
            let result = if join {
                match user.join_group_async(group) {
                    Ok(call) => call.await,
                    Err(code) => Err(code),
                }
            } else {
                match user.leave_group_async(group) {
                    Ok(call) => call.await,
                    Err(code) => Err(code),
                }
            };
            result.map_err(|code| format!("{name} {group} by {}: {code}", user.name))
        }
    };
    let results: Vec<Result<(), String>> = futures::executor::block_on(
        futures::stream::iter(users.iter().map(|&u| call(&online.users[u as usize])))
            .buffer_unordered(concurrency.max(1) as usize)
            .collect(),
    );
    results.into_iter().collect()
}

/// CPU seconds over the measured windows: every node together, each node,
/// Redis.
#[derive(Debug, Default)]
struct Cpu {
    server: Option<f64>,
    nodes: Vec<f64>,
    redis: Option<f64>,
}

impl Cpu {
    fn add(&mut self, before: &Sample, after: &Sample) {
        if let Some(cpu) = before.server_cpu_delta(after) {
            self.server = Some(self.server.unwrap_or(0.0) + cpu);
        }
        if let Some(nodes) = before.node_cpu_deltas(after) {
            self.nodes.resize(nodes.len(), 0.0);
            for (sum, cpu) in self.nodes.iter_mut().zip(nodes) {
                *sum += cpu;
            }
        }
        if let Some(cpu) = before.redis_cpu_delta(after) {
            self.redis = Some(self.redis.unwrap_or(0.0) + cpu);
        }
    }
}

/// What the measured joins (or leaves) measured.
#[derive(Debug, Default)]
struct Steps {
    /// Each call's latency, ns.
    call_ns: Vec<u64>,
    /// From each call's start to the last member's event, ns.
    spread_ns: Vec<u64>,
    /// Events delivered in the windows.
    events: u64,
    cpu: Cpu,
}

/// What the mass rejoin measured.
#[derive(Debug, Default)]
struct MassOutcome {
    leave_events: u64,
    rejoin_events: u64,
    leave_s: f64,
    rejoin_s: f64,
    total_s: f64,
    cpu: Cpu,
    end: Sample,
}

/// The users by role: the anchor is user 0, member i is user 1 + i, joiner
/// k is user 1 + members + k.
struct Cast {
    members: u32,
}

impl Cast {
    const ANCHOR: u32 = 0;
    fn member(&self, i: u32) -> u32 {
        1 + i
    }
    fn joiner(&self, k: u32) -> u32 {
        1 + self.members + k
    }
    fn members(&self, range: std::ops::Range<u32>) -> Vec<u32> {
        range.map(|i| self.member(i)).collect()
    }
}

/// Runs the phases; `target` follows the membership events expected so
/// far.
fn phases(
    bench: &Bench,
    sizes: &Sizes,
    online: &Online,
    shared: &RecvShared,
    recorder: &Recorder,
    deadline: Deadline,
) -> Result<(Steps, Steps, MassOutcome), String> {
    let cast = Cast {
        members: sizes.members,
    };
    let most = u64::from(sizes.events_max_members);
    let n = u64::from(sizes.members);
    let s = u64::from(sizes.join_size);
    let group = recorder.group.as_str();
    let mut target = 0;

    // Setup: the anchor creates the group and members join until it has
    // join_size - 1.
    online.users[Cast::ANCHOR as usize]
        .create_group(group)
        .map_err(|code| format!("CreateGroupChat {group}: {code}"))?;
    drive(
        online,
        &cast.members(0..sizes.join_size - 2),
        group,
        true,
        sizes.concurrency,
    )?;
    target += joins_events(0, s - 1, most);
    wait_events(shared, target, deadline).map_err(|e| format!("setup: {e}"))?;

    // The measured joins and leaves, one at a time.
    recorder.phase.store(JOINS, Ordering::Release);
    let (mut joins, mut leaves) = (Steps::default(), Steps::default());
    for k in 0..sizes.joins {
        let joiner = &online.users[cast.joiner(k) as usize];
        for (steps, join) in [(&mut joins, true), (&mut leaves, false)] {
            let before = bench.sample();
            let had = shared.membership_events.load(Ordering::Acquire);
            let start = now_ns();
            let result = if join {
                joiner.join_group(group)
            } else {
                joiner.leave_group(group)
            };
            let called = now_ns();
            result.map_err(|code| {
                let call = if join {
                    "JoinGroupChat"
                } else {
                    "LeaveGroupChat"
                };
                format!("{call} {group} by {}: {code}", joiner.name)
            })?;
            target += if join {
                join_events(s - 1, most)
            } else {
                leave_events(s, most)
            };
            wait_events(shared, target, deadline).map_err(|e| format!("joins: {e}"))?;
            let done = now_ns();
            let after = bench.sample();
            steps.call_ns.push(called - start);
            steps.spread_ns.push(done - start);
            steps.events += shared.membership_events.load(Ordering::Acquire) - had;
            steps.cpu.add(&before, &after);
        }
    }

    // The rest of the members join: the group has members + 1.
    recorder.phase.store(FILL, Ordering::Release);
    drive(
        online,
        &cast.members(sizes.join_size - 2..sizes.members),
        group,
        true,
        sizes.concurrency,
    )?;
    target += joins_events(s - 1, n + 1, most);
    wait_events(shared, target, deadline).map_err(|e| format!("fill: {e}"))?;

    // The mass rejoin: every member leaves, then every member joins.
    let everyone = cast.members(0..sizes.members);
    let mut mass = MassOutcome::default();
    recorder.phase.store(LEAVE, Ordering::Release);
    let before = bench.sample();
    let start = now_ns();
    drive(online, &everyone, group, false, sizes.concurrency)?;
    mass.leave_events = leaves_events(n + 1, 1, most);
    target += mass.leave_events;
    wait_events(shared, target, deadline).map_err(|e| format!("mass leave: {e}"))?;
    let left = now_ns();
    recorder.phase.store(REJOIN, Ordering::Release);
    drive(online, &everyone, group, true, sizes.concurrency)?;
    mass.rejoin_events = joins_events(1, n + 1, most);
    target += mass.rejoin_events;
    wait_events(shared, target, deadline).map_err(|e| format!("mass rejoin: {e}"))?;
    let end = now_ns();
    mass.end = bench.sample();
    mass.cpu.add(&before, &mass.end);
    mass.leave_s = secs_between(start, left);
    mass.rejoin_s = secs_between(left, end);
    mass.total_s = secs_between(start, end);
    Ok((joins, leaves, mass))
}

/// Checks every user's record (`logs[user]`, arrival order) against the
/// phases `sizes` drives; `Err` lists the problems.
fn check_all(logs: &[Vec<Seen>], sizes: &Sizes) -> Result<(), Vec<String>> {
    let cast = Cast {
        members: sizes.members,
    };
    let most = u64::from(sizes.events_max_members);
    let (n, s) = (u64::from(sizes.members), u64::from(sizes.join_size));
    let of_phase = |phase: u8| -> Vec<Vec<Seen>> {
        logs.iter()
            .map(|log| log.iter().copied().filter(|e| e.phase == phase).collect())
            .collect()
    };
    let mut problems = Vec::new();
    if let Some(event) = logs.iter().flatten().find(|e| e.user == UNKNOWN) {
        problems.push(format!(
            "an event about a user the scenario does not have (phase {})",
            PHASE_NAMES[event.phase as usize]
        ));
    }
    let residents: Vec<u32> = std::iter::once(Cast::ANCHOR)
        .chain(cast.members(0..sizes.join_size - 2))
        .collect();
    let setup_movers = residents.clone();
    let rest = cast.members(sizes.join_size - 2..sizes.members);
    let everyone = cast.members(0..sizes.members);
    let anchor = [Cast::ANCHOR];
    let masses = [
        (
            SETUP,
            Mass {
                kind: JOINED,
                from: 0,
                to: s - 1,
                present: &[],
                movers: &setup_movers,
            },
        ),
        (
            FILL,
            Mass {
                kind: JOINED,
                from: s - 1,
                to: n + 1,
                present: &residents,
                movers: &rest,
            },
        ),
        (
            LEAVE,
            Mass {
                kind: LEFT,
                from: n + 1,
                to: 1,
                present: &anchor,
                movers: &everyone,
            },
        ),
        (
            REJOIN,
            Mass {
                kind: JOINED,
                from: 1,
                to: n + 1,
                present: &anchor,
                movers: &everyone,
            },
        ),
    ];
    for (phase, mass) in &masses {
        if let Err(found) = check_mass(&of_phase(*phase), mass, most) {
            for problem in found {
                problems.push(format!("{}: {problem}", PHASE_NAMES[*phase as usize]));
            }
        }
    }

    // The measured joins: exactly each joiner's JOINED and LEFT, in turn.
    let seen = of_phase(JOINS);
    let (join_sends, leave_sends) = (join_events(s - 1, most) > 0, leave_events(s, most) > 0);
    let mut expected_all = Vec::new();
    for k in 0..sizes.joins {
        let joiner = cast.joiner(k);
        if join_sends {
            expected_all.push((JOINED, s as u32, joiner));
        }
        if leave_sends {
            expected_all.push((LEFT, (s - 1) as u32, joiner));
        }
    }
    let mut wrong = 0;
    for (user, got) in seen.iter().enumerate() {
        let user = user as u32;
        let expected: Vec<(u32, u32, u32)> = if residents.contains(&user) {
            expected_all.clone()
        } else if user >= cast.joiner(0) && join_sends {
            vec![(JOINED, s as u32, user)]
        } else {
            Vec::new()
        };
        let got: Vec<(u32, u32, u32)> = got.iter().map(|e| (e.kind, e.count, e.user)).collect();
        if got != expected {
            wrong += 1;
            if wrong <= 3 {
                let first = got
                    .iter()
                    .zip(&expected)
                    .position(|(a, b)| a != b)
                    .unwrap_or(got.len().min(expected.len()));
                problems.push(format!(
                    "joins: user {user} saw {} events, expected {}; first difference at {first}",
                    got.len(),
                    expected.len()
                ));
            }
        }
    }
    if wrong > 0 {
        problems.push(format!(
            "joins: {wrong} users did not see every join and leave in order"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Runs the scenario and reports.
pub fn run(bench: &Bench, sizes: Sizes) -> Report {
    let deadline = Deadline::after(bench.timeout);
    let mut report = Report::new("presence", "events/s");
    let members = sizes.members.max(1);
    let sizes = Sizes {
        members,
        join_size: sizes.join_size.clamp(2, members + 2),
        joins: sizes.joins.max(1),
        concurrency: sizes.concurrency.max(1),
        ..sizes
    };
    let most = u64::from(sizes.events_max_members);
    let (n, s) = (u64::from(sizes.members), u64::from(sizes.join_size));
    let users = 1 + sizes.members + sizes.joins;
    let mut params = Map::new();
    params.insert("members".into(), sizes.members.into());
    params.insert("join_size".into(), sizes.join_size.into());
    params.insert("joins".into(), sizes.joins.into());
    params.insert("concurrency".into(), sizes.concurrency.into());
    params.insert("events_max_members".into(), sizes.events_max_members.into());
    params.insert("users".into(), users.into());
    params.insert("channels".into(), users.into());
    report.params = params;

    let prefix = bench.run_prefix("presence");
    let cast = Cast {
        members: sizes.members,
    };
    let mut names = vec![format!("{prefix}anchor")];
    names.extend((0..sizes.members).map(|i| format!("{prefix}m{i}")));
    names.extend((0..sizes.joins).map(|k| format!("{prefix}j{k}")));
    debug_assert_eq!(names.len() as u32, cast.joiner(sizes.joins));
    let recorder = Arc::new(Recorder {
        phase: AtomicU8::new(SETUP),
        group: format!("{prefix}g"),
        index: names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), i as u32))
            .collect(),
        logs: (0..users).map(|_| Mutex::new(Vec::new())).collect(),
        foreign: AtomicU64::new(0),
    });
    let hook = {
        let recorder = Arc::clone(&recorder);
        Arc::new(move |user: u32, change: &Membership| recorder.record(user, change))
    };
    let shared = RecvShared::with_membership(hook);
    let fresh = bench.sample();
    let online = match connect_users_asking(
        bench,
        names,
        |idx| idx as usize,
        &[EventType::EVENT_TYPE_MEMBERSHIP],
        &shared,
        deadline,
    ) {
        Ok(online) => online,
        Err(error) => {
            report.failures.push(error);
            return report;
        }
    };
    let outcome = phases(bench, &sizes, &online, &shared, &recorder, deadline);
    recorder.phase.store(CLOSING, Ordering::Release);
    // What arrived before the closing began (a receiver counts an event
    // after recording it).
    let received = shared.membership_events.load(Ordering::Acquire);
    let receivers = online.close(Deadline::after(Duration::from_secs(30)));
    let mut slow = 0;
    for r in &receivers {
        if let Some(code) = &r.ended {
            *report.errors.entry(format!("stream:{code}")).or_default() += 1;
            if code == "RESOURCE_EXHAUSTED" {
                slow += 1;
            }
        }
    }
    report.put("slow_consumer_drops", slow);
    if (receivers.len() as u32) < users {
        report.failures.push(format!(
            "{} of {users} receivers did not report back",
            users - receivers.len() as u32
        ));
    }
    report.put("membership_events", received);
    let (joins, leaves, mass) = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            report.failures.push(error);
            return report;
        }
    };

    // Checks.
    let foreign = recorder.foreign.load(Ordering::Relaxed);
    if foreign > 0 {
        report
            .failures
            .push(format!("{foreign} membership events about another group"));
    }
    let logs: Vec<Vec<Seen>> = recorder
        .logs
        .iter()
        .map(|log| std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner())))
        .collect();
    let expected_total = joins_events(0, s - 1, most)
        + u64::from(sizes.joins) * (join_events(s - 1, most) + leave_events(s, most))
        + joins_events(s - 1, n + 1, most)
        + mass.leave_events
        + mass.rejoin_events;
    let mut totals = Map::new();
    for (phase, name) in PHASE_NAMES.iter().enumerate() {
        let count = logs
            .iter()
            .flatten()
            .filter(|e| e.phase == phase as u8)
            .count();
        totals.insert((*name).to_owned(), count.into());
    }
    report.put("events_by_phase", totals);
    report.put("expected_events", expected_total);
    if received != expected_total {
        report.failures.push(format!(
            "{received} membership events received, expected {expected_total}"
        ));
    }
    match check_all(&logs, &sizes) {
        Ok(()) => report.put("order_problems", 0),
        Err(problems) => {
            report.put("order_problems", problems.len());
            report.failures.extend(problems);
        }
    }
    drop(logs);

    // The measured joins and leaves.
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    let count = f64::from(sizes.joins);
    let per_step = |cpu: Option<f64>| cpu.map(|c| round(c * 1e6 / count));
    let percentiles = |ns: &[u64]| {
        check::latency(ns.to_vec()).map_or(
            serde_json::Value::Null,
            |l| json!({"p50": round(l.p50), "p99": round(l.p99), "max": round(l.max)}),
        )
    };
    report.latency = check::latency(joins.call_ns.clone());
    report.put("join_spread_us", percentiles(&joins.spread_ns));
    report.put("leave_latency_us", percentiles(&leaves.call_ns));
    report.put("leave_spread_us", percentiles(&leaves.spread_ns));
    report.put("events_per_join", round(joins.events as f64 / count));
    report.put("events_per_leave", round(leaves.events as f64 / count));
    let join_cpu = per_step(joins.cpu.server);
    let leave_cpu = per_step(leaves.cpu.server);
    report.put("join_server_cpu_us", join_cpu);
    report.put("leave_server_cpu_us", leave_cpu);
    if joins.cpu.nodes.len() > 1 {
        let nodes: Vec<Option<f64>> = joins.cpu.nodes.iter().map(|&c| per_step(Some(c))).collect();
        report.put("join_node_cpu_us", nodes);
    }
    if joins.cpu.redis.is_some() {
        report.put("join_redis_cpu_us", per_step(joins.cpu.redis));
        report.put("leave_redis_cpu_us", per_step(leaves.cpu.redis));
    }
    let us = |ns: &[u64], at: fn(&check::Latency) -> f64| {
        check::latency(ns.to_vec()).map_or_else(|| "-".to_owned(), |l| format!("{:.0}", at(&l)))
    };
    let mut note = format!(
        "join to {s} members (events to all): JoinGroupChat p50 {} / p99 {} µs, last member's \
         event p50 {} µs, {:.0} events/join",
        us(&joins.call_ns, |l| l.p50),
        us(&joins.call_ns, |l| l.p99),
        us(&joins.spread_ns, |l| l.p50),
        joins.events as f64 / count
    );
    if let (Some(join), Some(leave)) = (join_cpu, leave_cpu) {
        note.push_str(&format!(
            ", server {join:.0} µs CPU/join ({leave:.0}/leave)"
        ));
    }
    if let Some(redis) = per_step(joins.cpu.redis) {
        note.push_str(&format!(", Redis {redis:.0} µs/join"));
    }
    report.notes.push(note);

    // The mass rejoin.
    let events = mass.leave_events + mass.rejoin_events;
    report.put("mass_leave_events", mass.leave_events);
    report.put("mass_rejoin_events", mass.rejoin_events);
    report.put("mass_leave_s", round(mass.leave_s));
    report.put("mass_rejoin_s", round(mass.rejoin_s));
    if mass.rejoin_s > 0.0 {
        report.put(
            "mass_rejoin_events_per_s",
            (mass.rejoin_events as f64 / mass.rejoin_s).round(),
        );
    }
    report.elapsed_s = mass.total_s;
    if mass.total_s > 0.0 {
        report.throughput = events as f64 / mass.total_s;
    }
    let per_event = |cpu: f64| (events > 0).then(|| cpu * 1e6 / events as f64);
    if let Some(cpu) = mass.cpu.server {
        report.server_cpu_us_per_unit = per_event(cpu);
        report.put("mass_server_cpu_s", round(cpu));
    }
    if mass.cpu.nodes.len() > 1 {
        report.node_cpu_us_per_unit = mass
            .cpu
            .nodes
            .iter()
            .filter_map(|&c| per_event(c))
            .collect();
        let nodes: Vec<f64> = mass.cpu.nodes.iter().map(|&c| round(c)).collect();
        report.put("mass_node_cpu_s", nodes);
    }
    if let Some(cpu) = mass.cpu.redis {
        report.redis_cpu_us_per_unit = per_event(cpu);
        report.put("mass_redis_cpu_s", round(cpu));
    }
    if let Some(cpu) = fresh.bench_cpu_delta(&mass.end) {
        report.put("bench_cpu_s", round(cpu));
    }
    report.rss_kb_before = fresh.server_rss_kb;
    report.rss_kb_after = mass.end.server_rss_kb;
    let silent = (1..=n).filter(|&b| join_events(b, most) == 0).count();
    report.put("mass_rejoin_silent_joins", silent);
    report.notes.push(format!(
        "mass rejoin of {n} members (the anchor stays): {} LEFT events in {:.2} s, then {} \
         JOINED in {:.2} s ({silent} joins past the threshold send none), {:.0} events/s, \
         {slow} slow-consumer drops",
        mass.leave_events, mass.leave_s, mass.rejoin_events, mass.rejoin_s, report.throughput
    ));
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_past_the_threshold_sends_nothing() {
        assert_eq!(join_events(0, 1000), 1);
        assert_eq!(join_events(999, 1000), 1000);
        assert_eq!(join_events(1000, 1000), 0);
        assert_eq!(leave_events(1000, 1000), 999);
        assert_eq!(leave_events(1001, 1000), 0);
        assert_eq!(leave_events(1, 1000), 0);
    }

    #[test]
    fn the_mass_totals_are_sums_of_group_sizes() {
        // A group growing from 0 to 1000: 1 + 2 + ... + 1000.
        assert_eq!(joins_events(0, 1000, 1000), 1000 * 1001 / 2);
        // From 1 (the anchor) to 1001: the last join sends none.
        assert_eq!(joins_events(1, 1001, 1000), 1000 * 1001 / 2 - 1);
        // From 1001 down to 1: the first leave sends none.
        assert_eq!(leaves_events(1001, 1, 1000), 999 * 1000 / 2);
        assert_eq!(leaves_events(5, 0, 1000), 4 + 3 + 2 + 1);
        assert_eq!(joins_events(0, 10, 5), 1 + 2 + 3 + 4 + 5);
    }

    /// What every user of a concurrent join phase sees when the joins land
    /// in the order `order` (users), `present` being there throughout.
    fn joins_seen(present: &[u32], order: &[u32], most: u64, users: u32) -> Vec<Vec<Seen>> {
        let mut seen = vec![Vec::new(); users as usize];
        let mut members: Vec<u32> = present.to_vec();
        for &user in order {
            let before = members.len() as u64;
            members.push(user);
            if join_events(before, most) > 0 {
                for &m in &members {
                    seen[m as usize].push(Seen {
                        phase: 0,
                        kind: JOINED,
                        count: members.len() as u32,
                        user,
                    });
                }
            }
        }
        seen
    }

    #[test]
    fn a_consistent_concurrent_join_passes() {
        let order = [3, 1, 4, 2];
        let mass = Mass {
            kind: JOINED,
            from: 1,
            to: 5,
            present: &[0],
            movers: &[1, 2, 3, 4],
        };
        for most in [100, 4] {
            let seen = joins_seen(&[0], &order, most, 6);
            assert_eq!(check_mass(&seen, &mass, most), Ok(()), "most {most}");
        }
    }

    #[test]
    fn missing_duplicated_or_disordered_events_fail() {
        let order = [3, 1, 4, 2];
        let mass = Mass {
            kind: JOINED,
            from: 1,
            to: 5,
            present: &[0],
            movers: &[1, 2, 3, 4],
        };
        let good = joins_seen(&[0], &order, 100, 6);
        let mut missing = good.clone();
        missing[0].remove(1);
        assert!(check_mass(&missing, &mass, 100).is_err());
        let mut swapped = good.clone();
        swapped[0].swap(1, 2);
        assert!(check_mass(&swapped, &mass, 100).is_err());
        let mut twice = good.clone();
        let again = twice[4][0];
        twice[4].push(again);
        assert!(check_mass(&twice, &mass, 100).is_err());
        let mut other_user = good.clone();
        other_user[0][0].user = 2;
        assert!(check_mass(&other_user, &mass, 100).is_err());
        let mut to_outsider = good.clone();
        to_outsider[5].push(good[0][0]);
        assert!(check_mass(&to_outsider, &mass, 100).is_err());
        // Past the threshold nothing may arrive.
        let mut past = joins_seen(&[0], &order, 4, 6);
        past[0].push(Seen {
            phase: 0,
            kind: JOINED,
            count: 5,
            user: 2,
        });
        assert!(check_mass(&past, &mass, 4).is_err());
    }

    #[test]
    fn a_consistent_concurrent_leave_passes_and_a_late_event_fails() {
        // 0 stays; 1..=4 leave in the order 2, 4, 1, 3 from 5 members.
        let mut seen = vec![Vec::new(); 5];
        let mut members = vec![0, 1, 2, 3, 4];
        for user in [2, 4, 1, 3] {
            let before = members.len() as u64;
            members.retain(|&m| m != user);
            if leave_events(before, 4) > 0 {
                for &m in &members {
                    seen[m as usize].push(Seen {
                        phase: 0,
                        kind: LEFT,
                        count: members.len() as u32,
                        user,
                    });
                }
            }
        }
        let mass = Mass {
            kind: LEFT,
            from: 5,
            to: 1,
            present: &[0],
            movers: &[1, 2, 3, 4],
        };
        assert_eq!(check_mass(&seen, &mass, 4), Ok(()));
        let mut late = seen.clone();
        late[1].push(Seen {
            phase: 0,
            kind: LEFT,
            count: 1,
            user: 3,
        });
        assert!(check_mass(&late, &mass, 4).is_err());
    }
}
