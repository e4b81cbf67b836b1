//! Monitoring: the counters the server keeps for Prometheus, how a scrape
//! turns them into the text exposition format, and the HTTP endpoint that
//! serves it ([`http`]).
//!
//! [`Metrics`] is the handle the bootstrap builds and hands to the adapter,
//! which records each RPC, connection and delivery through it. Recording
//! costs no shared atomic: every thread writes its own block of counters
//! (the private `shard` module) and a scrape sums them. The chat's gauges
//! are not kept here at all: a scrape asks the domain for its
//! [`ChatStats`], counts the registry and its mailboxes keep anyway. This
//! module knows neither grpcio nor the registry's internals; status codes
//! arrive as numbers.

pub mod exposition;
pub mod http;
pub mod labels;
mod process;
mod shard;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::{ChatStats, ResumeStatus};
pub use labels::{Code, DisconnectReason, Rpc};
use shard::{bucket_of, Shards};

/// Where a scrape reads the chat's state from.
type StatsSource = Box<dyn Fn() -> ChatStats + Send + Sync>;

/// The metrics handle: cheap to clone; a handle made by [`Metrics::off`]
/// records nothing.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    /// The per-thread counters.
    shards: Arc<Shards>,
    /// Reads the chat's gauges and message counts at scrape time.
    stats: StatsSource,
    /// The `version` label of `chat_build_info`.
    version: &'static str,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("on", &self.inner.is_some())
            .finish()
    }
}

impl Metrics {
    /// Metrics for a server of build `version`, whose chat state a scrape
    /// reads through `stats`.
    pub fn new(
        version: &'static str,
        stats: impl Fn() -> ChatStats + Send + Sync + 'static,
    ) -> Metrics {
        Metrics {
            inner: Some(Arc::new(Inner {
                shards: Arc::new(Shards::default()),
                stats: Box::new(stats),
                version,
            })),
        }
    }

    /// A handle that records nothing: metrics are off.
    pub fn off() -> Metrics {
        Metrics::default()
    }

    /// The start of a unary call's handling time (`None` when off, so an
    /// unmonitored server does not even read the clock).
    pub fn clock(&self) -> Option<Instant> {
        self.inner.as_ref().map(|_| Instant::now())
    }

    fn record(&self, record: impl FnOnce(&shard::Block)) {
        if let Some(inner) = &self.inner {
            inner.shards.record(record);
        }
    }

    /// A unary call of `rpc` was answered with `code` after `took`;
    /// `received` says whether its request decoded (a request the decoder
    /// refused is started and handled, but no message was received). A
    /// call answered with anything but `OK` is a refusal.
    pub fn unary_handled(&self, rpc: Rpc, received: bool, code: Code, took: Option<Duration>) {
        let at = rpc.index();
        let nanos = took.map_or(0, |took| u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
        self.record(|block| {
            block.started[at].add(1);
            block.received[at].add(u64::from(received));
            block.handled[at][code.index()].add(1);
            block.buckets[at][bucket_of(nanos)].add(1);
            block.handling_nanos[at].add(nanos);
            if code == Code::OK {
                block.sent[at].add(1);
            } else {
                block.refusals[code.index()].add(1);
            }
        });
    }

    /// A Connect call started; `refused` is the code it was refused with
    /// before its stream opened (then it is also handled, and a refusal),
    /// `None` when the user connected.
    pub fn connect_started(&self, received: bool, refused: Option<Code>) {
        let at = Rpc::Connect.index();
        self.record(|block| {
            block.started[at].add(1);
            block.received[at].add(u64::from(received));
            match refused {
                Some(code) => {
                    block.handled[at][code.index()].add(1);
                    block.refusals[code.index()].add(1);
                }
                None => block.connections.add(1),
            }
        });
    }

    /// A connected user's Connect stream ended with `code`, for `reason`.
    pub fn connect_ended(&self, code: Code, reason: DisconnectReason) {
        let at = Rpc::Connect.index();
        self.record(|block| {
            block.handled[at][code.index()].add(1);
            block.disconnects[reason.index()].add(1);
        });
    }

    /// A Connect that asked to resume a session got `status` (one that
    /// asked nothing is not counted).
    pub fn resume_attempted(&self, status: ResumeStatus) {
        let at = match status {
            ResumeStatus::NotAsked => return,
            ResumeStatus::Resumed => 0,
            ResumeStatus::Gap => 1,
            ResumeStatus::Unknown => 2,
        };
        self.record(|block| block.resumes[at].add(1));
    }

    /// The send limit refused a SendMessage (also counted as handled with
    /// its code, like any refusal).
    pub fn send_rate_limited(&self) {
        self.record(|block| block.rate_limited.add(1));
    }

    /// A Connect stream wrote one Delivery holding `messages` messages.
    pub fn delivery_written(&self, messages: usize) {
        let at = Rpc::Connect.index();
        self.record(|block| {
            block.sent[at].add(1);
            block.deliveries.add(messages as u64);
        });
    }

    /// Everything, in the Prometheus text exposition format (version
    /// 0.0.4); empty when off.
    pub fn scrape(&self) -> String {
        match &self.inner {
            Some(inner) => exposition::encode(&exposition::Snapshot {
                totals: inner.shards.totals(),
                chat: (inner.stats)(),
                process: process::read(),
                version: inner.version,
            }),
            None => String::new(),
        }
    }
}
