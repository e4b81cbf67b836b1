//! A randomized concurrency stress test against a real server: twelve client
//! threads, each on its own HTTP/2 connection and with its own fixed seed,
//! connect, disconnect, create, join, leave, send and list at random for
//! about three seconds, while a stable core of users reads. The seeds come
//! from `STRESS_SEED` (default 0); how far each thread gets in its sequence
//! depends on timing, what is checked does not.
//!
//! What is checked never depends on timing:
//!
//! * Each thread acts only as its own users (and as a never-connected
//!   "ghost"), so it knows exactly which of its users are connected and
//!   which groups each is in, whatever the other threads do. Every answer
//!   it can predict from that alone is checked exactly (sending to one's own
//!   group or to a core user succeeds, joining a group one is in fails with
//!   ALREADY_EXISTS, a listing shows `joined` for exactly one's own groups,
//!   ...); every other answer must be one of the codes the contract allows.
//! * Delivery is judged with a logical clock (one atomic counter, read
//!   before a call starts and after it returns). A session's checked window
//!   runs from its `connected` event to the moment its final drain starts:
//!   the drain sends the user a message of its own and reads up to it, and a
//!   mailbox is first in, first out, so everything queued before that marker
//!   has been read. A membership's window runs from the return of the create
//!   or join to the start of the leave or the drain. Only the owning thread
//!   changes a user's memberships, and a member keeps its group alive, so
//!   within the window the group name means one group with that user in it.
//!   Every OK'd send whose whole call lies inside a session's window (direct)
//!   or a membership's window (group) must reach that session exactly once.
//!   The stable core (connected, in their groups, before the churn starts;
//!   never leave; only read) gets such a window around every send, so it
//!   must receive every OK'd message to it and to its groups.
//! * Every received message matches an OK'd send (id, sender, recipient,
//!   type, text), each session's ids strictly increase (the registry numbers
//!   and queues messages under one lock), and no user receives an id twice.
//! * A direct send by a connected caller to a user connected throughout the
//!   call is never NOT_FOUND.
//! * At a quiesced checkpoint (all threads stopped, disconnects settled) the
//!   users, groups and member counts are exactly the tracked ones, and every
//!   user's `joined` flags are exactly its groups; once everyone has
//!   disconnected, a fresh user sees only itself.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chat_client::api::{status_of, Api, Inbox, InboxEvent};
use chat_proto::chat::{
    ChannelType, CreateGroupChatRequest, JoinGroupChatRequest, LeaveGroupChatRequest,
    ListChannelsRequest, Message, SendMessageRequest,
};
use common::{eventually, TestServer, WAIT};
use grpcio::{CallOption, RpcStatus, RpcStatusCode as Code};

/// Client threads doing random operations.
const THREADS: usize = 12;
/// Users each thread owns.
const USERS_PER_THREAD: usize = 3;
/// How long the threads run, at most.
const RUN_FOR: Duration = Duration::from_secs(3);
/// How many operations a thread does, at most.
const MAX_OPS_PER_THREAD: usize = 4000;
/// The stable core: connected first, never leave, only read.
const CORE: [&str; 4] = ["core0", "core1", "core2", "core3"];
/// The stable groups and their core members (the first one creates it).
const ROOMS: [(&str, &[usize]); 3] = [("room0", &[0, 1]), ("room1", &[1, 2, 3]), ("room2", &[2])];
/// Groups the threads create, join and leave.
const SHARED: [&str; 5] = ["grp0", "grp1", "grp2", "grp3", "grp4"];
/// Not a valid name.
const INVALID: &str = "not a/name";

/// The logical clock: strictly increasing, shared by all threads.
static CLOCK: AtomicU64 = AtomicU64::new(1);

fn tick() -> u64 {
    CLOCK.fetch_add(1, Ordering::SeqCst)
}

/// xorshift64*: small, fast and fully determined by its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng((seed + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------
// Calls, each with a deadline so a hung server fails the test instead of
// hanging it.

fn as_user(user: &str) -> CallOption {
    Api::as_user(user).timeout(WAIT)
}

fn create(api: &Api, user: &str, group: &str) -> Result<(), RpcStatus> {
    let mut request = CreateGroupChatRequest::new();
    request.name = group.to_owned();
    api.client
        .create_group_chat_opt(&request, as_user(user))
        .map(drop)
        .map_err(status_of)
}

fn join(api: &Api, user: &str, group: &str) -> Result<(), RpcStatus> {
    let mut request = JoinGroupChatRequest::new();
    request.name = group.to_owned();
    api.client
        .join_group_chat_opt(&request, as_user(user))
        .map(drop)
        .map_err(status_of)
}

fn leave(api: &Api, user: &str, group: &str) -> Result<(), RpcStatus> {
    let mut request = LeaveGroupChatRequest::new();
    request.name = group.to_owned();
    api.client
        .leave_group_chat_opt(&request, as_user(user))
        .map(drop)
        .map_err(status_of)
}

fn send(api: &Api, user: &str, to: &str, text: &str) -> Result<u64, RpcStatus> {
    let mut request = SendMessageRequest::new();
    request.recipient = to.to_owned();
    request.text = text.to_owned();
    api.client
        .send_message_opt(&request, as_user(user))
        .map(|reply| reply.message_id)
        .map_err(status_of)
}

/// A listing: users in order, then groups in order with (member_count,
/// joined).
#[derive(Debug, PartialEq, Eq)]
struct Listing {
    users: Vec<String>,
    groups: Vec<(String, u32, bool)>,
}

fn list(api: &Api, user: &str) -> Result<Listing, RpcStatus> {
    let reply = api
        .client
        .list_channels_opt(&ListChannelsRequest::new(), as_user(user))
        .map_err(status_of)?;
    let mut listing = Listing {
        users: Vec::new(),
        groups: Vec::new(),
    };
    for channel in reply.channels {
        match channel.type_.enum_value_or_default() {
            ChannelType::CHANNEL_TYPE_USER => {
                assert!(listing.groups.is_empty(), "{user}: a user after a group");
                assert_eq!((channel.member_count, channel.joined), (0, false));
                listing.users.push(channel.name);
            }
            ChannelType::CHANNEL_TYPE_GROUP => {
                assert!(channel.member_count > 0, "{user}: empty group {channel:?}");
                listing
                    .groups
                    .push((channel.name, channel.member_count, channel.joined));
            }
            other => panic!("{user}: channel type {other:?}"),
        }
    }
    assert!(listing.users.windows(2).all(|w| w[0] < w[1]), "{listing:?}");
    assert!(
        listing.groups.windows(2).all(|w| w[0].0 < w[1].0),
        "{listing:?}"
    );
    Ok(listing)
}

/// Asserts that `result` has one of the `allowed` codes (OK included as
/// `Code::OK`).
#[track_caller]
fn expect_one_of<T: std::fmt::Debug>(what: &str, result: &Result<T, RpcStatus>, allowed: &[Code]) {
    let code = match result {
        Ok(_) => Code::OK,
        Err(status) => status.code(),
    };
    assert!(
        allowed.contains(&code),
        "{what}: got {result:?}, expected one of {allowed:?}"
    );
}

// ---------------------------------------------------------------------------
// What the threads record.

/// An OK'd send.
#[derive(Debug, Clone)]
struct SendRecord {
    id: u64,
    sender: String,
    recipient: String,
    text: String,
    /// Clock before the call.
    start: u64,
    /// Clock after it returned.
    end: u64,
}

/// A direct send by a connected caller, with a valid text and name,
/// refused with NOT_FOUND.
#[derive(Debug, Clone)]
struct NotFound {
    recipient: String,
    start: u64,
    end: u64,
}

/// A time in a group.
#[derive(Debug, Clone)]
struct Membership {
    group: String,
    /// Clock after the create or join returned.
    from: u64,
    /// Clock before the leave or the final drain started.
    until: u64,
}

/// A connected session, owned by one thread.
struct Live {
    user: String,
    inbox: Inbox,
    /// Clock after the `connected` event.
    connected: u64,
    /// Current groups, each with the clock after it was joined.
    groups: BTreeMap<String, u64>,
    /// Groups already left.
    memberships: Vec<Membership>,
    received: Vec<Message>,
}

/// A session that has ended, with everything it received up to its drain.
#[derive(Debug)]
struct Life {
    user: String,
    connected: u64,
    /// Clock before the final drain's marker was sent.
    drained: u64,
    /// Clock before the stream was closed.
    closed: u64,
    memberships: Vec<Membership>,
    received: Vec<Message>,
}

impl Live {
    fn new(user: &str, inbox: Inbox, connected: u64) -> Live {
        Live {
            user: user.to_owned(),
            inbox,
            connected,
            groups: BTreeMap::new(),
            memberships: Vec::new(),
            received: Vec::new(),
        }
    }

    /// Takes whatever the stream has delivered so far.
    fn pump(&mut self) {
        while let Ok(event) = self.inbox.events().try_recv() {
            self.take(event);
        }
    }

    fn take(&mut self, event: InboxEvent) {
        match event {
            InboxEvent::Messages(messages) => {
                assert!(!messages.is_empty(), "{}: an empty delivery", self.user);
                self.received.extend(messages);
            }
            other => panic!("{}: unexpected {other:?}", self.user),
        }
    }

    /// Sends the user a marker, reads up to it, then closes the stream.
    /// The marker's send is recorded in `sends`.
    fn finish(mut self, api: &Api, sends: &mut Vec<SendRecord>) -> Life {
        self.pump();
        let drained = tick();
        let text = format!("marker for {}", self.user);
        let id = send(api, &self.user, &self.user, &text)
            .unwrap_or_else(|status| panic!("{}: marker: {status:?}", self.user));
        sends.push(SendRecord {
            id,
            sender: self.user.clone(),
            recipient: self.user.clone(),
            text,
            start: drained,
            end: tick(),
        });
        while !self.received.iter().any(|m| m.id == id) {
            match self.inbox.next_event(WAIT) {
                Some(event) => self.take(event),
                None => panic!("{}: the marker {id} did not arrive", self.user),
            }
        }
        for (group, from) in std::mem::take(&mut self.groups) {
            self.memberships.push(Membership {
                group,
                from,
                until: drained,
            });
        }
        let closed = tick();
        self.inbox.close();
        Life {
            user: self.user,
            connected: self.connected,
            drained,
            closed,
            memberships: self.memberships,
            received: self.received,
        }
    }
}

// ---------------------------------------------------------------------------
// The churning threads.

/// What a thread hands back.
struct Report {
    /// The thread's client: its streams die with it.
    api: Api,
    ended: Vec<Life>,
    live: Vec<Live>,
    sends: Vec<SendRecord>,
    not_found: Vec<NotFound>,
    ops: usize,
}

struct Worker {
    index: usize,
    api: Api,
    rng: Rng,
    own: Vec<String>,
    ghost: String,
    /// Every thread's users but this one's.
    others: Vec<String>,
    live: Vec<Live>,
    ended: Vec<Life>,
    sends: Vec<SendRecord>,
    not_found: Vec<NotFound>,
    texts: u64,
}

fn user_name(thread: usize, k: usize) -> String {
    format!("t{thread}u{k}")
}

fn is_room(name: &str) -> bool {
    ROOMS.iter().any(|(room, _)| *room == name)
}

impl Worker {
    fn new(index: usize, seed: u64, api: Api) -> Worker {
        let others = (0..THREADS)
            .filter(|&t| t != index)
            .flat_map(|t| (0..USERS_PER_THREAD).map(move |k| user_name(t, k)))
            .collect();
        Worker {
            index,
            api,
            rng: Rng::new(seed),
            own: (0..USERS_PER_THREAD).map(|k| user_name(index, k)).collect(),
            ghost: format!("ghost{index}"),
            others,
            live: Vec::new(),
            ended: Vec::new(),
            sends: Vec::new(),
            not_found: Vec::new(),
            texts: 0,
        }
    }

    fn run(mut self, deadline: Instant) -> Report {
        let mut ops = 0;
        while ops < MAX_OPS_PER_THREAD && Instant::now() < deadline {
            for live in &mut self.live {
                live.pump();
            }
            match self.rng.below(100) {
                0..=11 => self.connect(),
                12..=16 => self.disconnect(),
                17..=28 => self.create(),
                29..=43 => self.join(),
                44..=53 => self.leave(),
                54..=93 => self.send(),
                _ => self.list(),
            }
            ops += 1;
        }
        Report {
            api: self.api,
            ended: self.ended,
            live: self.live,
            sends: self.sends,
            not_found: self.not_found,
            ops,
        }
    }

    /// A random live session of this thread's, if any.
    fn caller(&mut self) -> Option<usize> {
        if self.live.is_empty() {
            None
        } else {
            Some(self.rng.below(self.live.len()))
        }
    }

    fn connect(&mut self) {
        match self.rng.below(10) {
            0 => {
                let result = self.api.open_inbox(INVALID, WAIT).map(drop);
                expect_one_of(
                    "connect an invalid name",
                    &result,
                    &[Code::INVALID_ARGUMENT],
                );
            }
            1 => {
                let core = *self.rng.pick(&CORE);
                let result = self.api.open_inbox(core, WAIT).map(drop);
                expect_one_of("connect a core name", &result, &[Code::ALREADY_EXISTS]);
            }
            _ => {
                let free: Vec<String> = self
                    .own
                    .iter()
                    .filter(|u| !self.live.iter().any(|l| &l.user == *u))
                    .cloned()
                    .collect();
                if free.is_empty() {
                    return;
                }
                let user = self.rng.pick(&free).clone();
                // The name may still be held by this thread's previous
                // session (its disconnect is asynchronous) or by a group.
                match self.api.open_inbox(&user, WAIT) {
                    Ok(inbox) => self.live.push(Live::new(&user, inbox, tick())),
                    Err(status) => {
                        expect_one_of::<()>("connect", &Err(status), &[Code::ALREADY_EXISTS]);
                    }
                }
            }
        }
    }

    fn disconnect(&mut self) {
        if let Some(i) = self.caller() {
            let live = self.live.swap_remove(i);
            let life = live.finish(&self.api, &mut self.sends);
            self.ended.push(life);
        }
    }

    fn create(&mut self) {
        let Some(i) = self.caller() else { return };
        let group = match self.rng.below(10) {
            0 => INVALID.to_owned(),
            1 => self.rng.pick(&ROOMS).0.to_owned(),
            2 => self.rng.pick(&self.others).clone(),
            _ => self.rng.pick(&SHARED).to_string(),
        };
        let live = &mut self.live[i];
        let result = create(&self.api, &live.user, &group);
        let what = format!("{} creates {group}", live.user);
        if group == INVALID {
            expect_one_of(&what, &result, &[Code::INVALID_ARGUMENT]);
        } else if live.groups.contains_key(&group) || is_room(&group) {
            expect_one_of(&what, &result, &[Code::ALREADY_EXISTS]);
        } else {
            expect_one_of(&what, &result, &[Code::OK, Code::ALREADY_EXISTS]);
        }
        if result.is_ok() {
            live.groups.insert(group, tick());
        }
    }

    fn join(&mut self) {
        let Some(i) = self.caller() else { return };
        let group = match self.rng.below(10) {
            0 => self.ghost.clone(),
            1..=3 => self.rng.pick(&ROOMS).0.to_owned(),
            _ => self.rng.pick(&SHARED).to_string(),
        };
        let live = &mut self.live[i];
        let result = join(&self.api, &live.user, &group);
        let what = format!("{} joins {group}", live.user);
        if live.groups.contains_key(&group) {
            expect_one_of(&what, &result, &[Code::ALREADY_EXISTS]);
        } else if is_room(&group) {
            expect_one_of(&what, &result, &[Code::OK]);
        } else if group == self.ghost {
            expect_one_of(&what, &result, &[Code::NOT_FOUND]);
        } else {
            expect_one_of(&what, &result, &[Code::OK, Code::NOT_FOUND]);
        }
        if result.is_ok() {
            live.groups.insert(group, tick());
        }
    }

    fn leave(&mut self) {
        let Some(i) = self.caller() else { return };
        let mine: Vec<String> = self.live[i].groups.keys().cloned().collect();
        let group = if !mine.is_empty() && self.rng.below(10) < 7 {
            self.rng.pick(&mine).clone()
        } else if self.rng.below(2) == 0 {
            self.rng.pick(&ROOMS).0.to_owned()
        } else {
            self.rng.pick(&SHARED).to_string()
        };
        let live = &mut self.live[i];
        let until = tick();
        let result = leave(&self.api, &live.user, &group);
        let what = format!("{} leaves {group}", live.user);
        if let Some(from) = live.groups.remove(&group) {
            expect_one_of(&what, &result, &[Code::OK]);
            live.memberships.push(Membership { group, from, until });
        } else if is_room(&group) {
            expect_one_of(&what, &result, &[Code::FAILED_PRECONDITION]);
        } else {
            expect_one_of(
                &what,
                &result,
                &[Code::NOT_FOUND, Code::FAILED_PRECONDITION],
            );
        }
    }

    fn send(&mut self) {
        let Some(i) = self.caller() else { return };
        self.texts += 1;
        let text = match self.rng.below(20) {
            0 => String::new(),
            1 => " \t ".to_owned(),
            _ => format!("t{} #{}", self.index, self.texts),
        };
        let valid_text = !text.trim().is_empty();
        let mine: Vec<String> = self.live[i].groups.keys().cloned().collect();
        let own_live: Vec<String> = self.live.iter().map(|l| l.user.clone()).collect();
        let recipient = match self.rng.below(20) {
            0..=4 if !mine.is_empty() => self.rng.pick(&mine).clone(),
            5..=7 => self.rng.pick(&CORE).to_string(),
            8 | 9 => self.rng.pick(&own_live).clone(),
            10..=13 => self.rng.pick(&self.others).clone(),
            14 | 15 => self.rng.pick(&ROOMS).0.to_owned(),
            16 => self.ghost.clone(),
            17 => INVALID.to_owned(),
            _ => self.rng.pick(&SHARED).to_string(),
        };
        // Now and then the caller is the ghost, who never connects.
        let ghost_calls = self.rng.below(20) == 0;
        let caller = if ghost_calls {
            self.ghost.clone()
        } else {
            self.live[i].user.clone()
        };
        let start = tick();
        let result = send(&self.api, &caller, &recipient, &text);
        let end = tick();
        let what = format!("{caller} sends {text:?} to {recipient}");
        let member = self.live[i].groups.contains_key(&recipient);
        if ghost_calls {
            expect_one_of(&what, &result, &[Code::UNAUTHENTICATED]);
        } else if !valid_text || recipient == INVALID {
            expect_one_of(&what, &result, &[Code::INVALID_ARGUMENT]);
        } else if member || CORE.contains(&recipient.as_str()) || own_live.contains(&recipient) {
            expect_one_of(&what, &result, &[Code::OK]);
        } else if is_room(&recipient) {
            expect_one_of(&what, &result, &[Code::PERMISSION_DENIED]);
        } else if recipient == self.ghost {
            expect_one_of(&what, &result, &[Code::NOT_FOUND]);
        } else if SHARED.contains(&recipient.as_str()) {
            expect_one_of(&what, &result, &[Code::NOT_FOUND, Code::PERMISSION_DENIED]);
        } else {
            // Another thread's user: connected, gone, or a group's name.
            expect_one_of(
                &what,
                &result,
                &[Code::OK, Code::NOT_FOUND, Code::PERMISSION_DENIED],
            );
            if matches!(&result, Err(status) if status.code() == Code::NOT_FOUND) {
                self.not_found.push(NotFound {
                    recipient: recipient.clone(),
                    start,
                    end,
                });
            }
        }
        if let Ok(id) = result {
            self.sends.push(SendRecord {
                id,
                sender: caller,
                recipient,
                text,
                start,
                end,
            });
        }
    }

    fn list(&mut self) {
        let Some(i) = self.caller() else { return };
        let live = &self.live[i];
        let listing = list(&self.api, &live.user)
            .unwrap_or_else(|status| panic!("{} lists: {status:?}", live.user));
        assert!(listing.users.contains(&live.user), "{listing:?}");
        for core in CORE {
            assert!(listing.users.iter().any(|u| u == core), "{listing:?}");
        }
        let joined: BTreeSet<&str> = listing
            .groups
            .iter()
            .filter(|g| g.2)
            .map(|g| g.0.as_str())
            .collect();
        let mine: BTreeSet<&str> = live.groups.keys().map(String::as_str).collect();
        assert_eq!(joined, mine, "{}'s groups in {listing:?}", live.user);
        for room in ROOMS {
            assert!(listing.groups.iter().any(|g| g.0 == room.0), "{listing:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// The test.

#[test]
fn random_concurrent_clients_lose_nothing_and_leave_nothing_behind() {
    // Queues far deeper than any backlog: nobody is a slow consumer here.
    let server = TestServer::start_with(|config| config.limits.queue_depth = 16_384);

    // The stable core: connected and in their rooms before the churn.
    let mut core: Vec<Live> = CORE
        .iter()
        .map(|user| Live::new(user, server.connect(user), tick()))
        .collect();
    for (room, members) in ROOMS {
        let (first, rest) = members.split_first().unwrap();
        create(&server.api, CORE[*first], room).unwrap();
        for &member in rest {
            join(&server.api, CORE[member], room).unwrap();
        }
    }
    for (room, members) in ROOMS {
        for &member in members {
            core[member].groups.insert(room.to_owned(), tick());
        }
    }

    // The churn. `STRESS_SEED` picks other seeds (default 0).
    let base: u64 = std::env::var("STRESS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0);
    eprintln!("stress: STRESS_SEED={base}");
    let deadline = Instant::now() + RUN_FOR;
    let handles: Vec<_> = (0..THREADS)
        .map(|index| {
            let api = server.new_api();
            std::thread::Builder::new()
                .name(format!("churn-{index}"))
                .spawn(move || {
                    let seed = base.wrapping_mul(THREADS as u64) + index as u64;
                    Worker::new(index, seed, api).run(deadline)
                })
                .unwrap()
        })
        .collect();
    let mut ended: Vec<Life> = Vec::new();
    let mut live: Vec<Live> = Vec::new();
    let mut sends: Vec<SendRecord> = Vec::new();
    let mut not_found: Vec<NotFound> = Vec::new();
    let mut ops = 0;
    // The threads' clients, kept until the end: a stream dies with its
    // client.
    let mut apis: Vec<Api> = Vec::new();
    for (index, handle) in handles.into_iter().enumerate() {
        let report = handle
            .join()
            .unwrap_or_else(|_| panic!("thread churn-{index} failed (see its panic above)"));
        ended.extend(report.ended);
        live.extend(report.live);
        sends.extend(report.sends);
        not_found.extend(report.not_found);
        ops += report.ops;
        apis.push(report.api);
    }
    live.append(&mut core);

    // The quiesced checkpoint.
    let api = &server.api;
    let expected_users: BTreeSet<String> = live.iter().map(|l| l.user.clone()).collect();
    let observer = CORE[0];
    eventually("the disconnected users are gone", || {
        let users = list(api, observer).unwrap().users;
        users.into_iter().collect::<BTreeSet<_>>() == expected_users
    });
    let mut expected_groups: BTreeMap<String, u32> = BTreeMap::new();
    for l in &live {
        for group in l.groups.keys() {
            *expected_groups.entry(group.clone()).or_default() += 1;
        }
    }
    let listing = list(api, observer).unwrap();
    let groups: BTreeMap<String, u32> = listing
        .groups
        .iter()
        .map(|(name, count, _)| (name.clone(), *count))
        .collect();
    assert_eq!(groups, expected_groups, "groups and member counts");
    for l in &live {
        let listing = list(api, &l.user).unwrap();
        let joined: BTreeSet<&String> = listing
            .groups
            .iter()
            .filter(|g| g.2)
            .map(|g| &g.0)
            .collect();
        assert_eq!(
            joined,
            l.groups.keys().collect::<BTreeSet<_>>(),
            "{}'s groups",
            l.user
        );
    }

    // Everyone still connected reads everything queued for it.
    for l in live {
        ended.push(l.finish(api, &mut sends));
    }

    check_deliveries(&ended, &sends, &not_found);

    let sessions = ended.len();
    // Nothing is left behind.
    drop(ended);
    drop(apis);
    let fresh = server.connect("fresh");
    eventually("everyone is gone", || {
        list(api, "fresh").unwrap()
            == Listing {
                users: vec!["fresh".to_owned()],
                groups: Vec::new(),
            }
    });
    drop(fresh);
    server.assert_nothing_left_in_redis();
    eprintln!(
        "stress: {ops} operations, {} messages sent, {sessions} sessions",
        sends.len()
    );
}

/// The delivery checks over everything recorded; see the file's doc.
fn check_deliveries(lives: &[Life], sends: &[SendRecord], not_found: &[NotFound]) {
    let mut by_id: HashMap<u64, &SendRecord> = HashMap::new();
    for record in sends {
        assert!(
            by_id.insert(record.id, record).is_none(),
            "id {} returned twice",
            record.id
        );
    }
    let mut per_user: HashMap<&str, BTreeSet<u64>> = HashMap::new();
    let mut required = 0;
    for life in lives {
        let seen = per_user.entry(&life.user).or_default();
        let mut last = 0;
        for message in &life.received {
            assert!(
                message.id > last,
                "{}: id {} after {last}",
                life.user,
                message.id
            );
            last = message.id;
            assert!(
                seen.insert(message.id),
                "{} received {} twice",
                life.user,
                message.id
            );
            let Some(record) = by_id.get(&message.id) else {
                panic!(
                    "{} received {message:?}, which no OK'd send made",
                    life.user
                );
            };
            assert_eq!(
                (&message.sender, &message.recipient, &message.text),
                (&record.sender, &record.recipient, &record.text),
                "{} received id {}",
                life.user,
                message.id
            );
            let kind = message.recipient_type.enum_value_or_default();
            if message.recipient == life.user {
                assert_eq!(kind, ChannelType::CHANNEL_TYPE_USER, "{message:?}");
            } else {
                assert_eq!(kind, ChannelType::CHANNEL_TYPE_GROUP, "{message:?}");
            }
        }
        let received: HashMap<u64, usize> =
            life.received.iter().fold(HashMap::new(), |mut counts, m| {
                *counts.entry(m.id).or_default() += 1;
                counts
            });
        for record in sends {
            let direct = record.recipient == life.user
                && life.connected < record.start
                && record.end < life.drained;
            let group = life.memberships.iter().any(|m| {
                m.group == record.recipient && m.from < record.start && record.end < m.until
            });
            if direct || group {
                required += 1;
                assert_eq!(
                    received.get(&record.id).copied().unwrap_or(0),
                    1,
                    "{} (connected {}..{}) did not receive exactly once {record:?}; \
                     memberships {:?}",
                    life.user,
                    life.connected,
                    life.drained,
                    life.memberships
                );
            }
        }
    }
    for refused in not_found {
        if let Some(life) = lives.iter().find(|life| {
            life.user == refused.recipient
                && life.connected < refused.start
                && refused.end < life.closed
        }) {
            panic!(
                "{refused:?}: NOT_FOUND while {} was connected ({}..{})",
                life.user, life.connected, life.closed
            );
        }
    }
    assert!(required > 0, "no delivery was checked");
    eprintln!("stress: {required} required deliveries checked");
}
