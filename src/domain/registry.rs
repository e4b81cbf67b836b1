//! The chat's shared state: who is connected, which groups exist and who is
//! in them, and the delivery of messages into connected users' mailboxes.
//! Everything lives in one `State` behind one mutex; every operation is a
//! short synchronous critical section that validates, changes state and
//! queues messages, then wakes readers after the lock is released. It knows
//! nothing of gRPC: callers get plain values and [`ChatError`]s.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use super::admin::{Bans, UserPage};
use super::engine::{ChatEngine, Connected, Disconnect, Reply, Session};
use super::error::{ChatError, TextProblem};
use super::events::{membership_events_allowed, Event, EventKinds, MembershipKind, TypingThrottle};
use super::history::{History, HistoryLimits, HistoryPage, HistoryQuery};
use super::mailbox::{keeping_mailbox, CloseReason, Inbox, Keep, Outbox};
use super::members::{MemberPage, MemberQuery};
use super::names::check_name;
use super::resume::{
    gather, new_token, LeftBehind, Parked, Recent, ResumeLimits, ResumeRequest, ResumeStatus,
};
use super::send_limit::{SendBudgets, SendLimit};
use super::stats::ChatStats;
use super::wake_ticker::WakeTicker;

/// A user or group name. Shared, so a message and the maps can hold the same
/// allocation.
pub type Name = Arc<str>;

/// Readers with new messages, woken when this is dropped: lets the caller
/// choose the moment, after the registry's lock is released.
#[derive(Debug, Default)]
#[must_use = "dropping it wakes the readers at once"]
pub struct Wakeups(Vec<Outbox>);

impl Drop for Wakeups {
    fn drop(&mut self) {
        for outbox in self.0.drain(..) {
            outbox.wake();
        }
    }
}

/// Identifies one Connect stream, so a stream that ends late cannot remove a
/// newer connection that took the same name.
pub type SessionId = u64;

/// Whether a name is a user or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// A connected user.
    User,
    /// A group channel.
    Group,
}

/// A message as queued for its recipients; one allocation shared by all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Unique since the server started, increasing in send order.
    pub id: u64,
    /// The sending user.
    pub sender: Name,
    /// The user or group it was sent to.
    pub recipient: Name,
    /// Whether `recipient` is a user or a group.
    pub recipient_kind: ChannelKind,
    /// The text as sent: one allocation, shared by every mailbox, history
    /// and resume ring that holds the message.
    pub text: Arc<str>,
    /// When the registry accepted it, in whole microseconds.
    pub sent_at: SystemTime,
    /// Whether an operator sent it (`sender` is then the operator's chosen
    /// name, which may equal a username).
    pub from_operator: bool,
    /// The transport's encoded form of this message, filled by the first
    /// connection that writes it and reused by every other recipient, so a
    /// group message is encoded once. The domain never reads it.
    pub encoded: OnceLock<Box<[u8]>>,
}

impl Message {
    /// A message not yet encoded by any connection.
    pub fn new(
        id: u64,
        sender: Name,
        recipient: Name,
        recipient_kind: ChannelKind,
        text: Arc<str>,
        sent_at: SystemTime,
    ) -> Message {
        Message {
            id,
            sender,
            recipient,
            recipient_kind,
            text,
            sent_at,
            from_operator: false,
            encoded: OnceLock::new(),
        }
    }

    /// The same message, sent by an operator.
    pub fn by_operator(mut self, from_operator: bool) -> Message {
        self.from_operator = from_operator;
        self
    }

    /// What the message counts for against a queue's byte limit: its
    /// strings plus a fixed allowance for ids, timestamp and framing.
    pub fn queued_bytes(&self) -> usize {
        self.text.len() + self.sender.len() + self.recipient.len() + 32
    }
}

/// The limits the registry enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most users connected at once.
    pub max_connections: usize,
    /// Most undelivered messages per connection before it is dropped as a
    /// slow consumer.
    pub queue_depth: usize,
    /// Most bytes of undelivered messages per connection (as counted by
    /// [`Message::queued_bytes`]) before it is dropped as a slow consumer.
    pub queue_bytes: usize,
    /// Longest message text, in bytes of UTF-8.
    pub max_text_bytes: usize,
    /// Most groups one user may be in.
    pub max_groups_per_user: usize,
    /// How much history each group keeps.
    pub history: HistoryLimits,
    /// How long, and how much, an ended session is kept for a resume.
    pub resume: ResumeLimits,
    /// Most members a group may have, before or after a membership change,
    /// for the change to send membership events.
    pub membership_events_max_members: usize,
    /// How fast one user may send (`SendLimit::OFF`: no limit).
    pub send_limit: SendLimit,
}

impl Limits {
    /// Queues a resume's `replay` in a new connection's empty `outbox` when
    /// `status` is `Resumed`, and answers the status the client is told:
    /// `Gap` instead when the replay would not fit in the queue (it always
    /// does when the resume flags are within the queue's, which the
    /// configuration checks).
    pub fn queue_replay(
        &self,
        outbox: &Outbox,
        status: ResumeStatus,
        replay: Vec<Arc<Message>>,
    ) -> ResumeStatus {
        if status != ResumeStatus::Resumed {
            return status;
        }
        let bytes: usize = replay.iter().map(|m| m.queued_bytes()).sum();
        if replay.len() > self.queue_depth || bytes > self.queue_bytes {
            return ResumeStatus::Gap;
        }
        for message in replay {
            // Fits: checked just above, on an empty mailbox.
            let _ = outbox.push(message);
        }
        ResumeStatus::Resumed
    }
}

/// A user or group as seen by the caller of [`Registry::list_channels`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The user's or group's name.
    pub name: Name,
    /// User or group.
    pub kind: ChannelKind,
    /// For a group its number of members, 0 for a user.
    pub member_count: u32,
    /// For a group whether the caller is in it, false for a user.
    pub joined: bool,
}

/// What a successful send did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The message's id.
    pub id: u64,
    /// The message's timestamp.
    pub sent_at: SystemTime,
    /// How many mailboxes it was queued in.
    pub recipients: usize,
    /// Group members whose queue was full: they have been disconnected.
    pub evicted: Vec<Name>,
}

/// What a user's disconnection changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Departure {
    /// How many groups the user was in.
    pub groups_left: usize,
    /// The groups deleted because the user was their last member.
    pub groups_deleted: Vec<Name>,
}

/// The result of leaving a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// The group still has members.
    GroupKept,
    /// The caller was the last member; the group is gone.
    GroupDeleted,
}

/// A connected user's entry.
#[derive(Debug)]
struct Connection {
    /// Which Connect stream owns the name.
    session: SessionId,
    /// Where messages for this user go.
    outbox: Outbox,
    /// The groups this user is in, to leave them on disconnect, each with
    /// the position it joined at (the group's newest message id then): the
    /// group's later messages are addressed to it.
    groups: HashMap<Name, u64>,
    /// What the groups it left held for it, for a resume.
    left: LeftBehind,
    /// The secret that resumes this session once it ends.
    resume_token: String,
    /// When the stream opened.
    connected_at: SystemTime,
    /// The client's address as the transport saw it.
    peer: String,
}

/// A group's entry.
#[derive(Debug, Default)]
struct Group {
    /// The members and their outboxes: a group send walks this map alone,
    /// without a lookup per member.
    members: HashMap<Name, Outbox>,
    /// Its most recent messages; gone with the group.
    history: History,
    /// With resume on, its most recent messages within the resume limits,
    /// from which a member's session takes the group's messages addressed
    /// to it when it ends (so no delivery touches a per-member ring).
    recent: Recent,
}

/// Everything behind the registry's lock.
#[derive(Debug, Default)]
struct State {
    /// Connected users by name.
    users: HashMap<Name, Connection>,
    /// Groups by name; a group always has at least one member.
    groups: HashMap<Name, Group>,
    /// The id the next message gets.
    next_message_id: u64,
    /// Messages accepted so far, direct and to groups, for [`ChatStats`].
    sent: (u64, u64),
    /// Messages and bytes of text kept in every group's history.
    history_kept: (usize, usize),
    /// Ended sessions kept for a resume.
    parked: Parked,
    /// Typing notices let through in the last two seconds.
    typing: TypingThrottle,
    /// Usernames an operator banned, until when.
    bans: Bans,
    /// Each user's send budget (`Limits::send_limit`).
    budgets: SendBudgets,
    /// Set by [`Registry::shutdown`]: no new work is accepted.
    closing: bool,
}

/// The registry of users and groups. Shared behind an `Arc` by the service
/// and by every [`Session`].
#[derive(Debug)]
pub struct Registry {
    limits: Limits,
    /// Given to every mailbox: defers readers' wake-ups (`--write-delay`).
    ticker: Option<WakeTicker>,
    state: Mutex<State>,
    /// Source of [`SessionId`]s; outside the lock because ids need no order.
    next_session: AtomicU64,
    /// This registry, for the sessions it hands out.
    me: Weak<Registry>,
    /// Random, new with every registry: its ids, positions and resume
    /// tokens mean nothing to another.
    epoch: Arc<str>,
}

impl Registry {
    /// Creates an empty registry enforcing `limits`, whose readers are woken
    /// as soon as a message is queued for them.
    pub fn new(limits: Limits) -> Arc<Registry> {
        Registry::with_ticker(limits, None)
    }

    /// Creates an empty registry enforcing `limits`; with a `ticker`, readers
    /// are woken for new messages at its next tick, so messages that arrive
    /// meanwhile are read together.
    pub fn with_ticker(limits: Limits, ticker: Option<WakeTicker>) -> Arc<Registry> {
        Arc::new_cyclic(|me| Registry {
            limits,
            ticker,
            state: Mutex::new(State {
                next_message_id: 1,
                ..State::default()
            }),
            next_session: AtomicU64::new(1),
            me: Weak::clone(me),
            epoch: Arc::from(new_token().unwrap_or_else(|| {
                // No OS randomness: the clock still tells two runs apart.
                format!(
                    "{:x}",
                    super::history::micros_since_epoch(SystemTime::now())
                )
            })),
        })
    }

    /// The limits this registry enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // State is only changed by code that cannot panic half-way, so a
        // poisoned lock still guards consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `username` as connected and returns its session and inbox,
    /// asking no resume.
    ///
    /// # Errors
    /// `InvalidName`, `NameTaken`, `TooManyConnections`, `ShuttingDown`.
    pub fn connect(&self, username: &str) -> Result<(Session, Inbox), ChatError> {
        self.connect_resuming(username, "", None, EventKinds::NONE)
            .map(|connected| (connected.session, connected.inbox))
    }

    /// Registers `username` as connected. The first successful connect of
    /// a username ends what its last session left for a resume; with
    /// `resume` and that session's token, the kept messages after
    /// `resume.after_id` are queued in the new inbox before anything else
    /// can be (the lock is held from the claim to the registration). The
    /// stream gets the `events` kinds besides messages; `peer` is the
    /// client's address, for an operator's list.
    ///
    /// # Errors
    /// `InvalidName`, `Banned`, `NameTaken`, `TooManyConnections`,
    /// `ShuttingDown`; a refused connect changes nothing.
    pub fn connect_resuming(
        &self,
        username: &str,
        peer: &str,
        resume: Option<&ResumeRequest>,
        events: EventKinds,
    ) -> Result<Connected, ChatError> {
        check_username(username)?;
        // Group messages come from the groups' logs when the session ends.
        let (outbox, inbox) = keeping_mailbox(
            self.limits.queue_depth,
            self.limits.queue_bytes,
            self.ticker.clone(),
            self.limits.resume,
            events,
            Keep::DirectOnly,
        );
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let name: Name = Arc::from(username);
        let resume_token = new_token().unwrap_or_default();
        let resume_status = {
            let mut state = self.lock();
            state.bans.check(username, Instant::now())?;
            state.accepting()?;
            if state.name_taken(username) {
                return Err(ChatError::NameTaken(username.to_owned()));
            }
            if state.users.len() >= self.limits.max_connections {
                return Err(ChatError::TooManyConnections(self.limits.max_connections));
            }
            let (status, replay) = state.parked.claim(username, resume, Instant::now());
            let status = self.limits.queue_replay(&outbox, status, replay);
            state.users.insert(
                Arc::clone(&name),
                Connection {
                    session: id,
                    outbox: outbox.clone(),
                    groups: HashMap::new(),
                    left: LeftBehind::default(),
                    resume_token: resume_token.clone(),
                    connected_at: SystemTime::now(),
                    peer: peer.to_owned(),
                },
            );
            status
        };
        let owner: Arc<dyn Disconnect> = match self.me.upgrade() {
            Some(me) => me,
            // Only reachable while the registry is being dropped, when no
            // call can be running on it.
            None => return Err(ChatError::ShuttingDown),
        };
        Ok(Connected {
            session: Session::new(owner, name, id, outbox),
            inbox,
            resume_token,
            epoch: Arc::clone(&self.epoch),
            resume_status,
        })
    }

    /// Creates group `name` with `caller` as its only member.
    ///
    /// # Errors
    /// `Unauthenticated`, `InvalidName`, `NameTaken`, `TooManyGroups`,
    /// `ShuttingDown`.
    pub fn create_group(&self, caller: &str, name: &str) -> Result<(), ChatError> {
        let valid = check_group_name(name);
        let mut state = self.lock();
        let caller = state.authenticate(caller)?;
        valid?;
        if state.name_taken(name) {
            return Err(ChatError::NameTaken(name.to_owned()));
        }
        state.check_group_room(&caller, self.limits.max_groups_per_user)?;
        let group_name: Name = Arc::from(name);
        let user = state.user_mut(&caller);
        user.groups.insert(Arc::clone(&group_name), 0);
        let mut group = Group::default();
        group
            .members
            .insert(Arc::clone(&caller), user.outbox.clone());
        state.groups.insert(Arc::clone(&group_name), group);
        let mut wake = Wakeups::default();
        state.announce(
            &group_name,
            &caller,
            MembershipKind::Joined,
            0,
            &self.limits,
            &mut wake.0,
        );
        drop(state);
        Ok(())
    }

    /// Adds `caller` to group `name`; answers the id of the group's newest
    /// message at the join (0: none).
    ///
    /// # Errors
    /// `Unauthenticated`, `InvalidName`, `GroupNotFound`, `AlreadyMember`,
    /// `TooManyGroups`, `ShuttingDown`.
    pub fn join_group(&self, caller: &str, name: &str) -> Result<u64, ChatError> {
        let valid = check_group_name(name);
        let mut state = self.lock();
        let caller = state.authenticate(caller)?;
        valid?;
        let (group_name, group) = state
            .groups
            .get_key_value(name)
            .ok_or_else(|| ChatError::GroupNotFound(name.to_owned()))?;
        if group.members.contains_key(&caller) {
            return Err(ChatError::AlreadyMember(name.to_owned()));
        }
        let group_name = Arc::clone(group_name);
        let position = group.history.position();
        state.check_group_room(&caller, self.limits.max_groups_per_user)?;
        let user = state.user_mut(&caller);
        user.groups.insert(Arc::clone(&group_name), position);
        let outbox = user.outbox.clone();
        let group = state.group_mut(&group_name);
        group.members.insert(Arc::clone(&caller), outbox);
        let before = group.members.len() - 1;
        let mut wake = Wakeups::default();
        state.announce(
            &group_name,
            &caller,
            MembershipKind::Joined,
            before,
            &self.limits,
            &mut wake.0,
        );
        drop(state);
        Ok(position)
    }

    /// Removes `caller` from group `name`, deleting the group if it empties.
    ///
    /// # Errors
    /// `Unauthenticated`, `InvalidName`, `GroupNotFound`, `NotMember`,
    /// `ShuttingDown`.
    pub fn leave_group(&self, caller: &str, name: &str) -> Result<Left, ChatError> {
        let valid = check_group_name(name);
        let mut wake = Wakeups::default();
        let mut state = self.lock();
        let caller = state.authenticate(caller)?;
        valid?;
        let (group_name, group) = state
            .groups
            .get_key_value(name)
            .ok_or_else(|| ChatError::GroupNotFound(name.to_owned()))?;
        if !group.members.contains_key(&caller) {
            return Err(ChatError::NotMember(name.to_owned()));
        }
        let (group_name, before) = (Arc::clone(group_name), group.members.len());
        state.leave_behind(&caller, name, &self.limits);
        if state.remove_member(name, &caller) {
            return Ok(Left::GroupDeleted);
        }
        state.announce(
            &group_name,
            &caller,
            MembershipKind::Left,
            before,
            &self.limits,
            &mut wake.0,
        );
        drop(state);
        Ok(Left::GroupKept)
    }

    /// Sends `text` from `caller` to the user or group `recipient`, queueing
    /// it for every recipient connected now and waking them. A group member
    /// whose queue is full is disconnected and the send goes on; a direct
    /// recipient whose queue is full is disconnected and the send fails.
    ///
    /// # Errors
    /// `Unauthenticated`, `InvalidText`, `InvalidName`, `RecipientNotFound`,
    /// `NotMemberOfRecipient`, `RecipientOverloaded`, `ShuttingDown`.
    pub fn send(&self, caller: &str, recipient: &str, text: String) -> Result<Sent, ChatError> {
        self.send_queued(caller, recipient, text)
            .map(|(sent, _wake_now)| sent)
    }

    /// [`Registry::send`], leaving the recipients' wake-ups to the caller:
    /// they happen when the returned [`Wakeups`] is dropped. A failed send
    /// wakes whoever it queued for (or dropped) before returning.
    ///
    /// # Errors
    /// As [`Registry::send`].
    pub fn send_queued(
        &self,
        caller: &str,
        recipient: &str,
        text: String,
    ) -> Result<(Sent, Wakeups), ChatError> {
        let valid = check_message(recipient, &text, self.limits.max_text_bytes);
        // Declared before the guard, so it is dropped (and wakes) after the
        // lock is released on every path.
        let mut wake = Wakeups::default();
        let mut state = self.lock();
        let sender = state.authenticate(caller)?;
        // Spent before the other checks: every send counts but those the
        // limit itself refuses.
        state
            .budgets
            .spend(&self.limits.send_limit, &sender, Instant::now())?;
        valid?;
        // The lock is held while queueing: it is what makes a group's
        // messages reach every member in the same order, and one sender's
        // messages reach a recipient in send order. Queueing never blocks;
        // readers are woken after the lock is released.
        let from = From::User(sender);
        let sent = state.deliver(from, recipient, text, &self.limits, &mut wake.0)?;
        drop(state);
        Ok((sent, wake))
    }

    /// One page of group `name`'s kept history, for a member.
    ///
    /// # Errors
    /// `Unauthenticated`, `InvalidName`, `GroupNotFound`, `MembersOnly`,
    /// `ShuttingDown`.
    pub fn history(
        &self,
        caller: &str,
        name: &str,
        query: &HistoryQuery,
    ) -> Result<HistoryPage, ChatError> {
        self.read_group(caller, name, |caller, group_name, group| {
            if !group.members.contains_key(caller) {
                return Err(ChatError::MembersOnly(name.to_owned()));
            }
            Ok(group.history.page(group_name, query))
        })
    }

    /// One page of group `name`'s members, sorted by name.
    ///
    /// # Errors
    /// `Unauthenticated`, `InvalidName`, `GroupNotFound`, `ShuttingDown`.
    pub fn list_members(
        &self,
        caller: &str,
        name: &str,
        query: &MemberQuery,
    ) -> Result<MemberPage, ChatError> {
        self.read_group(caller, name, |_, _, group| {
            Ok(MemberPage::of(query, group.members.keys()))
        })
    }

    /// Runs `read` on group `name` for `caller`, under the lock, after the
    /// checks every read of a group makes (the caller first, then the name,
    /// then that the group exists).
    fn read_group<T>(
        &self,
        caller: &str,
        name: &str,
        read: impl FnOnce(&Name, &Name, &Group) -> Result<T, ChatError>,
    ) -> Result<T, ChatError> {
        let valid = check_group_name(name);
        let state = self.lock();
        let caller = state.authenticate(caller)?;
        valid?;
        let (group_name, group) = state
            .groups
            .get_key_value(name)
            .ok_or_else(|| ChatError::GroupNotFound(name.to_owned()))?;
        read(&caller, group_name, group)
    }

    /// Tells `recipient` that `caller` is typing: a connected user, or every
    /// other member of a group `caller` is in, whose stream asked for
    /// typing events; at most once per sender and conversation per two
    /// seconds (later calls answer OK and are dropped).
    ///
    /// # Errors
    /// As [`Registry::send`], but for the text's.
    pub fn send_typing(&self, caller: &str, recipient: &str) -> Result<(), ChatError> {
        let valid = check_name(recipient).map_err(|problem| ChatError::InvalidName {
            field: "recipient",
            problem,
        });
        let mut wake = Wakeups::default();
        let mut state = self.lock();
        let sender = state.authenticate(caller)?;
        valid?;
        state.typing(&sender, recipient, &self.limits, &mut wake.0)?;
        drop(state);
        Ok(())
    }

    /// Every connected user, then every group, each sorted by name, as seen
    /// by `caller`.
    ///
    /// # Errors
    /// `Unauthenticated`, `ShuttingDown`.
    pub fn list_channels(&self, caller: &str) -> Result<Vec<ChannelInfo>, ChatError> {
        let state = self.lock();
        let caller = state.authenticate(caller)?;
        let mut users: Vec<ChannelInfo> = state
            .users
            .keys()
            .map(|name| ChannelInfo {
                name: Arc::clone(name),
                kind: ChannelKind::User,
                member_count: 0,
                joined: false,
            })
            .collect();
        let mut groups: Vec<ChannelInfo> = state
            .groups
            .iter()
            .map(|(name, group)| ChannelInfo {
                name: Arc::clone(name),
                kind: ChannelKind::Group,
                member_count: u32::try_from(group.members.len()).unwrap_or(u32::MAX),
                joined: group.members.contains_key(&caller),
            })
            .collect();
        drop(state);
        users.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        groups.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        users.append(&mut groups);
        Ok(users)
    }

    /// How many users are connected.
    pub fn connected_users(&self) -> usize {
        self.lock().users.len()
    }

    /// How many groups exist.
    pub fn group_count(&self) -> usize {
        self.lock().groups.len()
    }

    /// Counts for monitoring, read under the lock in one pass over the
    /// connected users (the queue counts are the mailboxes' own).
    pub fn stats(&self) -> ChatStats {
        let state = self.lock();
        let mut stats = ChatStats {
            connected_users: state.users.len(),
            groups: state.groups.len(),
            direct_messages: state.sent.0,
            group_messages: state.sent.1,
            history_messages: state.history_kept.0,
            history_bytes: state.history_kept.1,
            ..ChatStats::default()
        };
        for connection in state.users.values() {
            let (messages, bytes) = connection.outbox.queued();
            stats.memberships += connection.groups.len();
            stats.queued_messages += messages;
            stats.queued_bytes += bytes;
        }
        stats
    }

    /// Starts shutdown: new work is refused with `ShuttingDown` and every
    /// connected user's mailbox is closed, which ends their streams. Users
    /// stay registered until their sessions are dropped.
    pub fn shutdown(&self) {
        let outboxes: Vec<Outbox> = {
            let mut state = self.lock();
            state.closing = true;
            state.users.values().map(|c| c.outbox.clone()).collect()
        };
        for outbox in outboxes {
            outbox.close(CloseReason::Shutdown);
        }
    }
}

impl Disconnect for Registry {
    fn disconnect(&self, name: &Name, id: SessionId) -> Option<Departure> {
        let mut wake = Wakeups::default();
        let mut state = self.lock();
        if state.users.get(name)?.session != id {
            return None;
        }
        let departure = state.remove_user(name, &self.limits, &mut wake.0);
        drop(state);
        departure
    }
}

/// The embedded engine: every operation is answered at once from memory.
impl ChatEngine for Registry {
    fn connect(
        &self,
        username: &str,
        peer: &str,
        resume: Option<ResumeRequest>,
        events: EventKinds,
    ) -> Reply<Connected> {
        Reply::now(self.connect_resuming(username, peer, resume.as_ref(), events))
    }

    fn authenticate(&self, caller: &str) -> Reply<()> {
        Reply::now(self.lock().authenticate(caller).map(|_| ()))
    }

    fn create_group(&self, caller: &str, name: &str) -> Reply<()> {
        Reply::now(Registry::create_group(self, caller, name))
    }

    fn join_group(&self, caller: &str, name: &str) -> Reply<u64> {
        Reply::now(Registry::join_group(self, caller, name))
    }

    fn leave_group(&self, caller: &str, name: &str) -> Reply<Left> {
        Reply::now(Registry::leave_group(self, caller, name))
    }

    fn send(&self, caller: &str, recipient: &str, text: String) -> Reply<(Sent, Wakeups)> {
        Reply::now(self.send_queued(caller, recipient, text))
    }

    fn list_channels(&self, caller: &str) -> Reply<Vec<ChannelInfo>> {
        Reply::now(Registry::list_channels(self, caller))
    }

    fn history(&self, caller: &str, group: &str, query: HistoryQuery) -> Reply<HistoryPage> {
        Reply::now(Registry::history(self, caller, group, &query))
    }

    fn list_members(&self, caller: &str, group: &str, query: MemberQuery) -> Reply<MemberPage> {
        Reply::now(Registry::list_members(self, caller, group, &query))
    }

    fn send_typing(&self, caller: &str, recipient: &str) -> Reply<()> {
        Reply::now(Registry::send_typing(self, caller, recipient))
    }

    fn disconnect_user(
        &self,
        username: &str,
        reason: &str,
        ban: Option<Duration>,
    ) -> Reply<Departure> {
        Reply::now(Registry::disconnect_user(self, username, reason, ban))
    }

    fn remove_member(&self, group: &str, username: &str) -> Reply<Left> {
        Reply::now(Registry::remove_member(self, group, username))
    }

    fn delete_group(&self, group: &str) -> Reply<u32> {
        Reply::now(Registry::delete_group(self, group))
    }

    fn publish(&self, recipient: &str, text: String, sender: &str) -> Reply<(Sent, Wakeups)> {
        Reply::now(Registry::publish(self, recipient, text, sender))
    }

    fn list_users(&self, query: MemberQuery) -> Reply<UserPage> {
        Reply::now(Registry::list_users(self, &query))
    }

    fn shutdown(&self) {
        Registry::shutdown(self);
    }

    fn local_users(&self) -> usize {
        self.connected_users()
    }

    fn stats(&self) -> ChatStats {
        Registry::stats(self)
    }
}

/// Checks a username, as every engine does before anything else.
///
/// # Errors
/// `InvalidName` for the field "username".
pub fn check_username(name: &str) -> Result<(), ChatError> {
    check_name(name).map_err(|problem| ChatError::InvalidName {
        field: "username",
        problem,
    })
}

/// Checks a group name, as every engine does before anything else.
///
/// # Errors
/// `InvalidName` for the field "group name".
pub fn check_group_name(name: &str) -> Result<(), ChatError> {
    check_name(name).map_err(|problem| ChatError::InvalidName {
        field: "group name",
        problem,
    })
}

/// Checks a message's text (at most `max_text_bytes`, not blank) and its
/// recipient's name, as every engine does before anything else.
///
/// # Errors
/// `InvalidText`, or `InvalidName` for the field "recipient".
pub fn check_message(recipient: &str, text: &str, max_text_bytes: usize) -> Result<(), ChatError> {
    if text.len() > max_text_bytes {
        return Err(ChatError::InvalidText(TextProblem::TooLong {
            len: text.len(),
            limit: max_text_bytes,
        }));
    }
    if text.trim().is_empty() {
        return Err(ChatError::InvalidText(TextProblem::Blank));
    }
    check_name(recipient).map_err(|problem| ChatError::InvalidName {
        field: "recipient",
        problem,
    })
}

impl State {
    fn name_taken(&self, name: &str) -> bool {
        self.users.contains_key(name) || self.groups.contains_key(name)
    }

    /// Refuses new work once the registry is shutting down.
    fn accepting(&self) -> Result<(), ChatError> {
        if self.closing {
            return Err(ChatError::ShuttingDown);
        }
        Ok(())
    }

    /// The caller's interned name, if `caller` is connected.
    fn authenticate(&self, caller: &str) -> Result<Name, ChatError> {
        self.accepting()?;
        match self.users.get_key_value(caller) {
            Some((name, _)) => Ok(Arc::clone(name)),
            None => Err(ChatError::Unauthenticated),
        }
    }

    /// Refuses a create or join that would put `user` in more than `limit`
    /// groups.
    fn check_group_room(&self, user: &str, limit: usize) -> Result<(), ChatError> {
        match self.users.get(user) {
            Some(connection) if connection.groups.len() >= limit => {
                Err(ChatError::TooManyGroups(limit))
            }
            _ => Ok(()),
        }
    }

    fn user_mut(&mut self, name: &str) -> &mut Connection {
        match self.users.get_mut(name) {
            Some(connection) => connection,
            None => unreachable!("caller {name:?} was authenticated under this lock"),
        }
    }

    fn group_mut(&mut self, name: &str) -> &mut Group {
        match self.groups.get_mut(name) {
            Some(group) => group,
            None => unreachable!("group {name:?} was looked up under this lock"),
        }
    }

    /// Queues a message for its recipients; see [`Registry::send`] and
    /// [`Registry::publish`].
    fn deliver(
        &mut self,
        from: From,
        recipient: &str,
        text: String,
        limits: &Limits,
        wake: &mut Vec<Outbox>,
    ) -> Result<Sent, ChatError> {
        let id = self.next_message_id;
        let sent_at = now_in_micros();
        let (sender, from_operator) = match from {
            From::User(name) => (name, false),
            From::Operator(name) => (name, true),
        };
        if let Some((recipient, connection)) = self.users.get_key_value(recipient) {
            let message = Arc::new(
                Message::new(
                    id,
                    sender,
                    Arc::clone(recipient),
                    ChannelKind::User,
                    Arc::from(text),
                    sent_at,
                )
                .by_operator(from_operator),
            );
            self.next_message_id += 1;
            if connection.outbox.push(message).is_err() {
                let name = Arc::clone(recipient);
                self.evict(&name, limits, wake);
                return Err(ChatError::RecipientOverloaded(name.to_string()));
            }
            wake.push(connection.outbox.clone());
            self.sent.0 += 1;
            return Ok(Sent {
                id,
                sent_at,
                recipients: 1,
                evicted: Vec::new(),
            });
        }
        let Some((group_name, group)) = self.groups.get_key_value(recipient) else {
            return Err(ChatError::RecipientNotFound(recipient.to_owned()));
        };
        if !from_operator && !group.members.contains_key(&sender) {
            return Err(ChatError::NotMemberOfRecipient(recipient.to_owned()));
        }
        let group_name = Arc::clone(group_name);
        let message = Arc::new(
            Message::new(
                id,
                sender,
                Arc::clone(&group_name),
                ChannelKind::Group,
                Arc::from(text),
                sent_at,
            )
            .by_operator(from_operator),
        );
        self.next_message_id += 1;
        let Some(group) = self.groups.get_mut(&group_name) else {
            unreachable!("group {group_name:?} was looked up under this lock");
        };
        // The history takes the message in the order members get it.
        let (messages, bytes) = group.history.push(&message, limits.history);
        if limits.resume.on() {
            group.recent.push(Arc::clone(&message), &limits.resume);
        }
        self.history_kept.0 = self.history_kept.0.saturating_add_signed(messages);
        self.history_kept.1 = self.history_kept.1.saturating_add_signed(bytes);
        wake.reserve(group.members.len());
        let mut evicted = Vec::new();
        for (member, outbox) in &group.members {
            if outbox.push(Arc::clone(&message)).is_ok() {
                wake.push(outbox.clone());
            } else {
                evicted.push(Arc::clone(member));
            }
        }
        let recipients = group.members.len() - evicted.len();
        self.sent.1 += 1;
        for name in &evicted {
            self.evict(name, limits, wake);
        }
        Ok(Sent {
            id,
            sent_at,
            recipients,
            evicted,
        })
    }

    /// Disconnects slow consumers: each leaves every group at once (whose
    /// other members are told, which may find more full queues: they go
    /// the same way) and its stream is told to end; its session reports
    /// the departure later.
    fn evict(&mut self, name: &str, limits: &Limits, wake: &mut Vec<Outbox>) {
        let mut pending: Vec<Name> = vec![Arc::from(name)];
        while let Some(name) = pending.pop() {
            let Some(outbox) = self.users.get(&*name).map(|c| c.outbox.clone()) else {
                continue;
            };
            if let Some(departure) = self.remove_user_telling(&name, limits, wake, &mut pending) {
                outbox.keep_departure(departure);
            }
            outbox.close(CloseReason::SlowConsumer);
        }
    }

    /// Removes a user and its memberships, keeping its recent messages for
    /// a resume and telling its groups; returns what changed.
    fn remove_user(
        &mut self,
        name: &str,
        limits: &Limits,
        wake: &mut Vec<Outbox>,
    ) -> Option<Departure> {
        let mut full = Vec::new();
        let departure = self.remove_user_telling(name, limits, wake, &mut full);
        for name in full {
            self.evict(&name, limits, wake);
        }
        departure
    }

    /// [`State::remove_user`], leaving the members whose queue a
    /// `DISCONNECTED` event found full in `full`.
    fn remove_user_telling(
        &mut self,
        name: &str,
        limits: &Limits,
        wake: &mut Vec<Outbox>,
        full: &mut Vec<Name>,
    ) -> Option<Departure> {
        let (name, connection) = self.users.remove_entry(name)?;
        // Nothing is parked once the server is closing: its epoch ends with
        // it, and no resume could use what would be kept.
        let direct = if self.closing {
            None
        } else {
            connection.outbox.take_recent()
        };
        if let Some(direct) = direct {
            let groups = connection.groups.iter().filter_map(|(group, start)| {
                self.groups.get(group).map(|group| (&group.recent, *start))
            });
            let recent = gather(direct, connection.left, groups, &limits.resume);
            self.parked.park(
                Arc::clone(&name),
                connection.resume_token.clone(),
                recent,
                Instant::now(),
                limits.resume.window,
                limits.max_connections,
            );
        }
        let mut departure = Departure {
            groups_left: connection.groups.len(),
            groups_deleted: Vec::new(),
        };
        for group in connection.groups.into_keys() {
            let before = self.groups.get(&group).map_or(0, |g| g.members.len());
            if self.remove_member(&group, &name) {
                departure.groups_deleted.push(group);
            } else {
                let change = Change {
                    group: &group,
                    user: &name,
                    kind: MembershipKind::Disconnected,
                    before,
                };
                self.tell_members(&change, limits, wake, full);
            }
        }
        Some(departure)
    }

    /// Tells the members of a group who asked for membership events about
    /// `change` (unless the group is over the threshold); members whose
    /// queue is full are evicted.
    fn announce(
        &mut self,
        group: &Name,
        user: &Name,
        kind: MembershipKind,
        before: usize,
        limits: &Limits,
        wake: &mut Vec<Outbox>,
    ) {
        let change = Change {
            group,
            user,
            kind,
            before,
        };
        let mut full = Vec::new();
        self.tell_members(&change, limits, wake, &mut full);
        for name in full {
            self.evict(&name, limits, wake);
        }
    }

    /// Queues `change`'s event for the group's members who asked for it,
    /// leaving those whose queue is full in `full`.
    fn tell_members(
        &self,
        change: &Change<'_>,
        limits: &Limits,
        wake: &mut Vec<Outbox>,
        full: &mut Vec<Name>,
    ) {
        let Some(group) = self.groups.get(change.group) else {
            return;
        };
        let after = group.members.len();
        if !membership_events_allowed(change.before, after, limits.membership_events_max_members) {
            return;
        }
        let event = Arc::new(Event::Membership {
            group: Arc::clone(change.group),
            user: Arc::clone(change.user),
            kind: change.kind,
            member_count: u32::try_from(after).unwrap_or(u32::MAX),
            position: group.history.position(),
            at: now_in_micros(),
        });
        for (member, outbox) in &group.members {
            if !outbox.wants(EventKinds::MEMBERSHIP) {
                continue;
            }
            if outbox.push_event(Arc::clone(&event)).is_ok() {
                wake.push(outbox.clone());
            } else {
                full.push(Arc::clone(member));
            }
        }
    }

    /// Ends `user`'s membership of `group` on its side: what the group's
    /// log holds for it is kept for its session's resume (the group may be
    /// deleted before the session ends). The caller removes it from the
    /// group's members.
    fn leave_behind(&mut self, user: &str, group: &str, limits: &Limits) {
        let Some(connection) = self.users.get_mut(user) else {
            return;
        };
        let Some(start) = connection.groups.remove(group) else {
            return;
        };
        if !limits.resume.on() {
            return;
        }
        if let Some(log) = self.groups.get(group).map(|group| &group.recent) {
            connection.left.keep(
                log.newer_than(start).cloned(),
                log.dropped_after(start),
                &limits.resume,
            );
        }
    }

    /// Removes `member` from `group`; deletes the group and returns true if
    /// it is left empty.
    fn remove_member(&mut self, group: &str, member: &str) -> bool {
        let Some(entry) = self.groups.get_mut(group) else {
            return false;
        };
        entry.members.remove(member);
        if entry.members.is_empty() {
            let (messages, bytes) = entry.history.kept();
            self.history_kept.0 -= messages;
            self.history_kept.1 -= bytes;
            self.groups.remove(group);
            true
        } else {
            false
        }
    }
}

impl State {
    /// Queues a typing notice from `sender` for `recipient`; see
    /// [`Registry::send_typing`].
    fn typing(
        &mut self,
        sender: &Name,
        recipient: &str,
        limits: &Limits,
        wake: &mut Vec<Outbox>,
    ) -> Result<(), ChatError> {
        if let Some((recipient, connection)) = self.users.get_key_value(recipient) {
            let recipient = Arc::clone(recipient);
            if !self.typing.allow(sender, &recipient, Instant::now()) {
                return Ok(());
            }
            let outbox = connection.outbox.clone();
            if !outbox.wants(EventKinds::TYPING) {
                return Ok(());
            }
            let event = Arc::new(Event::Typing {
                conversation: Arc::clone(sender),
                conversation_kind: ChannelKind::User,
                user: Arc::clone(sender),
            });
            if outbox.push_event(event).is_err() {
                self.evict(&recipient, limits, wake);
                return Err(ChatError::RecipientOverloaded(recipient.to_string()));
            }
            wake.push(outbox);
            return Ok(());
        }
        let Some((group_name, group)) = self.groups.get_key_value(recipient) else {
            return Err(ChatError::RecipientNotFound(recipient.to_owned()));
        };
        if !group.members.contains_key(sender) {
            return Err(ChatError::NotMemberOfRecipient(recipient.to_owned()));
        }
        let group_name = Arc::clone(group_name);
        if !self.typing.allow(sender, &group_name, Instant::now()) {
            return Ok(());
        }
        let Some(group) = self.groups.get(&group_name) else {
            return Ok(());
        };
        let event = Arc::new(Event::Typing {
            conversation: Arc::clone(&group_name),
            conversation_kind: ChannelKind::Group,
            user: Arc::clone(sender),
        });
        let mut full = Vec::new();
        for (member, outbox) in &group.members {
            if member == sender || !outbox.wants(EventKinds::TYPING) {
                continue;
            }
            if outbox.push_event(Arc::clone(&event)).is_ok() {
                wake.push(outbox.clone());
            } else {
                full.push(Arc::clone(member));
            }
        }
        for name in full {
            self.evict(&name, limits, wake);
        }
        Ok(())
    }
}

/// Who a message is from.
enum From {
    /// A connected user, who must be a member of a group it sends to.
    User(Name),
    /// An operator, under the name it chose.
    Operator(Name),
}

/// A membership change, as told to a group's members.
struct Change<'a> {
    group: &'a Name,
    user: &'a Name,
    kind: MembershipKind,
    /// Members before the change.
    before: usize,
}

/// Now, in whole microseconds: the precision a message's time is kept in
/// history and in the cluster, so every copy of a message says the same.
pub(crate) fn now_in_micros() -> SystemTime {
    let micros = super::history::micros_since_epoch(SystemTime::now());
    SystemTime::UNIX_EPOCH + Duration::from_micros(micros)
}

mod operator;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
