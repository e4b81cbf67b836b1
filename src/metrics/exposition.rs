//! One scrape: the summed counters, the chat's state and the process's
//! figures, as Prometheus metric families, written in the text exposition
//! format (0.0.4) by the `prometheus` crate's encoder. Every labelled series
//! is written from the first scrape on, zeros included, so `rate()` and
//! alerts see a series before its first event.

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};

use super::labels::{Code, DisconnectReason, Rpc};
use super::process::ProcessStats;
use super::shard::{Totals, BUCKET_BOUNDS_NANOS};
use crate::domain::{ChatStats, StoreStats, ROUND_TRIP_BOUNDS};

/// The `Content-Type` of a scrape.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Everything one scrape reports.
#[derive(Debug)]
pub struct Snapshot {
    /// The counters, summed over every thread.
    pub totals: Totals,
    /// The chat's state now.
    pub chat: ChatStats,
    /// The process's figures, when `/proc` could be read.
    pub process: Option<ProcessStats>,
    /// The build's version.
    pub version: &'static str,
}

/// `snapshot` in the text exposition format.
pub fn encode(snapshot: &Snapshot) -> String {
    let mut out = Vec::new();
    // The encoder only fails on a family without samples or name, which
    // `families` never builds, or on a failed write, which a Vec never has.
    if TextEncoder::new()
        .encode(&families(snapshot), &mut out)
        .is_err()
    {
        out.clear();
    }
    String::from_utf8(out).unwrap_or_default()
}

fn families(snapshot: &Snapshot) -> Vec<MetricFamily> {
    let Snapshot {
        totals: t,
        chat,
        process,
        version,
    } = snapshot;
    let mut families = vec![
        per_rpc(
            "grpc_server_started_total",
            "Total number of RPCs started on the server.",
            &t.started,
        ),
        handled(t),
        per_rpc(
            "grpc_server_msg_received_total",
            "Total number of RPC stream messages received on the server.",
            &t.received,
        ),
        per_rpc(
            "grpc_server_msg_sent_total",
            "Total number of gRPC stream messages sent by the server \
             (for Connect: one per Delivery written).",
            &t.sent,
        ),
        handling_seconds(t),
        gauge_family(
            "chat_connected_users",
            "Users connected now.",
            chat.connected_users as f64,
        ),
        gauge_family("chat_groups", "Groups that exist now.", chat.groups as f64),
        gauge_family(
            "chat_group_memberships",
            "Group memberships now, summed over every group.",
            chat.memberships as f64,
        ),
        gauge_family(
            "chat_queued_messages",
            "Messages queued for connected users, not yet written to their streams.",
            chat.queued_messages as f64,
        ),
        gauge_family(
            "chat_queued_bytes",
            "Bytes of queued messages, as counted against --queue-bytes.",
            chat.queued_bytes as f64,
        ),
        gauge_family(
            "chat_history_messages",
            "Messages kept in group histories now (on a cluster node: every group's, from Redis).",
            chat.history_messages as f64,
        ),
        gauge_family(
            "chat_history_bytes",
            "Bytes of text kept in group histories now.",
            chat.history_bytes as f64,
        ),
        family(
            "chat_resume_attempts_total",
            "Connects that asked to resume a session, by the status they got.",
            MetricType::COUNTER,
            ["resumed", "gap", "unknown"]
                .iter()
                .zip(t.resumes)
                .map(|(status, count)| counter(&[("status", status)], count))
                .collect(),
        ),
        counter_family(
            "chat_send_rate_limited_total",
            "SendMessage calls refused by the per-user send limit (--send-rate).",
            t.rate_limited,
        ),
        counter_family(
            "chat_connections_total",
            "Connect streams opened (users connected).",
            t.connections,
        ),
        family(
            "chat_disconnects_total",
            "Connect streams of connected users that ended, by reason.",
            MetricType::COUNTER,
            DisconnectReason::ALL
                .iter()
                .map(|reason| {
                    counter(
                        &[("reason", reason.label())],
                        t.disconnects[reason.index()],
                    )
                })
                .collect(),
        ),
        family(
            "chat_messages_total",
            "Messages accepted by SendMessage, by kind of recipient.",
            MetricType::COUNTER,
            vec![
                counter(&[("kind", "direct")], chat.direct_messages),
                counter(&[("kind", "group")], chat.group_messages),
            ],
        ),
        counter_family(
            "chat_deliveries_total",
            "Messages written to Connect streams (one per recipient).",
            t.deliveries,
        ),
        counter_family(
            "chat_delivery_writes_total",
            "Delivery events written to Connect streams; deliveries / writes is the batching ratio.",
            t.sent[Rpc::Connect.index()],
        ),
        family(
            "chat_refusals_total",
            "Chat calls refused (unary calls not answered OK, Connects refused), by status code.",
            MetricType::COUNTER,
            Code::all()
                .filter(|code| *code != Code::OK)
                .map(|code| counter(&[("code", code.name())], t.refusals[code.index()]))
                .collect(),
        ),
        family(
            "chat_build_info",
            "Always 1; the version label is the server's build.",
            MetricType::GAUGE,
            vec![gauge(&[("version", version)], 1.0)],
        ),
    ];
    if let Some(process) = process {
        families.extend(process_families(process));
    }
    if let Some(store) = &chat.store {
        families.extend(store_families(store));
    }
    families
}

/// A cluster node's figures of its work with Redis.
fn store_families(store: &StoreStats) -> Vec<MetricFamily> {
    let mut cumulative = 0;
    let buckets = ROUND_TRIP_BOUNDS
        .iter()
        .zip(&store.round_trips)
        .map(|(bound, count)| {
            cumulative += count;
            let mut bucket = Bucket::default();
            bucket.set_upper_bound(*bound);
            bucket.set_cumulative_count(cumulative);
            bucket
        })
        .collect();
    let mut histogram = Histogram::default();
    histogram.set_bucket(buckets);
    histogram.set_sample_count(store.round_trips.iter().sum());
    histogram.set_sample_sum(store.round_trip_seconds);
    let mut round_trips = Metric::default();
    round_trips.set_histogram(histogram);
    vec![
        family(
            "chat_redis_round_trip_seconds",
            "Round trips to Redis (one pipeline of calls each), by time taken.",
            MetricType::HISTOGRAM,
            vec![round_trips],
        ),
        counter_family(
            "chat_redis_errors_total",
            "Redis calls that failed: Redis unreachable or too slow to answer.",
            store.errors,
        ),
        family(
            "chat_lease_renewals_total",
            "Renewals of this node's lease in the cluster, by result.",
            MetricType::COUNTER,
            vec![
                counter(&[("result", "ok")], store.lease_renewals),
                counter(&[("result", "failed")], store.lease_failures),
            ],
        ),
        gauge_family(
            "chat_inbox_lag_seconds",
            "How old the last message this node's inbox reader applied was when it applied it.",
            store.inbox_lag_seconds,
        ),
    ]
}

fn process_families(process: &ProcessStats) -> Vec<MetricFamily> {
    let mut families = vec![
        family(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            MetricType::COUNTER,
            vec![counter_f64(process.cpu_seconds)],
        ),
        gauge_family(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            process.resident_memory_bytes,
        ),
        gauge_family(
            "process_open_fds",
            "Number of open file descriptors.",
            process.open_fds,
        ),
        gauge_family(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            process.start_time_seconds,
        ),
    ];
    if let Some(max_fds) = process.max_fds {
        families.push(gauge_family(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            max_fds,
        ));
    }
    families
}

/// The labels every gRPC series starts with.
fn rpc_labels(rpc: Rpc) -> [(&'static str, &'static str); 3] {
    [
        ("grpc_type", rpc.grpc_type()),
        ("grpc_service", rpc.service()),
        ("grpc_method", rpc.name()),
    ]
}

fn per_rpc(name: &str, help: &str, values: &[u64; Rpc::ALL.len()]) -> MetricFamily {
    let metrics = Rpc::ALL
        .iter()
        .map(|rpc| counter(&rpc_labels(*rpc), values[rpc.index()]))
        .collect();
    family(name, help, MetricType::COUNTER, metrics)
}

fn handled(t: &Totals) -> MetricFamily {
    let mut metrics = Vec::with_capacity(Rpc::ALL.len() * Code::COUNT);
    for rpc in Rpc::ALL {
        let [kind, service, method] = rpc_labels(rpc);
        for code in Code::all() {
            let labels = [kind, service, method, ("grpc_code", code.name())];
            metrics.push(counter(&labels, t.handled[rpc.index()][code.index()]));
        }
    }
    family(
        "grpc_server_handled_total",
        "Total number of RPCs completed on the server, regardless of success or failure.",
        MetricType::COUNTER,
        metrics,
    )
}

fn handling_seconds(t: &Totals) -> MetricFamily {
    let metrics = Rpc::ALL
        .iter()
        .filter(|rpc| rpc.is_unary())
        .map(|rpc| {
            let at = rpc.index();
            let mut cumulative = 0;
            let buckets = BUCKET_BOUNDS_NANOS
                .iter()
                .zip(&t.buckets[at])
                .map(|(bound, count)| {
                    cumulative += count;
                    let mut bucket = Bucket::default();
                    bucket.set_upper_bound(*bound as f64 / 1e9);
                    bucket.set_cumulative_count(cumulative);
                    bucket
                })
                .collect();
            let mut histogram = Histogram::default();
            histogram.set_bucket(buckets);
            histogram.set_sample_count(t.buckets[at].iter().sum());
            histogram.set_sample_sum(t.handling_nanos[at] as f64 / 1e9);
            let mut metric = labelled(&rpc_labels(*rpc));
            metric.set_histogram(histogram);
            metric
        })
        .collect();
    family(
        "grpc_server_handling_seconds",
        "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
        MetricType::HISTOGRAM,
        metrics,
    )
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

fn counter_family(name: &str, help: &str, value: u64) -> MetricFamily {
    family(name, help, MetricType::COUNTER, vec![counter(&[], value)])
}

fn gauge_family(name: &str, help: &str, value: f64) -> MetricFamily {
    family(name, help, MetricType::GAUGE, vec![gauge(&[], value)])
}

fn labelled(labels: &[(&str, &str)]) -> Metric {
    let pairs = labels
        .iter()
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name((*name).to_owned());
            pair.set_value((*value).to_owned());
            pair
        })
        .collect();
    let mut metric = Metric::default();
    metric.set_label(pairs);
    metric
}

fn counter(labels: &[(&str, &str)], value: u64) -> Metric {
    let mut metric = counter_f64(value as f64);
    metric.set_label(labelled(labels).take_label());
    metric
}

fn counter_f64(value: f64) -> Metric {
    let mut counter = Counter::default();
    counter.set_value(value);
    let mut metric = Metric::default();
    metric.set_counter(counter);
    metric
}

fn gauge(labels: &[(&str, &str)], value: f64) -> Metric {
    let mut gauge = Gauge::default();
    gauge.set_value(value);
    let mut metric = labelled(labels);
    metric.set_gauge(gauge);
    metric
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            totals: Totals::default(),
            chat: ChatStats::default(),
            process: None,
            version: "1.2.3",
        }
    }

    #[test]
    fn every_series_is_written_from_the_start() {
        let text = encode(&snapshot());
        let handled = text
            .lines()
            .filter(|line| line.starts_with("grpc_server_handled_total{"))
            .count();
        // Nine chat RPCs and five admin RPCs.
        assert_eq!(handled, 14 * 17);
        assert!(text.contains(
            "grpc_server_handled_total{grpc_type=\"server_stream\",grpc_service=\"chat.v1.ChatService\",\
             grpc_method=\"Connect\",grpc_code=\"Unauthenticated\"} 0\n"
        ));
        assert!(text.contains(
            "grpc_server_handled_total{grpc_type=\"unary\",grpc_service=\"chat.admin.v1.AdminService\",\
             grpc_method=\"Publish\",grpc_code=\"OK\"} 0\n"
        ));
        // Unary calls only: 13 histograms of 16 buckets.
        let buckets = text
            .lines()
            .filter(|line| line.starts_with("grpc_server_handling_seconds_bucket{"))
            .count();
        assert_eq!(buckets, 13 * 16);
        assert!(text.contains("chat_send_rate_limited_total 0\n"));
        assert!(text.contains("chat_disconnects_total{reason=\"operator\"} 0\n"));
        assert!(text.contains("le=\"0.0001\""), "{text}");
        assert!(text.contains("le=\"5\""));
        assert!(text.contains("chat_build_info{version=\"1.2.3\"} 1\n"));
        assert!(text.contains("chat_disconnects_total{reason=\"slow_consumer\"} 0\n"));
        assert!(text.contains("chat_refusals_total{code=\"NotFound\"} 0\n"));
        assert!(text.contains("chat_resume_attempts_total{status=\"gap\"} 0\n"));
        assert!(text.contains("chat_history_messages 0\n"));
        assert!(text.contains("chat_history_bytes 0\n"));
        assert!(!text.contains("chat_refusals_total{code=\"OK\"}"));
    }

    #[test]
    fn histogram_buckets_are_cumulative_in_seconds() {
        let mut snapshot = snapshot();
        let at = Rpc::SendMessage.index();
        snapshot.totals.buckets[at][0] = 2;
        snapshot.totals.buckets[at][3] = 1;
        snapshot.totals.buckets[at][15] = 1;
        snapshot.totals.handling_nanos[at] = 7_000_500_000;
        let text = encode(&snapshot);
        let series = |le: &str| {
            format!(
                "grpc_server_handling_seconds_bucket{{grpc_type=\"unary\",grpc_service=\"chat.v1.ChatService\",\
                 grpc_method=\"SendMessage\",le=\"{le}\"}}"
            )
        };
        assert!(
            text.contains(&format!("{} 2\n", series("0.0001"))),
            "{text}"
        );
        assert!(text.contains(&format!("{} 3\n", series("0.001"))));
        assert!(text.contains(&format!("{} 3\n", series("5"))));
        assert!(text.contains(&format!("{} 4\n", series("+Inf"))));
        assert!(text.contains("grpc_method=\"SendMessage\"} 7.0005\n"));
    }
}
