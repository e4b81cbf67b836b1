//! Talking to the server: the shared grpcio environment, one channel (one
//! HTTP/2 connection) per simulated user to the node the scenario places it
//! on, the calls a user makes with its
//! name in the `authorization` header, and the receiver that reads a user's
//! Connect stream as a future on the environment's completion queues,
//! timestamping every message, feeding the senders' flow control and keeping
//! a record of each receipt for the correctness checks (and handing each
//! membership event to the scenario that asked for them).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::net::TcpStream;
use std::os::unix::io::IntoRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chat_proto::chat::{
    ChannelType, ConnectRequest, CreateGroupChatRequest, EventType, JoinGroupChatRequest,
    LeaveGroupChatRequest, ListChannelsRequest, SendMessageRequest, SendMessageResponse,
};
use chat_proto::chat_grpc::ChatServiceClient;
use crossbeam_channel::{Receiver, Sender};
use futures::channel::oneshot;
use futures::future::{self, Either};
use futures::StreamExt;
use grpcio::{
    CallOption, ChannelBuilder, ClientSStreamReceiver, ClientUnaryReceiver, Environment,
    MetadataBuilder,
};

use crate::event::{self, Event, Membership};
use crate::flow::Flow;
use crate::payload::Payload;
use crate::procfs::{Pids, Sample};
use crate::util::{error_code, now_ns, Deadline};

/// Settings every scenario shares.
pub struct Bench {
    /// The client's completion queues.
    pub env: Arc<Environment>,
    /// host:port of each server node; one for a single server. A user placed
    /// on node `n` talks to `servers[n % servers.len()]` only.
    pub servers: Vec<String>,
    /// The nodes' and Redis's pids, to read their CPU time and RSS.
    pub pids: Pids,
    /// How long one scenario may take before it reports failure.
    pub timeout: Duration,
    /// Deadline of each unary call.
    pub call_timeout: Duration,
    /// Messages a sender may have sent and not yet seen received, if set
    /// (each scenario has its default: see [`Bench::window_or`]).
    window: Option<u32>,
    /// Unary calls a sender may have in flight, if set.
    max_inflight: Option<u32>,
    /// The server's per-connection queue depth; windows are kept below it.
    pub server_queue: u32,
    /// Completion-queue threads of `env`.
    pub client_cqs: usize,
    /// The cluster's Redis, host:port, to read its memory use.
    pub redis_addr: Option<String>,
    /// Start of every name this process uses, unique per process.
    prefix: String,
    runs: AtomicU32,
    /// Bit n set: this bench stopped node n (a scenario that stops a node
    /// sets it; probes then ask another node).
    stopped: AtomicU64,
}

impl Bench {
    /// Settings for a bench against the nodes `servers` (at least one).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        threads: usize,
        servers: Vec<String>,
        pids: Pids,
        timeout: Duration,
        window: Option<u32>,
        max_inflight: Option<u32>,
        server_queue: u32,
        redis_addr: Option<String>,
    ) -> Bench {
        let env = Arc::new(
            grpcio::EnvBuilder::new()
                .cq_count(threads.max(1))
                .name_prefix("bench-cq")
                .build(),
        );
        Bench {
            env,
            client_cqs: threads.max(1),
            servers,
            pids,
            timeout,
            call_timeout: timeout.min(Duration::from_secs(30)),
            window,
            max_inflight,
            server_queue,
            redis_addr,
            prefix: format!("b{}", std::process::id()),
            runs: AtomicU32::new(0),
            stopped: AtomicU64::new(0),
        }
    }

    /// Sends SIGTERM to node `node` (by its `--server-pid`) and remembers
    /// it stopped.
    ///
    /// # Errors
    /// When the node's pid is unknown or the signal cannot be sent.
    pub fn stop_node(&self, node: usize) -> Result<(), String> {
        let pid = self
            .pids
            .nodes
            .get(node)
            .and_then(|&pid| libc::pid_t::try_from(pid).ok())
            .ok_or_else(|| format!("node {node}'s pid is unknown (--server-pid)"))?;
        // SAFETY: kill(2) with a pid the operator named as a node's.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return Err(format!(
                "cannot signal node {node} (pid {pid}): {}",
                std::io::Error::last_os_error()
            ));
        }
        self.stopped.fetch_or(1 << (node % 64), Ordering::AcqRel);
        Ok(())
    }

    /// The first node this bench has not stopped (node 0 if it stopped
    /// them all).
    pub fn live_node(&self) -> usize {
        let stopped = self.stopped.load(Ordering::Acquire);
        (0..self.nodes())
            .find(|&node| stopped & (1 << (node % 64)) == 0)
            .unwrap_or(0)
    }

    /// How many server nodes the bench talks to.
    pub fn nodes(&self) -> usize {
        self.servers.len().max(1)
    }

    /// The measured processes now.
    pub fn sample(&self) -> Sample {
        Sample::take(&self.pids)
    }

    /// The `--window` given, or the scenario's `default`.
    pub fn window_or(&self, default: u32) -> u32 {
        self.window.unwrap_or(default).max(1)
    }

    /// The `--max-inflight` given, or the scenario's `default`.
    pub fn max_inflight_or(&self, default: u32) -> u32 {
        self.max_inflight.unwrap_or(default).max(1)
    }

    /// The start of every name this process uses.
    pub fn process_prefix(&self) -> String {
        format!("{}x", self.prefix)
    }

    /// A fresh name prefix for one scenario run, e.g. `b4242x3direct-`: no
    /// name it starts can collide with an earlier run's lingering users.
    pub fn run_prefix(&self, scenario: &str) -> String {
        let run = self.runs.fetch_add(1, Ordering::Relaxed);
        format!("{}x{run}{scenario}-", self.prefix)
    }

    /// A client of node `node` (modulo the nodes) on a channel of its own,
    /// over a TCP connection the bench opens itself: one HTTP/2 connection per client, as the server would
    /// see from separate processes. It is C-core's direct channel, without
    /// the client channel's name resolution, load balancing, retries and
    /// reconnection, and with the minimal filter stack (deadline checks put
    /// back, so a call's deadline still ends it). The server sees the same
    /// traffic; the load generator spends about a tenth less CPU per direct
    /// message, which on a machine it shares with the server is left to the
    /// server. The TCP connection is up when this returns.
    ///
    /// # Errors
    /// Why the TCP connection could not be made.
    pub fn dedicated_client(&self, node: usize) -> Result<ChatServiceClient, String> {
        let server = &self.servers[node % self.nodes()];
        let refused = |error: std::io::Error| format!("connecting to {server}: {error}");
        let stream = TcpStream::connect(server).map_err(refused)?;
        stream.set_nodelay(true).map_err(refused)?;
        let builder = ChannelBuilder::new(Arc::clone(&self.env))
            .raw_cfg_int(CString::from(c"grpc.minimal_stack"), 1)
            .raw_cfg_int(CString::from(c"grpc.enable_deadline_checking"), 1);
        // SAFETY: the descriptor is a connected stream socket that nothing
        // else holds: `into_raw_fd` gave up the stream's ownership, and the
        // channel closes the socket when it is done with it.
        let channel = unsafe { builder.connect_from_fd(server, stream.into_raw_fd()) };
        Ok(ChatServiceClient::new(channel))
    }

    /// Call options naming `user` in the `authorization` header, with the
    /// unary call deadline.
    pub fn auth(&self, user: &str) -> CallOption {
        let mut headers = MetadataBuilder::new();
        let option = CallOption::default().timeout(self.call_timeout);
        match headers.add_str("authorization", user) {
            Ok(_) => option.headers(headers.build()),
            Err(_) => option,
        }
    }
}

/// One simulated user: its name, its own client and its call options.
pub struct User {
    /// Index of the user in its scenario.
    pub idx: u32,
    /// The username.
    pub name: String,
    /// A client on the user's own channel.
    pub client: ChatServiceClient,
    /// Options carrying the user's `authorization` header.
    pub auth: CallOption,
}

impl User {
    /// Starts sending `text` to `recipient`.
    ///
    /// # Errors
    /// The error grpcio refused to start the call with.
    pub fn send(
        &self,
        recipient: &str,
        text: String,
    ) -> grpcio::Result<ClientUnaryReceiver<SendMessageResponse>> {
        let mut request = SendMessageRequest::new();
        request.recipient = recipient.to_owned();
        request.text = text;
        self.client
            .send_message_async_opt(&request, self.auth.clone())
    }

    /// Creates group `name`, waiting for the answer.
    ///
    /// # Errors
    /// The status code name.
    pub fn create_group(&self, name: &str) -> Result<(), String> {
        let mut request = CreateGroupChatRequest::new();
        request.name = name.to_owned();
        self.client
            .create_group_chat_opt(&request, self.auth.clone())
            .map(drop)
            .map_err(|e| error_code(&e))
    }

    /// Joins group `name`, waiting for the answer.
    ///
    /// # Errors
    /// The status code name.
    pub fn join_group(&self, name: &str) -> Result<(), String> {
        let mut request = JoinGroupChatRequest::new();
        request.name = name.to_owned();
        self.client
            .join_group_chat_opt(&request, self.auth.clone())
            .map(drop)
            .map_err(|e| error_code(&e))
    }

    /// Starts joining group `name`.
    ///
    /// # Errors
    /// The status code name.
    pub fn join_group_async(
        &self,
        name: &str,
    ) -> Result<impl std::future::Future<Output = Result<(), String>>, String> {
        let mut request = JoinGroupChatRequest::new();
        request.name = name.to_owned();
        let call = self
            .client
            .join_group_chat_async_opt(&request, self.auth.clone())
            .map_err(|e| error_code(&e))?;
        Ok(async move { call.await.map(drop).map_err(|e| error_code(&e)) })
    }

    /// Leaves group `name`, waiting for the answer.
    ///
    /// # Errors
    /// The status code name.
    pub fn leave_group(&self, name: &str) -> Result<(), String> {
        let mut request = LeaveGroupChatRequest::new();
        request.name = name.to_owned();
        self.client
            .leave_group_chat_opt(&request, self.auth.clone())
            .map(drop)
            .map_err(|e| error_code(&e))
    }

    /// Starts leaving group `name`.
    ///
    /// # Errors
    /// The status code name.
    pub fn leave_group_async(
        &self,
        name: &str,
    ) -> Result<impl std::future::Future<Output = Result<(), String>>, String> {
        let mut request = LeaveGroupChatRequest::new();
        request.name = name.to_owned();
        let call = self
            .client
            .leave_group_chat_async_opt(&request, self.auth.clone())
            .map_err(|e| error_code(&e))?;
        Ok(async move { call.await.map(drop).map_err(|e| error_code(&e)) })
    }

    /// The names of the connected users, waiting for the answer.
    ///
    /// # Errors
    /// The status code name.
    pub fn list_users(&self) -> Result<Vec<String>, String> {
        let reply = self
            .client
            .list_channels_opt(&ListChannelsRequest::new(), self.auth.clone())
            .map_err(|e| error_code(&e))?;
        Ok(reply
            .channels
            .into_iter()
            .filter(|c| c.type_.enum_value() == Ok(ChannelType::CHANNEL_TYPE_USER))
            .map(|c| c.name)
            .collect())
    }
}

/// Called by a receiver for each benchmark message it gets: the receiving
/// user's index and the message's payload.
pub type Hook = Arc<dyn Fn(u32, &Payload) + Send + Sync>;

/// Called by a receiver for each membership event it gets: the receiving
/// user's index and the event.
pub type MembershipHook = Arc<dyn Fn(u32, &Membership) + Send + Sync>;

/// Which flow a received message counts against.
pub enum FlowMap {
    /// No flow control (the scenario bounds itself).
    None,
    /// One flow per sender, indexed by the sender's index.
    PerSender(Vec<Arc<Flow>>),
    /// One flow for every message.
    Single(Arc<Flow>),
}

impl FlowMap {
    fn of(&self, sender: u32) -> Option<&Flow> {
        match self {
            FlowMap::None => None,
            FlowMap::PerSender(flows) => flows.get(sender as usize).map(|f| &**f),
            FlowMap::Single(flow) => Some(flow),
        }
    }
}

/// What every receiver of a scenario shares.
pub struct RecvShared {
    /// Flow control to credit on receipt.
    pub flows: FlowMap,
    /// Called on each benchmark message, if set.
    pub hook: Option<Hook>,
    /// Set when a stream ended without the bench asking for it.
    pub broken: AtomicBool,
    /// Messages received by all receivers so far.
    pub received: AtomicU64,
    /// Called on each membership event, if set.
    pub membership: Option<MembershipHook>,
    /// Membership events received by all receivers so far.
    pub membership_events: AtomicU64,
}

impl RecvShared {
    /// Shared receiver state crediting `flows` and calling `hook`.
    pub fn new(flows: FlowMap, hook: Option<Hook>) -> Arc<RecvShared> {
        Arc::new(RecvShared {
            flows,
            hook,
            broken: AtomicBool::new(false),
            received: AtomicU64::new(0),
            membership: None,
            membership_events: AtomicU64::new(0),
        })
    }

    /// Shared receiver state for streams that read membership events:
    /// `hook` is called on each.
    pub fn with_membership(hook: MembershipHook) -> Arc<RecvShared> {
        Arc::new(RecvShared {
            flows: FlowMap::None,
            hook: None,
            broken: AtomicBool::new(false),
            received: AtomicU64::new(0),
            membership: Some(hook),
            membership_events: AtomicU64::new(0),
        })
    }
}

/// One message as a receiver got it.
#[derive(Debug, Clone, Copy)]
pub struct Receipt {
    /// Sender index from the payload.
    pub sender: u32,
    /// Channel from the payload.
    pub chan: u32,
    /// Sequence number from the payload.
    pub seq: u32,
    /// Receipt time minus the payload's send time.
    pub lat_ns: u64,
    /// The server's message id.
    pub id: u64,
}

/// What a receiver saw, handed back when its stream ends.
#[derive(Debug, Default)]
pub struct ReceiverOutcome {
    /// The receiving user's index.
    pub user: u32,
    /// Benchmark messages in the order they arrived.
    pub receipts: Vec<Receipt>,
    /// Delivery events read.
    pub deliveries: u64,
    /// Messages whose text was not a benchmark payload.
    pub foreign: u64,
    /// Membership events read.
    pub membership_events: u64,
    /// When the last message arrived (process clock, ns); 0 if none did.
    pub last_recv_ns: u64,
    /// How the stream ended when the bench had not asked: the status code
    /// name (`OK` for a clean end); `None` when the bench cancelled it.
    pub ended: Option<String>,
}

/// The users of a scenario with their Connect streams open and read.
pub struct Online {
    /// The users, by index.
    pub users: Vec<Arc<User>>,
    cancels: Vec<oneshot::Sender<()>>,
    outcomes: Receiver<ReceiverOutcome>,
}

impl Online {
    /// Cancels every stream and collects what each receiver saw, waiting at
    /// most until `deadline`; receivers that do not answer are missing.
    pub fn close(self, deadline: Deadline) -> Vec<ReceiverOutcome> {
        let expected = self.cancels.len();
        for cancel in self.cancels {
            let _ = cancel.send(());
        }
        let mut outcomes = Vec::with_capacity(expected);
        while outcomes.len() < expected {
            match self.outcomes.recv_deadline(deadline.instant()) {
                Ok(outcome) => outcomes.push(outcome),
                Err(_) => break,
            }
        }
        outcomes.sort_by_key(|o| o.user);
        outcomes
    }
}

/// Connects one user per name, each on its own channel to node
/// `node_of(index)`, opens their Connect streams, starts their receivers and
/// waits for every `connected`.
///
/// # Errors
/// A message naming the first user that could not connect.
pub fn connect_users(
    bench: &Bench,
    names: Vec<String>,
    node_of: impl Fn(u32) -> usize,
    shared: &Arc<RecvShared>,
    deadline: Deadline,
) -> Result<Online, String> {
    connect_users_asking(bench, names, node_of, &[], shared, deadline)
}

/// [`connect_users`] with streams that ask for the extra `events`
/// (`ConnectRequest.events`).
///
/// # Errors
/// A message naming the first user that could not connect.
pub fn connect_users_asking(
    bench: &Bench,
    names: Vec<String>,
    node_of: impl Fn(u32) -> usize,
    events: &[EventType],
    shared: &Arc<RecvShared>,
    deadline: Deadline,
) -> Result<Online, String> {
    let (ready_tx, ready_rx) = crossbeam_channel::unbounded();
    let (outcome_tx, outcomes) = crossbeam_channel::unbounded();
    let mut users = Vec::with_capacity(names.len());
    let mut cancels = Vec::with_capacity(names.len());
    let mut failure = None;
    for (idx, name) in names.into_iter().enumerate() {
        let idx = idx as u32;
        let client = match bench.dedicated_client(node_of(idx)) {
            Ok(client) => client,
            Err(error) => {
                failure = Some(format!("{name}: {error}"));
                break;
            }
        };
        let user = Arc::new(User {
            idx,
            auth: bench.auth(&name),
            client,
            name,
        });
        let mut request = ConnectRequest::new();
        request.username = user.name.clone();
        request.events = events.iter().map(|&e| e.into()).collect();
        match user
            .client
            .client
            .server_streaming(&event::CONNECT, &request, CallOption::default())
        {
            Ok(stream) => {
                let (cancel, cancelled) = oneshot::channel();
                user.client.spawn(receive(
                    idx,
                    stream,
                    cancelled,
                    Arc::clone(shared),
                    ready_tx.clone(),
                    outcome_tx.clone(),
                ));
                cancels.push(cancel);
            }
            Err(error) => {
                failure = Some(format!("{}: {}", user.name, error_code(&error)));
            }
        }
        users.push(user);
        if failure.is_some() {
            break;
        }
    }
    let online = Online {
        users,
        cancels,
        outcomes,
    };
    if let Some(failure) = failure {
        online.close(deadline.cap(Duration::from_secs(5)));
        return Err(format!("cannot open a Connect stream for {failure}"));
    }
    let mut ready = 0;
    while ready < online.users.len() {
        match ready_rx.recv_deadline(deadline.instant()) {
            Ok((_, Ok(()))) => ready += 1,
            Ok((idx, Err(code))) => {
                let name = online.users[idx as usize].name.clone();
                online.close(deadline.cap(Duration::from_secs(5)));
                return Err(format!("Connect of {name} failed: {code}"));
            }
            Err(_) => {
                let count = online.users.len();
                online.close(Deadline::after(Duration::from_secs(5)));
                return Err(format!(
                    "only {ready} of {count} users got `connected` before the deadline"
                ));
            }
        }
    }
    Ok(online)
}

/// Reads one user's Connect stream until it ends or the bench cancels it.
async fn receive(
    user: u32,
    mut stream: ClientSStreamReceiver<Event>,
    mut cancelled: oneshot::Receiver<()>,
    shared: Arc<RecvShared>,
    ready: Sender<(u32, Result<(), String>)>,
    done: Sender<ReceiverOutcome>,
) {
    let mut outcome = ReceiverOutcome {
        user,
        ..ReceiverOutcome::default()
    };
    let mut connected = false;
    loop {
        let event = match future::select(stream.next(), &mut cancelled).await {
            Either::Left((Some(Ok(event)), _)) => event,
            Either::Left((Some(Err(error)), _)) => {
                outcome.ended = Some(error_code(&error));
                break;
            }
            Either::Left((None, _)) => {
                outcome.ended = Some("OK".to_owned());
                break;
            }
            Either::Right(_) => break,
        };
        match event {
            Event::Connected => {
                connected = true;
                let _ = ready.send((user, Ok(())));
            }
            Event::Delivery(messages) => {
                let now = now_ns();
                outcome.deliveries += 1;
                outcome.last_recv_ns = now;
                shared
                    .received
                    .fetch_add(messages.len() as u64, Ordering::Relaxed);
                for (id, payload) in messages {
                    let Some(payload) = payload else {
                        outcome.foreign += 1;
                        continue;
                    };
                    if let Some(flow) = shared.flows.of(payload.sender) {
                        flow.received(payload.idx);
                    }
                    if let Some(hook) = &shared.hook {
                        hook(user, &payload);
                    }
                    outcome.receipts.push(Receipt {
                        sender: payload.sender,
                        chan: payload.chan,
                        seq: payload.seq,
                        lat_ns: now.saturating_sub(payload.sent_ns),
                        id,
                    });
                }
            }
            Event::Membership(change) => {
                outcome.membership_events += 1;
                if let Some(hook) = &shared.membership {
                    hook(user, &change);
                }
                // After the hook, so a count seen by the scenario covers
                // what the hook recorded.
                shared.membership_events.fetch_add(1, Ordering::AcqRel);
            }
            Event::Other => {}
        }
    }
    if !connected {
        let code = outcome.ended.clone().unwrap_or_else(|| "CANCELLED".into());
        let _ = ready.send((user, Err(code)));
    } else if outcome.ended.is_some() {
        shared.broken.store(true, Ordering::Release);
    }
    stream.cancel();
    drop(stream);
    let _ = done.send(outcome);
}

/// Creates `groups[i]` by `creators[i]` (user indices of `online`) and then
/// has every `(user, group)` of `joins` join, a bounded number at a time.
///
/// # Errors
/// The first failure, named.
pub fn setup_groups(
    online: &Online,
    groups: &[(String, u32)],
    joins: &[(u32, String)],
) -> Result<(), String> {
    for (group, creator) in groups {
        online.users[*creator as usize]
            .create_group(group)
            .map_err(|code| format!("CreateGroupChat {group}: {code}"))?;
    }
    for chunk in joins.chunks(128) {
        let mut calls = Vec::with_capacity(chunk.len());
        for (user, group) in chunk {
            let user = &online.users[*user as usize];
            let call = user
                .join_group_async(group)
                .map_err(|code| format!("JoinGroupChat {group} by {}: {code}", user.name))?;
            calls.push(call);
        }
        for result in futures::executor::block_on(future::join_all(calls)) {
            result.map_err(|code| format!("JoinGroupChat: {code}"))?;
        }
    }
    Ok(())
}

/// Waits until the server lists no user whose name starts with `prefix`
/// (so the next scenario starts from a quiet server), asking as a probe user
/// of its own on the first node still running (a cluster lists every
/// node's users).
/// Returns how long it took.
///
/// # Errors
/// When the probe cannot connect or the users are still there at `deadline`.
pub fn wait_gone(bench: &Bench, prefix: &str, deadline: Deadline) -> Result<Duration, String> {
    let started = std::time::Instant::now();
    let shared = RecvShared::new(FlowMap::None, None);
    let probe_name = format!("{}probe", bench.run_prefix("settle"));
    let node = bench.live_node();
    let probe = connect_users(bench, vec![probe_name], |_| node, &shared, deadline)?;
    let result = loop {
        match probe.users[0].list_users() {
            Ok(users) => {
                let left = users
                    .iter()
                    .filter(|u| u.starts_with(prefix) && **u != probe.users[0].name)
                    .count();
                if left == 0 {
                    break Ok(started.elapsed());
                }
                if deadline.passed() {
                    break Err(format!("{left} users of {prefix}* still connected"));
                }
            }
            Err(code) => break Err(format!("ListChannels: {code}")),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    probe.close(deadline.cap(Duration::from_secs(5)));
    result
}

/// Counts of status code names.
pub type ErrorCounts = BTreeMap<String, u64>;
