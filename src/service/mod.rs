//! The gRPC adapter: implements the generated `ChatService` trait by reading
//! the caller from the `authorization` header, calling the registry, and
//! turning results into replies and errors into statuses (see [`status`]).
//! It holds no chat state of its own and makes no chat decisions; it is the
//! only module besides the bootstrap that knows grpcio.

pub mod codec;
mod convert;
pub mod delivery;
pub mod health;
pub mod reflection;
pub mod status;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use chat_proto::chat::{
    ConnectRequest, CreateGroupChatRequest, CreateGroupChatResponse, JoinGroupChatRequest,
    JoinGroupChatResponse, LeaveGroupChatRequest, LeaveGroupChatResponse, ListChannelsRequest,
    ListChannelsResponse, SendMessageRequest, SendMessageResponse,
};
use chat_proto::chat_grpc::ChatService;
use futures::{FutureExt, SinkExt};
use grpcio::{Method, MethodType, RpcContext, ServerStreamingSink, ServiceBuilder, UnarySink};
use slog::{debug, error, info, o, Logger};

use crate::domain::{ChatEngine, CloseReason, Connected, Left, Reply, Session, Wakeups};
use codec::{bad_request, request_marshaller, Received};
use delivery::{DeliveryStream, EncodedEvent};
use status::{
    close_status, finish, finish_after, finish_with_status, guarded, refusal_status, refuse_stream,
    send_reply, send_status, Refused,
};

/// The request header that names the caller.
pub const AUTHORIZATION: &str = "authorization";

/// The chat service as grpcio sees it: a cheap `Clone` handle (grpcio clones
/// it per completion queue) around the chat engine and the logger. Which
/// engine (embedded or cluster) is behind it is not its business.
#[derive(Clone)]
pub struct ChatHandler {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<dyn ChatEngine>,
    log: Logger,
}

impl ChatHandler {
    /// A handler serving `engine`, logging to `log`.
    pub fn new(engine: Arc<dyn ChatEngine>, log: Logger) -> ChatHandler {
        ChatHandler {
            inner: Arc::new(Inner { engine, log }),
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
        let username = req.username;
        let registered = guarded(|| Ok(self.inner.engine.connect(&username)));
        let reply = match registered {
            Ok(reply) => reply,
            Err(refused) => {
                let status = refusal_status(&log, "Connect", &username, &refused);
                refuse_stream(&ctx, sink, &log, "Connect", status);
                return;
            }
        };
        let peer = ctx.peer();
        match reply.try_now() {
            Ok(Err(refused)) => {
                let status = refusal_status(&log, "Connect", &username, &refused.into());
                refuse_stream(&ctx, sink, &log, "Connect", status);
            }
            Ok(Ok(connected)) => ctx.spawn(open_stream(connected, username, &peer, sink, &log)),
            Err(later) => ctx.spawn(async move {
                match later.await {
                    Ok(connected) => open_stream(connected, username, &peer, sink, &log).await,
                    Err(refused) => {
                        let status = refusal_status(&log, "Connect", &username, &refused.into());
                        send_status(sink, log, "Connect", status).await;
                    }
                }
            }),
        }
    }

    /// Answers a unary call with the engine's `reply`: at once when it is
    /// ready, otherwise from a task that awaits it, so no completion-queue
    /// thread waits. `done` turns a success into the response (logging what
    /// it did), with the wake-ups to fire after the response is queued.
    fn answer<T, R>(
        &self,
        ctx: &RpcContext<'_>,
        sink: UnarySink<R>,
        rpc: &'static str,
        caller: String,
        reply: Result<Reply<T>, Refused>,
        done: impl FnOnce(&Logger, &str, T) -> (R, Option<Wakeups>) + Send + 'static,
    ) where
        T: Send + 'static,
        R: Send + 'static,
    {
        let log = &self.inner.log;
        let reply = match reply {
            Ok(reply) => reply,
            Err(refused) => return finish(ctx, sink, log, rpc, &caller, Err(refused)),
        };
        match reply.try_now() {
            Ok(Ok(value)) => {
                let (response, wakeups) = done(log, &caller, value);
                match wakeups {
                    Some(wakeups) => {
                        finish_after(ctx, sink, log, rpc, &caller, Ok(response), Some(wakeups));
                    }
                    None => finish(ctx, sink, log, rpc, &caller, Ok(response)),
                }
            }
            Ok(Err(refused)) => finish(ctx, sink, log, rpc, &caller, Err(refused.into())),
            Err(later) => {
                let log = log.clone();
                ctx.spawn(async move {
                    let result = match later.await {
                        Ok(value) => Ok(done(&log, &caller, value).0),
                        Err(refused) => Err(refusal_status(&log, rpc, &caller, &refused.into())),
                    };
                    send_reply(sink, log, rpc, result).await;
                });
            }
        }
    }
}

/// A handler method of the generated trait.
type UnaryMethod<Req, Resp> = fn(&mut ChatHandler, RpcContext<'_>, Req, UnarySink<Resp>);

/// Registers `method` of `chat.v1.ChatService` under `/chat.v1.ChatService/<rpc>`,
/// refusing requests the decoder refused (see [`codec::bad_request`]).
fn add_unary<Req, Resp>(
    builder: ServiceBuilder,
    rpc: &'static str,
    path: &'static str,
    handler: &ChatHandler,
    method: UnaryMethod<Req, Resp>,
) -> ServiceBuilder
where
    Req: protobuf::Message,
    Resp: protobuf::MessageFull,
{
    let descriptor = codec::method::<Req, Resp>(MethodType::Unary, path);
    let mut handler = handler.clone();
    builder.add_unary_handler(&descriptor, move |ctx, request, sink| match request {
        Ok(request) => method(&mut handler, ctx, request, sink),
        Err(error) => {
            let status = bad_request(rpc, &handler.inner.log, &error);
            finish_with_status(&ctx, sink, &handler.inner.log, rpc, Err(status));
        }
    })
}

/// `chat.v1.ChatService` as grpcio serves it: the generated trait's unary
/// methods, and Connect writing pre-encoded events. Requests are decoded by
/// the server ([`codec`]), so a malformed one gets INVALID_ARGUMENT and one
/// over the size limit RESOURCE_EXHAUSTED. The paths are the
/// contract's (`/chat.v1.ChatService/<Rpc>`).
pub fn chat_service(handler: ChatHandler) -> grpcio::Service {
    let connect: Method<Received<ConnectRequest>, EncodedEvent> = Method {
        ty: MethodType::ServerStreaming,
        name: "/chat.v1.ChatService/Connect",
        req_mar: request_marshaller::<ConnectRequest>(),
        resp_mar: delivery::EVENT_MARSHALLER,
    };
    let mut connect_handler = handler.clone();
    let builder =
        ServiceBuilder::new().add_server_streaming_handler(&connect, move |ctx, request, sink| {
            match request {
                Ok(request) => connect_handler.connect(ctx, request, sink),
                Err(error) => {
                    let log = &connect_handler.inner.log;
                    let status = bad_request("Connect", log, &error);
                    refuse_stream(&ctx, sink, log, "Connect", status);
                }
            }
        });
    let builder = add_unary(
        builder,
        "CreateGroupChat",
        "/chat.v1.ChatService/CreateGroupChat",
        &handler,
        <ChatHandler as ChatService>::create_group_chat,
    );
    let builder = add_unary(
        builder,
        "JoinGroupChat",
        "/chat.v1.ChatService/JoinGroupChat",
        &handler,
        <ChatHandler as ChatService>::join_group_chat,
    );
    let builder = add_unary(
        builder,
        "LeaveGroupChat",
        "/chat.v1.ChatService/LeaveGroupChat",
        &handler,
        <ChatHandler as ChatService>::leave_group_chat,
    );
    let builder = add_unary(
        builder,
        "SendMessage",
        "/chat.v1.ChatService/SendMessage",
        &handler,
        <ChatHandler as ChatService>::send_message,
    );
    let builder = add_unary(
        builder,
        "ListChannels",
        "/chat.v1.ChatService/ListChannels",
        &handler,
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
        let reply = guarded(|| Ok(self.inner.engine.create_group(&caller, &req.name)));
        let group = req.name;
        self.answer(
            &ctx,
            sink,
            "CreateGroupChat",
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
        let caller = caller_of(&ctx);
        let reply = guarded(|| Ok(self.inner.engine.join_group(&caller, &req.name)));
        let group = req.name;
        self.answer(
            &ctx,
            sink,
            "JoinGroupChat",
            caller,
            reply,
            move |log, caller, ()| {
                debug!(log, "group joined"; "group" => &group, "user" => caller);
                (JoinGroupChatResponse::new(), None)
            },
        );
    }

    fn leave_group_chat(
        &mut self,
        ctx: RpcContext<'_>,
        req: LeaveGroupChatRequest,
        sink: UnarySink<LeaveGroupChatResponse>,
    ) {
        let caller = caller_of(&ctx);
        let reply = guarded(|| Ok(self.inner.engine.leave_group(&caller, &req.name)));
        let group = req.name;
        self.answer(&ctx, sink, "LeaveGroupChat", caller, reply, move |log, caller, left| {
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
        let caller = caller_of(&ctx);
        let SendMessageRequest {
            recipient, text, ..
        } = req;
        let reply = guarded(|| Ok(self.inner.engine.send(&caller, &recipient, text)));
        // The recipients' writes go first; the sender's reply after them.
        self.answer(
            &ctx,
            sink,
            "SendMessage",
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
        let caller = caller_of(&ctx);
        let reply = guarded(|| Ok(self.inner.engine.list_channels(&caller)));
        self.answer(
            &ctx,
            sink,
            "ListChannels",
            caller,
            reply,
            |_, _, channels| (convert::channels_to_proto(&channels), None),
        );
    }
}

/// Logs a new connection and returns the task that serves its stream (see
/// [`serve_connection`]), catching a panic so that it cannot unwind through
/// the completion-queue thread: it is logged, and the session guard, dropped
/// on the way out, still disconnects the user. A plain function returning
/// the task, not an `async fn`: the task a stream lives in stays as small as
/// [`serve_connection`]'s own state.
fn open_stream(
    (session, inbox): Connected,
    username: String,
    peer: &str,
    sink: ServerStreamingSink<EncodedEvent>,
    log: &Logger,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let log = log.new(o!("user" => username.clone()));
    info!(log, "connected"; "peer" => peer);
    let stream = DeliveryStream::new(username, inbox);
    let panic_log = log.clone();
    AssertUnwindSafe(serve_connection(session, stream, sink, log))
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
    log: Logger,
) {
    let outcome = sink.send_all(&mut stream).await;
    // Leave the registry before the status goes out, so the name is free by
    // the time the client sees its stream end.
    let departure = session.end().unwrap_or_default();
    let closed_by_server = stream.closed_by_server();
    let reason = match (closed_by_server, &outcome) {
        (Some(CloseReason::SlowConsumer), _) => "slow consumer",
        (Some(CloseReason::Shutdown), _) => "server shutdown",
        (Some(CloseReason::Fenced), _) => "node fenced",
        (None, Err(grpcio::Error::RemoteStopped)) => "client closed the stream",
        (None, Err(_)) => "stream failed",
        (None, Ok(())) => "stream ended",
    };
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
