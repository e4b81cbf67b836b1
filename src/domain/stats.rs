//! What the registry can say about itself at any moment: plain counts for
//! monitoring, read in one short critical section. It knows nothing of how
//! they are exported.

/// A snapshot of the chat's state, taken by [`super::Registry::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
