//! The events a connection may ask for besides messages: membership changes
//! in its groups and typing notices. They ride the connection's queue with
//! its messages ([`Item`]), so they keep their place in the order the
//! connection receives things, and the slow-consumer rule counts them. A
//! connection that asked for none ([`EventKinds::NONE`]) is never sent one.
//! Events are never stored: not in history, not in a resume ring. Nothing
//! here knows gRPC.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::registry::{ChannelKind, Message, Name};

/// How long a sender's typing notice to one conversation holds back the
/// next.
pub const TYPING_THROTTLE: Duration = Duration::from_secs(2);

/// The event kinds a connection asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventKinds(u8);

impl EventKinds {
    /// No event beyond messages.
    pub const NONE: EventKinds = EventKinds(0);
    /// Membership changes in the connection's groups.
    pub const MEMBERSHIP: EventKinds = EventKinds(1);
    /// Typing notices.
    pub const TYPING: EventKinds = EventKinds(2);

    /// Both kinds together.
    pub fn with(self, other: EventKinds) -> EventKinds {
        EventKinds(self.0 | other.0)
    }

    /// Whether every kind in `kind` was asked for.
    pub fn wants(self, kind: EventKinds) -> bool {
        kind.0 != 0 && self.0 & kind.0 == kind.0
    }
}

/// What happened to a group's membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipKind {
    /// The user joined (or created the group).
    Joined,
    /// The user left.
    Left,
    /// The user's stream ended.
    Disconnected,
    /// An operator removed the user.
    Removed,
}

/// One event for a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A change in the membership of one of the connection's groups.
    Membership {
        /// The group.
        group: Name,
        /// Who joined, left, disconnected or was removed.
        user: Name,
        /// What happened.
        kind: MembershipKind,
        /// Members after the change.
        member_count: u32,
        /// The id of the group's newest message at the change (0: none).
        position: u64,
        /// When the change was made.
        at: SystemTime,
    },
    /// Someone is typing.
    Typing {
        /// The group, or for a direct conversation the typing user.
        conversation: Name,
        /// Whether `conversation` is a group or a user.
        conversation_kind: ChannelKind,
        /// Who is typing.
        user: Name,
    },
}

impl Event {
    /// The kind a connection must have asked for to get this event.
    pub fn kind(&self) -> EventKinds {
        match self {
            Event::Membership { .. } => EventKinds::MEMBERSHIP,
            Event::Typing { .. } => EventKinds::TYPING,
        }
    }

    /// What the event counts for against a queue's byte limit: its names
    /// plus a fixed allowance, as for a message.
    pub fn queued_bytes(&self) -> usize {
        match self {
            Event::Membership { group, user, .. } => group.len() + user.len() + 48,
            Event::Typing {
                conversation, user, ..
            } => conversation.len() + user.len() + 16,
        }
    }
}

/// One entry of a connection's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A message.
    Message(Arc<Message>),
    /// An event the connection asked for.
    Event(Arc<Event>),
}

impl Item {
    /// The message, if the entry is one.
    pub fn message(self) -> Option<Arc<Message>> {
        match self {
            Item::Message(message) => Some(message),
            Item::Event(_) => None,
        }
    }

    /// What the entry counts for against a queue's byte limit.
    pub fn queued_bytes(&self) -> usize {
        match self {
            Item::Message(message) => message.queued_bytes(),
            Item::Event(event) => event.queued_bytes(),
        }
    }
}

/// Whether a membership change in a group of `before` members that leaves
/// `after` sends events, under a threshold of `most` members (the N² case:
/// a change in a larger group sends none).
pub fn membership_events_allowed(before: usize, after: usize, most: usize) -> bool {
    before <= most && after <= most
}

/// The typing throttle: at most one notice per sender and conversation per
/// [`TYPING_THROTTLE`]. Entries older than that are forgotten as new ones
/// come, so it holds only the last two seconds' senders.
#[derive(Debug, Default)]
pub struct TypingThrottle {
    last: HashMap<(Name, Name), Instant>,
    /// When the map was last swept of old entries.
    swept: Option<Instant>,
}

impl TypingThrottle {
    /// Whether `sender`'s notice to `conversation` at `now` goes through
    /// (and if so, it holds back the next ones).
    pub fn allow(&mut self, sender: &Name, conversation: &Name, now: Instant) -> bool {
        if self
            .swept
            .is_none_or(|swept| now.duration_since(swept) >= TYPING_THROTTLE)
        {
            self.last
                .retain(|_, at| now.duration_since(*at) < TYPING_THROTTLE);
            self.swept = Some(now);
        }
        let key = (Arc::clone(sender), Arc::clone(conversation));
        match self.last.get(&key) {
            Some(at) if now.duration_since(*at) < TYPING_THROTTLE => false,
            _ => {
                self.last.insert(key, now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_asked_for_one_by_one() {
        let both = EventKinds::MEMBERSHIP.with(EventKinds::TYPING);
        assert!(both.wants(EventKinds::MEMBERSHIP) && both.wants(EventKinds::TYPING));
        assert!(!EventKinds::NONE.wants(EventKinds::MEMBERSHIP));
        assert!(!EventKinds::TYPING.wants(EventKinds::MEMBERSHIP));
        assert!(!both.wants(EventKinds::NONE));
    }

    #[test]
    fn the_threshold_counts_before_and_after() {
        assert!(membership_events_allowed(999, 1000, 1000));
        assert!(!membership_events_allowed(1000, 1001, 1000));
        assert!(!membership_events_allowed(1001, 1000, 1000));
    }

    #[test]
    fn typing_is_let_through_once_per_two_seconds_per_conversation() {
        let mut throttle = TypingThrottle::default();
        let (alice, bob, room): (Name, Name, Name) =
            (Arc::from("alice"), Arc::from("bob"), Arc::from("room"));
        let start = Instant::now();
        assert!(throttle.allow(&alice, &room, start));
        assert!(!throttle.allow(&alice, &room, start + Duration::from_millis(1999)));
        assert!(throttle.allow(&alice, &bob, start), "another conversation");
        assert!(throttle.allow(&bob, &room, start), "another sender");
        assert!(throttle.allow(&alice, &room, start + TYPING_THROTTLE));
        throttle.allow(&bob, &bob, start + Duration::from_secs(10));
        assert_eq!(throttle.last.len(), 1, "old entries are swept");
    }
}
