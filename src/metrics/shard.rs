//! Per-thread counters, summed when scraped. Each thread that records gets
//! its own block of counters ([`Counts`] of [`Cell`]s, aligned to its own
//! cache lines) the first time it records into a given [`Shards`]; only
//! that thread ever writes it, so a record is a plain load and store on a
//! line no other thread writes, never a shared atomic read-modify-write. A
//! scrape sums every block ever created (a thread's counts outlive it: a
//! counter never goes down).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::labels::{Code, DisconnectReason, Rpc};

/// Upper bounds of the handling-time histogram's buckets, in nanoseconds:
/// 100 us to 5 s (the last bucket, `+Inf`, is implicit).
pub const BUCKET_BOUNDS_NANOS: [u64; 15] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
];

/// Buckets per histogram, `+Inf` included.
pub const BUCKETS: usize = BUCKET_BOUNDS_NANOS.len() + 1;

const RPCS: usize = Rpc::ALL.len();

/// A counter written by one thread only: a relaxed load and store, which
/// the scraping thread reads with a relaxed load.
#[derive(Debug, Default)]
pub struct Cell(AtomicU64);

impl Cell {
    /// Adds `n`. Only the thread that owns the block may call it.
    pub fn add(&self, n: u64) {
        let value = self.0.load(Ordering::Relaxed);
        self.0.store(value.wrapping_add(n), Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Every counter the server keeps, with `C` a [`Cell`] in a thread's block
/// or a `u64` in a scrape's sum. Histogram buckets are not cumulative here.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Counts<C> {
    /// `grpc_server_started_total` by RPC.
    pub started: [C; RPCS],
    /// `grpc_server_msg_received_total` by RPC.
    pub received: [C; RPCS],
    /// `grpc_server_msg_sent_total` by RPC (for Connect also
    /// `chat_delivery_writes_total`: one per Delivery written).
    pub sent: [C; RPCS],
    /// `grpc_server_handled_total` by RPC and code.
    pub handled: [[C; Code::COUNT]; RPCS],
    /// `grpc_server_handling_seconds` bucket counts by RPC (unary only).
    pub buckets: [[C; BUCKETS]; RPCS],
    /// `grpc_server_handling_seconds_sum` by RPC, in nanoseconds.
    pub handling_nanos: [C; RPCS],
    /// `chat_connections_total`.
    pub connections: C,
    /// `chat_disconnects_total` by reason.
    pub disconnects: [C; DisconnectReason::COUNT],
    /// `chat_deliveries_total`: messages written to streams.
    pub deliveries: C,
    /// `chat_refusals_total` by code.
    pub refusals: [C; Code::COUNT],
    /// `chat_resume_attempts_total` by status: resumed, gap, unknown.
    pub resumes: [C; 3],
    /// `chat_send_rate_limited_total`: sends the send limit refused.
    pub rate_limited: C,
}

/// One thread's counters.
pub type Block = Counts<Cell>;

/// A scrape's sum over every thread.
pub type Totals = Counts<u64>;

fn sum_into<const N: usize>(into: &mut [u64; N], from: &[Cell; N]) {
    for (total, cell) in into.iter_mut().zip(from) {
        *total = total.wrapping_add(cell.get());
    }
}

impl Block {
    fn add_to(&self, totals: &mut Totals) {
        sum_into(&mut totals.started, &self.started);
        sum_into(&mut totals.received, &self.received);
        sum_into(&mut totals.sent, &self.sent);
        for (into, from) in totals.handled.iter_mut().zip(&self.handled) {
            sum_into(into, from);
        }
        for (into, from) in totals.buckets.iter_mut().zip(&self.buckets) {
            sum_into(into, from);
        }
        sum_into(&mut totals.handling_nanos, &self.handling_nanos);
        totals.connections = totals.connections.wrapping_add(self.connections.get());
        sum_into(&mut totals.disconnects, &self.disconnects);
        totals.deliveries = totals.deliveries.wrapping_add(self.deliveries.get());
        sum_into(&mut totals.refusals, &self.refusals);
        sum_into(&mut totals.resumes, &self.resumes);
        totals.rate_limited = totals.rate_limited.wrapping_add(self.rate_limited.get());
    }
}

/// Every block recorded into one metrics registry.
#[derive(Debug, Default)]
pub struct Shards {
    /// Every thread's block, for the scrape; locked only when a thread
    /// records for the first time and when scraping.
    blocks: Mutex<Vec<Arc<Block>>>,
}

thread_local! {
    /// This thread's block in each [`Shards`] it has recorded into, found
    /// by the registry's address (a `Weak` keeps that address from being
    /// reused while the entry exists). Usually one entry; tests that run
    /// several servers in one process have more.
    static LOCAL: RefCell<Vec<(Weak<Shards>, Arc<Block>)>> = const { RefCell::new(Vec::new()) };
}

impl Shards {
    /// Runs `record` on this thread's block, creating it on first use. Does
    /// nothing while the thread is being torn down.
    pub fn record(self: &Arc<Self>, record: impl FnOnce(&Block)) {
        let _ = LOCAL.try_with(|local| {
            let Ok(mut local) = local.try_borrow_mut() else {
                return;
            };
            let me = Arc::as_ptr(self);
            if let Some((_, block)) = local.iter().find(|(owner, _)| owner.as_ptr() == me) {
                record(block);
                return;
            }
            local.retain(|(owner, _)| owner.strong_count() > 0);
            let block = Arc::new(Block::default());
            self.blocks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Arc::clone(&block));
            record(&block);
            local.push((Arc::downgrade(self), block));
        });
    }

    /// The sum of every block.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for block in self
            .blocks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            block.add_to(&mut totals);
        }
        totals
    }
}

/// The bucket a call that took `nanos` falls in.
pub fn bucket_of(nanos: u64) -> usize {
    BUCKET_BOUNDS_NANOS
        .iter()
        .position(|bound| nanos <= *bound)
        .unwrap_or(BUCKET_BOUNDS_NANOS.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_records_into_its_own_block_and_the_scrape_sums_them() {
        let shards = Arc::new(Shards::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let shards = Arc::clone(&shards);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        shards.record(|block| block.deliveries.add(2));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        shards.record(|block| block.handled[1][5].add(1));
        let totals = shards.totals();
        assert_eq!(totals.deliveries, 8000);
        assert_eq!(totals.handled[1][5], 1);
        // Four threads, and this one: their counts outlive them.
        assert_eq!(shards.blocks.lock().unwrap().len(), 5);
    }

    #[test]
    fn two_registries_on_one_thread_keep_their_own_counts() {
        let first = Arc::new(Shards::default());
        let second = Arc::new(Shards::default());
        first.record(|block| block.connections.add(1));
        second.record(|block| block.connections.add(5));
        first.record(|block| block.connections.add(1));
        assert_eq!(first.totals().connections, 2);
        assert_eq!(second.totals().connections, 5);
        drop(first);
        // A dead registry's entry is dropped when another is added.
        let third = Arc::new(Shards::default());
        third.record(|block| block.connections.add(1));
        LOCAL.with(|local| assert_eq!(local.borrow().len(), 2));
    }

    #[test]
    fn calls_fall_in_the_first_bucket_that_holds_them() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(100_000), 0);
        assert_eq!(bucket_of(100_001), 1);
        assert_eq!(bucket_of(5_000_000_000), 14);
        assert_eq!(bucket_of(5_000_000_001), 15);
    }
}
