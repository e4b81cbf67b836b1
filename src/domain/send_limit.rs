//! Per-user send limits (`--send-rate`, `--send-burst`): a token bucket
//! kept as the generic cell rate algorithm, one moment per username (the
//! "theoretical arrival time" of its next message), so a user's budget is
//! one number and outlives a reconnect. A user may send `burst` messages at
//! once and then `rate` a second. The cluster engine keeps the same moment
//! in Redis with the same arithmetic; this is the single node's. Nothing
//! here knows gRPC.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::error::ChatError;
use super::registry::Name;

/// Messages a second per user, with bursts of up to `burst`; off at rate 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendLimit {
    /// Messages a second (0: no limit).
    pub rate: u32,
    /// Most messages at once (at least 1 when the limit is on).
    pub burst: u32,
}

impl SendLimit {
    /// No limit.
    pub const OFF: SendLimit = SendLimit { rate: 0, burst: 0 };

    /// Whether sends are limited.
    pub fn on(&self) -> bool {
        self.rate > 0
    }

    /// The time one message uses of the budget, in microseconds.
    pub fn interval_micros(&self) -> u64 {
        1_000_000 / u64::from(self.rate.max(1))
    }

    /// How far ahead of now a user's next-message moment may be while it
    /// may still send, in microseconds: the burst less the one being sent.
    pub fn tolerance_micros(&self) -> u64 {
        self.interval_micros() * u64::from(self.burst.max(1) - 1)
    }
}

/// The refusal of a send over the limit: retry after `wait`, reported in
/// whole milliseconds rounded up.
pub fn sending_too_fast(wait: Duration) -> ChatError {
    let millis = wait.as_micros().div_ceil(1000);
    ChatError::SendingTooFast(u64::try_from(millis).unwrap_or(u64::MAX).max(1))
}

/// Every user's next-message moment, for one node.
#[derive(Debug, Default)]
pub struct SendBudgets {
    next: HashMap<Name, Instant>,
    /// When the map was last swept of users whose budget is full again.
    swept: Option<Instant>,
}

impl SendBudgets {
    /// Spends one message of `user`'s budget at `now`.
    ///
    /// # Errors
    /// `SendingTooFast` with the wait until it may send, spending nothing.
    pub fn spend(&mut self, limit: &SendLimit, user: &Name, now: Instant) -> Result<(), ChatError> {
        if !limit.on() {
            return Ok(());
        }
        self.sweep(now);
        let interval = Duration::from_micros(limit.interval_micros());
        let tolerance = Duration::from_micros(limit.tolerance_micros());
        let next = self.next.get(user).copied().unwrap_or(now).max(now);
        let ahead = next - now;
        if ahead > tolerance {
            return Err(sending_too_fast(ahead - tolerance));
        }
        self.next.insert(user.clone(), next + interval);
        Ok(())
    }

    /// Forgets users whose next-message moment has passed (their budget is
    /// full: the same as never having sent), at most once a second.
    fn sweep(&mut self, now: Instant) {
        if self
            .swept
            .is_some_and(|swept| now.duration_since(swept) < Duration::from_secs(1))
        {
            return;
        }
        self.swept = Some(now);
        self.next.retain(|_, next| *next > now);
    }

    /// How many users have a budget not yet full.
    pub fn tracked(&self) -> usize {
        self.next.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let limit = SendLimit { rate: 10, burst: 3 };
        let mut budgets = SendBudgets::default();
        let alice: Name = Arc::from("alice");
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(budgets.spend(&limit, &alice, now), Ok(()));
        }
        // The fourth at once waits one interval (100 ms).
        assert_eq!(
            budgets.spend(&limit, &alice, now),
            Err(ChatError::SendingTooFast(100))
        );
        // A refused send spends nothing: after 100 ms one more goes.
        let later = now + Duration::from_millis(100);
        assert_eq!(budgets.spend(&limit, &alice, later), Ok(()));
        assert_eq!(
            budgets.spend(&limit, &alice, later + Duration::from_millis(30)),
            Err(ChatError::SendingTooFast(70))
        );
        // Another user has its own budget.
        let bob: Name = Arc::from("bob");
        assert_eq!(budgets.spend(&limit, &bob, now), Ok(()));
    }

    #[test]
    fn off_limits_nothing() {
        let mut budgets = SendBudgets::default();
        let alice: Name = Arc::from("alice");
        let now = Instant::now();
        for _ in 0..1000 {
            assert_eq!(budgets.spend(&SendLimit::OFF, &alice, now), Ok(()));
        }
        assert_eq!(budgets.tracked(), 0);
    }

    #[test]
    fn a_full_budget_is_forgotten() {
        let limit = SendLimit { rate: 10, burst: 2 };
        let mut budgets = SendBudgets::default();
        let now = Instant::now();
        budgets.spend(&limit, &Arc::from("alice"), now).unwrap();
        assert_eq!(budgets.tracked(), 1);
        budgets
            .spend(&limit, &Arc::from("bob"), now + Duration::from_secs(2))
            .unwrap();
        assert_eq!(budgets.tracked(), 1);
    }
}
