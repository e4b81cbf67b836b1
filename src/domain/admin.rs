//! What an operator does to the chat, as the domain sees it: the name an
//! operator's message is sent under, the bans that refuse a username on
//! Connect for a while, and the page of connected users an operator lists.
//! Both engines take their checks and pages from here; the operations
//! themselves are [`ChatEngine`](super::ChatEngine) methods. Nothing here
//! knows gRPC or Redis.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use super::error::ChatError;
use super::members::MemberQuery;
use super::registry::Name;

/// The sender of an operator's message when the request names none.
pub const DEFAULT_OPERATOR_SENDER: &str = "server";

/// Longest operator sender name, in characters (all ASCII).
pub const MAX_OPERATOR_SENDER_LEN: usize = 64;

/// The name an operator's message is sent under: `sender`, or
/// [`DEFAULT_OPERATOR_SENDER`] when empty.
///
/// # Errors
/// `InvalidSender` unless it is 1-64 printable ASCII characters without a
/// leading or trailing space.
pub fn operator_sender(sender: &str) -> Result<&str, ChatError> {
    if sender.is_empty() {
        return Ok(DEFAULT_OPERATOR_SENDER);
    }
    if sender.len() > MAX_OPERATOR_SENDER_LEN {
        return Err(ChatError::InvalidSender("longer than 64 characters"));
    }
    if !sender.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(ChatError::InvalidSender(
            "not printable ASCII (space to tilde)",
        ));
    }
    if sender.starts_with(' ') || sender.ends_with(' ') {
        return Err(ChatError::InvalidSender("leading or trailing space"));
    }
    Ok(sender)
}

/// The ban a request's `ban_secs` asks for: none at 0, else that many
/// seconds as given (a `uint32`: 136 years at most).
pub fn ban_length(ban_secs: u32) -> Option<Duration> {
    (ban_secs > 0).then(|| Duration::from_secs(u64::from(ban_secs)))
}

/// The message a banned username's Connect is refused with, in whole
/// seconds rounded up (a ban with 0.2 s left still says 1).
pub fn banned_for(remaining: Duration) -> ChatError {
    let secs = remaining.as_millis().div_ceil(1000);
    ChatError::Banned(u64::try_from(secs).unwrap_or(u64::MAX).max(1))
}

/// Usernames refused on Connect until a moment, by an operator.
#[derive(Debug, Default)]
pub struct Bans {
    until: HashMap<Name, Instant>,
}

impl Bans {
    /// Bans `name` until `now + length` (a longer ban already in force
    /// stays), and forgets bans that have run out.
    pub fn ban(&mut self, name: Name, length: Duration, now: Instant) {
        self.until.retain(|_, until| *until > now);
        // A length the clock cannot add (not one of a uint32 of seconds on
        // any real clock) becomes a year rather than a panic.
        let until = now
            .checked_add(length)
            .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
            .unwrap_or(now);
        let entry = self.until.entry(name).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// Refuses `name` while a ban on it is in force.
    ///
    /// # Errors
    /// `Banned` with the seconds left.
    pub fn check(&self, name: &str, now: Instant) -> Result<(), ChatError> {
        match self.until.get(name) {
            Some(until) if *until > now => Err(banned_for(*until - now)),
            _ => Ok(()),
        }
    }
}

/// A connected user, as an operator lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The username.
    pub name: Name,
    /// The node holding its stream (empty on a single node).
    pub node: String,
    /// When its stream opened.
    pub connected_at: SystemTime,
    /// How many groups it is in.
    pub group_count: u32,
    /// The client's address as the server saw it.
    pub peer: String,
}

/// One page of connected users, sorted by name. The query and its page
/// token are those of a member list ([`MemberQuery`]): the token is the
/// last name of the previous page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPage {
    /// Sorted by name.
    pub users: Vec<UserInfo>,
    /// The token of the next page; empty on the last.
    pub next_page_token: String,
    /// How many users are connected.
    pub user_count: u32,
}

impl UserPage {
    /// The page from `found`: the first users after `query.after`, sorted,
    /// at most `query.limit + 1` of them (one more than the page tells
    /// whether another follows), out of `user_count` connected.
    pub fn assemble(query: &MemberQuery, mut found: Vec<UserInfo>, user_count: usize) -> UserPage {
        found.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let (users, next_page_token) = query.cut(found, |user| &user.name);
        UserPage {
            users,
            next_page_token,
            user_count: u32::try_from(user_count).unwrap_or(u32::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn operator_senders_are_checked() {
        assert_eq!(operator_sender(""), Ok("server"));
        assert_eq!(operator_sender("Ops team"), Ok("Ops team"));
        assert_eq!(
            operator_sender(&"x".repeat(64)),
            Ok("x".repeat(64).as_str())
        );
        assert!(operator_sender(&"x".repeat(65)).is_err());
        assert!(operator_sender(" ops").is_err());
        assert!(operator_sender("ops ").is_err());
        assert!(operator_sender("tab\there").is_err());
        assert!(operator_sender("café").is_err());
    }

    #[test]
    fn a_ban_holds_until_it_runs_out() {
        let mut bans = Bans::default();
        let now = Instant::now();
        bans.ban(Arc::from("mallory"), Duration::from_secs(10), now);
        assert_eq!(bans.check("mallory", now), Err(ChatError::Banned(10)));
        assert_eq!(
            bans.check("mallory", now + Duration::from_millis(9_200)),
            Err(ChatError::Banned(1))
        );
        assert_eq!(bans.check("mallory", now + Duration::from_secs(10)), Ok(()));
        assert_eq!(bans.check("alice", now), Ok(()));
        // A shorter ban does not cut a longer one short.
        bans.ban(Arc::from("mallory"), Duration::from_secs(1), now);
        assert_eq!(bans.check("mallory", now), Err(ChatError::Banned(10)));
    }

    #[test]
    fn user_pages_follow_each_other_by_name() {
        let user = |name: &str| UserInfo {
            name: Arc::from(name),
            node: String::new(),
            connected_at: SystemTime::UNIX_EPOCH,
            group_count: 0,
            peer: String::new(),
        };
        let all: Vec<Name> = ["dave", "alice", "carol", "bob"]
            .iter()
            .map(|n| Arc::from(*n))
            .collect();
        let query = MemberQuery::new(2, "").unwrap();
        let names = query.names_wanted(all.iter());
        let page = UserPage::assemble(&query, names.iter().map(|n| user(n)).collect(), 4);
        let listed: Vec<&str> = page.users.iter().map(|u| &*u.name).collect();
        assert_eq!(listed, ["alice", "bob"]);
        assert_eq!(page.next_page_token, "bob");
        assert_eq!(page.user_count, 4);
        let query = MemberQuery::new(2, "bob").unwrap();
        let names = query.names_wanted(all.iter());
        let page = UserPage::assemble(&query, names.iter().map(|n| user(n)).collect(), 4);
        let listed: Vec<&str> = page.users.iter().map(|u| &*u.name).collect();
        assert_eq!(listed, ["carol", "dave"]);
        assert!(page.next_page_token.is_empty());
    }
}
