//! Small shared helpers: the process-local clock every timestamp is measured
//! on, a deterministic pseudo-random generator for reproducible choices, and
//! status-code names.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Starts the process-local clock; later calls do nothing.
pub fn start_clock() {
    EPOCH.get_or_init(Instant::now);
}

/// Nanoseconds since the process-local epoch.
pub fn now_ns() -> u64 {
    let epoch = EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Nanoseconds between two clock readings, as seconds.
pub fn secs_between(from_ns: u64, to_ns: u64) -> f64 {
    to_ns.saturating_sub(from_ns) as f64 / 1e9
}

/// A point in time after which a scenario gives up.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    /// The deadline `limit` from now.
    pub fn after(limit: Duration) -> Deadline {
        Deadline(Instant::now() + limit)
    }

    /// The deadline as an `Instant`.
    pub fn instant(self) -> Instant {
        self.0
    }

    /// Whether it has passed.
    pub fn passed(self) -> bool {
        Instant::now() >= self.0
    }

    /// The earlier of this deadline and `limit` from now.
    pub fn cap(self, limit: Duration) -> Deadline {
        Deadline(self.0.min(Instant::now() + limit))
    }
}

/// SplitMix64: a tiny, fast, deterministic generator; good enough to pick
/// users and groups reproducibly from a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The name of a gRPC status code, e.g. `RESOURCE_EXHAUSTED`.
pub fn code_name(code: grpcio::RpcStatusCode) -> String {
    let text = format!("{code:?}");
    match text.split_once('-') {
        Some((_, name)) => name.to_owned(),
        None => text,
    }
}

/// The status code name of a grpcio error; transport errors count as
/// UNAVAILABLE, the way gRPC clients usually report them.
pub fn error_code(error: &grpcio::Error) -> String {
    match error {
        grpcio::Error::RpcFailure(status) => code_name(status.code()),
        _ => "UNAVAILABLE".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_is_deterministic() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            let x = a.below(13);
            assert!(x < 13);
            assert_eq!(x, b.below(13));
        }
        let u = a.unit();
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn code_names_drop_the_number() {
        assert_eq!(
            code_name(grpcio::RpcStatusCode::RESOURCE_EXHAUSTED),
            "RESOURCE_EXHAUSTED"
        );
    }
}
