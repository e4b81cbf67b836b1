//! `chat-bench`: the load generator and benchmark for the chat server.
//!
//! Scenarios are subcommands (`direct`, `fanout`, `connections`, `mixed`,
//! `pingpong`) and `all` runs them in that order; `cluster` runs `direct`,
//! `fanout` and `pingpong`, the scenarios `make bench` runs against several
//! nodes of one cluster (`--server A,B`). `history` (group history's
//! memory, Redis cost and `GetHistory` latency) runs on its own, on a fresh
//! server started with `--resume-window 0`, as `make bench` does; so does
//! `presence` (membership events: a join in a group at the events'
//! threshold, a mass rejoin of 1,000 members), on a fresh server; and
//! `streams` (18,000 users on each node of a cluster, every user listed,
//! messages across nodes checked, a node's SIGTERM timed) on fresh nodes. Each prints one JSON
//! object per scenario on stdout (and appends it to `--json-out`), then a
//! table; the exit code is 1 when any scenario failed a check, hit an
//! error or timed out. Every simulated user has its own channel (HTTP/2
//! connection); receivers and senders are futures on the client's
//! completion queues, never a thread per user. Against several nodes each
//! scenario places its users so that messages cross nodes, and its report
//! is named `cluster-<scenario>`.

mod check;
mod event;
mod flow;
mod net;
mod payload;
mod procfs;
mod redis_info;
mod report;
mod scenario;
mod util;

use std::process::ExitCode;
use std::time::Duration;

use structopt::StructOpt;

use net::{wait_gone, Bench};
use procfs::Pids;
use report::Report;
use scenario::{closed_loop, connections, history, mixed, pingpong, presence, streams};
use util::Deadline;

/// Command-line flags.
#[derive(Debug, StructOpt)]
#[structopt(
    name = "chat-bench",
    about = "Load generator and benchmark for the chat server (chat.v1.ChatService)"
)]
struct Opt {
    /// Server address, host:port; for a cluster, every node's, comma-separated
    #[structopt(long, default_value = "127.0.0.1:13111", require_delimiter = true)]
    server: Vec<String>,
    /// The server's pid, to report its CPU time and RSS; for a cluster,
    /// every node's, comma-separated in `--server` order
    #[structopt(long, require_delimiter = true)]
    server_pid: Vec<u32>,
    /// The cluster's Redis pid, to report its CPU time
    #[structopt(long)]
    redis_pid: Option<u32>,
    /// The cluster's Redis, host:port, to report its memory (`INFO memory`)
    #[structopt(long)]
    redis_addr: Option<String>,
    /// Append one JSON object per scenario to this file
    #[structopt(long)]
    json_out: Option<String>,
    /// Completion-queue threads of the client's gRPC environment [default:
    /// 2; pingpong: 1, as one message in flight has nothing to run in
    /// parallel and a second thread only adds a hand-off per message]
    #[structopt(long)]
    threads: Option<usize>,
    /// Seconds a scenario may take before it reports failure
    #[structopt(long, default_value = "120")]
    timeout_secs: u64,
    /// Messages a sender may have unreceived [default: 256; mixed: all
    /// senders together, the server queue]
    #[structopt(long)]
    window: Option<u32>,
    /// SendMessage calls a sender may have in flight [default: 32; mixed:
    /// all senders together, one per user]
    #[structopt(long)]
    max_inflight: Option<u32>,
    /// The server's --queue-depth; windows are cut to stay within it
    #[structopt(long, default_value = "1024")]
    server_queue: u32,
    #[structopt(subcommand)]
    command: Command,
}

#[derive(Debug, StructOpt)]
enum Command {
    /// Sender/receiver pairs, each sender pipelining messages to its receiver
    Direct(DirectOpt),
    /// One group; a few members send, every member receives
    Fanout(FanoutOpt),
    /// Many concurrent Connect streams
    Connections(ConnectionsOpt),
    /// Users in groups at a target send rate, with join/leave churn
    Mixed(MixedOpt),
    /// Two users, one message in flight, bouncing back and forth
    Pingpong(PingpongOpt),
    /// Groups filled past their history, then GetHistory timed: memory per
    /// kept message, Redis CPU per group message, GetHistory latency (run
    /// the server with --resume-window 0)
    History(HistoryOpt),
    /// Membership events: joins one at a time into a group at the events'
    /// threshold (CPU, latency, events per join), then a mass leave and
    /// rejoin of every member (events, time, slow-consumer drops); every
    /// member must see every change in one order
    Presence(PresenceOpt),
    /// Many users on every node of a cluster at once (18,000 per node by
    /// default): connect rate, RSS per stream per node, Redis memory per
    /// user; then ListChannels everywhere (every user listed), direct and
    /// group messages across nodes (every one checked), and the time a
    /// node's SIGTERM takes to free its users cluster-wide
    Streams(StreamsOpt),
    /// Every scenario in turn with its defaults
    All(AllOpt),
    /// direct, fanout and pingpong in turn with their defaults: the
    /// scenarios run against a cluster (`--server` naming several nodes)
    Cluster(ClusterOpt),
}

#[derive(Debug, StructOpt)]
struct DirectOpt {
    /// Sender/receiver pairs
    #[structopt(long, default_value = "8")]
    pairs: u32,
    /// Messages per sender
    #[structopt(long, default_value = "20000")]
    messages: u32,
}

#[derive(Debug, StructOpt)]
struct FanoutOpt {
    /// Members of the group
    #[structopt(long, default_value = "200")]
    members: u32,
    /// Members that send
    #[structopt(long, default_value = "4")]
    senders: u32,
    /// Messages per sender
    #[structopt(long, default_value = "2000")]
    messages: u32,
}

#[derive(Debug, StructOpt)]
struct ConnectionsOpt {
    /// Concurrent Connect streams
    #[structopt(long, default_value = "5000")]
    connections: u32,
    /// Channels (HTTP/2 connections) to spread them over
    #[structopt(long, default_value = "64")]
    channels: u32,
    /// Connects waiting for `connected` at once
    #[structopt(long, default_value = "1000")]
    connect_concurrency: u32,
    /// Milliseconds to hold every stream open before closing
    #[structopt(long, default_value = "1000")]
    hold_ms: u64,
}

#[derive(Debug, StructOpt)]
struct StreamsOpt {
    /// Users connected to each node at once
    #[structopt(long, default_value = "18000")]
    users_per_node: u32,
    /// Channels (HTTP/2 connections) per node the users share, apart from
    /// the sample's own
    #[structopt(long, default_value = "64")]
    channels_per_node: u32,
    /// Connects waiting for `connected` at once
    #[structopt(long, default_value = "1000")]
    connect_concurrency: u32,
    /// Users per node on channels of their own who join the group and send
    #[structopt(long, default_value = "20")]
    sample_per_node: u32,
    /// Sampled users per node who list the channels
    #[structopt(long, default_value = "2")]
    listers_per_node: u32,
    /// Leave node 0 running at the end (no SIGTERM timing)
    #[structopt(long)]
    no_sigterm: bool,
}

#[derive(Debug, StructOpt)]
struct MixedOpt {
    /// Users
    #[structopt(long, default_value = "500")]
    users: u32,
    /// Groups
    #[structopt(long, default_value = "50")]
    groups: u32,
    /// Groups each user joins
    #[structopt(long, default_value = "5")]
    groups_per_user: u32,
    /// Target sends per second, all users together
    #[structopt(long, default_value = "10000")]
    rate: f64,
    /// Seconds of sending
    #[structopt(long, default_value = "15")]
    duration_secs: f64,
    /// Share of sends to a group (the rest go to a random user)
    #[structopt(long, default_value = "0.8")]
    group_share: f64,
    /// Share of operations that are a leave + join by a churning user
    #[structopt(long, default_value = "0.01")]
    churn_share: f64,
    /// Users that churn (the last ones)
    #[structopt(long, default_value = "25")]
    churn_users: u32,
    /// Seed of every random choice
    #[structopt(long, default_value = "1")]
    seed: u64,
}

#[derive(Debug, StructOpt)]
struct PingpongOpt {
    /// Round trips
    #[structopt(long, default_value = "5000")]
    rounds: u32,
}

#[derive(Debug, StructOpt)]
struct HistoryOpt {
    /// Users, each on its own channel (user i on node i); group g has user
    /// g % users (its sender) and the next user as members, so each user is
    /// in 4 x groups / users groups (the server allows 100 by default)
    #[structopt(long, default_value = "8")]
    users: u32,
    /// Users (the first ones) issuing the timed GetHistory calls, one call
    /// at a time each, over the groups they are in
    #[structopt(long, default_value = "2")]
    callers: u32,
    /// Groups filled and read (a warm-up set of as many is filled first)
    #[structopt(long, default_value = "100")]
    groups: u32,
    /// Messages sent to each group (more than the server keeps)
    #[structopt(long, default_value = "150")]
    messages: u32,
    /// Bytes of each message's text
    #[structopt(long, default_value = "100")]
    text_bytes: u32,
    /// Timed GetHistory calls, all callers together
    #[structopt(long, default_value = "20000")]
    calls: u32,
    /// `limit` of each timed GetHistory (backward from the newest)
    #[structopt(long, default_value = "50")]
    limit: u32,
    /// The server's --history-size, for the check of what each group keeps
    #[structopt(long, default_value = "100")]
    history_size: u32,
    /// The server's --history-bytes, for the same check
    #[structopt(long, default_value = "262144")]
    history_bytes: u64,
    /// Multiply the timed calls by this, for quick runs
    #[structopt(long, default_value = "1.0")]
    scale: f64,
}

#[derive(Debug, StructOpt)]
struct PresenceOpt {
    /// Members that leave and rejoin in the mass rejoin, each on its own
    /// channel with membership events on (an anchor who stays and the
    /// joiners are connected too)
    #[structopt(long, default_value = "1000")]
    members: u32,
    /// Members of the group after each measured join, the joiner and the
    /// anchor included (at most members + 2) [default: the
    /// --events-max-members: the largest group whose joins send events]
    #[structopt(long)]
    join_size: Option<u32>,
    /// Measured joins, each by its own joiner, each followed by its leave
    #[structopt(long, default_value = "50")]
    joins: u32,
    /// Join or leave calls in flight at once in the mass rejoin
    #[structopt(long, default_value = "128")]
    concurrency: u32,
    /// The server's --membership-events-max-members, for the expected
    /// events
    #[structopt(long, default_value = "1000")]
    events_max_members: u32,
    /// Multiply the measured joins by this, for quick runs
    #[structopt(long, default_value = "1.0")]
    scale: f64,
}

#[derive(Debug, StructOpt)]
struct AllOpt {
    /// Also run `connections` with 19,000 streams
    #[structopt(long)]
    with_19k: bool,
    /// Multiply every scenario's size (messages, round trips, duration,
    /// connections) by this, for quick runs
    #[structopt(long, default_value = "1.0")]
    scale: f64,
}

#[derive(Debug, StructOpt)]
struct ClusterOpt {
    /// Multiply every scenario's size (messages, round trips) by this, for
    /// quick runs
    #[structopt(long, default_value = "1.0")]
    scale: f64,
}

/// Every scenario's defaults with their sizes multiplied by a scale.
struct Scaled {
    direct: DirectOpt,
    fanout: FanoutOpt,
    connections: ConnectionsOpt,
    mixed: MixedOpt,
    pingpong: PingpongOpt,
}

impl Scaled {
    fn new(s: f64) -> Scaled {
        let mut direct: DirectOpt = defaults("direct");
        direct.messages = scaled(direct.messages, s);
        let mut fanout: FanoutOpt = defaults("fanout");
        fanout.messages = scaled(fanout.messages, s);
        let mut connections: ConnectionsOpt = defaults("connections");
        connections.connections = scaled(connections.connections, s);
        let mut mixed: MixedOpt = defaults("mixed");
        mixed.duration_secs *= s;
        let mut pingpong: PingpongOpt = defaults("pingpong");
        pingpong.rounds = scaled(pingpong.rounds, s);
        Scaled {
            direct,
            fanout,
            connections,
            mixed,
            pingpong,
        }
    }
}

/// The defaults of a scenario's flags.
fn defaults<T: StructOpt>(name: &str) -> T {
    T::from_iter([name])
}

fn scaled(value: u32, scale: f64) -> u32 {
    ((f64::from(value) * scale).round() as u32).max(1)
}

fn direct(bench: &Bench, o: &DirectOpt) -> Report {
    closed_loop::run(bench, closed_loop::direct(bench, o.pairs, o.messages))
}

fn fanout(bench: &Bench, o: &FanoutOpt) -> Report {
    closed_loop::run(
        bench,
        closed_loop::fanout(bench, o.members, o.senders, o.messages),
    )
}

fn connections(bench: &Bench, o: &ConnectionsOpt) -> Report {
    connections::run(
        bench,
        connections::Sizes {
            connections: o.connections,
            channels: o.channels,
            concurrency: o.connect_concurrency,
            hold_ms: o.hold_ms,
        },
    )
}

fn mixed(bench: &Bench, o: &MixedOpt) -> Report {
    mixed::run(
        bench,
        mixed::Sizes {
            users: o.users,
            groups: o.groups,
            groups_per_user: o.groups_per_user,
            rate: o.rate,
            duration_s: o.duration_secs,
            group_share: o.group_share,
            churn_share: o.churn_share,
            churn_users: o.churn_users,
            seed: o.seed,
        },
    )
}

fn pingpong(bench: &Bench, o: &PingpongOpt) -> Report {
    pingpong::run(bench, o.rounds)
}

fn streams(bench: &Bench, o: &StreamsOpt) -> Report {
    streams::run(
        bench,
        streams::Sizes {
            users_per_node: o.users_per_node,
            channels_per_node: o.channels_per_node,
            concurrency: o.connect_concurrency,
            sample_per_node: o.sample_per_node,
            listers_per_node: o.listers_per_node,
            stop_node: !o.no_sigterm,
        },
    )
}

fn history(bench: &Bench, o: &HistoryOpt) -> Report {
    history::run(
        bench,
        history::Sizes {
            users: o.users,
            callers: o.callers,
            groups: o.groups,
            messages: o.messages,
            text_bytes: o.text_bytes,
            calls: scaled(o.calls, o.scale),
            limit: o.limit,
            history_size: o.history_size,
            history_bytes: o.history_bytes,
        },
    )
}

fn presence(bench: &Bench, o: &PresenceOpt) -> Report {
    presence::run(
        bench,
        presence::Sizes {
            members: o.members,
            join_size: o.join_size.unwrap_or(o.events_max_members),
            joins: scaled(o.joins, o.scale),
            concurrency: o.concurrency,
            events_max_members: o.events_max_members,
        },
    )
}

/// Runs one scenario, emits its JSON and waits for the server to let go of
/// every user this process connected, so the next one starts quiet. Against
/// several nodes the report is named `cluster-<scenario>`.
fn run_one(bench: &Bench, json_out: Option<&str>, scenario: impl FnOnce() -> Report) -> Report {
    let mut report = scenario();
    report.put("client_cqs", bench.client_cqs);
    if bench.nodes() > 1 {
        report.scenario = format!("cluster-{}", report.scenario);
        report.put("nodes", bench.nodes());
    }
    if let Err(error) = wait_gone(
        bench,
        &bench.process_prefix(),
        Deadline::after(Duration::from_secs(60)),
    ) {
        report
            .failures
            .push(format!("server did not settle: {error}"));
    }
    if let Err(error) = report.emit(json_out) {
        eprintln!("chat-bench: cannot write the JSON output: {error}");
    }
    report
}

fn main() -> ExitCode {
    let opt = Opt::from_args();
    if !opt.server_pid.is_empty() && opt.server_pid.len() != opt.server.len() {
        eprintln!(
            "chat-bench: --server-pid names {} pids for {} --server addresses",
            opt.server_pid.len(),
            opt.server.len()
        );
        return ExitCode::from(2);
    }
    util::start_clock();
    if procfs::raise_fd_limit().is_none() {
        eprintln!("chat-bench: could not raise the open-file limit");
    }
    let bench_with = |default_threads: usize| {
        Bench::new(
            opt.threads.unwrap_or(default_threads),
            opt.server.clone(),
            Pids {
                nodes: opt.server_pid.clone(),
                redis: opt.redis_pid,
            },
            Duration::from_secs(opt.timeout_secs.max(1)),
            opt.window,
            opt.max_inflight,
            opt.server_queue.max(1),
            opt.redis_addr.clone(),
        )
    };
    // One client environment at a time: C-core polls every environment's
    // sockets from one shared epoll set, so an idle environment's threads
    // would still pick up events and hand them over.
    let general = || bench_with(2);
    let for_pingpong = || bench_with(1);
    let json_out = opt.json_out.as_deref();
    let mut reports = Vec::new();
    match &opt.command {
        Command::Direct(o) => {
            let bench = general();
            reports.push(run_one(&bench, json_out, || direct(&bench, o)));
        }
        Command::Fanout(o) => {
            let bench = general();
            reports.push(run_one(&bench, json_out, || fanout(&bench, o)));
        }
        Command::Connections(o) => {
            let bench = general();
            reports.push(run_one(&bench, json_out, || connections(&bench, o)));
        }
        Command::Mixed(o) => {
            let bench = general();
            reports.push(run_one(&bench, json_out, || mixed(&bench, o)));
        }
        Command::Pingpong(o) => {
            let bench = for_pingpong();
            reports.push(run_one(&bench, json_out, || pingpong(&bench, o)));
        }
        Command::Streams(o) => {
            let bench = general();
            reports.push(run_one(&bench, json_out, || streams(&bench, o)));
        }
        Command::History(o) => {
            let bench = general();
            reports.push(run_one(&bench, json_out, || history(&bench, o)));
        }
        Command::Presence(o) => {
            let bench = general();
            reports.push(run_one(&bench, json_out, || presence(&bench, o)));
        }
        Command::All(all) => {
            let s = all.scale;
            let Scaled {
                direct: d,
                fanout: f,
                connections: mut c,
                mixed: m,
                pingpong: p,
            } = Scaled::new(s);
            let bench = general();
            eprintln!("chat-bench: direct");
            reports.push(run_one(&bench, json_out, || direct(&bench, &d)));
            eprintln!("chat-bench: fanout");
            reports.push(run_one(&bench, json_out, || fanout(&bench, &f)));
            eprintln!("chat-bench: connections ({})", c.connections);
            reports.push(run_one(&bench, json_out, || connections(&bench, &c)));
            if all.with_19k {
                c.connections = scaled(19_000, s);
                eprintln!("chat-bench: connections ({})", c.connections);
                reports.push(run_one(&bench, json_out, || connections(&bench, &c)));
            }
            eprintln!("chat-bench: mixed");
            reports.push(run_one(&bench, json_out, || mixed(&bench, &m)));
            drop(bench);
            eprintln!("chat-bench: pingpong");
            let bench = for_pingpong();
            reports.push(run_one(&bench, json_out, || pingpong(&bench, &p)));
        }
        Command::Cluster(cluster) => {
            let sizes = Scaled::new(cluster.scale);
            let bench = general();
            eprintln!("chat-bench: direct");
            reports.push(run_one(&bench, json_out, || direct(&bench, &sizes.direct)));
            eprintln!("chat-bench: fanout");
            reports.push(run_one(&bench, json_out, || fanout(&bench, &sizes.fanout)));
            drop(bench);
            eprintln!("chat-bench: pingpong");
            let bench = for_pingpong();
            reports.push(run_one(&bench, json_out, || {
                pingpong(&bench, &sizes.pingpong)
            }));
        }
    }
    print!("{}", report::table(&reports));
    if reports.iter().all(Report::ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
