//! Who is here, as the chat shows it: the lines a membership change adds
//! to a group's conversation ("bob joined #general (3 members)"), who is
//! typing where (each shown for [`TYPING_SHOWN`] after their last notice,
//! or until their message arrives), and the throttle on this client's own
//! typing notices ([`TYPING_EVERY`]). Plain state with the time passed in,
//! so the tests below set the clock; no terminal, no network, no protocol
//! types (`session` converts those).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long "bob is typing..." stays without a newer notice from bob. The
/// server forwards at most one notice per sender and conversation every
/// two seconds, so a person who keeps typing keeps it shown.
pub const TYPING_SHOWN: Duration = Duration::from_secs(5);
/// The least time between two of this client's typing notices to one
/// conversation: the server drops the ones in between anyway.
pub const TYPING_EVERY: Duration = Duration::from_secs(2);

/// What happened to a group's membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The user joined the group (or created it).
    Joined,
    /// The user left it.
    Left,
    /// The user's stream ended (the server dropped its memberships).
    Disconnected,
    /// An operator removed the user.
    Removed,
}

/// A membership change in one of this user's groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub group: String,
    /// Who joined, left, disconnected or was removed.
    pub user: String,
    pub change: Change,
    /// Members after the change.
    pub members: u32,
}

impl Membership {
    /// The line the group's conversation shows, e.g. `bob joined #general
    /// (3 members)`, `bob left #general (2 members)`.
    pub fn line(&self) -> String {
        let Membership {
            group,
            user,
            change,
            members,
        } = self;
        let what = match change {
            Change::Joined => "joined",
            Change::Left => "left",
            Change::Disconnected => "disconnected from",
            Change::Removed => "was removed from",
        };
        format!("{user} {what} #{group} ({})", count_members(*members))
    }
}

/// `1 member`, `3 members`.
pub fn count_members(members: u32) -> String {
    let noun = if members == 1 { "member" } else { "members" };
    format!("{members} {noun}")
}

/// Someone typing to this user or in one of its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typing {
    /// The conversation: the group, or for a direct conversation the
    /// typing user (users and groups share one namespace).
    pub conversation: String,
    /// Who is typing.
    pub user: String,
}

/// Who is typing in which conversation, until when.
#[derive(Debug, Default)]
pub struct Typists {
    /// (conversation, user, shown until), oldest notice first.
    shown: Vec<(String, String, Instant)>,
}

impl Typists {
    /// `user` is typing in `conversation` (again): shown for
    /// [`TYPING_SHOWN`] from `now`.
    pub fn started(&mut self, conversation: &str, user: &str, now: Instant) {
        self.stopped(conversation, user);
        self.shown
            .push((conversation.to_owned(), user.to_owned(), now + TYPING_SHOWN));
    }

    /// `user`'s message in `conversation` arrived, or the user left it.
    pub fn stopped(&mut self, conversation: &str, user: &str) {
        self.shown
            .retain(|(c, u, _)| c != conversation || u != user);
    }

    /// Forgets everyone (the stream ended: no notice would clear them).
    pub fn clear(&mut self) {
        self.shown.clear();
    }

    /// Drops the notices shown long enough by `now`.
    pub fn expire(&mut self, now: Instant) {
        self.shown.retain(|(_, _, until)| *until > now);
    }

    /// When the next notice is to go, if any is shown.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.shown.iter().map(|(_, _, until)| *until).min()
    }

    /// The status line's words for `conversation`: `bob is typing...`,
    /// `bob and carol are typing...`, `3 people are typing...`.
    pub fn status(&self, conversation: &str) -> Option<String> {
        let users: Vec<&str> = self
            .shown
            .iter()
            .filter(|(c, _, _)| c == conversation)
            .map(|(_, user, _)| user.as_str())
            .collect();
        match users.as_slice() {
            [] => None,
            [one] => Some(format!("{one} is typing...")),
            [one, two] => Some(format!("{one} and {two} are typing...")),
            many => Some(format!("{} people are typing...", many.len())),
        }
    }
}

/// Lets this client's typing notice to a conversation go at most once per
/// [`TYPING_EVERY`].
#[derive(Debug, Default)]
pub struct TypingThrottle {
    /// When the last notice to each conversation went.
    last: HashMap<String, Instant>,
}

impl TypingThrottle {
    /// Whether a notice to `conversation` may go at `now`; if so, it counts
    /// as sent.
    pub fn allow(&mut self, conversation: &str, now: Instant) -> bool {
        match self.last.get_mut(conversation) {
            Some(last) if now.saturating_duration_since(*last) < TYPING_EVERY => false,
            Some(last) => {
                *last = now;
                true
            }
            None => {
                self.last.insert(conversation.to_owned(), now);
                true
            }
        }
    }
}

/// Whether the input line is text for the conversation (what a typing
/// notice is for), not a command: not blank, and not starting with one
/// `/` (`//` sends a text that starts with `/`).
pub fn is_text(line: &str) -> bool {
    !line.trim().is_empty() && (!line.starts_with('/') || line.starts_with("//"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(user: &str, change: Change, members: u32) -> Membership {
        Membership {
            group: "general".into(),
            user: user.into(),
            change,
            members,
        }
    }

    #[test]
    fn membership_lines_name_the_user_the_group_and_the_count() {
        assert_eq!(
            change("bob", Change::Joined, 3).line(),
            "bob joined #general (3 members)"
        );
        assert_eq!(
            change("bob", Change::Left, 1).line(),
            "bob left #general (1 member)"
        );
        assert_eq!(
            change("bob", Change::Disconnected, 2).line(),
            "bob disconnected from #general (2 members)"
        );
        assert_eq!(
            change("bob", Change::Removed, 0).line(),
            "bob was removed from #general (0 members)"
        );
    }

    #[test]
    fn a_typing_notice_shows_for_five_seconds_from_the_last_one() {
        let start = Instant::now();
        let mut typists = Typists::default();
        assert_eq!(typists.next_expiry(), None);
        typists.started("general", "bob", start);
        assert_eq!(
            typists.status("general").as_deref(),
            Some("bob is typing...")
        );
        assert_eq!(typists.status("bob"), None);
        assert_eq!(typists.next_expiry(), Some(start + TYPING_SHOWN));
        // A newer notice keeps it for five seconds from then.
        typists.started("general", "bob", start + Duration::from_secs(3));
        typists.expire(start + TYPING_SHOWN);
        assert!(typists.status("general").is_some());
        typists.expire(start + Duration::from_secs(8));
        assert_eq!(typists.status("general"), None);
        assert_eq!(typists.next_expiry(), None);
    }

    #[test]
    fn a_message_or_a_leave_clears_that_user_only() {
        let now = Instant::now();
        let mut typists = Typists::default();
        typists.started("general", "bob", now);
        typists.started("general", "carol", now);
        typists.started("bob", "bob", now);
        assert_eq!(
            typists.status("general").as_deref(),
            Some("bob and carol are typing...")
        );
        typists.stopped("general", "bob");
        assert_eq!(
            typists.status("general").as_deref(),
            Some("carol is typing...")
        );
        assert_eq!(typists.status("bob").as_deref(), Some("bob is typing..."));
        typists.started("general", "dave", now);
        typists.started("general", "erin", now);
        assert_eq!(
            typists.status("general").as_deref(),
            Some("3 people are typing...")
        );
        typists.clear();
        assert_eq!(typists.status("general"), None);
    }

    #[test]
    fn own_typing_notices_go_at_most_once_per_conversation_per_two_seconds() {
        let start = Instant::now();
        let at = |millis| start + Duration::from_millis(millis);
        let mut throttle = TypingThrottle::default();
        assert!(throttle.allow("general", at(0)));
        assert!(!throttle.allow("general", at(1)));
        assert!(!throttle.allow("general", at(1999)));
        // Another conversation has its own.
        assert!(throttle.allow("bob", at(500)));
        assert!(throttle.allow("general", at(2000)));
        assert!(!throttle.allow("general", at(3999)));
        assert!(throttle.allow("general", at(4000)));
        assert!(!throttle.allow("bob", at(2499)));
        assert!(throttle.allow("bob", at(2500)));
    }

    #[test]
    fn only_text_for_the_conversation_counts_as_typing() {
        assert!(is_text("h"));
        assert!(is_text("//slash"));
        assert!(!is_text("/"));
        assert!(!is_text("/members"));
        assert!(!is_text("   "));
        assert!(!is_text(""));
    }
}
