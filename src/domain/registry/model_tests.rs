//! Property tests of the registry, without any network.
//!
//! * `registry_matches_model` runs random operation sequences (connect,
//!   disconnect by drop or `end`, create, join, leave, direct and group
//!   sends, list, drain) against the registry and against a plain reference
//!   model, and compares every result — the `Ok` value or the exact
//!   [`ChatError`] — and, after every step, every connected user's listing.
//!   Draining an inbox compares the messages it received with the ones the
//!   model expects. Queues are deep, so nothing is evicted.
//! * `fuzz_registry_invariants` runs the same kind of sequences with queues
//!   1 to 4 deep (some also small in bytes), so slow consumers get evicted,
//!   and checks only invariants.
//!
//! Names come from a small pool holding valid names, a group/user clash or
//! two, and invalid ones (empty, too long, bad characters); texts include
//! empty, whitespace-only and too long ones; callers include users that are
//! not connected.
//!
//! The number of cases comes from `PROPTEST_CASES` (default 64, so a plain
//! `cargo test` stays fast); `PROPTEST_RNG_SEED` fixes the seed. To fuzz for
//! longer: `PROPTEST_CASES=20000 cargo nextest run -E
//! 'test(fuzz_registry_invariants)'`. Failures are not persisted to a
//! regressions file: the shrunk operation list is printed instead.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};

use super::*;
use crate::domain::mailbox::CloseReason;
use crate::domain::names::NameProblem;
use crate::domain::Item;

/// Small, so `TooManyConnections` happens.
const MAX_CONNECTIONS: usize = 5;
/// Small, so texts are cheap to make too long.
const MAX_TEXT_BYTES: usize = 16;
/// Small, so `TooManyGroups` happens.
const MAX_GROUPS_PER_USER: usize = 2;
/// Deeper than any sequence has sends (no more than its length): the model
/// test never evicts. Not much deeper: the queue is allocated up front.
const DEEP_QUEUE: usize = 2 * MAX_OPS;
/// Roomier than any sequence's messages: the model test never evicts.
const ROOMY_QUEUE_BYTES: usize = 1 << 24;
/// Longest operation sequence.
const MAX_OPS: usize = 200;

type Outcome = Result<(), TestCaseError>;

/// `PROPTEST_CASES` or 64 cases; no regressions file.
fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(64);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// The users most operations act as.
const USERS: [&str; 4] = ["ann", "bob", "cat", "dan"];
/// The groups most group operations name.
const GROUPS: [&str; 3] = ["g", "h", "k"];

/// Every name the tests use: the common users and groups, a near clash,
/// a longest valid name, and invalid ones (empty, too long, bad characters).
fn name_pool() -> Vec<String> {
    let mut pool: Vec<String> = USERS.iter().chain(&GROUPS).map(|s| s.to_string()).collect();
    pool.extend(["Ann", "h.-_9", "", "a b", "ü", "ann\n", "g/h"].map(String::from));
    pool.push("n".repeat(64));
    pool.push("n".repeat(65));
    // 80 bytes of non-ASCII: too long is reported before bad characters.
    pool.push("ü".repeat(40));
    pool
}

/// Mostly one of `common`, sometimes any name of the pool.
fn name_from(common: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        9 => prop::sample::select(common).prop_map(String::from),
        1 => prop::sample::select(name_pool()),
    ]
}

/// A caller: mostly a common user.
fn user() -> impl Strategy<Value = String> + Clone {
    name_from(&USERS)
}

/// A group name: mostly a common group.
fn group() -> impl Strategy<Value = String> + Clone {
    name_from(&GROUPS)
}

/// A recipient: a common user or group, sometimes anything.
fn recipient() -> impl Strategy<Value = String> + Clone {
    const COMMON: [&str; 7] = ["ann", "bob", "cat", "dan", "g", "h", "k"];
    name_from(&COMMON)
}

/// Message texts: mostly valid, sometimes around the limits of
/// [`MAX_TEXT_BYTES`] (empty, whitespace, too long in bytes).
fn text() -> impl Strategy<Value = String> {
    let valid = vec![
        "hi".to_owned(),
        "hello there".to_owned(),
        " padded ".to_owned(),
        "x".repeat(MAX_TEXT_BYTES),
        "ü".repeat(MAX_TEXT_BYTES / 2),
    ];
    let invalid = vec![
        String::new(),
        " ".to_owned(),
        " \t\n".to_owned(),
        "\u{3000}".to_owned(),
        "x".repeat(MAX_TEXT_BYTES + 1),
        "ü".repeat(MAX_TEXT_BYTES / 2 + 1),
        // Blank and too long: the length is checked first.
        " ".repeat(MAX_TEXT_BYTES + 4),
    ];
    prop_oneof![
        8 => prop::sample::select(valid),
        2 => prop::sample::select(invalid),
    ]
}

/// One step of a test sequence.
#[derive(Debug, Clone)]
enum Op {
    Connect(String),
    /// Ends the held session at `slot` (modulo how many are held), by
    /// `Session::end` then drop, or by drop alone.
    Disconnect {
        slot: usize,
        end: bool,
    },
    Create {
        caller: String,
        group: String,
    },
    Join {
        caller: String,
        group: String,
    },
    Leave {
        caller: String,
        group: String,
    },
    Send {
        caller: String,
        to: String,
        text: String,
    },
    List(String),
    /// Takes every queued message from the held inbox at `slot`.
    Drain(usize),
    /// Drains and compares everything (the model test only).
    Check,
}

/// A sequence of operations: connects for two or more common users, so
/// most cases get going at once, then `op`s.
fn ops(send_weight: u32) -> impl Strategy<Value = Vec<Op>> {
    (
        prop::sample::subsequence(USERS.as_slice(), 2..=USERS.len()),
        prop::collection::vec(op(send_weight), 1..MAX_OPS),
    )
        .prop_map(|(first, rest)| {
            let connects = first.into_iter().map(|name| Op::Connect(name.to_owned()));
            connects.chain(rest).collect()
        })
}

/// One operation; `send_weight` tunes how often messages are sent.
fn op(send_weight: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => user().prop_map(Op::Connect),
        1 => (0..8usize, any::<bool>()).prop_map(|(slot, end)| Op::Disconnect { slot, end }),
        3 => (user(), group()).prop_map(|(caller, group)| Op::Create { caller, group }),
        5 => (user(), group()).prop_map(|(caller, group)| Op::Join { caller, group }),
        1 => (user(), group()).prop_map(|(caller, group)| Op::Leave { caller, group }),
        send_weight => (user(), recipient(), text())
            .prop_map(|(caller, to, text)| Op::Send { caller, to, text }),
        1 => user().prop_map(Op::List),
        1 => (0..8usize).prop_map(Op::Drain),
        1 => Just(Op::Check),
    ]
}

/// A session the test holds, with its inbox.
struct Held {
    name: String,
    session: Session,
    inbox: Inbox,
    /// The id of the last message taken from `inbox`.
    last_id: u64,
}

impl Held {
    /// Takes every queued message, checking that ids strictly increase.
    fn drain(&mut self) -> Result<Vec<Arc<Message>>, TestCaseError> {
        let messages: Vec<Arc<Message>> = std::iter::from_fn(|| self.inbox.try_take())
            .filter_map(Item::message)
            .collect();
        for message in &messages {
            prop_assert!(
                message.id > self.last_id,
                "{}: id {} after {}",
                self.name,
                message.id,
                self.last_id
            );
            self.last_id = message.id;
        }
        Ok(messages)
    }
}

fn registry(queue_depth: usize, queue_bytes: usize) -> Arc<Registry> {
    Registry::new(Limits {
        max_connections: MAX_CONNECTIONS,
        queue_depth,
        queue_bytes,
        max_text_bytes: MAX_TEXT_BYTES,
        max_groups_per_user: MAX_GROUPS_PER_USER,
        history: crate::domain::HistoryLimits::DEFAULT,
        resume: crate::domain::ResumeLimits::DEFAULT,
        membership_events_max_members: 1000,
        send_limit: crate::domain::SendLimit::OFF,
    })
}

// ---------------------------------------------------------------------------
// The reference model.

/// A message as the model expects a recipient to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    id: u64,
    sender: String,
    recipient: String,
    kind: ChannelKind,
    text: String,
    sent_at: SystemTime,
}

impl Expected {
    fn of(message: &Message) -> Expected {
        Expected {
            id: message.id,
            sender: message.sender.to_string(),
            recipient: message.recipient.to_string(),
            kind: message.recipient_kind,
            text: message.text.to_string(),
            sent_at: message.sent_at,
        }
    }
}

/// What the registry should hold, in plain collections.
#[derive(Debug, Default)]
struct Model {
    users: BTreeSet<String>,
    groups: BTreeMap<String, BTreeSet<String>>,
    /// Per connected user, the messages queued and not yet drained.
    inboxes: HashMap<String, Vec<Expected>>,
    /// The id of the last accepted message.
    last_id: u64,
}

/// The naming rule, written independently of `names::check_name`.
fn name_problem(name: &str) -> Option<NameProblem> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
    if name.is_empty() {
        Some(NameProblem::Empty)
    } else if name.len() > 64 {
        Some(NameProblem::TooLong)
    } else if !name.chars().all(allowed) {
        Some(NameProblem::BadCharacter)
    } else {
        None
    }
}

fn valid_name(name: &str, field: &'static str) -> Result<(), ChatError> {
    match name_problem(name) {
        Some(problem) => Err(ChatError::InvalidName { field, problem }),
        None => Ok(()),
    }
}

impl Model {
    fn taken(&self, name: &str) -> bool {
        self.users.contains(name) || self.groups.contains_key(name)
    }

    fn check_group_room(&self, user: &str) -> Result<(), ChatError> {
        let groups = self.groups.values().filter(|m| m.contains(user)).count();
        if groups >= MAX_GROUPS_PER_USER {
            Err(ChatError::TooManyGroups(MAX_GROUPS_PER_USER))
        } else {
            Ok(())
        }
    }

    fn authenticate(&self, caller: &str) -> Result<(), ChatError> {
        if self.users.contains(caller) {
            Ok(())
        } else {
            Err(ChatError::Unauthenticated)
        }
    }

    fn connect(&mut self, name: &str) -> Result<(), ChatError> {
        valid_name(name, "username")?;
        if self.taken(name) {
            return Err(ChatError::NameTaken(name.to_owned()));
        }
        if self.users.len() >= MAX_CONNECTIONS {
            return Err(ChatError::TooManyConnections(MAX_CONNECTIONS));
        }
        self.users.insert(name.to_owned());
        self.inboxes.insert(name.to_owned(), Vec::new());
        Ok(())
    }

    fn create(&mut self, caller: &str, group: &str) -> Result<(), ChatError> {
        self.authenticate(caller)?;
        valid_name(group, "group name")?;
        if self.taken(group) {
            return Err(ChatError::NameTaken(group.to_owned()));
        }
        self.check_group_room(caller)?;
        self.groups
            .insert(group.to_owned(), BTreeSet::from([caller.to_owned()]));
        Ok(())
    }

    fn join(&mut self, caller: &str, group: &str) -> Result<(), ChatError> {
        self.authenticate(caller)?;
        valid_name(group, "group name")?;
        let members = self
            .groups
            .get(group)
            .ok_or_else(|| ChatError::GroupNotFound(group.to_owned()))?;
        if members.contains(caller) {
            return Err(ChatError::AlreadyMember(group.to_owned()));
        }
        self.check_group_room(caller)?;
        if let Some(members) = self.groups.get_mut(group) {
            members.insert(caller.to_owned());
        }
        Ok(())
    }

    fn leave(&mut self, caller: &str, group: &str) -> Result<Left, ChatError> {
        self.authenticate(caller)?;
        valid_name(group, "group name")?;
        let members = self
            .groups
            .get_mut(group)
            .ok_or_else(|| ChatError::GroupNotFound(group.to_owned()))?;
        if !members.remove(caller) {
            return Err(ChatError::NotMember(group.to_owned()));
        }
        if members.is_empty() {
            self.groups.remove(group);
            Ok(Left::GroupDeleted)
        } else {
            Ok(Left::GroupKept)
        }
    }

    /// Who a send should reach, or how it should fail.
    fn send(
        &self,
        caller: &str,
        to: &str,
        text: &str,
    ) -> Result<(ChannelKind, Vec<String>), ChatError> {
        self.authenticate(caller)?;
        if text.len() > MAX_TEXT_BYTES {
            return Err(ChatError::InvalidText(TextProblem::TooLong {
                len: text.len(),
                limit: MAX_TEXT_BYTES,
            }));
        }
        if text.chars().all(char::is_whitespace) {
            return Err(ChatError::InvalidText(TextProblem::Blank));
        }
        valid_name(to, "recipient")?;
        if self.users.contains(to) {
            return Ok((ChannelKind::User, vec![to.to_owned()]));
        }
        match self.groups.get(to) {
            None => Err(ChatError::RecipientNotFound(to.to_owned())),
            Some(members) if !members.contains(caller) => {
                Err(ChatError::NotMemberOfRecipient(to.to_owned()))
            }
            Some(members) => Ok((ChannelKind::Group, members.iter().cloned().collect())),
        }
    }

    fn list(&self, caller: &str) -> Result<Vec<ChannelInfo>, ChatError> {
        self.authenticate(caller)?;
        let users = self.users.iter().map(|name| ChannelInfo {
            name: Name::from(name.as_str()),
            kind: ChannelKind::User,
            member_count: 0,
            joined: false,
        });
        let groups = self.groups.iter().map(|(name, members)| ChannelInfo {
            name: Name::from(name.as_str()),
            kind: ChannelKind::Group,
            member_count: u32::try_from(members.len()).unwrap(),
            joined: members.contains(caller),
        });
        Ok(users.chain(groups).collect())
    }

    /// Removes a connected user; returns what its departure changed, with
    /// `groups_deleted` sorted.
    fn disconnect(&mut self, name: &str) -> Departure {
        assert!(self.users.remove(name), "{name} is not connected");
        self.inboxes.remove(name);
        let mut departure = Departure::default();
        self.groups.retain(|group, members| {
            if members.remove(name) {
                departure.groups_left += 1;
                if members.is_empty() {
                    departure.groups_deleted.push(Name::from(group.as_str()));
                }
            }
            !members.is_empty()
        });
        departure
    }
}

// ---------------------------------------------------------------------------
// The model-based test.

/// Runs `ops` against a registry and the model, comparing every result.
fn run_against_model(ops: &[Op]) -> Outcome {
    let reg = registry(DEEP_QUEUE, ROOMY_QUEUE_BYTES);
    let mut model = Model::default();
    let mut held: Vec<Held> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        apply_to_both(&reg, &mut model, &mut held, op)
            .map_err(|error| TestCaseError::fail(format!("step {step} {op:?}: {error}")))?;
        compare_state(&reg, &model)
            .map_err(|error| TestCaseError::fail(format!("after step {step} {op:?}: {error}")))?;
    }
    check_all(&reg, &mut model, &mut held)
        .map_err(|error| TestCaseError::fail(format!("at the end: {error}")))?;
    // Everyone leaves, half by `end`, half by drop.
    let mut end = false;
    while let Some(held_session) = held.pop() {
        end = !end;
        disconnect_checked(&mut model, held_session, end)?;
        compare_state(&reg, &model)?;
    }
    prop_assert_eq!(reg.connected_users(), 0);
    prop_assert_eq!(reg.group_count(), 0);
    Ok(())
}

fn apply_to_both(reg: &Arc<Registry>, model: &mut Model, held: &mut Vec<Held>, op: &Op) -> Outcome {
    match op {
        Op::Connect(name) => {
            let expected = model.connect(name);
            match reg.connect(name) {
                Ok((session, inbox)) => {
                    prop_assert_eq!(expected, Ok(()));
                    prop_assert_eq!(&**session.name(), name.as_str());
                    held.push(Held {
                        name: name.clone(),
                        session,
                        inbox,
                        last_id: 0,
                    });
                }
                Err(error) => prop_assert_eq!(expected, Err(error)),
            }
        }
        Op::Disconnect { slot, end } => {
            if !held.is_empty() {
                let held_session = held.remove(slot % held.len());
                disconnect_checked(model, held_session, *end)?;
            }
        }
        Op::Create { caller, group } => {
            prop_assert_eq!(reg.create_group(caller, group), model.create(caller, group));
        }
        Op::Join { caller, group } => {
            prop_assert_eq!(
                reg.join_group(caller, group).map(|_| ()),
                model.join(caller, group)
            );
        }
        Op::Leave { caller, group } => {
            prop_assert_eq!(reg.leave_group(caller, group), model.leave(caller, group));
        }
        Op::Send { caller, to, text } => {
            let expected = model.send(caller, to, text);
            match (reg.send(caller, to, text.clone()), expected) {
                (Ok(sent), Ok((kind, recipients))) => {
                    prop_assert!(sent.id > model.last_id, "id {} not increasing", sent.id);
                    prop_assert_eq!(sent.recipients, recipients.len());
                    prop_assert_eq!(&sent.evicted, &Vec::<Name>::new());
                    model.last_id = sent.id;
                    for recipient in recipients {
                        model
                            .inboxes
                            .get_mut(&recipient)
                            .expect("recipients are connected")
                            .push(Expected {
                                id: sent.id,
                                sender: caller.clone(),
                                recipient: to.clone(),
                                kind,
                                text: text.clone(),
                                sent_at: sent.sent_at,
                            });
                    }
                }
                (Ok(sent), Err(error)) => {
                    prop_assert!(false, "sent {sent:?}, the model expects {error:?}");
                }
                (Err(error), expected) => prop_assert_eq!(Err(error), expected.map(drop)),
            }
        }
        Op::List(caller) => {
            prop_assert_eq!(reg.list_channels(caller), model.list(caller));
        }
        Op::Drain(slot) => {
            if !held.is_empty() {
                let len = held.len();
                drain_compared(model, &mut held[slot % len])?;
            }
        }
        Op::Check => check_all(reg, model, held)?,
    }
    Ok(())
}

/// Compares what `held` received with what the model expects, and forgets
/// both.
fn drain_compared(model: &mut Model, held: &mut Held) -> Outcome {
    prop_assert_eq!(held.inbox.close_reason(), None, "{} was closed", held.name);
    let got: Vec<Expected> = held.drain()?.iter().map(|m| Expected::of(m)).collect();
    let expected = std::mem::take(
        model
            .inboxes
            .get_mut(&held.name)
            .expect("a held session is connected"),
    );
    prop_assert_eq!(got, expected, "inbox of {}", held.name);
    Ok(())
}

/// Drains and compares `held`, then ends it; `end` also checks what
/// `Session::end` reports.
fn disconnect_checked(model: &mut Model, mut held: Held, end: bool) -> Outcome {
    drain_compared(model, &mut held)?;
    let mut departure = model.disconnect(&held.name);
    departure.groups_deleted.sort();
    if end {
        let mut got = held.session.end();
        if let Some(got) = &mut got {
            got.groups_deleted.sort();
        }
        prop_assert_eq!(got, Some(departure), "departure of {}", held.name);
        prop_assert_eq!(held.session.end(), None, "a second end of {}", held.name);
    }
    drop(held);
    Ok(())
}

/// Drains every inbox and compares it with the model.
fn check_all(reg: &Arc<Registry>, model: &mut Model, held: &mut [Held]) -> Outcome {
    compare_state(reg, model)?;
    for held_session in held.iter_mut() {
        drain_compared(model, held_session)?;
    }
    Ok(())
}

/// Compares the counts and every connected user's listing with the model.
fn compare_state(reg: &Arc<Registry>, model: &Model) -> Outcome {
    prop_assert_eq!(reg.connected_users(), model.users.len());
    prop_assert_eq!(reg.group_count(), model.groups.len());
    prop_assert!(model.groups.values().all(|members| !members.is_empty()));
    for user in &model.users {
        prop_assert_eq!(reg.list_channels(user), model.list(user), "as {}", user);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The fuzz test: tiny queues, invariants only.

/// Runs `ops` with queues `queue_depth` deep and `queue_bytes` large (a
/// message counts its strings plus 32 bytes, so 100 bytes hold one or two
/// messages and some messages never fit), checking invariants after
/// every step and that everything is gone once every session has ended.
fn run_fuzz(queue_depth: usize, queue_bytes: usize, ops: &[Op]) -> Outcome {
    let reg = registry(queue_depth, queue_bytes);
    let mut held: Vec<Held> = Vec::new();
    let mut last_id = 0;
    for (step, op) in ops.iter().enumerate() {
        fuzz_step(&reg, &mut held, &mut last_id, op)
            .and_then(|()| check_invariants(&reg, &held))
            .map_err(|error| TestCaseError::fail(format!("step {step} {op:?}: {error}")))?;
    }
    // Everyone leaves, evicted sessions included, in an order that mixes
    // stale sessions with newer owners of the same name.
    let mut end = false;
    while !held.is_empty() {
        end = !end;
        let slot = if end { 0 } else { held.len() - 1 };
        end_checked(&reg, &mut held, slot, end)?;
        check_invariants(&reg, &held)?;
    }
    prop_assert_eq!(reg.connected_users(), 0);
    prop_assert_eq!(reg.group_count(), 0);
    Ok(())
}

fn fuzz_step(reg: &Arc<Registry>, held: &mut Vec<Held>, last_id: &mut u64, op: &Op) -> Outcome {
    match op {
        Op::Connect(name) => {
            if let Ok((session, inbox)) = reg.connect(name) {
                held.push(Held {
                    name: name.clone(),
                    session,
                    inbox,
                    last_id: 0,
                });
            }
        }
        Op::Disconnect { slot, end } => {
            if !held.is_empty() {
                let slot = slot % held.len();
                end_checked(reg, held, slot, *end)?;
            }
        }
        Op::Create { caller, group } => drop(reg.create_group(caller, group)),
        Op::Join { caller, group } => drop(reg.join_group(caller, group)),
        Op::Leave { caller, group } => drop(reg.leave_group(caller, group)),
        Op::Send { caller, to, text } => match reg.send(caller, to, text.clone()) {
            Ok(sent) => {
                prop_assert!(sent.id > *last_id, "id {} after {}", sent.id, *last_id);
                *last_id = sent.id;
                for name in &sent.evicted {
                    prop_assert!(!is_live(held, name), "{name} was evicted but is still open");
                }
            }
            Err(ChatError::RecipientOverloaded(name)) => {
                prop_assert!(!is_live(held, &name), "{name} overloaded but still open");
            }
            Err(_) => {}
        },
        Op::List(caller) => drop(reg.list_channels(caller)),
        Op::Drain(slot) => {
            if !held.is_empty() {
                let len = held.len();
                held[slot % len].drain()?;
            }
        }
        Op::Check => {}
    }
    Ok(())
}

/// Whether a held session of `name` is still open.
fn is_live(held: &[Held], name: &str) -> bool {
    held.iter()
        .any(|h| h.name == name && h.inbox.close_reason().is_none())
}

/// Removes and ends the session at `slot`. For one still open, its own
/// listing beforehand predicts what `end` reports; an evicted one still
/// reports its departure once.
fn end_checked(reg: &Arc<Registry>, held: &mut Vec<Held>, slot: usize, end: bool) -> Outcome {
    let mut held_session = held.remove(slot);
    held_session.drain()?;
    if !end {
        return Ok(());
    }
    let expected = if held_session.inbox.close_reason().is_none() {
        let listing = reg.list_channels(&held_session.name);
        prop_assert!(listing.is_ok(), "{}: {listing:?}", held_session.name);
        let joined: Vec<ChannelInfo> = listing
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.joined)
            .collect();
        let mut groups_deleted: Vec<Name> = joined
            .iter()
            .filter(|c| c.member_count == 1)
            .map(|c| Arc::clone(&c.name))
            .collect();
        groups_deleted.sort();
        Some(Departure {
            groups_left: joined.len(),
            groups_deleted,
        })
    } else {
        None
    };
    let got = held_session.session.end();
    prop_assert!(got.is_some(), "{}: no departure", held_session.name);
    if let (Some(mut got), Some(expected)) = (got, expected) {
        got.groups_deleted.sort();
        prop_assert_eq!(got, expected, "departure of {}", held_session.name);
    }
    prop_assert_eq!(held_session.session.end(), None);
    Ok(())
}

/// The invariants that hold after every step, whatever happened.
fn check_invariants(reg: &Arc<Registry>, held: &[Held]) -> Outcome {
    for h in held {
        if let Some(reason) = h.inbox.close_reason() {
            prop_assert_eq!(reason, CloseReason::SlowConsumer, "{}", h.name);
        }
    }
    let live: Vec<&Held> = held
        .iter()
        .filter(|h| h.inbox.close_reason().is_none())
        .collect();
    let live_names: BTreeSet<&str> = live.iter().map(|h| h.name.as_str()).collect();
    prop_assert_eq!(live_names.len(), live.len(), "a name is held twice");
    prop_assert_eq!(reg.connected_users(), live.len());
    for name in name_pool() {
        if !live_names.contains(name.as_str()) {
            prop_assert_eq!(
                reg.list_channels(&name),
                Err(ChatError::Unauthenticated),
                "{:?} is not connected",
                name
            );
        }
    }
    if live.is_empty() {
        prop_assert_eq!(reg.group_count(), 0, "groups without users");
        return Ok(());
    }
    let users: Vec<&str> = live_names.iter().copied().collect();
    let mut groups: Option<Vec<(Name, u32)>> = None;
    let mut joined: BTreeMap<Name, u32> = BTreeMap::new();
    for h in &live {
        let listing = reg.list_channels(&h.name);
        prop_assert!(listing.is_ok(), "{}: {:?}", h.name, listing);
        let listing = listing.unwrap_or_default();
        let (listed_users, listed_groups): (Vec<&ChannelInfo>, Vec<&ChannelInfo>) =
            listing.iter().partition(|c| c.kind == ChannelKind::User);
        prop_assert!(
            listing[..listed_users.len()]
                .iter()
                .all(|c| c.kind == ChannelKind::User),
            "users come first"
        );
        let names: Vec<&str> = listed_users.iter().map(|c| &*c.name).collect();
        prop_assert_eq!(&names, &users, "users as seen by {}", h.name);
        prop_assert!(listed_users
            .iter()
            .all(|c| c.member_count == 0 && !c.joined));
        let these: Vec<(Name, u32)> = listed_groups
            .iter()
            .map(|c| (Arc::clone(&c.name), c.member_count))
            .collect();
        prop_assert!(these.windows(2).all(|w| w[0].0 < w[1].0), "groups sorted");
        prop_assert!(these.iter().all(|g| g.1 > 0), "an empty group: {these:?}");
        match &groups {
            None => groups = Some(these),
            Some(first) => prop_assert_eq!(first, &these, "groups as seen by {}", h.name),
        }
        for c in listed_groups.iter().filter(|c| c.joined) {
            *joined.entry(Arc::clone(&c.name)).or_default() += 1;
        }
    }
    let groups = groups.unwrap_or_default();
    prop_assert_eq!(reg.group_count(), groups.len());
    for (name, member_count) in &groups {
        prop_assert_eq!(
            *member_count,
            joined.get(name).copied().unwrap_or(0),
            "members of {}",
            name
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Every result, listing and delivery matches the reference model.
    #[test]
    fn registry_matches_model(ops in ops(8)) {
        run_against_model(&ops)?;
    }

    /// With queues 1 to 4 deep, some also small in bytes (so slow consumers
    /// get evicted): no panic, no
    /// empty group, member counts match who lists the group as joined, and
    /// nothing is left once every session has ended.
    #[test]
    fn fuzz_registry_invariants(
        queue_depth in 1..=4usize,
        queue_bytes in prop::sample::select(vec![ROOMY_QUEUE_BYTES, 200, 100]),
        ops in ops(12),
    ) {
        run_fuzz(queue_depth, queue_bytes, &ops)?;
    }
}
