//! The `connections` scenario: opens many concurrent Connect streams, spread
//! over a fixed number of channels (HTTP/2 connections) because one process
//! can only hold so many file descriptors, and waits for each stream's
//! `connected` event with a bounded number of connects pending at once.
//! Reports connects per second, connect latency, failures, the server's RSS
//! before and with every stream open (KiB per connection) and its CPU per
//! connection; then closes every stream and waits for the server to forget
//! the users. Against several nodes, channel i goes to node i.

use std::time::Duration;

use chat_proto::chat::{connect_response, ConnectRequest, ConnectResponse};
use chat_proto::chat_grpc::ChatServiceClient;
use futures::StreamExt;
use grpcio::{CallOption, ClientSStreamReceiver};
use serde_json::Map;

use crate::check;
use crate::net::{wait_gone, Bench, ErrorCounts};
use crate::procfs::Sample;
use crate::report::Report;
use crate::util::{error_code, now_ns, secs_between, Deadline};

/// Sizes of a `connections` run.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Streams to open.
    pub connections: u32,
    /// Channels to spread them over.
    pub channels: u32,
    /// Connects pending at once.
    pub concurrency: u32,
    /// How long to hold them all open before closing, in milliseconds.
    pub hold_ms: u64,
}

/// One connect's result: when it started and ended, and the stream or the
/// status code name it failed with.
type Opened = (
    u64,
    u64,
    Result<ClientSStreamReceiver<ConnectResponse>, String>,
);

/// Runs the scenario and reports.
pub fn run(bench: &Bench, sizes: Sizes) -> Report {
    let deadline = Deadline::after(bench.timeout);
    let mut report = Report::new("connections", "connects/s");
    let prefix = bench.run_prefix("conn");
    let mut params = Map::new();
    params.insert("connections".into(), sizes.connections.into());
    params.insert("channels".into(), sizes.channels.into());
    params.insert("connect_concurrency".into(), sizes.concurrency.into());
    params.insert("hold_ms".into(), sizes.hold_ms.into());
    report.params = params;

    // Before any connection: what a connected user costs, its connection's
    // share included, is measured from here.
    let fresh = bench.sample();
    let clients: Vec<ChatServiceClient> = match (0..sizes.channels.max(1))
        .map(|channel| bench.dedicated_client(channel as usize))
        .collect()
    {
        Ok(clients) => clients,
        Err(error) => {
            report.failures.push(error);
            return report;
        }
    };

    let before = bench.sample();
    let start_ns = now_ns();
    let names: Vec<String> = (0..sizes.connections)
        .map(|i| format!("{prefix}{i}"))
        .collect();
    let Opening {
        streams,
        latencies,
        errors,
        timed_out,
    } = open_streams(&clients, &names, sizes.concurrency, deadline);
    report.failures.extend(timed_out);
    let end_ns = now_ns();
    let after = bench.sample();
    let opened = streams.len() as u64;

    std::thread::sleep(Duration::from_millis(sizes.hold_ms));
    let held = bench.sample();

    // Close everything and wait until the server has let every user go.
    let close_start = bench.sample();
    let close_ns = now_ns();
    close_streams(streams);
    match wait_gone(bench, &prefix, deadline.cap(Duration::from_secs(60))) {
        Ok(_) => {
            report.put(
                "close_s",
                (secs_between(close_ns, now_ns()) * 1e3).round() / 1e3,
            );
        }
        Err(error) => report.failures.push(format!("after closing: {error}")),
    }
    let closed = bench.sample();
    drop(clients);

    report.elapsed_s = secs_between(start_ns, end_ns);
    if report.elapsed_s > 0.0 {
        report.throughput = opened as f64 / report.elapsed_s;
    }
    report.latency = check::latency(latencies);
    if opened > 0 {
        let hundredths = |x: f64| (x * 100.0).round() / 100.0;
        // CPU and RSS growth per connect, from `from` to every stream open.
        let cpu_us_per_connect = |from: &Sample| {
            from.server_cpu_delta(&after)
                .map(|cpu| cpu * 1e6 / opened as f64)
        };
        let rss_kb_per_connect = |from: &Sample| -> Option<f64> {
            Some((held.server_rss_kb? as f64 - from.server_rss_kb? as f64) / opened as f64)
        };
        report.server_cpu_us_per_unit = cpu_us_per_connect(&fresh);
        if let Some(cpu) = cpu_us_per_connect(&before) {
            report.put("stream_cpu_us_per_connect", hundredths(cpu));
        }
        if let Some(cpu) = close_start.server_cpu_delta(&closed) {
            report.put(
                "close_cpu_us_per_connection",
                hundredths(cpu * 1e6 / opened as f64),
            );
        }
        if let Some(kb) = rss_kb_per_connect(&fresh) {
            report.put("kb_per_connection", hundredths(kb));
        }
        if let Some(kb) = rss_kb_per_connect(&before) {
            report.put("kb_per_stream", hundredths(kb));
        }
    }
    if let Some(cpu) = before.bench_cpu_delta(&after) {
        report.put("bench_cpu_s", (cpu * 1000.0).round() / 1000.0);
    }
    report.put("connected", opened);
    let failed = u64::from(sizes.connections) - opened;
    report.put("failed", failed);
    if failed > 0 && report.failures.is_empty() && errors.is_empty() {
        report.failures.push(format!("{failed} connects failed"));
    }
    report.rss_kb_before = before.server_rss_kb;
    report.rss_kb_after = held.server_rss_kb;
    report.put("rss_kb_after_close", closed.server_rss_kb);
    report.errors = errors;
    report
}

/// The streams [`open_streams`] opened, how long each took, and what went
/// wrong.
pub struct Opening {
    /// The open streams, each past its `connected` event.
    pub streams: Vec<ClientSStreamReceiver<ConnectResponse>>,
    /// Each open stream's connect latency, ns.
    pub latencies: Vec<u64>,
    /// Failed connects by status code name.
    pub errors: ErrorCounts,
    /// Why the opening stopped early, if it did.
    pub timed_out: Option<String>,
}

/// Opens a Connect stream for each of `names`, name `i` on
/// `clients[i % clients.len()]`, with at most `concurrency` waiting for
/// their `connected` event at once, until `deadline`.
pub fn open_streams(
    clients: &[ChatServiceClient],
    names: &[String],
    concurrency: u32,
    deadline: Deadline,
) -> Opening {
    let (opened_tx, opened_rx) = crossbeam_channel::unbounded::<Opened>();
    let mut opening = Opening {
        streams: Vec::with_capacity(names.len()),
        latencies: Vec::with_capacity(names.len()),
        errors: ErrorCounts::new(),
        timed_out: None,
    };
    let mut issued = 0usize;
    let mut pending = 0u32;
    while issued < names.len() || pending > 0 {
        while issued < names.len() && pending < concurrency.max(1) {
            let client = &clients[issued % clients.len().max(1)];
            let mut request = ConnectRequest::new();
            request.username.clone_from(&names[issued]);
            let started = now_ns();
            match client.connect_opt(&request, CallOption::default()) {
                Ok(stream) => {
                    client.spawn(await_connected(started, stream, opened_tx.clone()));
                    pending += 1;
                }
                Err(error) => *opening.errors.entry(error_code(&error)).or_default() += 1,
            }
            issued += 1;
        }
        if pending == 0 {
            continue;
        }
        match opened_rx.recv_deadline(deadline.instant()) {
            Ok((started, done, result)) => {
                pending -= 1;
                match result {
                    Ok(stream) => {
                        opening.streams.push(stream);
                        opening.latencies.push(done.saturating_sub(started));
                    }
                    Err(code) => *opening.errors.entry(code).or_default() += 1,
                }
            }
            Err(_) => {
                opening.timed_out = Some(format!("timed out with {pending} connects pending"));
                break;
            }
        }
    }
    opening
}

/// Ends every stream of `streams` (the server sees each one cancelled).
pub fn close_streams(mut streams: Vec<ClientSStreamReceiver<ConnectResponse>>) {
    for stream in &mut streams {
        stream.cancel();
    }
}

/// Waits for a stream's first event and hands the stream back.
async fn await_connected(
    started: u64,
    mut stream: ClientSStreamReceiver<ConnectResponse>,
    opened: crossbeam_channel::Sender<Opened>,
) {
    let result = match stream.next().await {
        Some(Ok(event)) => match event.event {
            Some(connect_response::Event::Connected(_)) => Ok(()),
            _ => Err("UNEXPECTED_FIRST_EVENT".to_owned()),
        },
        Some(Err(error)) => Err(error_code(&error)),
        None => Err("STREAM_ENDED".to_owned()),
    };
    let done = now_ns();
    let _ = opened.send((started, done, result.map(|()| stream)));
}
