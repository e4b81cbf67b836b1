//! The cluster engine: many nodes acting as one chat, with the shared state
//! (names, groups, memberships, message ids) in one Redis and every message
//! delivered through it. Each change is one Lua script ([`scripts`]) run by
//! a command lane (`store`); the script appends what each affected node
//! must apply to that node's inbox stream, and the node's inbox reader
//! (`inbox`) applies it to the connections it holds, in order, so every
//! member of a group sees one order on every node. The lease thread
//! (`lease`) keeps the node registered, frees dead nodes' users and fences
//! the node when it lost its lease or Redis lost its data. An operator's
//! action (a disconnect or ban, a removal, a deletion, a message) is a
//! script like any other, run from whichever node the operator called;
//! what it does to a stream another node holds reaches that node through
//! its inbox, in order with everything else for that stream. Connections,
//! mailboxes, delivery batching and the slow-consumer rule are the same local
//! ones the embedded engine uses. This module and its children are the only
//! code that knows Redis; nothing here knows gRPC.

mod inbox;
mod lease;
mod parked;
pub mod scripts;
mod store;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use futures::channel::oneshot;
use futures::FutureExt;
use slog::{info, warn, Logger};

use crate::domain::admin::banned_for;
use crate::domain::resume::new_token;
use crate::domain::send_limit::sending_too_fast;
use crate::domain::{
    check_group_name, check_message, check_name, check_username, mailbox::resumable_mailbox,
    ChannelInfo, ChannelKind, ChatEngine, ChatError, ChatStats, CloseReason, Connected, Departure,
    Disconnect, EventKinds, Evicted, HistoryPage, HistoryQuery, Item, Left, Limits, MemberPage,
    MemberQuery, Message, Name, Outbox, Recent, Reply, ResumeRequest, ResumeStatus, Sent, Session,
    SessionId, StoreStats, UserInfo, UserPage, WakeTicker, Wakeups,
};
use store::{Answer, Call, Lanes, Script, Store, Unreachable};

/// Users freed per reap step: a dead node's users are removed in batches so
/// no one script holds Redis for long.
const REAP_BATCH: usize = 200;

/// How a node joins a cluster (`--redis` and its companions), owned here
/// so the engine needs nothing from the bootstrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The Redis URL, `redis://HOST:PORT[/DB]`.
    pub url: String,
    /// The name every key lives under.
    pub prefix: String,
    /// How long a lease lasts without renewal.
    pub lease: Duration,
}

/// Tells the bootstrap whether the node can serve (reaches Redis and holds
/// its lease); the health service reports it.
pub type HealthReport = Box<dyn Fn(bool) + Send + Sync>;

/// The node could not join the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinError(pub String);

impl std::fmt::Display for JoinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JoinError {}

/// The engine handed to the adapter: a handle on this node.
pub struct ClusterEngine {
    node: Arc<Node>,
}

/// Who this node is in the cluster right now.
#[derive(Debug, Clone)]
struct Identity {
    /// The node's id, random and never reused; a new one after fencing.
    id: Arc<str>,
    /// The epoch of the Redis data the node registered with.
    epoch: String,
    /// False from fencing until the node has registered anew.
    registered: bool,
    /// When the lease runs out, measured from when its last successful
    /// renewal was sent.
    lease_deadline: Instant,
}

/// A connection whose stream is on this node.
#[derive(Debug)]
struct LocalConnection {
    name: Name,
    /// The node id the connection was registered under.
    node: Arc<str>,
    outbox: Outbox,
    /// The groups the inbox reader has seen it join.
    groups: HashSet<Name>,
    /// Dropped as a slow consumer: nothing more is queued for it.
    evicted: bool,
    /// The secret that resumes this session once it ends.
    resume_token: String,
    /// While a resuming connect waits for Redis's answer: the messages the
    /// inbox reader has for it meanwhile, queued after the replay (which
    /// must come first) once the answer is in.
    held: Option<Vec<Item>>,
}

/// The connections this node holds, and which of them are in which group:
/// what the inbox reader delivers to.
#[derive(Debug, Default)]
struct Local {
    connections: HashMap<SessionId, LocalConnection>,
    groups: HashMap<Name, HashSet<SessionId>>,
    /// The node id whose inbox the reader reads, and the last entry of it
    /// applied: a connection that ends now has had every entry up to here,
    /// and none after (the reader skips a connection it no longer holds).
    applied: (Arc<str>, u64),
}

impl Local {
    /// Takes connection `id` out of `group`.
    fn leave(&mut self, id: SessionId, group: &str) {
        if let Some(connection) = self.connections.get_mut(&id) {
            connection.groups.remove(group);
        }
        if let Some(members) = self.groups.get_mut(group) {
            members.remove(&id);
            if members.is_empty() {
                self.groups.remove(group);
            }
        }
    }

    /// Drops connection `id` and its memberships: nothing more is queued
    /// for it.
    fn remove(&mut self, id: SessionId) -> Option<LocalConnection> {
        let connection = self.connections.remove(&id)?;
        for group in &connection.groups {
            if let Some(members) = self.groups.get_mut(group) {
                members.remove(&id);
                if members.is_empty() {
                    self.groups.remove(group);
                }
            }
        }
        Some(connection)
    }
}

/// A disconnect that could not reach Redis; retried by the lease thread.
#[derive(Debug, Clone)]
struct PendingDisconnect {
    name: Name,
    node: Arc<str>,
    id: SessionId,
    /// What to keep for a resume (`None`: nothing, resume off).
    parked: Option<Parking>,
}

/// An ended session's recent messages, on their way to Redis for a resume.
#[derive(Debug, Clone)]
struct Parking {
    token: String,
    /// The newest id its ring dropped.
    dropped: u64,
    /// Its ring, encoded ([`parked::encode`]).
    stored: String,
    /// The last entry of the connection's node inbox applied when it
    /// ended: the messages for it in later entries are added in Redis.
    applied: u64,
}

/// Everything a node shares between the adapter's calls, the lanes'
/// completions, the inbox reader and the lease thread.
struct Node {
    store: Arc<Store>,
    lanes: Lanes,
    limits: Limits,
    lease: Duration,
    ticker: Option<WakeTicker>,
    identity: Mutex<Identity>,
    /// Behind its own lock: the reader takes it per batch of entries, calls
    /// per connect and disconnect; never held across a Redis call.
    local: Mutex<Local>,
    next_connection: AtomicU64,
    /// Set by shutdown: new work is refused.
    closing: AtomicBool,
    /// Set by stop: the threads end.
    stopped: AtomicBool,
    /// Whether the node last reported itself able to serve.
    serving: AtomicBool,
    health: HealthReport,
    /// Disconnects to retry, and old identities whose users to free.
    pending: Mutex<Vec<PendingDisconnect>>,
    retired: Mutex<Vec<Arc<str>>>,
    log: Logger,
    /// This node, for the completions its sessions' disconnects queue.
    me: Weak<Node>,
    /// Direct and group messages accepted through this node, for
    /// monitoring.
    sent: [AtomicU64; 2],
    /// Lease renewals that succeeded and that failed, for monitoring.
    renewals: [AtomicU64; 2],
    /// The age of the last message the inbox reader applied, in µs.
    inbox_lag_micros: AtomicU64,
    /// Messages and bytes of text kept in every group's history, as the
    /// last lease renewal read them.
    history_kept: [AtomicU64; 2],
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its state consistent at each step.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A random id for a node or an epoch: 16 hex digits from the OS.
fn random_id() -> String {
    let mut bytes = [0u8; 8];
    let read = std::fs::File::open("/dev/urandom")
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut bytes));
    if read.is_err() {
        // No /dev/urandom: time and pid still make a collision unlikely.
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        bytes = ((nanos as u64) ^ (u64::from(std::process::id()) << 40)).to_be_bytes();
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Joins the cluster described by `config`: connects to Redis, registers
/// this node and starts its threads.
///
/// # Errors
/// [`JoinError`] when the URL is unusable, Redis cannot be reached, or a
/// thread cannot be started.
pub fn start(
    config: &ClusterConfig,
    limits: Limits,
    ticker: Option<WakeTicker>,
    health: HealthReport,
    log: &Logger,
) -> Result<ClusterEngine, JoinError> {
    let store = Arc::new(Store::open(&config.url, &config.prefix).map_err(JoinError)?);
    let mut connection = store
        .connect(store::CALL_TIMEOUT)
        .map_err(|error| JoinError(format!("cannot reach redis at {}: {}", config.url, error.0)))?;
    let log = log.new(slog::o!("engine" => "redis"));
    let lanes = Lanes::start(&store, &log)
        .map_err(|error| JoinError(format!("cannot start the redis lanes: {error}")))?;
    let node = Arc::new_cyclic(|me| Node {
        store,
        lanes,
        limits,
        lease: config.lease,
        ticker,
        identity: Mutex::new(Identity {
            id: Arc::from(""),
            epoch: String::new(),
            registered: false,
            lease_deadline: Instant::now(),
        }),
        local: Mutex::new(Local::default()),
        next_connection: AtomicU64::new(1),
        closing: AtomicBool::new(false),
        stopped: AtomicBool::new(false),
        serving: AtomicBool::new(false),
        health,
        pending: Mutex::new(Vec::new()),
        retired: Mutex::new(Vec::new()),
        log,
        me: Weak::clone(me),
        sent: [AtomicU64::new(0), AtomicU64::new(0)],
        renewals: [AtomicU64::new(0), AtomicU64::new(0)],
        inbox_lag_micros: AtomicU64::new(0),
        history_kept: [AtomicU64::new(0), AtomicU64::new(0)],
    });
    node.register(&mut connection).map_err(|error| {
        JoinError(format!(
            "cannot register in redis at {}: {error}",
            config.url
        ))
    })?;
    let reader = Arc::clone(&node);
    std::thread::Builder::new()
        .name("chat-inbox".to_owned())
        .spawn(move || inbox::run(&reader))
        .map_err(|error| JoinError(format!("cannot start the inbox reader: {error}")))?;
    let keeper = Arc::clone(&node);
    std::thread::Builder::new()
        .name("chat-lease".to_owned())
        .spawn(move || lease::run(&keeper, connection))
        .map_err(|error| JoinError(format!("cannot start the lease thread: {error}")))?;
    Ok(ClusterEngine { node })
}

impl Node {
    fn identity(&self) -> Identity {
        lock(&self.identity).clone()
    }

    /// Reports whether the node can serve, logging changes.
    fn set_serving(&self, serving: bool, why: &str) {
        if self.serving.swap(serving, Ordering::AcqRel) != serving {
            if serving {
                info!(self.log, "serving"; "why" => why);
            } else {
                warn!(self.log, "not serving"; "why" => why);
            }
            (self.health)(serving);
        }
    }

    /// Registers under a new node id, on `connection`.
    fn register(&self, connection: &mut redis::Connection) -> Result<(), Unreachable> {
        let id: Arc<str> = Arc::from(random_id());
        let ttl = self.lease.as_millis().to_string();
        let sent = Instant::now();
        let call = Call::new(
            Script::Register,
            &[id.as_bytes(), ttl.as_bytes(), random_id().as_bytes()],
        );
        let answer = self.store.run_one(connection, &call)?;
        let epoch = match (answer.is_ok(), answer.text(1)) {
            (true, Some(epoch)) => epoch.to_owned(),
            _ => {
                return Err(Unreachable(format!(
                    "registration refused: {}",
                    answer.status()
                )))
            }
        };
        info!(self.log, "joined the cluster"; "node" => &*id, "epoch" => &epoch);
        *lock(&self.identity) = Identity {
            id,
            epoch,
            registered: true,
            lease_deadline: sent + self.lease,
        };
        self.set_serving(true, "registered");
        Ok(())
    }

    /// Ends every local stream with UNAVAILABLE and drops the node's
    /// identity: it registers anew, and frees the old identity's users.
    fn fence(&self, why: &str) {
        let old = {
            let mut identity = lock(&self.identity);
            if !identity.registered {
                return;
            }
            identity.registered = false;
            Arc::clone(&identity.id)
        };
        warn!(self.log, "fenced: dropping every local connection"; "why" => why, "node" => &*old);
        self.set_serving(false, why);
        // Redis may have restarted: the lanes' connections may be dead.
        self.lanes.reconnect();
        let connections = {
            let mut local = lock(&self.local);
            local.groups.clear();
            std::mem::take(&mut local.connections)
        };
        for connection in connections.values() {
            connection.outbox.close(CloseReason::Fenced);
        }
        lock(&self.retired).push(old);
    }

    /// The node id to run a call under, or the refusal when the node holds
    /// no lease right now.
    fn current_node(&self) -> Result<Arc<str>, ChatError> {
        if self.closing.load(Ordering::Acquire) {
            return Err(ChatError::ShuttingDown);
        }
        let identity = lock(&self.identity);
        if identity.registered {
            Ok(Arc::clone(&identity.id))
        } else {
            Err(ChatError::Unavailable(
                "this node is not registered in the cluster".to_owned(),
            ))
        }
    }

    /// Runs `script` for `caller` and maps its answer with `done`.
    fn call<T: Send + 'static>(
        self: &Arc<Self>,
        caller: &str,
        script: Script,
        args: &[&[u8]],
        done: impl FnOnce(&Answer) -> Result<T, ChatError> + Send + 'static,
    ) -> Reply<T> {
        let mut all: Vec<&[u8]> = Vec::with_capacity(args.len() + 1);
        all.push(caller.as_bytes());
        all.extend_from_slice(args);
        self.run(caller, script, &all, done)
    }

    /// Runs `script` with this node's id and `args` on the lane of `lane`
    /// (the name whose calls must stay in order), and maps its answer with
    /// `done`: for an operator's call, which has no caller to check.
    fn run<T: Send + 'static>(
        self: &Arc<Self>,
        lane: &str,
        script: Script,
        args: &[&[u8]],
        done: impl FnOnce(&Answer) -> Result<T, ChatError> + Send + 'static,
    ) -> Reply<T> {
        let node = match self.current_node() {
            Ok(node) => node,
            Err(refused) => return Reply::now(Err(refused)),
        };
        let mut all: Vec<&[u8]> = Vec::with_capacity(args.len() + 1);
        all.push(node.as_bytes());
        all.extend_from_slice(args);
        let (answer_tx, answer_rx) = oneshot::channel();
        self.lanes.submit(
            lane,
            Call::new(script, &all),
            Box::new(move |answer| {
                let result = match answer {
                    Ok(answer) => match common_refusal(&answer) {
                        Some(refused) => Err(refused),
                        None => done(&answer),
                    },
                    Err(error) => Err(unavailable(&error)),
                };
                let _ = answer_tx.send(result);
            }),
        );
        answer_later(answer_rx)
    }

    /// Authenticates `caller` only, then refuses with `invalid`: a call with
    /// a bad argument gets UNAUTHENTICATED first, as on a single node.
    fn refuse_after_auth<T: Send + 'static>(
        self: &Arc<Self>,
        caller: &str,
        invalid: ChatError,
    ) -> Reply<T> {
        self.call(caller, Script::Whoami, &[], move |answer| {
            match answer.status() {
                "OK" => Err(invalid),
                other => Err(unexpected(other)),
            }
        })
    }

    fn connect(
        self: &Arc<Self>,
        username: &str,
        peer: &str,
        resume: Option<ResumeRequest>,
        events: EventKinds,
    ) -> Reply<Connected> {
        if let Err(invalid) = check_username(username) {
            return Reply::now(Err(invalid));
        }
        let node = match self.current_node() {
            Ok(node) => node,
            Err(ChatError::ShuttingDown) => {
                return self.refuse_unless_banned(username, ChatError::ShuttingDown)
            }
            Err(refused) => return Reply::now(Err(refused)),
        };
        let epoch: Arc<str> = Arc::from(self.identity().epoch);
        let name: Name = Arc::from(username);
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let (outbox, inbox) = resumable_mailbox(
            self.limits.queue_depth,
            self.limits.queue_bytes,
            self.ticker.clone(),
            self.limits.resume,
            events,
        );
        let resume_token = new_token().unwrap_or_default();
        {
            // The connection is known locally before Redis hears of it, so
            // no entry for it can arrive first.
            let mut local = lock(&self.local);
            if local.connections.len() >= self.limits.max_connections {
                drop(local);
                let full = ChatError::TooManyConnections(self.limits.max_connections);
                return self.refuse_unless_banned(username, full);
            }
            local.connections.insert(
                id,
                LocalConnection {
                    name: Arc::clone(&name),
                    node: Arc::clone(&node),
                    outbox: outbox.clone(),
                    groups: HashSet::new(),
                    evicted: false,
                    resume_token: resume_token.clone(),
                    held: resume.is_some().then(Vec::new),
                },
            );
        }
        let connection = id.to_string();
        let asked = resume.as_ref().map_or("", |resume| resume.token.as_str());
        let call = Call::new(
            Script::Connect,
            &[
                node.as_bytes(),
                name.as_bytes(),
                connection.as_bytes(),
                asked.as_bytes(),
                peer.as_bytes(),
            ],
        );
        let (answer_tx, answer_rx) = oneshot::channel();
        let me = Arc::clone(self);
        self.lanes.submit(
            username,
            call,
            Box::new(move |answer| {
                let result = match answer {
                    Ok(answer) if answer.is_ok() => {
                        let resume_status = me.replay(id, &outbox, resume.as_ref(), &answer);
                        let owner: Arc<dyn Disconnect> = Arc::clone(&me) as Arc<dyn Disconnect>;
                        Ok(Connected {
                            session: Session::new(owner, name, id, outbox),
                            inbox,
                            resume_token,
                            epoch,
                            resume_status,
                        })
                    }
                    Ok(answer) => {
                        me.forget(id);
                        Err(match answer.status() {
                            "TAKEN" => ChatError::NameTaken(name.to_string()),
                            "BANNED" => ban_left(&answer),
                            other => common_refusal(&answer).unwrap_or_else(|| unexpected(other)),
                        })
                    }
                    Err(error) => {
                        // It may have been registered: free it if so.
                        me.forget(id);
                        me.retry_disconnect(PendingDisconnect {
                            name,
                            node,
                            id,
                            parked: None,
                        });
                        Err(unavailable(&error))
                    }
                };
                // A caller that went away drops the session here, which
                // disconnects it again.
                let _ = answer_tx.send(result);
            }),
        );
        answer_later(answer_rx)
    }

    /// A Connect the node refuses on its own (full, or shutting down):
    /// refused for an operator's ban on `username` first, as everywhere,
    /// else for `refused` (also when Redis cannot say).
    fn refuse_unless_banned(&self, username: &str, refused: ChatError) -> Reply<Connected> {
        let node = self.identity().id;
        let call = Call::new(Script::Banned, &[node.as_bytes(), username.as_bytes()]);
        let (answer_tx, answer_rx) = oneshot::channel();
        self.lanes.submit(
            username,
            call,
            Box::new(move |answer| {
                let refusal = match answer {
                    Ok(answer) if answer.status() == "BANNED" => ban_left(&answer),
                    _ => refused,
                };
                let _ = answer_tx.send(Err(refusal));
            }),
        );
        answer_later(answer_rx)
    }

    /// Queues what a successful connect's `answer` replays for `resume`
    /// in the new connection's `outbox`, then what the inbox reader held
    /// for it meanwhile, and says what became of the resume.
    fn replay(
        &self,
        id: SessionId,
        outbox: &Outbox,
        resume: Option<&ResumeRequest>,
        answer: &Answer,
    ) -> ResumeStatus {
        let Some(resume) = resume else {
            return ResumeStatus::NotAsked;
        };
        let kept = match (answer.int(1), answer.int(2), answer.text(3)) {
            (Some(1), Some(dropped), Some(stored)) => {
                let dropped = u64::try_from(dropped).unwrap_or(u64::MAX);
                // A record that does not read back answers GAP. What Redis
                // added to the ring is kept within the same bounds.
                Some(match parked::decode(stored) {
                    Some(messages) => Recent::refilled(messages, dropped, &self.limits.resume),
                    None => Recent::refilled(Vec::new(), u64::MAX, &self.limits.resume),
                })
            }
            _ => None,
        };
        let (status, replay) = match kept {
            Some(recent) => recent.replay_after(resume.after_id),
            None => (ResumeStatus::Unknown, Vec::new()),
        };
        let mut local = lock(&self.local);
        let Some(connection) = local.connections.get_mut(&id) else {
            // Ended already (fenced, or a slow consumer): nothing to queue.
            return status;
        };
        let status = self.limits.queue_replay(outbox, status, replay);
        for item in connection.held.take().unwrap_or_default() {
            if outbox.queue(item).is_err() {
                // A burst larger than the queue while the answer was on its
                // way: the slow-consumer rule ends the stream.
                connection.evicted = true;
                outbox.close(CloseReason::SlowConsumer);
                break;
            }
        }
        drop(local);
        outbox.wake();
        status
    }

    /// Drops a local connection's entry; also answers the last entry of
    /// its node's inbox applied to it.
    fn forget(&self, id: SessionId) -> Option<(LocalConnection, u64)> {
        let mut local = lock(&self.local);
        let connection = local.remove(id)?;
        let applied = if local.applied.0 == connection.node {
            local.applied.1
        } else {
            0
        };
        Some((connection, applied))
    }

    /// Frees `pending`'s name in Redis, keeping it for a retry when Redis
    /// cannot be reached.
    fn release(self: &Arc<Self>, pending: PendingDisconnect) {
        let me = Arc::clone(self);
        let connection = pending.id.to_string();
        let window = self.limits.resume.window.as_millis().to_string();
        let most = self.limits.membership_events_max_members.to_string();
        let (token, dropped, stored, applied) = match &pending.parked {
            Some(parking) => (
                parking.token.as_str(),
                parking.dropped.to_string(),
                parking.stored.as_str(),
                parking.applied.to_string(),
            ),
            None => ("", String::new(), "", String::new()),
        };
        let call = Call::new(
            Script::Disconnect,
            &[
                pending.node.as_bytes(),
                pending.name.as_bytes(),
                pending.node.as_bytes(),
                connection.as_bytes(),
                token.as_bytes(),
                window.as_bytes(),
                dropped.as_bytes(),
                stored.as_bytes(),
                applied.as_bytes(),
                most.as_bytes(),
            ],
        );
        let name = Arc::clone(&pending.name);
        self.lanes.submit(
            &name,
            call,
            Box::new(move |answer| match answer {
                Ok(answer) => {
                    if answer.is_ok() {
                        for index in 2..answer.field_count() {
                            if let Some(group) = answer.text(index) {
                                info!(me.log, "group deleted";
                                    "group" => group, "reason" => "last member disconnected");
                            }
                        }
                    }
                }
                Err(error) => {
                    warn!(me.log, "cannot free a name yet; will retry";
                        "user" => &*pending.name, "error" => %error);
                    me.retry_disconnect(pending);
                }
            }),
        );
    }

    fn retry_disconnect(&self, pending: PendingDisconnect) {
        if !self.stopped.load(Ordering::Acquire) {
            lock(&self.pending).push(pending);
        }
    }
}

impl Disconnect for Node {
    fn disconnect(&self, name: &Name, id: SessionId) -> Option<Departure> {
        let (connection, applied) = self.forget(id)?;
        let parked = connection.outbox.take_recent().map(|recent| Parking {
            token: connection.resume_token,
            dropped: recent.dropped_through(),
            stored: parked::encode(&recent),
            applied,
        });
        let pending = PendingDisconnect {
            name: Arc::clone(name),
            node: connection.node,
            id,
            parked,
        };
        match self.me.upgrade() {
            Some(me) => me.release(pending),
            None => self.retry_disconnect(pending),
        }
        // The groups it left are only known once Redis has answered.
        None
    }
}

impl Node {
    /// Leaves the cluster for good: waits briefly for the queued calls
    /// (the sessions' disconnects), frees every user still registered here,
    /// deletes the lease and stops the threads.
    fn leave_cluster(&self) {
        let deadline = Instant::now() + Duration::from_millis(1500);
        while !self.lanes.idle() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let identity = self.identity();
        let mut retire: Vec<Arc<str>> = std::mem::take(&mut *lock(&self.retired));
        if identity.registered {
            retire.push(Arc::clone(&identity.id));
        }
        lock(&self.identity).registered = false;
        self.stopped.store(true, Ordering::Release);
        self.lanes.stop();
        if let Ok(mut connection) = self.store.connect(store::CALL_TIMEOUT) {
            for old in retire {
                lease::reap(self, &mut connection, &identity.id, &old, true, deadline);
            }
        }
        info!(self.log, "left the cluster"; "node" => &*identity.id);
    }
}

/// The reply a lane's completion sends on `answer`; a completion that
/// never runs (the node stopped) is an unavailable chat.
fn answer_later<T: Send + 'static>(answer: oneshot::Receiver<Result<T, ChatError>>) -> Reply<T> {
    Reply::Later(
        async move {
            answer
                .await
                .unwrap_or_else(|_| Err(ChatError::Unavailable("the node stopped".to_owned())))
        }
        .boxed(),
    )
}

/// The refusals every call can get: the node lost its lease, or the caller
/// is connected nowhere.
fn common_refusal(answer: &Answer) -> Option<ChatError> {
    match answer.status() {
        "FENCED" => Some(ChatError::Unavailable(
            "this node lost its lease in the cluster".to_owned(),
        )),
        "UNAUTH" => Some(ChatError::Unauthenticated),
        _ => None,
    }
}

/// The refusal of a banned name, from a `BANNED ms_left` answer.
fn ban_left(answer: &Answer) -> ChatError {
    let millis = answer.int(1).and_then(|ms| u64::try_from(ms).ok());
    banned_for(Duration::from_millis(millis.unwrap_or(1)))
}

/// The refusal of a send over the limit, from a `TOOFAST µs_to_wait`
/// answer.
fn too_fast(answer: &Answer) -> ChatError {
    let micros = answer.int(1).and_then(|us| u64::try_from(us).ok());
    sending_too_fast(Duration::from_micros(micros.unwrap_or(1)))
}

/// A send's `OK id seconds microseconds recipients kind` answer, counted
/// in the node's sent messages.
fn sent(node: &Node, answer: &Answer) -> (Sent, Wakeups) {
    let id = answer.int(1).unwrap_or(0);
    let sent_at = inbox::timestamp(answer.int(2), answer.int(3));
    let recipients = answer.int(4).unwrap_or(0);
    let kind = usize::from(answer.text(5) == Some("g"));
    node.sent[kind].fetch_add(1, Ordering::Relaxed);
    (
        Sent {
            id: u64::try_from(id).unwrap_or(0),
            sent_at,
            recipients: usize::try_from(recipients).unwrap_or(0),
            evicted: Vec::new(),
        },
        Wakeups::default(),
    )
}

/// A user's `name node connected_at_µs group_count peer` fields of a
/// LIST_USERS answer, from `index`.
fn user_info(answer: &Answer, index: usize) -> UserInfo {
    let micros = answer
        .int(index + 2)
        .and_then(|us| u64::try_from(us).ok())
        .unwrap_or(0);
    UserInfo {
        name: Arc::from(answer.text(index).unwrap_or("")),
        node: answer.text(index + 1).unwrap_or("").to_owned(),
        connected_at: SystemTime::UNIX_EPOCH + Duration::from_micros(micros),
        group_count: answer
            .int(index + 3)
            .and_then(|count| u32::try_from(count).ok())
            .unwrap_or(0),
        peer: answer.text(index + 4).unwrap_or("").to_owned(),
    }
}

/// An answer no script gives: Redis is not running our scripts.
fn unexpected(status: &str) -> ChatError {
    ChatError::Unavailable(format!("unexpected answer from redis: {status:?}"))
}

/// The page a history script's `answer` holds for `query` on `group`.
fn history_page(query: &HistoryQuery, group: &Name, answer: &Answer) -> HistoryPage {
    let id = |index| {
        answer
            .int(index)
            .and_then(|id| u64::try_from(id).ok())
            .unwrap_or(0)
    };
    let evicted = Evicted {
        oldest: id(1),
        newest: id(2),
    };
    let mut found = Vec::new();
    let mut index = 3;
    while index + 5 < answer.field_count() {
        found.push(Arc::new(
            Message::new(
                id(index),
                Arc::from(answer.text(index + 1).unwrap_or("")),
                Arc::clone(group),
                ChannelKind::Group,
                Arc::from(answer.text(index + 2).unwrap_or("")),
                inbox::timestamp(answer.int(index + 3), answer.int(index + 4)),
            )
            .by_operator(answer.int(index + 5) == Some(1)),
        ));
        index += 6;
    }
    if !query.forward() {
        // Read newest first.
        found.reverse();
    }
    HistoryPage::assemble(query, found, evicted)
}

/// A ban's length in whole milliseconds, rounded up (a ban is never 0),
/// and at most the longest an operator may ask for (`u32::MAX` seconds).
fn ban_millis(ban: Duration) -> u64 {
    let most = u128::from(u32::MAX) * 1000;
    let millis = ban.as_micros().div_ceil(1000).clamp(1, most);
    u64::try_from(millis).unwrap_or(u64::MAX)
}

fn unavailable(error: &Unreachable) -> ChatError {
    ChatError::Unavailable(error.to_string())
}

impl ClusterEngine {
    /// Runs a group script (create, join, leave) for `caller` on group
    /// `name`; `done` reads a success.
    fn group_call<T: Send + 'static>(
        &self,
        caller: &str,
        name: &str,
        script: Script,
        done: fn(&Answer) -> T,
    ) -> Reply<T> {
        if let Err(invalid) = check_group_name(name) {
            return self.node.refuse_after_auth(caller, invalid);
        }
        let limit = self.node.limits.max_groups_per_user;
        let most = self.node.limits.membership_events_max_members.to_string();
        let group = name.to_owned();
        self.node.call(
            caller,
            script,
            &[
                name.as_bytes(),
                limit.to_string().as_bytes(),
                most.as_bytes(),
            ],
            move |answer| match answer.status() {
                "OK" => Ok(done(answer)),
                "TAKEN" => Err(ChatError::NameTaken(group)),
                "NOGROUP" => Err(ChatError::GroupNotFound(group)),
                "MEMBER" => Err(ChatError::AlreadyMember(group)),
                "NOTMEMBER" => Err(ChatError::NotMember(group)),
                "TOOMANYGROUPS" => Err(ChatError::TooManyGroups(limit)),
                other => Err(unexpected(other)),
            },
        )
    }
}

impl ChatEngine for ClusterEngine {
    fn connect(
        &self,
        username: &str,
        peer: &str,
        resume: Option<ResumeRequest>,
        events: EventKinds,
    ) -> Reply<Connected> {
        self.node.connect(username, peer, resume, events)
    }

    fn disconnect_user(
        &self,
        username: &str,
        reason: &str,
        ban: Option<Duration>,
    ) -> Reply<Departure> {
        if let Err(invalid) = check_username(username) {
            return Reply::now(Err(invalid));
        }
        let ban = ban.map_or(0, ban_millis).to_string();
        let most = self.node.limits.membership_events_max_members.to_string();
        let name = username.to_owned();
        self.node.run(
            username,
            Script::DisconnectUser,
            &[
                username.as_bytes(),
                reason.as_bytes(),
                ban.as_bytes(),
                most.as_bytes(),
            ],
            move |answer| match answer.status() {
                "OK" => Ok(Departure {
                    groups_left: usize::try_from(answer.int(1).unwrap_or(0)).unwrap_or(0),
                    groups_deleted: (2..answer.field_count())
                        .filter_map(|index| answer.text(index))
                        .map(Name::from)
                        .collect(),
                }),
                "NOTFOUND" => Err(ChatError::UserNotFound(name)),
                other => Err(unexpected(other)),
            },
        )
    }

    fn remove_member(&self, group: &str, username: &str) -> Reply<Left> {
        if let Err(invalid) = check_group_name(group) {
            return Reply::now(Err(invalid));
        }
        if let Err(invalid) = check_username(username) {
            return Reply::now(Err(invalid));
        }
        let most = self.node.limits.membership_events_max_members.to_string();
        let name = group.to_owned();
        self.node.run(
            group,
            Script::RemoveMember,
            &[group.as_bytes(), username.as_bytes(), most.as_bytes()],
            move |answer| match answer.status() {
                "OK" if answer.int(1) == Some(1) => Ok(Left::GroupDeleted),
                "OK" => Ok(Left::GroupKept),
                "NOGROUP" => Err(ChatError::GroupNotFound(name)),
                "NOTMEMBER" => Err(ChatError::NotMember(name)),
                other => Err(unexpected(other)),
            },
        )
    }

    fn delete_group(&self, group: &str) -> Reply<u32> {
        if let Err(invalid) = check_group_name(group) {
            return Reply::now(Err(invalid));
        }
        let name = group.to_owned();
        self.node.run(
            group,
            Script::DeleteGroup,
            &[group.as_bytes()],
            move |answer| match answer.status() {
                "OK" => Ok(u32::try_from(answer.int(1).unwrap_or(0)).unwrap_or(u32::MAX)),
                "NOGROUP" => Err(ChatError::GroupNotFound(name)),
                other => Err(unexpected(other)),
            },
        )
    }

    fn publish(&self, recipient: &str, text: String, sender: &str) -> Reply<(Sent, Wakeups)> {
        if let Err(invalid) = check_message(recipient, &text, self.node.limits.max_text_bytes) {
            return Reply::now(Err(invalid));
        }
        let to = recipient.to_owned();
        let node = Arc::clone(&self.node);
        let history = self.node.limits.history;
        let (size, bytes) = (history.messages.to_string(), history.bytes.to_string());
        self.node.run(
            sender,
            Script::Publish,
            &[
                sender.as_bytes(),
                recipient.as_bytes(),
                text.as_bytes(),
                size.as_bytes(),
                bytes.as_bytes(),
            ],
            move |answer| match answer.status() {
                "OK" => Ok(sent(&node, answer)),
                "NORECIP" => Err(ChatError::RecipientNotFound(to)),
                other => Err(unexpected(other)),
            },
        )
    }

    fn list_users(&self, query: MemberQuery) -> Reply<UserPage> {
        let count = (query.limit + 1).to_string();
        let after = query.after.clone();
        self.node.run(
            &after,
            Script::ListUsers,
            &[after.as_bytes(), count.as_bytes()],
            move |answer| match answer.status() {
                "OK" => {
                    let count = usize::try_from(answer.int(1).unwrap_or(0)).unwrap_or(0);
                    let found = (2..answer.field_count())
                        .step_by(5)
                        .filter(|index| index + 4 < answer.field_count())
                        .map(|index| user_info(answer, index))
                        .collect();
                    Ok(UserPage::assemble(&query, found, count))
                }
                other => Err(unexpected(other)),
            },
        )
    }

    fn authenticate(&self, caller: &str) -> Reply<()> {
        self.node.call(caller, Script::Whoami, &[], |answer| {
            match answer.status() {
                "OK" => Ok(()),
                other => Err(unexpected(other)),
            }
        })
    }

    fn create_group(&self, caller: &str, name: &str) -> Reply<()> {
        self.group_call(caller, name, Script::CreateGroup, |_| ())
    }

    fn join_group(&self, caller: &str, name: &str) -> Reply<u64> {
        self.group_call(caller, name, Script::JoinGroup, |answer| {
            answer
                .int(1)
                .and_then(|position| u64::try_from(position).ok())
                .unwrap_or(0)
        })
    }

    fn history(&self, caller: &str, group: &str, query: HistoryQuery) -> Reply<HistoryPage> {
        if let Err(invalid) = check_group_name(group) {
            return self.node.refuse_after_auth(caller, invalid);
        }
        let name: Name = Arc::from(group);
        let (after, before) = (query.after_id.to_string(), query.before_id.to_string());
        let count = (query.limit + 1).to_string();
        self.node.call(
            caller,
            Script::History,
            &[
                group.as_bytes(),
                after.as_bytes(),
                before.as_bytes(),
                count.as_bytes(),
            ],
            move |answer| match answer.status() {
                "NOGROUP" => Err(ChatError::GroupNotFound(name.to_string())),
                "NOTMEMBER" => Err(ChatError::MembersOnly(name.to_string())),
                "OK" => Ok(history_page(&query, &name, answer)),
                other => Err(unexpected(other)),
            },
        )
    }

    fn leave_group(&self, caller: &str, name: &str) -> Reply<Left> {
        self.group_call(caller, name, Script::LeaveGroup, |answer| {
            if answer.int(1) == Some(1) {
                Left::GroupDeleted
            } else {
                Left::GroupKept
            }
        })
    }

    fn send(&self, caller: &str, recipient: &str, text: String) -> Reply<(Sent, Wakeups)> {
        let limit = self.node.limits.send_limit;
        let (interval, tolerance) = if limit.on() {
            (limit.interval_micros(), limit.tolerance_micros())
        } else {
            (0, 0)
        };
        let (interval, tolerance) = (interval.to_string(), tolerance.to_string());
        if let Err(invalid) = check_message(recipient, &text, self.node.limits.max_text_bytes) {
            if !limit.on() {
                return self.node.refuse_after_auth(caller, invalid);
            }
            // Refused for its arguments, it still spends the budget.
            return self.node.call(
                caller,
                Script::Spend,
                &[interval.as_bytes(), tolerance.as_bytes()],
                move |answer| match answer.status() {
                    "OK" => Err(invalid),
                    "TOOFAST" => Err(too_fast(answer)),
                    other => Err(unexpected(other)),
                },
            );
        }
        let to = recipient.to_owned();
        let node = Arc::clone(&self.node);
        let history = self.node.limits.history;
        let (size, bytes) = (history.messages.to_string(), history.bytes.to_string());
        self.node.call(
            caller,
            Script::Send,
            &[
                recipient.as_bytes(),
                text.as_bytes(),
                size.as_bytes(),
                bytes.as_bytes(),
                interval.as_bytes(),
                tolerance.as_bytes(),
            ],
            move |answer| match answer.status() {
                "OK" => Ok(sent(&node, answer)),
                "TOOFAST" => Err(too_fast(answer)),
                "NORECIP" => Err(ChatError::RecipientNotFound(to)),
                "NOTMEMBEROF" => Err(ChatError::NotMemberOfRecipient(to)),
                other => Err(unexpected(other)),
            },
        )
    }

    fn list_channels(&self, caller: &str) -> Reply<Vec<ChannelInfo>> {
        self.node.call(caller, Script::ListChannels, &[], |answer| {
            if !answer.is_ok() {
                return Err(unexpected(answer.status()));
            }
            let mut users = Vec::new();
            let mut groups = Vec::new();
            let mut index = 1;
            while let Some(kind) = answer.text(index) {
                let name: Name = Arc::from(answer.text(index + 1).unwrap_or(""));
                if kind == "g" {
                    groups.push(ChannelInfo {
                        name,
                        kind: ChannelKind::Group,
                        member_count: u32::try_from(answer.int(index + 2).unwrap_or(0))
                            .unwrap_or(0),
                        joined: answer.int(index + 3) == Some(1),
                    });
                    index += 4;
                } else {
                    users.push(ChannelInfo {
                        name,
                        kind: ChannelKind::User,
                        member_count: 0,
                        joined: false,
                    });
                    index += 2;
                }
            }
            users.sort_unstable_by(|a, b| a.name.cmp(&b.name));
            groups.sort_unstable_by(|a, b| a.name.cmp(&b.name));
            users.append(&mut groups);
            Ok(users)
        })
    }

    fn list_members(&self, caller: &str, group: &str, query: MemberQuery) -> Reply<MemberPage> {
        if let Err(invalid) = check_group_name(group) {
            return self.node.refuse_after_auth(caller, invalid);
        }
        let name = group.to_owned();
        let count = (query.limit + 1).to_string();
        let after = query.after.clone();
        self.node.call(
            caller,
            Script::ListMembers,
            &[group.as_bytes(), after.as_bytes(), count.as_bytes()],
            move |answer| match answer.status() {
                "NOGROUP" => Err(ChatError::GroupNotFound(name)),
                "OK" => {
                    let count = usize::try_from(answer.int(1).unwrap_or(0)).unwrap_or(0);
                    let found = (2..answer.field_count())
                        .filter_map(|index| answer.text(index))
                        .map(Name::from)
                        .collect();
                    Ok(MemberPage::assemble(&query, found, count))
                }
                other => Err(unexpected(other)),
            },
        )
    }

    fn send_typing(&self, caller: &str, recipient: &str) -> Reply<()> {
        if let Err(problem) = check_name(recipient) {
            let invalid = ChatError::InvalidName {
                field: "recipient",
                problem,
            };
            return self.node.refuse_after_auth(caller, invalid);
        }
        let to = recipient.to_owned();
        self.node.call(
            caller,
            Script::SendTyping,
            &[recipient.as_bytes()],
            move |answer| match answer.status() {
                "OK" => Ok(()),
                "NORECIP" => Err(ChatError::RecipientNotFound(to)),
                "NOTMEMBEROF" => Err(ChatError::NotMemberOfRecipient(to)),
                other => Err(unexpected(other)),
            },
        )
    }

    fn shutdown(&self) {
        self.node.closing.store(true, Ordering::Release);
        self.node.set_serving(false, "shutting down");
        let outboxes: Vec<Outbox> = lock(&self.node.local)
            .connections
            .values()
            .map(|connection| connection.outbox.clone())
            .collect();
        for outbox in outboxes {
            outbox.close(CloseReason::Shutdown);
        }
    }

    fn stop(&self) {
        self.node.leave_cluster();
    }

    fn local_users(&self) -> usize {
        lock(&self.node.local).connections.len()
    }

    /// This node's view: its own streams, the groups they are in, their
    /// queues, and the messages sent through it.
    fn stats(&self) -> ChatStats {
        let local = lock(&self.node.local);
        let mut stats = ChatStats {
            connected_users: local.connections.len(),
            groups: local.groups.len(),
            memberships: local.groups.values().map(HashSet::len).sum(),
            direct_messages: self.node.sent[0].load(Ordering::Relaxed),
            group_messages: self.node.sent[1].load(Ordering::Relaxed),
            history_messages: usize::try_from(self.node.history_kept[0].load(Ordering::Relaxed))
                .unwrap_or(usize::MAX),
            history_bytes: usize::try_from(self.node.history_kept[1].load(Ordering::Relaxed))
                .unwrap_or(usize::MAX),
            ..ChatStats::default()
        };
        let mut store = StoreStats {
            lease_renewals: self.node.renewals[0].load(Ordering::Relaxed),
            lease_failures: self.node.renewals[1].load(Ordering::Relaxed),
            inbox_lag_seconds: self.node.inbox_lag_micros.load(Ordering::Relaxed) as f64 / 1e6,
            ..StoreStats::default()
        };
        self.node.store.counters.read_into(&mut store);
        stats.store = Some(store);
        for connection in local.connections.values() {
            let (messages, bytes) = connection.outbox.queued();
            stats.queued_messages += messages;
            stats.queued_bytes += bytes;
        }
        stats
    }
}
