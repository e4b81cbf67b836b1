//! The gRPC adapter: implements the generated `ChatService` trait by reading
//! the caller from the `authorization` header (a name, or in token mode a
//! verified token: see [`identity`]), calling the registry, and
//! turning results into replies and errors into statuses (see [`status`]).
//! It holds no chat state of its own and makes no chat decisions; it is the
//! only module besides the bootstrap that knows grpcio. Every chat RPC is
//! counted for [`crate::metrics`] in one place, the wrapper that registers
//! it ([`chat_service`]), each Connect stream where it ends, and a call
//! answered later (on a cluster node) where that answer is sent.

pub mod codec;
mod convert;
pub mod delivery;
pub mod health;
pub mod identity;
pub mod reflection;
pub mod status;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use chat_proto::chat::{
    ConnectRequest, CreateGroupChatRequest, CreateGroupChatResponse, GetHistoryRequest,
    GetHistoryResponse, JoinGroupChatRequest, JoinGroupChatResponse, LeaveGroupChatRequest,
    LeaveGroupChatResponse, ListChannelsRequest, ListChannelsResponse, ListGroupMembersRequest,
    ListGroupMembersResponse, SendMessageRequest, SendMessageResponse, SendTypingRequest,
    SendTypingResponse,
};
use chat_proto::chat_grpc::ChatService;
use futures::{FutureExt, SinkExt};
use grpcio::{Method, MethodType, RpcContext, ServerStreamingSink, ServiceBuilder, UnarySink};
use slog::{debug, error, info, o, Logger};

use crate::auth::TokenAuth;
use crate::domain::{
    ChatEngine, ChatError, CloseReason, Connected, HistoryQuery, Left, MemberQuery, Reply,
    ResumeRequest, ResumeStatus, Session, Wakeups,
};
use crate::metrics::{Code, DisconnectReason, Metrics, Rpc};
use codec::{bad_request, request_marshaller, Raw, RequestCodec};
use delivery::{DeliveryStream, EncodedEvent};
use identity::{authorization_header, connect_identity};
use status::{
    close_status, code_of_reply, finish, finish_after, finish_with_status, guarded,
    note_answer_later, refusal_status, refuse_stream, refused_with_headers, send_reply,
    send_status, stream_end_code, take_answer, Answered, Refused,
};

/// The request header that names the caller.
pub const AUTHORIZATION: &str = "authorization";

/// The chat service as grpcio sees it: a cheap `Clone` handle (grpcio clones
/// it per completion queue) around the chat engine, the metrics and the
/// logger. Which engine (embedded or cluster) is behind it is not its
/// business.
#[derive(Clone)]
pub struct ChatHandler {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<dyn ChatEngine>,
    metrics: Metrics,
    log: Logger,
    /// Token mode's verifier and expiry timer; `None` in plain mode.
    tokens: Option<Arc<TokenAuth>>,
}

impl ChatHandler {
    /// A handler serving `engine`, counting calls in `metrics`, logging to
    /// `log`, in plain mode.
    pub fn new(engine: Arc<dyn ChatEngine>, metrics: Metrics, log: Logger) -> ChatHandler {
        ChatHandler::with_tokens(engine, metrics, log, None)
    }

    /// Like [`ChatHandler::new`], in token mode when `tokens` is given.
    pub fn with_tokens(
        engine: Arc<dyn ChatEngine>,
        metrics: Metrics,
        log: Logger,
        tokens: Option<Arc<TokenAuth>>,
    ) -> ChatHandler {
        ChatHandler {
            inner: Arc::new(Inner {
                engine,
                metrics,
                log,
                tokens,
            }),
        }
    }

    /// The caller of a unary call: the header's name in plain mode, the
    /// verified token's user in token mode. A refused token finishes the
    /// call here (UNAUTHENTICATED) and gives `None`.
    fn authenticated<R: Send + 'static>(
        &self,
        ctx: &RpcContext<'_>,
        sink: UnarySink<R>,
        rpc: &'static str,
    ) -> Option<(String, UnarySink<R>)> {
        let Some(tokens) = &self.inner.tokens else {
            return Some((caller_of(ctx), sink));
        };
        match identity::verify(tokens, ctx, &self.inner.log, rpc) {
            Ok(identity) => Some((identity.user, sink)),
            Err(status) => {
                finish_with_status(ctx, sink, &self.inner.log, rpc, Err(status));
                None
            }
        }
    }

    /// Connect: registers the user and feeds its stream until it ends. Not
    /// the generated trait's method: events go out pre-encoded (see
    /// [`delivery`]), so the method is registered by [`chat_service`].
    pub fn connect(
        &mut self,
        ctx: RpcContext<'_>,
        req: ConnectRequest,
        sink: ServerStreamingSink<EncodedEvent>,
    ) {
        let log = self.inner.log.clone();
        let resume = req.resume.into_option().map(|resume| ResumeRequest {
            token: resume.token,
            after_id: resume.after_id,
        });
        let events = convert::event_kinds(&req.events);
        let username = req.username;
        let expiry = match connect_identity(self.inner.tokens.as_ref(), &ctx, &log, &username) {
            Ok(expiry) => expiry,
            Err(status) => return refuse_stream(&ctx, sink, &log, "Connect", status),
        };
        let peer = ctx.peer();
        let registered =
            guarded(|| Ok(self.inner.engine.connect(&username, &peer, resume, events)));
        let reply = match registered {
            Ok(reply) => reply,
            Err(refused) => {
                let status = refusal_status(&log, "Connect", &username, &refused);
                refuse_stream(&ctx, sink, &log, "Connect", status);
                return;
            }
        };
        let metrics = &self.inner.metrics;
        match reply.try_now() {
            Ok(Err(refused)) => {
                let status = refusal_status(&log, "Connect", &username, &refused.into());
                refuse_stream(&ctx, sink, &log, "Connect", status);
            }
            Ok(Ok(connected)) => {
                if let Some(expiry) = &expiry {
                    expiry.watch(&connected.inbox);
                }
                ctx.spawn(open_stream(connected, username, &peer, sink, metrics, &log));
            }
            Err(later) => {
                // Counted here once the engine has answered.
                note_answer_later();
                let metrics = metrics.clone();
                ctx.spawn(async move {
                    match later.await {
                        Ok(connected) => {
                            if let Some(expiry) = &expiry {
                                expiry.watch(&connected.inbox);
                            }
                            metrics.connect_started(true, None);
                            open_stream(connected, username, &peer, sink, &metrics, &log).await;
                        }
                        Err(refused) => {
                            let status =
                                refusal_status(&log, "Connect", &username, &refused.into());
                            let code = Code::from_number(status.code().into());
                            metrics.connect_started(true, Some(code));
                            send_status(sink, log, "Connect", status).await;
                        }
                    }
                });
            }
        }
    }
}

/// Counts a refusal the metrics break out on their own: a send the send
/// limit refused.
fn count_refusal(metrics: &Metrics, refused: &ChatError) {
    if matches!(refused, ChatError::SendingTooFast(_)) {
        metrics.send_rate_limited();
    }
}

/// A handler method of a generated service trait, on adapter `H`.
pub(crate) type UnaryMethod<H, Req, Resp> = fn(&mut H, RpcContext<'_>, Req, UnarySink<Resp>);

/// What [`add_unary`] needs of an adapter (where it logs and counts), and
/// the one way both adapters answer a call with the engine's reply.
pub(crate) trait Adapter: Clone + Send + 'static {
    /// The adapter's logger.
    fn log(&self) -> &Logger;
    /// The adapter's metrics.
    fn metrics(&self) -> &Metrics;

    /// Answers a unary call with the engine's `reply`: at once when it is
    /// ready, otherwise from a task that awaits it, so no completion-queue
    /// thread waits. `done` turns a success into the response (logging what
    /// it did), with the wake-ups to fire after the response is queued.
    fn answer<T, R>(
        &self,
        ctx: &RpcContext<'_>,
        sink: UnarySink<R>,
        rpc: Rpc,
        caller: String,
        reply: Result<Reply<T>, Refused>,
        done: impl FnOnce(&Logger, &str, T) -> (R, Option<Wakeups>) + Send + 'static,
    ) where
        T: Send + 'static,
        R: Send + 'static,
    {
        let (log, metrics) = (self.log(), self.metrics());
        let name = rpc.name();
        let reply = match reply {
            Ok(reply) => reply,
            Err(refused) => return finish(ctx, sink, log, name, &caller, Err(refused)),
        };
        match reply.try_now() {
            Ok(Ok(value)) => {
                let (response, wakeups) = done(log, &caller, value);
                match wakeups {
                    Some(wakeups) => {
                        finish_after(ctx, sink, log, name, &caller, Ok(response), Some(wakeups));
                    }
                    None => finish(ctx, sink, log, name, &caller, Ok(response)),
                }
            }
            Ok(Err(refused)) => {
                count_refusal(metrics, &refused);
                finish(ctx, sink, log, name, &caller, Err(refused.into()));
            }
            Err(later) => {
                // Counted here, with the time until the answer is queued.
                note_answer_later();
                let metrics = metrics.clone();
                let started = metrics.clock();
                let log = log.clone();
                let mut sink = sink;
                ctx.spawn(async move {
                    let result = match later.await {
                        Ok(value) => Ok(done(&log, &caller, value).0),
                        Err(refused) => {
                            count_refusal(&metrics, &refused);
                            let refused = refused.into();
                            Err(refused_with_headers(
                                &mut sink, &log, name, &caller, &refused,
                            ))
                        }
                    };
                    let code = Code::from_number(code_of_reply(&result).into());
                    let took = started.map(|started| started.elapsed());
                    metrics.unary_handled(rpc, true, code, took);
                    send_reply(sink, log, name, result).await;
                });
            }
        }
    }
}

impl Adapter for ChatHandler {
    fn log(&self) -> &Logger {
        &self.inner.log
    }

    fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}

/// Registers `method` of an adapter's service under `rpc`'s path,
/// decoding requests with `codec` and refusing those it refuses (see
/// [`codec::bad_request`]), and counts each call: its code and handling
/// time (the handler's own, to the moment it queued its answer; a call
/// whose answer waits on the engine is counted where that answer is sent).
pub(crate) fn add_unary<H, Req, Resp>(
    builder: ServiceBuilder,
    rpc: Rpc,
    handler: &H,
    codec: RequestCodec,
    method: UnaryMethod<H, Req, Resp>,
) -> ServiceBuilder
where
    H: Adapter,
    Req: protobuf::Message,
    Resp: protobuf::MessageFull,
{
    let descriptor = codec::method::<Req, Resp>(MethodType::Unary, rpc.path());
    let mut handler = handler.clone();
    // The closure's own handle (grpcio clones the closure per completion
    // queue, not per call): a call touches no shared reference count.
    let metrics = handler.metrics().clone();
    builder.add_unary_handler(&descriptor, move |ctx, request, sink| {
        let started = metrics.clock();
        let request = codec.decode(request);
        let received = request.is_ok();
        let _stale = take_answer();
        match request {
            Ok(request) => method(&mut handler, ctx, request, sink),
            Err(error) => {
                let (log, name) = (handler.log(), rpc.name());
                let status = bad_request(name, log, &error);
                finish_with_status(&ctx, sink, log, name, Err(status));
            }
        }
        let code = match take_answer() {
            // A task answers later, and counts the call then.
            Some(Answered::Later) => return,
            Some(Answered::Now(code)) => Code::from_number(code.into()),
            // Not answered: a bug, counted as such.
            None => Code::UNKNOWN,
        };
        let took = started.map(|started| Instant::now().saturating_duration_since(started));
        metrics.unary_handled(rpc, received, code, took);
    })
}

/// `chat.v1.ChatService` as grpcio serves it: the generated trait's unary
/// methods, and Connect writing pre-encoded events. Requests are decoded by
/// the server with `codec` ([`codec`]), so a malformed one gets
/// INVALID_ARGUMENT and one over the size limit RESOURCE_EXHAUSTED. The
/// paths are the contract's (`/chat.v1.ChatService/<Rpc>`).
pub fn chat_service(handler: ChatHandler, codec: RequestCodec) -> grpcio::Service {
    let connect: Method<Raw<ConnectRequest>, EncodedEvent> = Method {
        ty: MethodType::ServerStreaming,
        name: "/chat.v1.ChatService/Connect",
        req_mar: request_marshaller::<ConnectRequest>(),
        resp_mar: delivery::EVENT_MARSHALLER,
    };
    let mut connect_handler = handler.clone();
    let builder =
        ServiceBuilder::new().add_server_streaming_handler(&connect, move |ctx, request, sink| {
            let request = codec.decode(request);
            let received = request.is_ok();
            let _stale = take_answer();
            match request {
                Ok(request) => connect_handler.connect(ctx, request, sink),
                Err(error) => {
                    let log = &connect_handler.inner.log;
                    let status = bad_request("Connect", log, &error);
                    refuse_stream(&ctx, sink, log, "Connect", status);
                }
            }
            // Only a refusal answers before the stream ends; a Connect the
            // engine answers later is counted then.
            let refused = match take_answer() {
                Some(Answered::Later) => return,
                Some(Answered::Now(code)) => Some(Code::from_number(code.into())),
                None => None,
            };
            let metrics = &connect_handler.inner.metrics;
            metrics.connect_started(received, refused);
        });
    let builder = add_unary(
        builder,
        Rpc::CreateGroupChat,
        &handler,
        codec,
        <ChatHandler as ChatService>::create_group_chat,
    );
    let builder = add_unary(
        builder,
        Rpc::JoinGroupChat,
        &handler,
        codec,
        <ChatHandler as ChatService>::join_group_chat,
    );
    let builder = add_unary(
        builder,
        Rpc::LeaveGroupChat,
        &handler,
        codec,
        <ChatHandler as ChatService>::leave_group_chat,
    );
    let builder = add_unary(
        builder,
        Rpc::SendMessage,
        &handler,
        codec,
        <ChatHandler as ChatService>::send_message,
    );
    let builder = add_unary(
        builder,
        Rpc::ListChannels,
        &handler,
        codec,
        <ChatHandler as ChatService>::list_channels,
    );
    let builder = add_unary(
        builder,
        Rpc::GetHistory,
        &handler,
        codec,
        <ChatHandler as ChatService>::get_history,
    );
    let builder = add_unary(
        builder,
        Rpc::ListGroupMembers,
        &handler,
        codec,
        <ChatHandler as ChatService>::list_group_members,
    );
    let builder = add_unary(
        builder,
        Rpc::SendTyping,
        &handler,
        codec,
        <ChatHandler as ChatService>::send_typing,
    );
    builder.build()
}

/// Runs `call` with a request's checked arguments, or refuses a request
/// whose arguments did not check out once its caller is authenticated
/// (every call answers `UNAUTHENTICATED` first).
fn checked<Q, T: Send + 'static>(
    engine: &Arc<dyn ChatEngine>,
    caller: &str,
    query: Result<Q, crate::domain::ChatError>,
    call: impl FnOnce(Q) -> Reply<T>,
) -> Reply<T> {
    match query {
        Ok(query) => call(query),
        Err(invalid) => engine.authenticate(caller).then_refuse(invalid),
    }
}

/// The caller's username from the `authorization` header, bare or as
/// `Bearer <name>`; empty when the header is missing or not UTF-8, which the
/// registry refuses as unauthenticated.
pub fn caller_of(ctx: &RpcContext<'_>) -> String {
    let Some(value) = authorization_header(ctx) else {
        return String::new();
    };
    let Ok(value) = std::str::from_utf8(value) else {
        return String::new();
    };
    parse_authorization(value).to_owned()
}

/// The username in an `authorization` header value.
pub fn parse_authorization(value: &str) -> &str {
    let value = value.trim();
    match value.split_once(' ') {
        Some((scheme, name)) if scheme.eq_ignore_ascii_case("bearer") => name.trim(),
        _ => value,
    }
}

impl ChatService for ChatHandler {
    fn create_group_chat(
        &mut self,
        ctx: RpcContext<'_>,
        req: CreateGroupChatRequest,
        sink: UnarySink<CreateGroupChatResponse>,
    ) {
        let Some((caller, sink)) = self.authenticated(&ctx, sink, "CreateGroupChat") else {
            return;
        };
        let reply = guarded(|| Ok(self.inner.engine.create_group(&caller, &req.name)));
        let group = req.name;
        self.answer(
            &ctx,
            sink,
            Rpc::CreateGroupChat,
            caller,
            reply,
            move |log, caller, ()| {
                info!(log, "group created"; "group" => &group, "user" => caller);
                (CreateGroupChatResponse::new(), None)
            },
        );
    }

    fn join_group_chat(
        &mut self,
        ctx: RpcContext<'_>,
        req: JoinGroupChatRequest,
        sink: UnarySink<JoinGroupChatResponse>,
    ) {
        let Some((caller, sink)) = self.authenticated(&ctx, sink, "JoinGroupChat") else {
            return;
        };
        let reply = guarded(|| Ok(self.inner.engine.join_group(&caller, &req.name)));
        let group = req.name;
        self.answer(
            &ctx,
            sink,
            Rpc::JoinGroupChat,
            caller,
            reply,
            move |log, caller, position| {
                debug!(log, "group joined";
                    "group" => &group, "user" => caller, "position" => position);
                let mut response = JoinGroupChatResponse::new();
                response.position = position;
                (response, None)
            },
        );
    }

    fn leave_group_chat(
        &mut self,
        ctx: RpcContext<'_>,
        req: LeaveGroupChatRequest,
        sink: UnarySink<LeaveGroupChatResponse>,
    ) {
        let Some((caller, sink)) = self.authenticated(&ctx, sink, "LeaveGroupChat") else {
            return;
        };
        let reply = guarded(|| Ok(self.inner.engine.leave_group(&caller, &req.name)));
        let group = req.name;
        self.answer(&ctx, sink, Rpc::LeaveGroupChat, caller, reply, move |log, caller, left| {
            match left {
                Left::GroupDeleted => {
                    info!(log, "group deleted"; "group" => &group, "reason" => "last member left");
                }
                Left::GroupKept => {
                    debug!(log, "group left"; "group" => &group, "user" => caller);
                }
            }
            (LeaveGroupChatResponse::new(), None)
        });
    }

    fn send_message(
        &mut self,
        ctx: RpcContext<'_>,
        req: SendMessageRequest,
        sink: UnarySink<SendMessageResponse>,
    ) {
        let Some((caller, sink)) = self.authenticated(&ctx, sink, "SendMessage") else {
            return;
        };
        let SendMessageRequest {
            recipient, text, ..
        } = req;
        let reply = guarded(|| Ok(self.inner.engine.send(&caller, &recipient, text)));
        // The recipients' writes go first; the sender's reply after them.
        self.answer(
            &ctx,
            sink,
            Rpc::SendMessage,
            caller,
            reply,
            move |log, caller, (sent, wakeups)| {
                debug!(log, "message sent";
                "id" => sent.id, "sender" => caller, "recipient" => &recipient,
                "recipients" => sent.recipients);
                for name in &sent.evicted {
                    info!(log, "slow consumer dropped"; "user" => &**name, "group" => &recipient);
                }
                (convert::sent_to_proto(&sent), Some(wakeups))
            },
        );
    }

    fn list_channels(
        &mut self,
        ctx: RpcContext<'_>,
        _req: ListChannelsRequest,
        sink: UnarySink<ListChannelsResponse>,
    ) {
        let Some((caller, sink)) = self.authenticated(&ctx, sink, "ListChannels") else {
            return;
        };
        let reply = guarded(|| Ok(self.inner.engine.list_channels(&caller)));
        self.answer(
            &ctx,
            sink,
            Rpc::ListChannels,
            caller,
            reply,
            |_, _, channels| (convert::channels_to_proto(&channels), None),
        );
    }

    fn get_history(
        &mut self,
        ctx: RpcContext<'_>,
        req: GetHistoryRequest,
        sink: UnarySink<GetHistoryResponse>,
    ) {
        let Some((caller, sink)) = self.authenticated(&ctx, sink, "GetHistory") else {
            return;
        };
        let engine = &self.inner.engine;
        let query = HistoryQuery::new(req.after_id, req.before_id, req.limit);
        let reply = guarded(|| {
            Ok(checked(engine, &caller, query, |query| {
                engine.history(&caller, &req.group, query)
            }))
        });
        self.answer(&ctx, sink, Rpc::GetHistory, caller, reply, |_, _, page| {
            (convert::history_to_proto(&page), None)
        });
    }

    fn list_group_members(
        &mut self,
        ctx: RpcContext<'_>,
        req: ListGroupMembersRequest,
        sink: UnarySink<ListGroupMembersResponse>,
    ) {
        let Some((caller, sink)) = self.authenticated(&ctx, sink, "ListGroupMembers") else {
            return;
        };
        let engine = &self.inner.engine;
        let query = MemberQuery::new(req.limit, &req.page_token);
        let reply = guarded(|| {
            Ok(checked(engine, &caller, query, |query| {
                engine.list_members(&caller, &req.group, query)
            }))
        });
        self.answer(
            &ctx,
            sink,
            Rpc::ListGroupMembers,
            caller,
            reply,
            |_, _, page| (convert::members_to_proto(&page), None),
        );
    }

    fn send_typing(
        &mut self,
        ctx: RpcContext<'_>,
        req: SendTypingRequest,
        sink: UnarySink<SendTypingResponse>,
    ) {
        let Some((caller, sink)) = self.authenticated(&ctx, sink, "SendTyping") else {
            return;
        };
        let reply = guarded(|| Ok(self.inner.engine.send_typing(&caller, &req.recipient)));
        self.answer(&ctx, sink, Rpc::SendTyping, caller, reply, |_, _, ()| {
            (SendTypingResponse::new(), None)
        });
    }
}

/// Logs a new connection and returns the task that serves its stream (see
/// [`serve_connection`]), catching a panic so that it cannot unwind through
/// the completion-queue thread: it is logged, and the session guard, dropped
/// on the way out, still disconnects the user. A plain function returning
/// the task, not an `async fn`: the task a stream lives in stays as small as
/// [`serve_connection`]'s own state.
fn open_stream(
    connected: Connected,
    username: String,
    peer: &str,
    sink: ServerStreamingSink<EncodedEvent>,
    metrics: &Metrics,
    log: &Logger,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let log = log.new(o!("user" => username.clone()));
    let resume_status = connected.resume_status;
    if resume_status == ResumeStatus::NotAsked {
        info!(log, "connected"; "peer" => peer);
    } else {
        info!(log, "connected"; "peer" => peer, "resume" => resume_status.name());
    }
    metrics.resume_attempted(resume_status);
    let event = delivery::connected_event(convert::connected_to_proto(username, &connected));
    let Connected { session, inbox, .. } = connected;
    let stream = DeliveryStream::new(event, inbox, metrics.clone());
    let panic_log = log.clone();
    AssertUnwindSafe(serve_connection(
        session,
        stream,
        sink,
        metrics.clone(),
        log,
    ))
    .catch_unwind()
    .map(move |outcome| {
        if outcome.is_err() {
            error!(panic_log, "connection task panicked");
        }
    })
}

/// Feeds one Connect stream until it ends, then finishes the call and
/// disconnects the user. Runs as a task on a completion-queue thread:
/// `send_all` keeps the sink polled, so a client's cancel ends it at once
/// even when no message is flowing.
async fn serve_connection(
    mut session: Session,
    mut stream: DeliveryStream,
    mut sink: ServerStreamingSink<EncodedEvent>,
    metrics: Metrics,
    log: Logger,
) {
    let outcome = sink.send_all(&mut stream).await;
    // Leave the registry before the status goes out, so the name is free by
    // the time the client sees its stream end.
    let departure = session.end().unwrap_or_default();
    let closed_by_server = stream.closed_by_server();
    let (reason, counted_as) = match (closed_by_server, &outcome) {
        (Some(CloseReason::SlowConsumer), _) => ("slow consumer", DisconnectReason::SlowConsumer),
        (Some(CloseReason::Shutdown), _) => ("server shutdown", DisconnectReason::Shutdown),
        (Some(CloseReason::Fenced), _) => ("node fenced", DisconnectReason::Fenced),
        (Some(CloseReason::Expired), _) => ("token expired", DisconnectReason::TokenExpired),
        (Some(CloseReason::Operator), _) => {
            ("disconnected by an operator", DisconnectReason::Operator)
        }
        (None, Err(grpcio::Error::RemoteStopped)) => {
            ("client closed the stream", DisconnectReason::Client)
        }
        (None, Err(_)) => ("stream failed", DisconnectReason::Client),
        (None, Ok(())) => ("stream ended", DisconnectReason::Client),
    };
    let code = stream_end_code(closed_by_server, &outcome);
    metrics.connect_ended(Code::from_number(code.into()), counted_as);
    let (messages, deliveries) = stream.delivered();
    info!(log, "disconnected";
        "reason" => reason,
        "groups_left" => departure.groups_left,
        "messages" => messages,
        "deliveries" => deliveries);
    for group in &departure.groups_deleted {
        info!(log, "group deleted"; "group" => &**group, "reason" => "last member disconnected");
    }
    if let Some(reason) = closed_by_server {
        // A client that stopped reading may never take this status; the
        // task then lives until its connection dies.
        let status = close_status(reason, stream.operator_reason());
        if let Err(error) = sink.fail(status).await {
            debug!(log, "could not send the closing status"; "error" => %error);
        }
    }
    // Otherwise the client ended the call (or the transport did): there is
    // no one to send a status to, and dropping the sink only releases it.
}
