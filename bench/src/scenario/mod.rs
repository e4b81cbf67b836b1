//! The scenarios, and the summary every message scenario ends with: the
//! measured phase's length and throughput, latency percentiles, server CPU
//! per unit of work (and, for a cluster, each node's and Redis's), mean
//! messages per Delivery, the correctness checks and
//! errors, all folded into a [`Report`].

pub mod closed_loop;
pub mod connections;
pub mod history;
pub mod mixed;
pub mod pingpong;
pub mod presence;
pub mod streams;

use crate::check::{self, Membership, SendRec};
use crate::net::{ErrorCounts, ReceiverOutcome};
use crate::procfs::Sample;
use crate::report::Report;
use crate::util::secs_between;

/// What a message scenario measured, to be summarized.
pub struct Measured<'a> {
    /// Every send the senders recorded.
    pub sends: &'a [SendRec],
    /// What every receiver reported.
    pub receivers: &'a [ReceiverOutcome],
    /// Group membership over the run.
    pub membership: &'a Membership,
    /// How many users the scenario had.
    pub users: u32,
    /// Start of the measured phase (process clock, ns).
    pub start_ns: u64,
    /// Its end if no message arrived (process clock, ns).
    pub end_ns: u64,
    /// Process samples at start and end.
    pub before: Sample,
    /// See `before`.
    pub after: Sample,
    /// Failed calls by status code.
    pub errors: ErrorCounts,
}

/// Fills `report` from `m`: elapsed time (to the last receipt), throughput
/// in receipts per second, latency, server CPU per receipt (every node
/// together; for a cluster also each node's and Redis's, per receipt and
/// per message sent), messages per Delivery, checks, errors (streams that ended on their own count as
/// `stream:<CODE>`) and RSS.
pub fn summarize(report: &mut Report, m: Measured<'_>) {
    let mut latencies = Vec::new();
    let mut messages = 0u64;
    let mut deliveries = 0u64;
    let mut last = 0u64;
    let mut errors = m.errors;
    for r in m.receivers {
        latencies.extend(r.receipts.iter().map(|x| x.lat_ns));
        messages += r.receipts.len() as u64 + r.foreign;
        deliveries += r.deliveries;
        last = last.max(r.last_recv_ns);
        if let Some(code) = &r.ended {
            *errors.entry(format!("stream:{code}")).or_default() += 1;
        }
    }
    let receipts = latencies.len() as u64;
    let end = if last > m.start_ns { last } else { m.end_ns };
    report.elapsed_s = secs_between(m.start_ns, end);
    if report.elapsed_s > 0.0 {
        report.throughput = receipts as f64 / report.elapsed_s;
    }
    report.latency = check::latency(latencies);
    if let Some(cpu) = m.before.server_cpu_delta(&m.after) {
        if receipts > 0 {
            report.server_cpu_us_per_unit = Some(cpu * 1e6 / receipts as f64);
        }
        report.put("server_cpu_s", (cpu * 1000.0).round() / 1000.0);
    }
    cluster_cpu(report, (&m.before, &m.after), m.sends, receipts);
    if let Some(cpu) = m.before.bench_cpu_delta(&m.after) {
        report.put("bench_cpu_s", (cpu * 1000.0).round() / 1000.0);
    }
    if deliveries > 0 {
        report.msgs_per_delivery = Some(messages as f64 / deliveries as f64);
    }
    report.put("delivery_events", deliveries);
    report.put("received", receipts);
    report.put("sent", m.sends.len() as u64);
    report.put("sent_ok", m.sends.iter().filter(|s| s.ok).count() as u64);
    let foreign: u64 = m.receivers.iter().map(|r| r.foreign).sum();
    if foreign > 0 {
        report.put("foreign_messages", foreign);
    }
    if (m.receivers.len() as u32) < m.users {
        report.failures.push(format!(
            "{} of {} receivers did not report back",
            m.users - m.receivers.len() as u32,
            m.users
        ));
    }
    report.checks = Some(check::check(m.sends, m.receivers, m.membership, m.users));
    report.errors = errors;
    report.rss_kb_before = m.before.server_rss_kb;
    report.rss_kb_after = m.after.server_rss_kb;
}

/// For a cluster (several nodes or a Redis pid): each node's CPU per
/// receipt and Redis's CPU per receipt and per message sent.
fn cluster_cpu(
    report: &mut Report,
    (before, after): (&Sample, &Sample),
    sends: &[SendRec],
    receipts: u64,
) {
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    let per = |cpu: f64, units: u64| (units > 0).then(|| cpu * 1e6 / units as f64);
    if let Some(nodes) = before.node_cpu_deltas(after) {
        if nodes.len() > 1 {
            report.node_cpu_us_per_unit = nodes.iter().filter_map(|&c| per(c, receipts)).collect();
            report.put(
                "node_cpu_s",
                nodes.iter().map(|&c| round(c)).collect::<Vec<_>>(),
            );
        }
    }
    if let Some(cpu) = before.redis_cpu_delta(after) {
        report.redis_cpu_us_per_unit = per(cpu, receipts);
        report.put("redis_cpu_s", round(cpu));
        let sent_ok = sends.iter().filter(|s| s.ok).count() as u64;
        if let Some(us) = per(cpu, sent_ok) {
            report.put("redis_cpu_us_per_msg_sent", round(us));
        }
    }
}
