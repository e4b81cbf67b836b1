//! Maps domain errors to gRPC statuses, and finishes unary calls. Every
//! refused call leaves through [`status_of`], which matches every
//! [`ChatError`] case without a catch-all, so a new case cannot reach a
//! client as UNKNOWN or INTERNAL. The helpers here that answer a call also
//! note the code they answered with, for the registration wrapper that ran
//! the handler to count ([`take_answer`]); a call whose answer waits on the
//! engine is noted as answered later, and counted where it is answered.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use futures::channel::oneshot;
use grpcio::{
    Metadata, MetadataBuilder, RpcContext, RpcStatus, RpcStatusCode, ServerStreamingSink, UnarySink,
};
use slog::{error, info, warn, Logger};

use crate::domain::{ChatError, CloseReason, Wakeups};

/// How the handler that just ran on this thread answered its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// With this code, before it returned.
    Now(RpcStatusCode),
    /// Not yet: a task answers once the engine has (and counts the call).
    Later,
}

thread_local! {
    /// How the handler running on this thread answered its call. Handlers
    /// answer before they return, or hand the answer to a task, so the
    /// wrapper that called one reads here what it did: the metrics' one
    /// instrumentation point needs no change to any handler.
    static ANSWERED: Cell<Option<Answered>> = const { Cell::new(None) };
}

fn note_answer(code: RpcStatusCode) {
    ANSWERED.with(|answered| answered.set(Some(Answered::Now(code))));
}

/// Notes that the call just handled on this thread is answered later, by a
/// task that counts it itself.
pub fn note_answer_later() {
    ANSWERED.with(|answered| answered.set(Some(Answered::Later)));
}

/// How the call just handled on this thread was answered, if it was (and
/// forgets it). Called before a handler too, so a stale answer cannot be
/// read for a handler that did not answer.
pub fn take_answer() -> Option<Answered> {
    ANSWERED.with(Cell::take)
}

/// The code a Connect stream of a connected user ended with: the server's
/// closing status, CANCELLED when the client stopped it, the status of a
/// failed call, or UNKNOWN for any other failure of the transport.
pub fn stream_end_code(
    closed_by_server: Option<CloseReason>,
    outcome: &grpcio::Result<()>,
) -> RpcStatusCode {
    match (closed_by_server, outcome) {
        (Some(reason), _) => close_status(reason, None).code(),
        (None, Ok(())) => RpcStatusCode::OK,
        (None, Err(grpcio::Error::RemoteStopped)) => RpcStatusCode::CANCELLED,
        (None, Err(grpcio::Error::RpcFailure(status))) => status.code(),
        (None, Err(_)) => RpcStatusCode::UNKNOWN,
    }
}

/// The code a reply or status is answered with.
pub fn code_of_reply<T>(result: &Result<T, RpcStatus>) -> RpcStatusCode {
    result
        .as_ref()
        .map_or_else(RpcStatus::code, |_| RpcStatusCode::OK)
}

/// The status code a domain error is answered with.
pub fn code_of(error: &ChatError) -> RpcStatusCode {
    match error {
        ChatError::InvalidName { .. }
        | ChatError::InvalidText(_)
        | ChatError::InvalidLimit { .. }
        | ChatError::InvalidPageToken
        | ChatError::InvalidSender(_) => RpcStatusCode::INVALID_ARGUMENT,
        ChatError::Unauthenticated => RpcStatusCode::UNAUTHENTICATED,
        ChatError::NameTaken(_) | ChatError::AlreadyMember(_) => RpcStatusCode::ALREADY_EXISTS,
        ChatError::TooManyConnections(_)
        | ChatError::TooManyGroups(_)
        | ChatError::RecipientOverloaded(_)
        | ChatError::SendingTooFast(_) => RpcStatusCode::RESOURCE_EXHAUSTED,
        ChatError::GroupNotFound(_)
        | ChatError::RecipientNotFound(_)
        | ChatError::UserNotFound(_) => RpcStatusCode::NOT_FOUND,
        ChatError::Banned(_) => RpcStatusCode::PERMISSION_DENIED,
        ChatError::NotMember(_) => RpcStatusCode::FAILED_PRECONDITION,
        ChatError::NotMemberOfRecipient(_) | ChatError::MembersOnly(_) => {
            RpcStatusCode::PERMISSION_DENIED
        }
        ChatError::ShuttingDown | ChatError::Unavailable(_) => RpcStatusCode::UNAVAILABLE,
    }
}

/// The status a domain error is answered with: its code and its message.
pub fn status_of(error: &ChatError) -> RpcStatus {
    let (code, message) = (code_of(error), error.to_string());
    match error {
        ChatError::SendingTooFast(millis) => {
            let details = retry_info_details(code, &message, *millis);
            RpcStatus::with_details(code, message, details)
        }
        _ => RpcStatus::with_message(code, message),
    }
}

/// The response header a send over the limit carries: how long to wait.
pub const RETRY_AFTER_MS: &str = "retry-after-ms";

/// The response headers a refusal carries besides its status:
/// `retry-after-ms` for a send over the limit. (grpcio's server sends no
/// custom trailing metadata, only the status details, so the wait goes in
/// the response headers and, as `google.rpc.RetryInfo`, in the details.)
pub fn refusal_headers(refused: &Refused) -> Option<Metadata> {
    let Refused::Chat(ChatError::SendingTooFast(millis)) = refused else {
        return None;
    };
    let mut headers = MetadataBuilder::new();
    headers.add_str(RETRY_AFTER_MS, &millis.to_string()).ok()?;
    Some(headers.build())
}

/// `google.rpc.Status { code, message, details: [RetryInfo { retry_delay }] }`
/// encoded, for the `grpc-status-details-bin` trailer (the rich error
/// model that gRPC libraries decode).
fn retry_info_details(code: RpcStatusCode, message: &str, millis: u64) -> Vec<u8> {
    let delay = protobuf::well_known_types::duration::Duration {
        seconds: i64::try_from(millis / 1000).unwrap_or(i64::MAX),
        nanos: i32::try_from((millis % 1000) * 1_000_000).unwrap_or(0),
        ..Default::default()
    };
    use protobuf::Message as _;
    let encode = || -> protobuf::Result<Vec<u8>> {
        // RetryInfo { google.protobuf.Duration retry_delay = 1; }
        let mut retry_info = Vec::new();
        let mut out = protobuf::CodedOutputStream::vec(&mut retry_info);
        out.write_bytes(1, &delay.write_to_bytes()?)?;
        out.flush()?;
        drop(out);
        let any = protobuf::well_known_types::any::Any {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".to_owned(),
            value: retry_info,
            ..Default::default()
        };
        // Status { int32 code = 1; string message = 2; repeated Any details = 3; }
        let mut status = Vec::new();
        let mut out = protobuf::CodedOutputStream::vec(&mut status);
        out.write_int32(1, code.into())?;
        out.write_string(2, message)?;
        out.write_bytes(3, &any.write_to_bytes()?)?;
        out.flush()?;
        drop(out);
        Ok(status)
    };
    encode().unwrap_or_default()
}

/// The status a Connect stream ends with when the server closes it.
pub fn close_status(reason: CloseReason, operator_reason: Option<&str>) -> RpcStatus {
    match reason {
        CloseReason::SlowConsumer => RpcStatus::with_message(
            RpcStatusCode::RESOURCE_EXHAUSTED,
            "disconnected: the client did not read its messages fast enough".to_owned(),
        ),
        CloseReason::Shutdown => RpcStatus::with_message(
            RpcStatusCode::UNAVAILABLE,
            "the server is shutting down".to_owned(),
        ),
        CloseReason::Fenced => RpcStatus::with_message(
            RpcStatusCode::UNAVAILABLE,
            "this node lost its place in the cluster; reconnect".to_owned(),
        ),
        CloseReason::Expired => RpcStatus::with_message(
            RpcStatusCode::UNAUTHENTICATED,
            crate::auth::AuthError::Expired.to_string(),
        ),
        CloseReason::Operator => RpcStatus::with_message(
            RpcStatusCode::PERMISSION_DENIED,
            format!(
                "disconnected by an operator: {}",
                operator_reason.unwrap_or_default()
            ),
        ),
    }
}

/// Logs a refused call: one line with the RPC, the caller and the status.
pub fn log_refusal(log: &Logger, rpc: &'static str, caller: &str, error: &ChatError) {
    info!(log, "call refused";
        "rpc" => rpc, "caller" => caller, "code" => %CodeName(code_of(error)), "error" => %error);
}

/// Why a call is refused: a domain error, or a panic caught while handling
/// it (a bug: logged as an error and answered INTERNAL, and the server goes
/// on serving).
#[derive(Debug)]
pub enum Refused {
    /// The domain refused the call.
    Chat(ChatError),
    /// The handler panicked, with this message.
    Panicked(String),
}

impl From<ChatError> for Refused {
    fn from(error: ChatError) -> Refused {
        Refused::Chat(error)
    }
}

/// Runs `call`, catching a panic so that it cannot unwind through a
/// completion-queue thread. The registry's state stays usable afterwards:
/// its lock recovers from poisoning and its critical sections leave the
/// maps consistent at every step.
pub fn guarded<T>(call: impl FnOnce() -> Result<T, ChatError>) -> Result<T, Refused> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(result) => result.map_err(Refused::Chat),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            Err(Refused::Panicked(message))
        }
    }
}

/// Logs a refused call and returns the status to answer it with.
pub fn refusal_status(
    log: &Logger,
    rpc: &'static str,
    caller: &str,
    refused: &Refused,
) -> RpcStatus {
    match refused {
        Refused::Chat(error) => {
            log_refusal(log, rpc, caller, error);
            status_of(error)
        }
        Refused::Panicked(message) => {
            error!(log, "handler panicked"; "rpc" => rpc, "caller" => caller, "panic" => %message);
            RpcStatus::with_message(
                RpcStatusCode::INTERNAL,
                "internal error; the server logged it".to_owned(),
            )
        }
    }
}

/// Shows a status code by its name alone (grpcio's `Debug` prints
/// `5-NOT_FOUND`).
pub struct CodeName(pub RpcStatusCode);

impl std::fmt::Display for CodeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = format!("{:?}", self.0);
        f.write_str(
            shown
                .split_once('-')
                .map_or(shown.as_str(), |(_, name)| name),
        )
    }
}

/// Finishes a unary call exactly once: `Ok` is sent as the response, `Err`
/// is logged and mapped to its status (INTERNAL only for a caught panic).
pub fn finish<T: Send + 'static>(
    ctx: &RpcContext<'_>,
    sink: UnarySink<T>,
    log: &Logger,
    rpc: &'static str,
    caller: &str,
    result: Result<T, Refused>,
) {
    let mut sink = sink;
    let result =
        result.map_err(|refused| refused_with_headers(&mut sink, log, rpc, caller, &refused));
    finish_with_status(ctx, sink, log, rpc, result);
}

/// Logs a refused call, sets the headers its refusal carries on `sink`
/// ([`refusal_headers`]), and returns the status to answer it with.
pub fn refused_with_headers<T>(
    sink: &mut UnarySink<T>,
    log: &Logger,
    rpc: &'static str,
    caller: &str,
    refused: &Refused,
) -> RpcStatus {
    if let Some(headers) = refusal_headers(refused) {
        sink.set_headers(headers);
    }
    refusal_status(log, rpc, caller, refused)
}

/// Refuses a server-streaming call with `status` before any event was
/// sent; like [`finish_with_status`], the sink's future is spawned and a
/// failure to send is logged with the RPC name.
pub fn refuse_stream<T: Send + 'static>(
    ctx: &RpcContext<'_>,
    sink: ServerStreamingSink<T>,
    log: &Logger,
    rpc: &'static str,
    status: RpcStatus,
) {
    note_answer(status.code());
    ctx.spawn(send_status(sink, log.clone(), rpc, status));
}

/// Ends a server-streaming call with `status`, logging a failure to send it
/// with the RPC name; for a task that has no [`RpcContext`] to spawn on.
pub async fn send_status<T>(
    sink: ServerStreamingSink<T>,
    log: Logger,
    rpc: &'static str,
    status: RpcStatus,
) {
    if let Err(error) = sink.fail(status).await {
        warn!(log, "could not send the reply"; "rpc" => rpc, "error" => %error);
    }
}

/// Sends a unary call's reply or status. The sink's future is spawned, not
/// dropped (dropping it would cancel the call); a failure to send is logged
/// with the RPC name.
pub fn finish_with_status<T: Send + 'static>(
    ctx: &RpcContext<'_>,
    sink: UnarySink<T>,
    log: &Logger,
    rpc: &'static str,
    result: Result<T, RpcStatus>,
) {
    note_answer(code_of_reply(&result));
    ctx.spawn(send_reply(sink, log.clone(), rpc, result));
}

/// Like [`finish`], but the reply starts only after `wakeups` have fired
/// and the completion-queue thread has run the work they queued before it:
/// a send's messages are written to its recipients before its reply, which
/// takes the reply's write off the messages' way. (The thread runs queued
/// work newest first, so the reply's task is queued before the wake-ups.)
pub fn finish_after<T: Send + 'static>(
    ctx: &RpcContext<'_>,
    sink: UnarySink<T>,
    log: &Logger,
    rpc: &'static str,
    caller: &str,
    result: Result<T, Refused>,
    wakeups: Option<Wakeups>,
) {
    let mut sink = sink;
    let result =
        result.map_err(|refused| refused_with_headers(&mut sink, log, rpc, caller, &refused));
    note_answer(code_of_reply(&result));
    let (go, wait) = oneshot::channel::<()>();
    let sent = send_reply(sink, log.clone(), rpc, result);
    ctx.spawn(async move {
        // Only a dropped sender (never: it is used below) resolves it early.
        let _ = wait.await;
        sent.await;
    });
    let _ = go.send(());
    drop(wakeups);
}

/// Sends a unary call's reply or status, logging a failure to send it with
/// the RPC name; for a task that has no [`RpcContext`] to spawn on.
pub async fn send_reply<T>(
    sink: UnarySink<T>,
    log: Logger,
    rpc: &'static str,
    result: Result<T, RpcStatus>,
) {
    let sent = match result {
        Ok(response) => sink.success(response),
        Err(status) => sink.fail(status),
    };
    if let Err(error) = sent.await {
        warn!(log, "could not send the reply"; "rpc" => rpc, "error" => %error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Limits, Registry};

    #[test]
    fn a_panic_is_caught_and_the_registry_stays_usable() {
        let registry = Registry::new(Limits {
            max_connections: 10,
            queue_depth: 8,
            queue_bytes: 1 << 20,
            max_text_bytes: 64,
            max_groups_per_user: 10,
            history: crate::domain::HistoryLimits::DEFAULT,
            resume: crate::domain::ResumeLimits::DEFAULT,
            membership_events_max_members: 1000,
            send_limit: crate::domain::SendLimit::OFF,
        });
        let (_alice, _inbox) = registry.connect("alice").unwrap();
        let refused = guarded::<()>(|| {
            // Panic while the registry's lock is held, poisoning it.
            let _channels = registry.list_channels("alice");
            std::panic::panic_any("boom".to_owned())
        });
        match refused {
            Err(Refused::Panicked(message)) => assert_eq!(message, "boom"),
            other => panic!("expected a caught panic, got {other:?}"),
        }
        let log = slog::Logger::root(slog::Discard, slog::o!());
        let status = refusal_status(&log, "Test", "alice", &Refused::Panicked("boom".into()));
        assert_eq!(status.code(), RpcStatusCode::INTERNAL);
        // Still serving.
        registry.create_group("alice", "g").unwrap();
        assert_eq!(
            guarded(|| registry.list_channels("alice")).unwrap().len(),
            2
        );
    }
}
