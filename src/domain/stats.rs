//! What the registry can say about itself at any moment: plain counts for
//! monitoring, read in one short critical section. It knows nothing of how
//! they are exported.

/// The upper bounds, in seconds, of the buckets a cluster node counts its
/// round trips to the shared store in (a last bucket takes the rest).
pub const ROUND_TRIP_BOUNDS: [f64; 10] = [
    50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 50e-3, 250e-3,
];

/// What a cluster node counts of its work with the shared store.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StoreStats {
    /// Round trips (one pipeline of calls each) by [`ROUND_TRIP_BOUNDS`]
    /// bucket, the last one for longer ones.
    pub round_trips: [u64; ROUND_TRIP_BOUNDS.len() + 1],
    /// Their total time, in seconds.
    pub round_trip_seconds: f64,
    /// Calls that failed because the store could not be reached or did not
    /// answer in time.
    pub errors: u64,
    /// Lease renewals that succeeded, and those that failed.
    pub lease_renewals: u64,
    /// See `lease_renewals`.
    pub lease_failures: u64,
    /// How old the last message the inbox reader applied was when it was
    /// applied, in seconds: how far behind the node's deliveries run.
    pub inbox_lag_seconds: f64,
}

/// A snapshot of the chat's state, taken by [`super::Registry::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ChatStats {
    /// Users connected now.
    pub connected_users: usize,
    /// Groups that exist now.
    pub groups: usize,
    /// Group memberships now, summed over every group.
    pub memberships: usize,
    /// Messages queued for connected users and not yet taken by their
    /// streams, summed over every mailbox.
    pub queued_messages: usize,
    /// What those messages count for against the queues' byte limits
    /// ([`super::Message::queued_bytes`]).
    pub queued_bytes: usize,
    /// Direct messages accepted since the server started (only ever grows).
    pub direct_messages: u64,
    /// Group messages accepted since the server started (only ever grows).
    pub group_messages: u64,
    /// Messages kept in every group's history now.
    pub history_messages: usize,
    /// Bytes of text of those messages.
    pub history_bytes: usize,
    /// A cluster node's work with the shared store; `None` on the embedded
    /// node.
    pub store: Option<StoreStats>,
}

#[cfg(test)]
mod tests {
    use super::ChatStats;
    use crate::domain::{Limits, Registry};

    #[test]
    fn stats_count_users_groups_memberships_queues_and_sends() {
        let registry = Registry::new(Limits {
            max_connections: 10,
            queue_depth: 8,
            queue_bytes: 1 << 20,
            max_text_bytes: 64,
            max_groups_per_user: 10,
            history: crate::domain::HistoryLimits::DEFAULT,
            resume: crate::domain::ResumeLimits::DEFAULT,
            membership_events_max_members: 1000,
            send_limit: crate::domain::SendLimit::OFF,
        });
        let (_alice, alice_inbox) = registry.connect("alice").unwrap();
        let (bob, _bob_inbox) = registry.connect("bob").unwrap();
        registry.create_group("alice", "room").unwrap();
        registry.join_group("bob", "room").unwrap();
        registry.create_group("bob", "den").unwrap();
        registry.send("alice", "bob", "hi".to_owned()).unwrap();
        registry.send("alice", "room", "all".to_owned()).unwrap();
        assert!(registry.send("alice", "nobody", "x".to_owned()).is_err());
        // bob holds two messages, alice one; "hi" counts 2 + 5 + 3 + 32.
        let bytes = (2 + 5 + 3 + 32) + 2 * (3 + 5 + 4 + 32);
        assert_eq!(
            registry.stats(),
            ChatStats {
                connected_users: 2,
                groups: 2,
                memberships: 3,
                queued_messages: 3,
                queued_bytes: bytes,
                direct_messages: 1,
                group_messages: 1,
                history_messages: 1,
                history_bytes: 3,
                store: None,
            }
        );
        // Reading takes a message out of the queue counts.
        assert!(alice_inbox.try_take().is_some());
        assert_eq!(registry.stats().queued_messages, 2);
        // Leaving takes the user, its memberships and its queue with it.
        drop(bob);
        let stats = registry.stats();
        assert_eq!(
            (stats.connected_users, stats.groups, stats.memberships),
            (1, 1, 1)
        );
        assert_eq!((stats.queued_messages, stats.queued_bytes), (0, 0));
        assert_eq!((stats.direct_messages, stats.group_messages), (1, 1));
    }
}
