//! The `history` scenario: what group history costs. A few users (user i
//! on node i) share two sets of groups, a warm-up set and the measured set.
//! Group g has two members: user g % users, who creates it and fills it
//! with more messages than the server keeps, and the next user, on another
//! node when there are several (so each user is in 4 · groups / users
//! groups, within the server's `--max-groups-per-user`). The fill goes in
//! rounds: one message to every group at once, then a wait until every
//! member has received the round, so no recipient's queue holds more than
//! one round and each group's messages are sent one after another (its
//! kept history is exactly its last sends, in order).
//!
//! * Memory: the server's RSS (every node together) before and after
//!   filling the measured set, divided by the messages it keeps, minus the
//!   text: what a kept message costs beyond its text. The groups and their
//!   members exist before the first sample, so the per-group cost outside
//!   the history is not counted; the warm-up set is filled first so the
//!   transient memory of a fill (call buffers, delivery queues, a resume
//!   ring per session) is already there. What remains includes the
//!   allocator's rounding and each history ring's spare capacity. Run it
//!   against a fresh server (an allocator that kept an earlier peak hands
//!   that memory out again without RSS growing) started with
//!   `--resume-window 0`, so no session keeps recent messages besides the
//!   history (`scripts/bench.sh` does both). With `--redis-pid` the
//!   history is taken to be in Redis (a cluster keeps it there): Redis's
//!   RSS growth per kept message is reported beyond the text, the nodes'
//!   with it; and Redis's CPU per message sent during the measured fill,
//!   the cost of a group message in Redis with history on.
//! * Check: one `GetHistory` per group (both sets), read by a user on
//!   another node than the group's sender, must return exactly the group's
//!   newest kept messages, oldest first, ids increasing, texts as sent, with
//!   `more` and `truncated` as the contract says. A mismatch fails the run.
//! * Latency: `callers` users each issue `GetHistory(limit, backward from
//!   the newest)` one at a time over the measured groups it is in until
//!   `calls` are done; each page is checked for its length and its newest
//!   id. Reports calls/s, latency per call, server CPU per call and, with
//!   `--redis-pid`, Redis's CPU per call.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chat_proto::chat::GetHistoryRequest;
use crossbeam_channel::{RecvTimeoutError, Sender};
use futures::future;
use serde_json::Map;

use super::closed_loop::stop_reason;
use crate::check;
use crate::net::{
    connect_users, setup_groups, Bench, ErrorCounts, FlowMap, Online, RecvShared, User,
};
use crate::procfs;
use crate::report::Report;
use crate::util::{error_code, now_ns, secs_between, Deadline};

/// Most messages one `GetHistory` may ask for (the contract's limit).
const MAX_LIMIT: u32 = 500;

/// The scenario's sizes.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Users, each on its own channel.
    pub users: u32,
    /// Users (the first ones) that issue the timed `GetHistory` calls.
    pub callers: u32,
    /// Groups in the measured set (the warm-up set has as many).
    pub groups: u32,
    /// Messages sent to each group.
    pub messages: u32,
    /// Bytes of each message's text.
    pub text_bytes: u32,
    /// Timed `GetHistory` calls, all callers together.
    pub calls: u32,
    /// `limit` of each timed call.
    pub limit: u32,
    /// The server's `--history-size`.
    pub history_size: u32,
    /// The server's `--history-bytes`.
    pub history_bytes: u64,
}

/// What one group's history must hold after its fill, given the server's
/// limits: the newest `min(messages, history_size, history_bytes / text)`.
pub fn kept_per_group(sizes: &Sizes) -> usize {
    let by_bytes = sizes.history_bytes / u64::from(sizes.text_bytes.max(1));
    let by_bytes = usize::try_from(by_bytes).unwrap_or(usize::MAX);
    (sizes.messages as usize)
        .min(sizes.history_size as usize)
        .min(by_bytes)
}

/// One message as its sender saw it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The id the server answered.
    pub id: u64,
    /// The text sent.
    pub text: String,
}

/// A page of history as read back: each message's id and text, oldest
/// first, and the page's flags.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// (id, text), oldest first.
    pub messages: Vec<(u64, String)>,
    /// `GetHistoryResponse.more`.
    pub more: bool,
    /// `GetHistoryResponse.truncated`.
    pub truncated: bool,
}

/// Checks a backward read from the newest message with `limit` against
/// what was sent to the group (`sent`, in send order, each acknowledged
/// before the next began) when the group keeps `kept` messages: the page
/// must be the newest `min(kept, limit)` sends, oldest first, ids
/// increasing, texts as sent; `more` exactly when more are kept than
/// `limit`; `truncated` exactly when the page reaches the oldest kept
/// message and older ones were evicted (not checked when nothing is kept:
/// with history off the contract leaves it open).
///
/// # Errors
/// What differs, first difference only.
pub fn verify_page(sent: &[Sent], kept: usize, limit: usize, page: &Page) -> Result<(), String> {
    let kept = kept.min(sent.len());
    let want = kept.min(limit);
    if let Some(pair) = page.messages.windows(2).find(|w| w[1].0 <= w[0].0) {
        return Err(format!(
            "ids not increasing: {} then {}",
            pair[0].0, pair[1].0
        ));
    }
    if page.messages.len() != want {
        return Err(format!(
            "{} messages returned, expected the newest {want}",
            page.messages.len()
        ));
    }
    let expected = &sent[sent.len() - want..];
    for (n, ((id, text), sent)) in page.messages.iter().zip(expected).enumerate() {
        if *id != sent.id {
            return Err(format!(
                "message {n} of the page has id {id}, expected {}",
                sent.id
            ));
        }
        if *text != sent.text {
            return Err(format!("message {n} (id {id}) has another text than sent"));
        }
    }
    let more = kept > limit;
    if page.more != more {
        return Err(format!("more is {}, expected {more}", page.more));
    }
    if kept > 0 {
        let truncated = !more && sent.len() > kept;
        if page.truncated != truncated {
            return Err(format!(
                "truncated is {}, expected {truncated}",
                page.truncated
            ));
        }
    }
    Ok(())
}

/// The text of message `seq` of group `group`: unique, exactly `bytes`
/// ASCII bytes (cut if `bytes` is shorter than its label).
fn text_of(group: usize, seq: u32, bytes: u32) -> String {
    let mut text = format!("g{group}.m{seq}.");
    text.truncate(bytes as usize);
    while text.len() < bytes as usize {
        text.push('.');
    }
    text
}

/// A group of the scenario.
struct Group {
    name: String,
    /// The user that creates it and sends to it.
    sender: u32,
    /// Its other member (the sender when there is one user).
    reader: u32,
}

/// `groups` groups named `prefix` + index: group g is sent to by user
/// g % users and read by the next user (user i is on node i, so the two
/// are on different nodes whenever there are several).
fn group_set(prefix: &str, groups: u32, users: u32) -> Vec<Group> {
    (0..groups)
        .map(|g| Group {
            name: format!("{prefix}{g}"),
            sender: g % users,
            reader: (g + 1) % users,
        })
        .collect()
}

/// What a fill measured.
struct Filled {
    /// Per group, what was sent and accepted, in order.
    sent: Vec<Vec<Sent>>,
    start_ns: u64,
    end_ns: u64,
}

/// Sends `messages` messages to every group of `groups` in rounds (see the
/// module documentation) and waits for every member's receipt of each
/// round; `members` is how many users receive each group message.
///
/// # Errors
/// The first failed send, a broken stream or the deadline.
fn fill(
    online: &Online,
    shared: &RecvShared,
    groups: &[Group],
    sizes: &Sizes,
    members: u64,
    deadline: Deadline,
) -> Result<Filled, String> {
    let mut sent: Vec<Vec<Sent>> = groups
        .iter()
        .map(|_| Vec::with_capacity(sizes.messages as usize))
        .collect();
    let start_ns = now_ns();
    let mut expected = shared.received.load(Ordering::Acquire);
    for seq in 0..sizes.messages {
        let mut calls = Vec::with_capacity(groups.len());
        for (g, group) in groups.iter().enumerate() {
            let user = &online.users[group.sender as usize];
            let text = text_of(g, seq, sizes.text_bytes);
            let call = user
                .send(&group.name, text.clone())
                .map_err(|e| format!("SendMessage to {}: {}", group.name, error_code(&e)))?;
            calls.push(async move { (call.await, text) });
        }
        for (g, (result, text)) in futures::executor::block_on(future::join_all(calls))
            .into_iter()
            .enumerate()
        {
            let reply = result
                .map_err(|e| format!("SendMessage to {}: {}", groups[g].name, error_code(&e)))?;
            sent[g].push(Sent {
                id: reply.message_id,
                text,
            });
        }
        expected += groups.len() as u64 * members;
        while shared.received.load(Ordering::Acquire) < expected {
            if let Some(reason) = stop_reason(shared, deadline) {
                return Err(format!("filling the groups: {reason}"));
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    Ok(Filled {
        sent,
        start_ns,
        end_ns: now_ns(),
    })
}

/// Reads one page of `group` as user `reader`: backward from the newest,
/// at most `limit` messages.
fn read_page(online: &Online, reader: u32, group: &str, limit: u32) -> Result<Page, String> {
    let user = &online.users[reader as usize];
    let mut request = GetHistoryRequest::new();
    request.group = group.to_owned();
    request.limit = limit;
    let reply = user
        .client
        .get_history_opt(&request, user.auth.clone())
        .map_err(|e| format!("GetHistory {group}: {}", error_code(&e)))?;
    Ok(Page {
        messages: reply.messages.into_iter().map(|m| (m.id, m.text)).collect(),
        more: reply.more,
        truncated: reply.truncated,
    })
}

/// What one caller of the timed phase hands back.
#[derive(Default)]
struct CallerOutcome {
    latencies_ns: Vec<u64>,
    /// Pages whose length or newest id was not what the fill left.
    bad_pages: u64,
    errors: ErrorCounts,
}

/// A measured group as the timed calls see it.
struct Target {
    name: String,
    /// Messages a page must hold.
    page_len: usize,
    /// Id of the group's newest message.
    newest: u64,
}

/// Issues `calls` GetHistory calls as `user`, one at a time, over `targets`
/// in turn.
async fn call_loop(
    user: Arc<User>,
    targets: Arc<Vec<Target>>,
    calls: u32,
    limit: u32,
    done: Sender<CallerOutcome>,
) {
    let mut outcome = CallerOutcome {
        latencies_ns: Vec::with_capacity(calls as usize),
        ..CallerOutcome::default()
    };
    for n in 0..calls as usize {
        let target = &targets[n % targets.len()];
        let mut request = GetHistoryRequest::new();
        request.group.clone_from(&target.name);
        request.limit = limit;
        let start = now_ns();
        let result = match user
            .client
            .get_history_async_opt(&request, user.auth.clone())
        {
            Ok(call) => call.await,
            Err(error) => Err(error),
        };
        let took = now_ns().saturating_sub(start);
        match result {
            Ok(reply) => {
                outcome.latencies_ns.push(took);
                let newest = reply.messages.last().map_or(0, |m| m.id);
                let newest_ok = target.page_len == 0 || newest == target.newest;
                if reply.messages.len() != target.page_len || !newest_ok {
                    outcome.bad_pages += 1;
                }
            }
            Err(error) => *outcome.errors.entry(error_code(&error)).or_default() += 1,
        }
    }
    let _ = done.send(outcome);
}

/// Bytes per kept message beyond its text, from RSS in KiB before and
/// after keeping `kept` messages of `text_bytes` each.
fn per_kept(before_kb: u64, after_kb: u64, kept: usize, text_bytes: u32) -> Option<f64> {
    (kept > 0).then(|| {
        let grown = (after_kb as f64 - before_kb as f64) * 1024.0;
        let bytes = grown / kept as f64 - f64::from(text_bytes);
        (bytes * 10.0).round() / 10.0
    })
}

/// Runs the scenario and reports.
pub fn run(bench: &Bench, sizes: Sizes) -> Report {
    let deadline = Deadline::after(bench.timeout);
    let mut report = Report::new("history", "calls/s");
    let sizes = Sizes {
        users: sizes.users.max(1),
        callers: sizes.callers.clamp(1, sizes.users.max(1)),
        groups: sizes.groups.max(1),
        messages: sizes.messages.max(1),
        text_bytes: sizes.text_bytes.max(1),
        calls: sizes.calls.max(1),
        limit: sizes.limit.clamp(1, MAX_LIMIT),
        ..sizes
    };
    let kept = kept_per_group(&sizes);
    let mut params = Map::new();
    params.insert("users".into(), sizes.users.into());
    params.insert("callers".into(), sizes.callers.into());
    params.insert("groups".into(), sizes.groups.into());
    params.insert("warmup_groups".into(), sizes.groups.into());
    params.insert("messages_per_group".into(), sizes.messages.into());
    params.insert("text_bytes".into(), sizes.text_bytes.into());
    params.insert("calls".into(), sizes.calls.into());
    params.insert("limit".into(), sizes.limit.into());
    params.insert("history_size".into(), sizes.history_size.into());
    params.insert("history_bytes".into(), sizes.history_bytes.into());
    params.insert("kept_per_group".into(), kept.into());
    report.params = params;

    let prefix = bench.run_prefix("history");
    let names: Vec<String> = (0..sizes.users).map(|i| format!("{prefix}u{i}")).collect();
    let shared = RecvShared::new(FlowMap::None, None);
    let online = match connect_users(bench, names, |idx| idx as usize, &shared, deadline) {
        Ok(online) => online,
        Err(error) => {
            report.failures.push(error);
            return report;
        }
    };
    let set = |tag: &str| group_set(&format!("{prefix}{tag}"), sizes.groups, sizes.users);
    let (warmup, measured) = (set("w"), set("g"));
    let all = || warmup.iter().chain(&measured);
    let creators: Vec<(String, u32)> = all().map(|g| (g.name.clone(), g.sender)).collect();
    let joins: Vec<(u32, String)> = all()
        .filter(|g| g.reader != g.sender)
        .map(|g| (g.reader, g.name.clone()))
        .collect();
    if let Err(error) = setup_groups(&online, &creators, &joins) {
        let per_user = 4 * sizes.groups / sizes.users;
        report.failures.push(format!(
            "{error} (each user is in up to {per_user} groups: the server's \
             --max-groups-per-user must allow that)"
        ));
        online.close(Deadline::after(Duration::from_secs(10)));
        return report;
    }
    let members: u64 = if sizes.users > 1 { 2 } else { 1 };
    let redis_rss = || bench.pids.redis.and_then(procfs::rss_kb);

    let filled = fill(&online, &shared, &warmup, &sizes, members, deadline).and_then(|warm| {
        let before = bench.sample();
        let redis_before = redis_rss();
        let filled = fill(&online, &shared, &measured, &sizes, members, deadline)?;
        let after = bench.sample();
        let redis_after = redis_rss();
        Ok((warm, filled, before, after, redis_before, redis_after))
    });
    let (warm, filled, before, after, redis_before, redis_after) = match filled {
        Ok(filled) => filled,
        Err(error) => {
            report.failures.push(error);
            online.close(Deadline::after(Duration::from_secs(10)));
            return report;
        }
    };

    // The fill: memory per kept message, CPU per message sent.
    let sent_msgs = u64::from(sizes.groups) * u64::from(sizes.messages);
    let kept_total = kept * sizes.groups as usize;
    report.put("kept_messages", kept_total as u64);
    report.rss_kb_before = before.server_rss_kb;
    report.rss_kb_after = after.server_rss_kb;
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    let per_msg = |cpu: f64| round(cpu * 1e6 / sent_msgs as f64);
    let mut note = format!(
        "{kept_total} kept msgs of {} bytes, RSS growth per kept msg beyond its text:",
        sizes.text_bytes
    );
    let in_redis = redis_before.is_some();
    if let (Some(b), Some(a)) = (before.server_rss_kb, after.server_rss_kb) {
        if in_redis {
            // A cluster keeps its history in Redis: the nodes' growth is
            // not history, so no text is taken off.
            if let Some(bytes) = per_kept(b, a, kept_total, 0) {
                report.put("node_rss_bytes_per_kept_msg", bytes);
                note.push_str(&format!(" nodes {bytes:+.1} B/msg with the text"));
            }
        } else if let Some(bytes) = per_kept(b, a, kept_total, sizes.text_bytes) {
            report.put("bytes_per_kept_msg_beyond_text", bytes);
            note.push_str(&format!(" server {bytes:+.1} B/msg"));
        }
    }
    if let (Some(b), Some(a)) = (redis_before, redis_after) {
        report.put("redis_rss_kb_before", b);
        report.put("redis_rss_kb_after", a);
        if let Some(bytes) = per_kept(b, a, kept_total, sizes.text_bytes) {
            report.put("redis_bytes_per_kept_msg_beyond_text", bytes);
            note.push_str(&format!(", Redis {bytes:+.1} B/msg"));
        }
    }
    note.push_str(
        " (filled after a warm-up fill: includes ring spare capacity and allocator \
         overhead; needs a fresh server at --resume-window 0)",
    );
    let fill_s = secs_between(filled.start_ns, filled.end_ns);
    report.put("fill_msgs", sent_msgs);
    report.put("fill_s", round(fill_s));
    if fill_s > 0.0 {
        report.put("fill_msgs_per_s", (sent_msgs as f64 / fill_s).round());
    }
    let mut fill_note = format!("fill of {sent_msgs} msgs");
    if let Some(cpu) = before.server_cpu_delta(&after) {
        report.put("fill_server_cpu_us_per_msg", per_msg(cpu));
        fill_note.push_str(&format!(": server {:.2} µs/msg", per_msg(cpu)));
    }
    if let Some(cpu) = before.redis_cpu_delta(&after) {
        report.put("fill_redis_cpu_s", round(cpu));
        report.put("redis_cpu_us_per_msg_sent", per_msg(cpu));
        fill_note.push_str(&format!(", Redis {:.2} µs/msg", per_msg(cpu)));
    }
    fill_note.push_str(&format!(" ({members} members per group, history on)"));
    report.notes.push(note);
    report.notes.push(fill_note);

    // The check: every group's history is its newest sends, in order.
    let read_limit = (sizes.messages).min(MAX_LIMIT);
    let mut mismatches = 0u64;
    for (set, sent) in [(&warmup, &warm.sent), (&measured, &filled.sent)] {
        for (g, group) in set.iter().enumerate() {
            let reader = (group.sender + 1) % sizes.users;
            let result = read_page(&online, reader, &group.name, read_limit)
                .and_then(|page| verify_page(&sent[g], kept, read_limit as usize, &page));
            if let Err(error) = result {
                mismatches += 1;
                if mismatches <= 3 {
                    report
                        .failures
                        .push(format!("history of {}: {error}", group.name));
                }
            }
        }
    }
    report.put("history_mismatches", mismatches);
    if mismatches > 0 {
        online.close(Deadline::after(Duration::from_secs(10)));
        return report;
    }

    // The timed calls: each caller reads the measured groups it is in.
    let targets_of = |caller: u32| -> Arc<Vec<Target>> {
        Arc::new(
            measured
                .iter()
                .zip(&filled.sent)
                .filter(|(group, _)| group.sender == caller || group.reader == caller)
                .map(|(group, sent)| Target {
                    name: group.name.clone(),
                    page_len: kept.min(sizes.limit as usize),
                    newest: sent.last().map_or(0, |s| s.id),
                })
                .collect(),
        )
    };
    let callers: Vec<(u32, Arc<Vec<Target>>)> = (0..sizes.callers)
        .map(|c| (c, targets_of(c)))
        .filter(|(_, targets)| !targets.is_empty())
        .collect();
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    let before = bench.sample();
    let start_ns = now_ns();
    let count = callers.len() as u32;
    for (n, (c, targets)) in callers.iter().enumerate() {
        let n = n as u32;
        let share = sizes.calls / count + u32::from(n < sizes.calls % count);
        let user = Arc::clone(&online.users[*c as usize]);
        user.client.spawn(call_loop(
            Arc::clone(&user),
            Arc::clone(targets),
            share,
            sizes.limit,
            done_tx.clone(),
        ));
    }
    let mut outcomes = Vec::new();
    while outcomes.len() < callers.len() {
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
    let end_ns = now_ns();
    let after = bench.sample();
    let receivers = online.close(Deadline::after(Duration::from_secs(10)));
    for r in &receivers {
        if let Some(code) = &r.ended {
            *report.errors.entry(format!("stream:{code}")).or_default() += 1;
        }
    }

    let mut latencies = Vec::with_capacity(sizes.calls as usize);
    let mut bad_pages = 0;
    for outcome in outcomes {
        latencies.extend(outcome.latencies_ns);
        bad_pages += outcome.bad_pages;
        for (code, n) in outcome.errors {
            *report.errors.entry(code).or_default() += n;
        }
    }
    let calls = latencies.len() as u64;
    report.put("calls_ok", calls);
    report.put("bad_pages", bad_pages);
    if bad_pages > 0 {
        report.failures.push(format!(
            "{bad_pages} GetHistory pages were not the group's newest {}",
            kept.min(sizes.limit as usize)
        ));
    }
    report.elapsed_s = secs_between(start_ns, end_ns);
    if report.elapsed_s > 0.0 {
        report.throughput = calls as f64 / report.elapsed_s;
    }
    report.latency = check::latency(latencies);
    let per = |cpu: f64| (calls > 0).then(|| cpu * 1e6 / calls as f64);
    if let Some(cpu) = before.server_cpu_delta(&after) {
        report.server_cpu_us_per_unit = per(cpu);
        report.put("server_cpu_s", round(cpu));
    }
    if let Some(nodes) = before.node_cpu_deltas(&after) {
        if nodes.len() > 1 {
            report.node_cpu_us_per_unit = nodes.iter().filter_map(|&c| per(c)).collect();
        }
    }
    if let Some(cpu) = before.redis_cpu_delta(&after) {
        report.redis_cpu_us_per_unit = per(cpu);
        report.put("redis_cpu_s", round(cpu));
    }
    if let Some(cpu) = before.bench_cpu_delta(&after) {
        report.put("bench_cpu_s", round(cpu));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sends(n: u32) -> Vec<Sent> {
        (0..n)
            .map(|seq| Sent {
                id: 10 + 3 * u64::from(seq),
                text: text_of(0, seq, 100),
            })
            .collect()
    }

    /// The page a correct server returns: the newest `min(kept, limit)`.
    fn page_of(sent: &[Sent], kept: usize, limit: usize) -> Page {
        let kept = kept.min(sent.len());
        let n = kept.min(limit);
        Page {
            messages: sent[sent.len() - n..]
                .iter()
                .map(|s| (s.id, s.text.clone()))
                .collect(),
            more: kept > limit,
            truncated: kept <= limit && sent.len() > kept,
        }
    }

    #[test]
    fn kept_is_bounded_by_messages_count_and_bytes() {
        let sizes = Sizes {
            users: 4,
            callers: 2,
            groups: 20,
            messages: 150,
            text_bytes: 100,
            calls: 1,
            limit: 50,
            history_size: 100,
            history_bytes: 256 * 1024,
        };
        assert_eq!(kept_per_group(&sizes), 100);
        assert_eq!(
            kept_per_group(&Sizes {
                messages: 60,
                ..sizes
            }),
            60
        );
        assert_eq!(
            kept_per_group(&Sizes {
                history_bytes: 5_050,
                ..sizes
            }),
            50
        );
        assert_eq!(
            kept_per_group(&Sizes {
                history_size: 0,
                ..sizes
            }),
            0
        );
    }

    #[test]
    fn each_group_has_a_reader_on_another_node_and_users_stay_within_100_groups() {
        let (groups, users) = (100, 8);
        let sets = [group_set("w", groups, users), group_set("g", groups, users)];
        let mut memberships = vec![0u32; users as usize];
        for group in sets.iter().flatten() {
            assert_ne!(group.sender % 2, group.reader % 2, "{}", group.name);
            memberships[group.sender as usize] += 1;
            memberships[group.reader as usize] += 1;
        }
        assert!(memberships.iter().all(|&n| n <= 100), "{memberships:?}");
    }

    #[test]
    fn texts_have_the_asked_length_and_differ() {
        assert_eq!(text_of(3, 149, 100).len(), 100);
        assert_eq!(text_of(3, 149, 4).len(), 4);
        assert_ne!(text_of(3, 1, 100), text_of(3, 2, 100));
    }

    #[test]
    fn the_newest_kept_in_order_pass() {
        let sent = sends(150);
        assert_eq!(
            verify_page(&sent, 100, 150, &page_of(&sent, 100, 150)),
            Ok(())
        );
        assert_eq!(
            verify_page(&sent, 100, 50, &page_of(&sent, 100, 50)),
            Ok(())
        );
        let few = sends(30);
        assert_eq!(
            verify_page(&few, 100, 150, &page_of(&few, 100, 150)),
            Ok(())
        );
        assert_eq!(verify_page(&sent, 0, 150, &Page::default()), Ok(()));
    }

    #[test]
    fn a_wrong_page_fails() {
        let sent = sends(150);
        let good = page_of(&sent, 100, 150);
        let fails = |page: Page| verify_page(&sent, 100, 150, &page).is_err();

        let mut oldest_missing = good.clone();
        oldest_missing.messages.remove(0);
        assert!(fails(oldest_missing));

        let mut one_too_old = good.clone();
        one_too_old
            .messages
            .insert(0, (sent[49].id, sent[49].text.clone()));
        assert!(fails(one_too_old));

        let mut swapped = good.clone();
        swapped.messages.swap(10, 11);
        assert!(fails(swapped));

        let mut newest_first = good.clone();
        newest_first.messages.reverse();
        assert!(fails(newest_first));

        let mut other_text = good.clone();
        other_text.messages[5].1 = text_of(1, 55, 100);
        assert!(fails(other_text));

        let mut other_id = good.clone();
        other_id.messages[99].0 += 1;
        assert!(fails(other_id));

        assert!(fails(Page {
            more: true,
            ..good.clone()
        }));
        assert!(fails(Page {
            truncated: false,
            ..good
        }));
    }
}
