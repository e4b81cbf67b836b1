//! The gRPC adapter: implements the generated `ChatService` trait by reading
//! the caller from the `authorization` header, calling the registry, and
//! turning results into replies and errors into statuses (see [`status`]).
//! It holds no chat state of its own and makes no chat decisions; it is the
//! only module besides the bootstrap that knows grpcio. Every chat RPC is
//! counted for [`crate::metrics`] in one place, the wrapper that registers
//! it ([`chat_service`]), and each Connect stream where it ends.

pub mod codec;
mod convert;
pub mod delivery;
pub mod health;
pub mod reflection;
pub mod status;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use chat_proto::chat::{
    ConnectRequest, CreateGroupChatRequest, CreateGroupChatResponse, JoinGroupChatRequest,
    JoinGroupChatResponse, LeaveGroupChatRequest, LeaveGroupChatResponse, ListChannelsRequest,
    ListChannelsResponse, SendMessageRequest, SendMessageResponse,
};
use chat_proto::chat_grpc::ChatService;
use futures::{FutureExt, SinkExt};
use grpcio::{Method, MethodType, RpcContext, ServerStreamingSink, ServiceBuilder, UnarySink};
use slog::{debug, error, info, o, Logger};

use crate::domain::{CloseReason, Left, Registry, Session};
use crate::metrics::{Code, DisconnectReason, Metrics, Rpc};
use codec::{bad_request, request_marshaller, Raw, RequestCodec};
use delivery::{DeliveryStream, EncodedEvent};
use status::{
    close_status, finish, finish_after, finish_with_status, guarded, refusal_status, refuse_stream,
    stream_end_code, take_answer,
};

/// The request header that names the caller.
pub const AUTHORIZATION: &str = "authorization";

/// The chat service as grpcio sees it: a cheap `Clone` handle (grpcio clones
/// it per completion queue) around the shared registry, metrics and logger.
#[derive(Clone)]
pub struct ChatHandler {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Arc<Registry>,
    metrics: Metrics,
    log: Logger,
}

impl ChatHandler {
    /// A handler serving `registry`, counting calls in `metrics`, logging
    /// to `log`.
    pub fn new(registry: Arc<Registry>, metrics: Metrics, log: Logger) -> ChatHandler {
        ChatHandler {
            inner: Arc::new(Inner {
                registry,
                metrics,
                log,
            }),
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
        let log = &self.inner.log;
        let registered = guarded(|| self.inner.registry.connect(&req.username));
        let (session, inbox) = match registered {
            Ok(registered) => registered,
            Err(refused) => {
                let status = refusal_status(log, "Connect", &req.username, &refused);
                refuse_stream(&ctx, sink, log, "Connect", status);
                return;
            }
        };
        let log = log.new(o!("user" => req.username.clone()));
        info!(log, "connected"; "peer" => ctx.peer());
        let metrics = self.inner.metrics.clone();
        let stream = DeliveryStream::new(req.username, inbox, metrics.clone());
        // A panic while serving the stream (a bug) must not unwind through
        // the completion-queue thread: it is logged, and the session guard,
        // dropped on the way out, still disconnects the user.
        let panic_log = log.clone();
        let served =
            AssertUnwindSafe(serve_connection(session, stream, sink, metrics, log)).catch_unwind();
        ctx.spawn(served.map(move |outcome| {
            if outcome.is_err() {
                error!(panic_log, "connection task panicked");
            }
        }));
    }
}

/// A handler method of the generated trait.
type UnaryMethod<Req, Resp> = fn(&mut ChatHandler, RpcContext<'_>, Req, UnarySink<Resp>);

/// Registers `method` of `chat.v1.ChatService` under `rpc`'s path,
/// decoding requests with `codec` and refusing those it refuses (see
/// [`codec::bad_request`]), and counts each call: its code and handling
/// time (the handler's own, to the moment it queued its answer).
fn add_unary<Req, Resp>(
    builder: ServiceBuilder,
    rpc: Rpc,
    handler: &ChatHandler,
    codec: RequestCodec,
    method: UnaryMethod<Req, Resp>,
) -> ServiceBuilder
where
    Req: protobuf::Message,
    Resp: protobuf::MessageFull,
{
    let descriptor = codec::method::<Req, Resp>(MethodType::Unary, rpc.path());
    let mut handler = handler.clone();
    // The closure's own handle (grpcio clones the closure per completion
    // queue, not per call): a call touches no shared reference count.
    let metrics = handler.inner.metrics.clone();
    builder.add_unary_handler(&descriptor, move |ctx, request, sink| {
        let started = metrics.clock();
        let request = codec.decode(request);
        let received = request.is_ok();
        let _stale = take_answer();
        match request {
            Ok(request) => method(&mut handler, ctx, request, sink),
            Err(error) => {
                let (log, name) = (&handler.inner.log, rpc.name());
                let status = bad_request(name, log, &error);
                finish_with_status(&ctx, sink, log, name, Err(status));
            }
        }
        let took = started.map(|started| Instant::now().saturating_duration_since(started));
        metrics.unary_handled(rpc, received, answered(), took);
    })
}

/// The code the handler just run answered with, as the metrics count it
/// (UNKNOWN if it did not answer, which would be a bug).
fn answered() -> Code {
    take_answer().map_or(Code::UNKNOWN, |code| Code::from_number(code.into()))
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
            // Only a refusal answers before the stream ends.
            let refused = take_answer().map(|code| Code::from_number(code.into()));
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
    builder.build()
}

/// The caller's username from the `authorization` header, bare or as
/// `Bearer <name>`; empty when the header is missing or not UTF-8, which the
/// registry refuses as unauthenticated.
pub fn caller_of(ctx: &RpcContext<'_>) -> String {
    let Some((_, value)) = ctx
        .request_headers()
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(AUTHORIZATION))
    else {
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
        let caller = caller_of(&ctx);
        let result = guarded(|| self.inner.registry.create_group(&caller, &req.name));
        if result.is_ok() {
            info!(self.inner.log, "group created"; "group" => &req.name, "user" => &caller);
        }
        let reply = result.map(|()| CreateGroupChatResponse::new());
        finish(
            &ctx,
            sink,
            &self.inner.log,
            "CreateGroupChat",
            &caller,
            reply,
        );
    }

    fn join_group_chat(
        &mut self,
        ctx: RpcContext<'_>,
        req: JoinGroupChatRequest,
        sink: UnarySink<JoinGroupChatResponse>,
    ) {
        let caller = caller_of(&ctx);
        let result = guarded(|| self.inner.registry.join_group(&caller, &req.name));
        if result.is_ok() {
            debug!(self.inner.log, "group joined"; "group" => &req.name, "user" => &caller);
        }
        let reply = result.map(|()| JoinGroupChatResponse::new());
        finish(&ctx, sink, &self.inner.log, "JoinGroupChat", &caller, reply);
    }

    fn leave_group_chat(
        &mut self,
        ctx: RpcContext<'_>,
        req: LeaveGroupChatRequest,
        sink: UnarySink<LeaveGroupChatResponse>,
    ) {
        let caller = caller_of(&ctx);
        let result = guarded(|| self.inner.registry.leave_group(&caller, &req.name));
        match result {
            Ok(Left::GroupDeleted) => {
                info!(self.inner.log, "group deleted"; "group" => &req.name, "reason" => "last member left");
            }
            Ok(Left::GroupKept) => {
                debug!(self.inner.log, "group left"; "group" => &req.name, "user" => &caller);
            }
            Err(_) => {}
        }
        let reply = result.map(|_| LeaveGroupChatResponse::new());
        finish(
            &ctx,
            sink,
            &self.inner.log,
            "LeaveGroupChat",
            &caller,
            reply,
        );
    }

    fn send_message(
        &mut self,
        ctx: RpcContext<'_>,
        req: SendMessageRequest,
        sink: UnarySink<SendMessageResponse>,
    ) {
        let caller = caller_of(&ctx);
        let SendMessageRequest {
            recipient, text, ..
        } = req;
        let result = guarded(|| self.inner.registry.send_queued(&caller, &recipient, text));
        let (result, wakeups) = match result {
            Ok((sent, wakeups)) => (Ok(sent), Some(wakeups)),
            Err(refused) => (Err(refused), None),
        };
        if let Ok(sent) = &result {
            debug!(self.inner.log, "message sent";
                "id" => sent.id, "sender" => &caller, "recipient" => &recipient,
                "recipients" => sent.recipients);
            for name in &sent.evicted {
                info!(self.inner.log, "slow consumer dropped";
                    "user" => &**name, "group" => &recipient);
            }
        }
        let reply = result.map(|sent| convert::sent_to_proto(&sent));
        // The recipients' writes go first; the sender's reply after them.
        let log = &self.inner.log;
        finish_after(&ctx, sink, log, "SendMessage", &caller, reply, wakeups);
    }

    fn list_channels(
        &mut self,
        ctx: RpcContext<'_>,
        _req: ListChannelsRequest,
        sink: UnarySink<ListChannelsResponse>,
    ) {
        let caller = caller_of(&ctx);
        let reply = guarded(|| self.inner.registry.list_channels(&caller))
            .map(|channels| convert::channels_to_proto(&channels));
        finish(&ctx, sink, &self.inner.log, "ListChannels", &caller, reply);
    }
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
        if let Err(error) = sink.fail(close_status(reason)).await {
            debug!(log, "could not send the closing status"; "error" => %error);
        }
    }
    // Otherwise the client ended the call (or the transport did): there is
    // no one to send a status to, and dropping the sink only releases it.
}
