//! The node's way to Redis: connections with bounded timeouts, the scripts
//! loaded by hash, and the command lanes. A lane is a thread owning one
//! connection; it takes the calls queued for it, sends them as one
//! pipeline of `EVALSHA`s and hands each answer to its completion, so no
//! completion-queue thread ever waits on Redis. One caller's calls always
//! take the same lane, so they reach Redis in the order they were made.
//! This is the only module that builds Redis commands for the engine's
//! calls; answers leave it as plain [`Answer`]s.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use redis::{Connection, Value};
use slog::{debug, warn, Logger};

use super::scripts;
use crate::domain::{StoreStats, ROUND_TRIP_BOUNDS};

/// How long one Redis call may take before the node treats Redis as
/// unreachable: the bound on a chat call that needs Redis.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(1000);

/// Most calls sent in one pipeline.
const MAX_PIPELINE: usize = 128;

/// Command lanes per node.
const LANES: usize = 2;

/// Redis could not be reached, or did not answer in time. A call that failed
/// this way may still have been carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "redis unreachable: {}", self.0)
    }
}

impl From<redis::RedisError> for Unreachable {
    fn from(error: redis::RedisError) -> Unreachable {
        Unreachable(error.to_string())
    }
}

/// What the node counts of its round trips to Redis, for monitoring: a
/// few relaxed atomics per round trip (a pipeline of calls), none per
/// message.
#[derive(Debug, Default)]
pub struct StoreCounters {
    round_trips: [AtomicU64; ROUND_TRIP_BOUNDS.len() + 1],
    round_trip_nanos: AtomicU64,
    errors: AtomicU64,
}

impl StoreCounters {
    /// One round trip that took `took`.
    pub fn round_trip(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = ROUND_TRIP_BOUNDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(ROUND_TRIP_BOUNDS.len());
        if let Some(count) = self.round_trips.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.round_trip_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// `calls` calls failed: Redis unreachable or too slow.
    pub fn failed(&self, calls: usize) {
        self.errors.fetch_add(calls as u64, Ordering::Relaxed);
    }

    /// The counts so far, into `stats`.
    pub fn read_into(&self, stats: &mut StoreStats) {
        for (into, count) in stats.round_trips.iter_mut().zip(&self.round_trips) {
            *into = count.load(Ordering::Relaxed);
        }
        stats.round_trip_seconds = self.round_trip_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        stats.errors = self.errors.load(Ordering::Relaxed);
    }
}

/// The scripts, by the name [`scripts::all`] gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// See [`scripts::REGISTER`].
    Register,
    /// See [`scripts::RENEW`].
    Renew,
    /// See [`scripts::DEAD_NODES`].
    DeadNodes,
    /// See [`scripts::REAP`].
    Reap,
    /// See [`scripts::CONNECT`].
    Connect,
    /// See [`scripts::DISCONNECT`].
    Disconnect,
    /// See [`scripts::WHOAMI`].
    Whoami,
    /// See [`scripts::CREATE_GROUP`].
    CreateGroup,
    /// See [`scripts::JOIN_GROUP`].
    JoinGroup,
    /// See [`scripts::LEAVE_GROUP`].
    LeaveGroup,
    /// See [`scripts::SEND`].
    Send,
    /// See [`scripts::SEND_MANY`]: never submitted, made by the lane from
    /// consecutive [`Script::Send`] calls.
    SendMany,
    /// See [`scripts::LIST_CHANNELS`].
    ListChannels,
    /// See [`scripts::HISTORY`].
    History,
    /// See [`scripts::LIST_MEMBERS`].
    ListMembers,
    /// See [`scripts::SEND_TYPING`].
    SendTyping,
    /// See [`scripts::BANNED`].
    Banned,
    /// See [`scripts::SPEND`].
    Spend,
    /// See [`scripts::PUBLISH`].
    Publish,
    /// See [`scripts::DISCONNECT_USER`].
    DisconnectUser,
    /// See [`scripts::REMOVE_MEMBER`].
    RemoveMember,
    /// See [`scripts::DELETE_GROUP`].
    DeleteGroup,
    /// See [`scripts::LIST_USERS`].
    ListUsers,
}

/// One script call: the script and its `ARGV` (the node first).
#[derive(Debug, Clone)]
pub struct Call {
    /// Which script.
    pub script: Script,
    /// Its arguments.
    pub args: Vec<Vec<u8>>,
}

impl Call {
    /// A call of `script` with `args`.
    pub fn new(script: Script, args: &[&[u8]]) -> Call {
        Call {
            script,
            args: args.iter().map(|arg| arg.to_vec()).collect(),
        }
    }
}

/// A script's answer: its status word, then its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer(Vec<Field>);

/// One element of an [`Answer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// A string (Redis bulk string).
    Text(String),
    /// A number.
    Int(i64),
}

impl Answer {
    fn from_value(value: Value) -> Result<Answer, Unreachable> {
        let Value::Array(items) = value else {
            return Err(Unreachable(format!("unexpected script answer {value:?}")));
        };
        let fields = items
            .into_iter()
            .map(|item| match item {
                Value::Int(number) => Ok(Field::Int(number)),
                Value::BulkString(bytes) => {
                    Ok(Field::Text(String::from_utf8_lossy(&bytes).into_owned()))
                }
                Value::SimpleString(text) => Ok(Field::Text(text)),
                Value::Okay => Ok(Field::Text("OK".to_owned())),
                other => Err(Unreachable(format!("unexpected script field {other:?}"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Answer(fields))
    }

    /// The `count` answers of a SEND_MANY, in order, each as SEND would
    /// have answered: a bare id is a direct message accepted at the run's
    /// time. Each is an error if the reply is not the run's time and that
    /// many answers.
    fn each_of(value: Value, count: usize) -> Vec<Result<Answer, Unreachable>> {
        let unexpected = |other: &dyn std::fmt::Debug| {
            let problem = format!("unexpected answer to {count} sends: {other:?}");
            (0..count)
                .map(|_| Err(Unreachable(problem.clone())))
                .collect()
        };
        let Value::Array(items) = value else {
            return unexpected(&value);
        };
        if items.len() != count + 2 {
            return unexpected(&items);
        }
        let mut items = items.into_iter();
        let mut time = || match items.next() {
            Some(Value::Int(number)) => Some(number),
            Some(Value::BulkString(bytes)) => std::str::from_utf8(&bytes).ok()?.parse().ok(),
            _ => None,
        };
        let (Some(seconds), Some(micros)) = (time(), time()) else {
            return unexpected(&"a run's time");
        };
        items
            .map(|item| match item {
                Value::Int(id) => Ok(Answer(vec![
                    Field::Text("OK".to_owned()),
                    Field::Int(id),
                    Field::Int(seconds),
                    Field::Int(micros),
                    Field::Int(1),
                    Field::Text("d".to_owned()),
                ])),
                other => Answer::from_value(other),
            })
            .collect()
    }

    /// The status word: `OK` or the refusing rule.
    pub fn status(&self) -> &str {
        self.text(0).unwrap_or("")
    }

    /// Whether the script carried the call out.
    pub fn is_ok(&self) -> bool {
        self.status() == "OK"
    }

    /// Field `index` as a string.
    pub fn text(&self, index: usize) -> Option<&str> {
        match self.0.get(index)? {
            Field::Text(text) => Some(text),
            Field::Int(_) => None,
        }
    }

    /// Field `index` as a number (a numeric string counts).
    pub fn int(&self, index: usize) -> Option<i64> {
        match self.0.get(index)? {
            Field::Int(number) => Some(*number),
            Field::Text(text) => text.parse().ok(),
        }
    }

    /// How many fields, the status included.
    pub fn field_count(&self) -> usize {
        self.0.len()
    }
}

/// SEND's arguments: node, caller, recipient, text, history size, history
/// bytes, send interval, send tolerance.
const SEND_ARGS: usize = 8;
/// Those of SEND's arguments SEND_MANY takes per message.
const SEND_OWN: std::ops::Range<usize> = 1..4;
/// Those it takes once, with the node, for every message.
const SEND_SHARED: std::ops::Range<usize> = 4..8;

/// Whether `b` may join `a` in one SEND_MANY: both sends from the same
/// node (a node that registered again between them has a new id), with
/// the same limits.
fn mergeable(a: &Call, b: &Call) -> bool {
    let send = |call: &Call| call.script == Script::Send && call.args.len() == SEND_ARGS;
    send(a) && send(b) && a.args[0] == b.args[0] && a.args[SEND_SHARED] == b.args[SEND_SHARED]
}

/// What runs with a call's outcome, on the lane's thread. It must not block.
pub type Completion = Box<dyn FnOnce(Result<Answer, Unreachable>) + Send>;

struct Job {
    call: Call,
    queued: Instant,
    done: Completion,
}

/// Where Redis is, and the scripts' hashes.
pub struct Store {
    client: redis::Client,
    /// `{prefix}`: every key starts with it.
    base: String,
    /// Each script with its source and its SHA1 (what `EVALSHA` names).
    scripts: Vec<(Script, String, String)>,
    /// Round trips and failures, for monitoring.
    pub counters: StoreCounters,
}

impl Store {
    /// A store for `url` whose keys live under `prefix`.
    ///
    /// # Errors
    /// A message when the URL is not a Redis URL.
    pub fn open(url: &str, prefix: &str) -> Result<Store, String> {
        let client =
            redis::Client::open(url).map_err(|error| format!("--redis {url:?}: {error}"))?;
        let order = [
            Script::Register,
            Script::Renew,
            Script::DeadNodes,
            Script::Reap,
            Script::Connect,
            Script::Disconnect,
            Script::Whoami,
            Script::CreateGroup,
            Script::JoinGroup,
            Script::LeaveGroup,
            Script::Send,
            Script::SendMany,
            Script::ListChannels,
            Script::History,
            Script::ListMembers,
            Script::SendTyping,
            Script::Banned,
            Script::Spend,
            Script::Publish,
            Script::DisconnectUser,
            Script::RemoveMember,
            Script::DeleteGroup,
            Script::ListUsers,
        ];
        let scripts = order
            .into_iter()
            .zip(scripts::all())
            .map(|(script, (_, source))| {
                let hash = redis::Script::new(&source).get_hash().to_owned();
                (script, source, hash)
            })
            .collect();
        Ok(Store {
            client,
            base: format!("{{{prefix}}}"),
            scripts,
            counters: StoreCounters::default(),
        })
    }

    /// The key `<base>:<suffix>`.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.base)
    }

    /// A new connection whose calls time out after `timeout`.
    ///
    /// # Errors
    /// [`Unreachable`] when Redis does not accept it in time.
    pub fn connect(&self, timeout: Duration) -> Result<Connection, Unreachable> {
        let connected = self
            .client
            .get_connection_with_timeout(CALL_TIMEOUT)
            .and_then(|connection| {
                connection.set_read_timeout(Some(timeout))?;
                connection.set_write_timeout(Some(CALL_TIMEOUT))?;
                Ok(connection)
            });
        if connected.is_err() {
            self.counters.failed(1);
        }
        Ok(connected?)
    }

    fn hash(&self, script: Script) -> &str {
        // Every Script has its entry: `open` builds one per variant.
        let found = self.scripts.iter().find(|(id, _, _)| *id == script);
        match found {
            Some((_, _, hash)) => hash,
            None => unreachable!("script {script:?} is built by Store::open"),
        }
    }

    /// Runs `calls` as one pipeline on `connection`, loading the scripts
    /// once if Redis does not know them (after a restart).
    ///
    /// # Errors
    /// [`Unreachable`] when the connection fails or a reply is not a script
    /// answer; the connection should then be dropped.
    pub fn run(
        &self,
        connection: &mut Connection,
        calls: &[&Call],
    ) -> Result<Vec<Result<Answer, Unreachable>>, Unreachable> {
        let started = Instant::now();
        let answers = self.run_counted(connection, calls);
        match &answers {
            Ok(_) => self.counters.round_trip(started.elapsed()),
            Err(_) => self.counters.failed(calls.len()),
        }
        answers
    }

    fn run_counted(
        &self,
        connection: &mut Connection,
        calls: &[&Call],
    ) -> Result<Vec<Result<Answer, Unreachable>>, Unreachable> {
        match self.run_once(connection, calls) {
            Err(error)
                if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
            {
                self.load_scripts(connection)?;
                Ok(self.run_once(connection, calls)?)
            }
            other => Ok(other?),
        }
    }

    fn run_once(
        &self,
        connection: &mut Connection,
        calls: &[&Call],
    ) -> redis::RedisResult<Vec<Result<Answer, Unreachable>>> {
        let mut pipe = redis::pipe();
        // Each command of the pipeline with the calls it answers for: one,
        // or a run of sends merged into one SEND_MANY.
        let runs: Vec<&[&Call]> = calls.chunk_by(|a, b| mergeable(a, b)).collect();
        for run in &runs {
            let Some((first, rest)) = run.split_first() else {
                continue;
            };
            let command = pipe.cmd("EVALSHA");
            if rest.is_empty() {
                command.arg(self.hash(first.script)).arg(1).arg(&self.base);
                for arg in &first.args {
                    command.arg(arg.as_slice());
                }
                continue;
            }
            command
                .arg(self.hash(Script::SendMany))
                .arg(1)
                .arg(&self.base)
                .arg(first.args[0].as_slice());
            for arg in &first.args[SEND_SHARED] {
                command.arg(arg.as_slice());
            }
            for call in *run {
                let own = &call.args[SEND_OWN];
                for arg in own {
                    command.arg(arg.as_slice());
                }
                // The lengths SEND_MANY would otherwise format.
                let lengths: Vec<String> = own.iter().map(|arg| arg.len().to_string()).collect();
                command.arg(lengths.join(","));
            }
        }
        // Without `ignore_errors`, an error reply fails the whole query.
        let values: Vec<Value> = pipe.query(connection)?;
        let mut answers = Vec::with_capacity(calls.len());
        for (value, run) in values.into_iter().zip(&runs) {
            if run.len() == 1 {
                answers.push(Answer::from_value(value));
            } else {
                answers.extend(Answer::each_of(value, run.len()));
            }
        }
        Ok(answers)
    }

    fn load_scripts(&self, connection: &mut Connection) -> Result<(), Unreachable> {
        let mut pipe = redis::pipe();
        for (_, source, _) in &self.scripts {
            pipe.cmd("SCRIPT").arg("LOAD").arg(source.as_str()).ignore();
        }
        pipe.query::<()>(connection)?;
        Ok(())
    }

    /// Runs one call on `connection`.
    ///
    /// # Errors
    /// As [`Store::run`].
    pub fn run_one(&self, connection: &mut Connection, call: &Call) -> Result<Answer, Unreachable> {
        self.run(connection, &[call])?
            .pop()
            .unwrap_or_else(|| Err(Unreachable("no answer".to_owned())))
    }
}

/// The node's command lanes. Cheap to share; stops with [`Lanes::stop`].
pub struct Lanes {
    senders: Vec<Sender<Job>>,
    stopped: Arc<AtomicBool>,
    /// Bumped to make every lane open a fresh connection before its next
    /// call (after Redis restarted, the old ones are dead).
    generation: Arc<AtomicU64>,
}

impl Lanes {
    /// Starts the lanes' threads on `store`.
    ///
    /// # Errors
    /// The OS error when a thread cannot be started.
    pub fn start(store: &Arc<Store>, log: &Logger) -> std::io::Result<Lanes> {
        let stopped = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        let mut senders = Vec::with_capacity(LANES);
        for lane in 0..LANES {
            let (sender, receiver) = crossbeam_channel::unbounded();
            let lane_state = LaneState {
                store: Arc::clone(store),
                jobs: receiver,
                stopped: Arc::clone(&stopped),
                generation: Arc::clone(&generation),
                log: log.new(slog::o!("lane" => lane)),
            };
            std::thread::Builder::new()
                .name(format!("chat-redis-{lane}"))
                .spawn(move || lane_state.run())?;
            senders.push(sender);
        }
        Ok(Lanes {
            senders,
            stopped,
            generation,
        })
    }

    /// Queues `call` on the lane of `key` (the caller's name), to complete
    /// with `done`.
    pub fn submit(&self, key: &str, call: Call, done: Completion) {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let lane = (hasher.finish() as usize) % self.senders.len().max(1);
        let job = Job {
            call,
            queued: Instant::now(),
            done,
        };
        match self.senders.get(lane) {
            Some(sender) if !self.stopped.load(Ordering::Acquire) => {
                if let Err(refused) = sender.send(job) {
                    (refused.0.done)(Err(Unreachable("the node is stopping".to_owned())));
                }
            }
            _ => (job.done)(Err(Unreachable("the node is stopping".to_owned()))),
        }
    }

    /// Whether every lane has nothing queued.
    pub fn idle(&self) -> bool {
        self.senders.iter().all(|sender| sender.is_empty())
    }

    /// Stops the lanes once what is queued has run.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    /// Makes every lane reconnect before its next call.
    pub fn reconnect(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// What one lane's thread owns.
struct LaneState {
    store: Arc<Store>,
    jobs: Receiver<Job>,
    stopped: Arc<AtomicBool>,
    generation: Arc<AtomicU64>,
    log: Logger,
}

impl LaneState {
    fn run(self) {
        let LaneState {
            store,
            jobs,
            stopped,
            generation,
            log,
        } = self;
        run_lane(&store, &jobs, &stopped, &generation, &log);
    }
}

fn run_lane(
    store: &Store,
    jobs: &Receiver<Job>,
    stopped: &AtomicBool,
    generation: &AtomicU64,
    log: &Logger,
) {
    let mut connection: Option<Connection> = None;
    let mut connected_at = generation.load(Ordering::Acquire);
    loop {
        let first = match jobs.recv_timeout(Duration::from_millis(100)) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) if stopped.load(Ordering::Acquire) => return,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_PIPELINE {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // A call that waited past the timeout is refused without running:
        // its caller has been told nothing yet, and is told "unavailable".
        let (late, batch): (Vec<Job>, Vec<Job>) = batch
            .into_iter()
            .partition(|job| job.queued.elapsed() > CALL_TIMEOUT);
        store.counters.failed(late.len());
        for job in late {
            (job.done)(Err(Unreachable("timed out waiting for redis".to_owned())));
        }
        if batch.is_empty() {
            continue;
        }
        let current = generation.load(Ordering::Acquire);
        if current != connected_at {
            connection = None;
        }
        if connection.is_none() {
            match store.connect(CALL_TIMEOUT) {
                Ok(fresh) => {
                    connection = Some(fresh);
                    connected_at = current;
                }
                Err(error) => {
                    debug!(log, "cannot reach redis"; "error" => %error);
                    for job in batch {
                        (job.done)(Err(error.clone()));
                    }
                    continue;
                }
            }
        }
        let Some(live) = connection.as_mut() else {
            continue;
        };
        let calls: Vec<&Call> = batch.iter().map(|job| &job.call).collect();
        match store.run(live, &calls) {
            Ok(answers) => {
                let mut answers = answers.into_iter();
                for job in batch {
                    let answer = answers
                        .next()
                        .unwrap_or_else(|| Err(Unreachable("missing answer".to_owned())));
                    (job.done)(answer);
                }
            }
            Err(error) => {
                warn!(log, "redis call failed"; "calls" => batch.len(), "error" => %error);
                connection = None;
                for job in batch {
                    (job.done)(Err(error.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &str) -> Value {
        Value::BulkString(value.as_bytes().to_vec())
    }

    #[test]
    fn a_send_many_answer_gives_each_send_what_send_would_answer() {
        let reply = Value::Array(vec![
            Value::Int(1_700_000_000),
            Value::Int(42),
            Value::Int(7),
            Value::Array(vec![text("NORECIP")]),
            Value::Array(vec![
                text("OK"),
                Value::Int(8),
                text("1700000000"),
                text("42"),
                Value::Int(3),
                text("g"),
            ]),
        ]);
        let answers: Vec<Answer> = Answer::each_of(reply, 3)
            .into_iter()
            .map(|answer| answer.expect("an answer"))
            .collect();
        assert!(answers[0].is_ok());
        assert_eq!(
            (answers[0].int(1), answers[0].int(2), answers[0].int(3)),
            (Some(7), Some(1_700_000_000), Some(42))
        );
        assert_eq!(
            (answers[0].int(4), answers[0].text(5)),
            (Some(1), Some("d"))
        );
        assert_eq!(answers[1].status(), "NORECIP");
        assert_eq!(
            (answers[2].int(1), answers[2].text(5)),
            (Some(8), Some("g"))
        );
    }

    #[test]
    fn a_malformed_send_many_answer_fails_every_send_it_was_for() {
        for reply in [
            Value::Nil,
            Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(3)]),
            Value::Array(vec![text("x"), Value::Int(2), Value::Int(3), Value::Int(4)]),
        ] {
            let answers = Answer::each_of(reply, 2);
            assert_eq!(answers.len(), 2);
            assert!(answers.iter().all(Result::is_err));
        }
    }

    #[test]
    fn only_sends_from_one_node_with_the_same_limits_merge() {
        let send = |node: &str, interval: &str| {
            Call::new(
                Script::Send,
                &[
                    node.as_bytes(),
                    b"alice",
                    b"bob",
                    b"hi",
                    b"100",
                    b"262144",
                    interval.as_bytes(),
                    b"0",
                ],
            )
        };
        assert!(mergeable(&send("n1", "0"), &send("n1", "0")));
        assert!(!mergeable(&send("n1", "0"), &send("n2", "0")));
        assert!(!mergeable(&send("n1", "0"), &send("n1", "5")));
        let join = Call::new(Script::JoinGroup, &[b"n1", b"alice", b"room"]);
        assert!(!mergeable(&send("n1", "0"), &join));
    }
}
