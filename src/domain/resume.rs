//! Session resume: what a connection keeps of the messages addressed to it
//! ([`Recent`], filled by its mailbox on every push, bounded by
//! [`ResumeLimits`]), the secret that resumes it ([`new_token`]), how a
//! resume is decided ([`Recent::replay_after`]), and where the embedded
//! engine parks a session's recent messages between its stream's end and
//! the next Connect of its username ([`Parked`]). The cluster engine parks
//! them in Redis instead, and decides with the same function. Nothing here
//! knows gRPC or Redis.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::registry::{Message, Name};

/// How long, and how much, a session's messages are kept for a resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumeLimits {
    /// How long after a stream ends it may be resumed (`--resume-window`;
    /// zero: resume off).
    pub window: Duration,
    /// Most messages kept per session (`--resume-size`).
    pub messages: usize,
    /// Most bytes of text kept per session (`--resume-bytes`).
    pub bytes: usize,
}

impl ResumeLimits {
    /// The defaults: 120 s, 300 messages, 256 KiB of text.
    pub const DEFAULT: ResumeLimits = ResumeLimits {
        window: Duration::from_secs(120),
        messages: 300,
        bytes: 256 * 1024,
    };

    /// Resume turned off.
    pub const OFF: ResumeLimits = ResumeLimits {
        window: Duration::ZERO,
        messages: 0,
        bytes: 0,
    };

    /// Whether sessions are kept for a resume at all.
    pub fn on(&self) -> bool {
        !self.window.is_zero() && self.messages > 0
    }
}

/// What a Connect asked to resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeRequest {
    /// The ended session's resume token.
    pub token: String,
    /// The last message id the client received on it (0: none).
    pub after_id: u64,
}

/// What became of a Connect's resume request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResumeStatus {
    /// No resume was asked.
    NotAsked,
    /// Every kept message after `after_id` follows, in order, first.
    Resumed,
    /// A message after `after_id` is no longer kept: nothing is replayed.
    Gap,
    /// Nothing to resume (unknown, used, expired or foreign token).
    Unknown,
}

impl ResumeStatus {
    /// The status's name, for logs and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            ResumeStatus::NotAsked => "unspecified",
            ResumeStatus::Resumed => "resumed",
            ResumeStatus::Gap => "gap",
            ResumeStatus::Unknown => "unknown",
        }
    }
}

/// The most recent messages addressed to one session, oldest first,
/// within [`ResumeLimits`]; older ones are dropped and remembered as a gap.
#[derive(Debug, Default, Clone)]
pub struct Recent {
    messages: VecDeque<Arc<Message>>,
    /// Bytes of text kept.
    bytes: usize,
    /// The id of the newest message dropped (0: none).
    dropped_through: u64,
}

impl Recent {
    /// Keeps `message`, dropping the oldest until within `limits`.
    pub fn push(&mut self, message: Arc<Message>, limits: &ResumeLimits) {
        self.bytes += message.text.len();
        self.messages.push_back(message);
        while self.messages.len() > limits.messages || self.bytes > limits.bytes {
            let Some(oldest) = self.messages.pop_front() else {
                break;
            };
            self.bytes -= oldest.text.len();
            self.dropped_through = self.dropped_through.max(oldest.id);
        }
    }

    /// A ring refilled with `messages` (oldest first) within `limits`,
    /// after a ring that had dropped up to `dropped_through`.
    pub fn refilled(
        messages: Vec<Arc<Message>>,
        dropped_through: u64,
        limits: &ResumeLimits,
    ) -> Recent {
        let mut recent = Recent {
            dropped_through,
            ..Recent::default()
        };
        for message in messages {
            recent.push(message, limits);
        }
        recent
    }

    /// The kept messages, oldest first.
    pub fn messages(&self) -> impl Iterator<Item = &Arc<Message>> {
        self.messages.iter()
    }

    /// The id of the newest dropped message (0: none).
    pub fn dropped_through(&self) -> u64 {
        self.dropped_through
    }

    /// The kept messages with an id above `start`, newest first: a group's
    /// log read for a member that joined at `start`.
    pub fn newer_than(&self, start: u64) -> impl Iterator<Item = &Arc<Message>> {
        self.messages
            .iter()
            .rev()
            .take_while(move |message| message.id > start)
    }

    /// The newest dropped id above `start` (0: none dropped above it).
    pub fn dropped_after(&self, start: u64) -> u64 {
        if self.dropped_through > start {
            self.dropped_through
        } else {
            0
        }
    }

    /// How many messages, and bytes of text, are kept.
    pub fn kept(&self) -> (usize, usize) {
        (self.messages.len(), self.bytes)
    }

    /// The messages a client that last received `after_id` missed, in
    /// order, or `Gap` when one of them was dropped.
    pub fn replay_after(self, after_id: u64) -> (ResumeStatus, Vec<Arc<Message>>) {
        if self.dropped_through > after_id {
            return (ResumeStatus::Gap, Vec::new());
        }
        let replay = self
            .messages
            .into_iter()
            .filter(|message| message.id > after_id)
            .collect();
        (ResumeStatus::Resumed, replay)
    }
}

/// Messages of groups a session has left, for its resume: what each
/// group's log held for it at the leave, and the newest id those logs had
/// already dropped. Bounded like a ring: past twice the limit, the oldest
/// beyond the limit are dropped (a resume would drop them anyway).
#[derive(Debug, Default)]
pub struct LeftBehind {
    messages: Vec<Arc<Message>>,
    dropped_through: u64,
}

impl LeftBehind {
    /// Keeps `messages` (any order) and notes `dropped` (0: none).
    pub fn keep(
        &mut self,
        messages: impl Iterator<Item = Arc<Message>>,
        dropped: u64,
        limits: &ResumeLimits,
    ) {
        self.messages.extend(messages);
        self.dropped_through = self.dropped_through.max(dropped);
        if self.messages.len() > limits.messages.saturating_mul(2).max(16) {
            self.messages.sort_unstable_by_key(|message| message.id);
            let excess = self.messages.len() - limits.messages;
            for old in self.messages.drain(..excess) {
                self.dropped_through = self.dropped_through.max(old.id);
            }
        }
    }
}

/// What a session leaves for a resume, gathered when it ends: `direct`
/// (its mailbox's ring), `left` (the groups it left), and `groups`, each
/// group it is still in as its log and the position the session joined it
/// at. Sorted by id within `limits`, as one ring fed every message would
/// hold: a group's log keeps as many of the group's messages as a ring
/// keeps of the session's.
pub fn gather<'a>(
    direct: Recent,
    left: LeftBehind,
    groups: impl Iterator<Item = (&'a Recent, u64)>,
    limits: &ResumeLimits,
) -> Recent {
    let mut dropped = direct.dropped_through.max(left.dropped_through);
    let mut messages: Vec<Arc<Message>> = direct.messages.into_iter().collect();
    messages.extend(left.messages);
    for (log, start) in groups {
        messages.extend(log.newer_than(start).cloned());
        dropped = dropped.max(log.dropped_after(start));
    }
    messages.sort_unstable_by_key(|message| message.id);
    messages.dedup_by_key(|message| message.id);
    Recent::refilled(messages, dropped, limits)
}

/// A fresh resume token: 128 bits from the operating system's generator,
/// as 32 hex digits; `None` when the generator fails (resume is then not
/// offered for that session).
pub fn new_token() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Whether two tokens are equal, in time that depends only on their
/// lengths.
pub fn tokens_match(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

/// A session whose stream ended, kept for a resume.
#[derive(Debug)]
struct ParkedSession {
    token: String,
    recent: Recent,
    until: Instant,
}

/// The embedded engine's ended sessions, by username, each until its
/// window runs out or the next successful Connect of its username.
#[derive(Debug, Default)]
pub struct Parked {
    by_name: HashMap<Name, ParkedSession>,
    /// Names in the order they were parked, which is the order their
    /// windows end (the window is one for all).
    expiry: VecDeque<(Instant, Name)>,
}

impl Parked {
    /// Keeps `recent` for a resume of `name` with `token` until `now +
    /// window`, replacing what an older session of `name` left. At most
    /// `most` sessions are kept: past it the oldest are dropped first.
    pub fn park(
        &mut self,
        name: Name,
        token: String,
        recent: Recent,
        now: Instant,
        window: Duration,
        most: usize,
    ) {
        self.expire(now);
        while self.by_name.len() >= most.max(1) && !self.by_name.contains_key(&name) {
            let Some((until, oldest)) = self.expiry.pop_front() else {
                break;
            };
            self.forget_if(&oldest, until);
        }
        let until = now + window;
        self.expiry.push_back((until, Arc::clone(&name)));
        self.by_name.insert(
            name,
            ParkedSession {
                token,
                recent,
                until,
            },
        );
    }

    /// Ends what `name` left: the first successful Connect of `name` calls
    /// this, with what it asked to resume.
    pub fn claim(
        &mut self,
        name: &str,
        resume: Option<&ResumeRequest>,
        now: Instant,
    ) -> (ResumeStatus, Vec<Arc<Message>>) {
        self.expire(now);
        let parked = self.by_name.remove(name);
        let Some(resume) = resume else {
            return (ResumeStatus::NotAsked, Vec::new());
        };
        match parked {
            Some(parked) if tokens_match(&parked.token, &resume.token) => {
                parked.recent.replay_after(resume.after_id)
            }
            _ => (ResumeStatus::Unknown, Vec::new()),
        }
    }

    /// Drops what `name` left, if anything (an operator's disconnect or
    /// ban: it cannot be resumed).
    pub fn discard(&mut self, name: &str) {
        self.by_name.remove(name);
    }

    /// How many sessions are parked.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether no session is parked.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Drops the sessions whose window has ended.
    pub fn expire(&mut self, now: Instant) {
        while let Some((until, _)) = self.expiry.front() {
            if *until > now {
                break;
            }
            let Some((until, name)) = self.expiry.pop_front() else {
                break;
            };
            self.forget_if(&name, until);
        }
    }

    /// Drops what `name` left if it was parked to last `until` (the name
    /// may have been parked again since, with a later end).
    fn forget_if(&mut self, name: &Name, until: Instant) {
        if self.by_name.get(name).is_some_and(|p| p.until == until) {
            self.by_name.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::domain::ChannelKind;

    fn message(id: u64, text: &str) -> Arc<Message> {
        Arc::new(Message::new(
            id,
            Arc::from("alice"),
            Arc::from("bob"),
            ChannelKind::User,
            Arc::from(text),
            SystemTime::now(),
        ))
    }

    #[test]
    fn gathered_sources_make_the_ring_one_feed_would() {
        let limits = ResumeLimits {
            window: Duration::from_secs(60),
            messages: 4,
            bytes: 1000,
        };
        let mut direct = Recent::default();
        direct.push(message(2, "d2"), &limits);
        direct.push(message(6, "d6"), &limits);
        let mut log = Recent::default();
        for id in [1, 3, 5, 7] {
            log.push(message(id, "g"), &limits);
        }
        let mut left = LeftBehind::default();
        left.keep([message(4, "l4")].into_iter(), 0, &limits);
        // Joined the group at 3: 5 and 7 are the session's, 1 and 3 not.
        let recent = gather(direct, left, [(&log, 3)].into_iter(), &limits);
        let ids: Vec<u64> = recent.messages().map(|m| m.id).collect();
        assert_eq!(ids, [4, 5, 6, 7]);
        // 2 did not fit: dropped.
        assert_eq!(recent.dropped_through(), 2);
    }

    #[test]
    fn a_groups_drops_after_the_join_are_the_sessions() {
        let limits = ResumeLimits {
            window: Duration::from_secs(60),
            messages: 2,
            bytes: 1000,
        };
        let mut log = Recent::default();
        for id in [10, 11, 12] {
            log.push(message(id, "g"), &limits);
        }
        assert_eq!(log.dropped_after(5), 10);
        assert_eq!(log.dropped_after(10), 0);
        let recent = gather(
            Recent::default(),
            LeftBehind::default(),
            [(&log, 5)].into_iter(),
            &limits,
        );
        assert_eq!(recent.dropped_through(), 10);
    }

    const SMALL: ResumeLimits = ResumeLimits {
        window: Duration::from_secs(60),
        messages: 3,
        bytes: 1000,
    };

    fn ring(ids: impl IntoIterator<Item = u64>) -> Recent {
        let mut recent = Recent::default();
        for id in ids {
            recent.push(message(id, "hello"), &SMALL);
        }
        recent
    }

    fn replayed(recent: Recent, after: u64) -> (ResumeStatus, Vec<u64>) {
        let (status, messages) = recent.replay_after(after);
        (status, messages.iter().map(|m| m.id).collect())
    }

    #[test]
    fn a_resume_replays_what_came_after_the_last_id_received() {
        assert_eq!(
            replayed(ring([4, 5, 6]), 4),
            (ResumeStatus::Resumed, vec![5, 6])
        );
        assert_eq!(
            replayed(ring([4, 5, 6]), 6),
            (ResumeStatus::Resumed, vec![])
        );
        assert_eq!(
            replayed(ring([4, 5, 6]), 0),
            (ResumeStatus::Resumed, vec![4, 5, 6])
        );
    }

    #[test]
    fn a_dropped_message_after_the_last_id_is_a_gap() {
        let recent = ring([1, 2, 3, 4, 5]);
        assert_eq!(recent.dropped_through(), 2);
        assert_eq!(replayed(recent.clone(), 1), (ResumeStatus::Gap, vec![]));
        assert_eq!(replayed(recent, 2), (ResumeStatus::Resumed, vec![3, 4, 5]));
    }

    #[test]
    fn bytes_bound_the_ring() {
        let limits = ResumeLimits { bytes: 10, ..SMALL };
        let mut recent = Recent::default();
        for id in 1..=3 {
            recent.push(message(id, "abcdef"), &limits);
        }
        assert_eq!(recent.kept(), (1, 6));
        assert_eq!(recent.dropped_through(), 2);
    }

    #[test]
    fn tokens_are_128_bits_of_hex_and_differ() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(tokens_match(&a, &a.clone()));
        assert!(!tokens_match(&a, &b));
        assert!(!tokens_match(&a, &a[..31]));
    }

    #[test]
    fn a_parked_session_is_claimed_once_by_the_first_connect() {
        let now = Instant::now();
        let mut parked = Parked::default();
        let name: Name = Arc::from("bob");
        parked.park(
            Arc::clone(&name),
            "t1".into(),
            ring([1, 2]),
            now,
            SMALL.window,
            10,
        );
        assert_eq!(parked.len(), 1);
        let ask = ResumeRequest {
            token: "t1".into(),
            after_id: 1,
        };
        let (status, replay) = parked.claim("bob", Some(&ask), now);
        assert_eq!(status, ResumeStatus::Resumed);
        assert_eq!(replay.len(), 1);
        assert_eq!(
            parked.claim("bob", Some(&ask), now).0,
            ResumeStatus::Unknown
        );
        assert!(parked.is_empty());
    }

    #[test]
    fn a_wrong_token_or_a_plain_connect_discards_the_session() {
        let now = Instant::now();
        let mut parked = Parked::default();
        parked.park(
            Arc::from("bob"),
            "t1".into(),
            ring([1]),
            now,
            SMALL.window,
            10,
        );
        let wrong = ResumeRequest {
            token: "t2".into(),
            after_id: 0,
        };
        assert_eq!(
            parked.claim("bob", Some(&wrong), now).0,
            ResumeStatus::Unknown
        );
        assert!(parked.is_empty());
        parked.park(
            Arc::from("bob"),
            "t1".into(),
            ring([1]),
            now,
            SMALL.window,
            10,
        );
        assert_eq!(parked.claim("bob", None, now).0, ResumeStatus::NotAsked);
        assert!(parked.is_empty());
    }

    #[test]
    fn a_session_expires_with_its_window_even_if_parked_again_later() {
        let now = Instant::now();
        let mut parked = Parked::default();
        let window = Duration::from_secs(10);
        parked.park(Arc::from("bob"), "t1".into(), ring([1]), now, window, 10);
        parked.park(
            Arc::from("bob"),
            "t2".into(),
            ring([2]),
            now + Duration::from_secs(5),
            window,
            10,
        );
        parked.expire(now + Duration::from_secs(11));
        assert_eq!(parked.len(), 1, "the second parking still runs");
        let ask = ResumeRequest {
            token: "t2".into(),
            after_id: 0,
        };
        assert_eq!(
            parked
                .claim("bob", Some(&ask), now + Duration::from_secs(16))
                .0,
            ResumeStatus::Unknown
        );
    }
}
