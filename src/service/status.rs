//! Maps domain errors to gRPC statuses, and finishes unary calls. Every
//! refused call leaves through [`status_of`], which matches every
//! [`ChatError`] case without a catch-all, so a new case cannot reach a
//! client as UNKNOWN or INTERNAL.

use futures::FutureExt;
use grpcio::{RpcContext, RpcStatus, RpcStatusCode, UnarySink};
use slog::{info, warn, Logger};

use crate::domain::{ChatError, CloseReason};

/// The status code a domain error is answered with.
pub fn code_of(error: &ChatError) -> RpcStatusCode {
    match error {
        ChatError::InvalidName { .. } | ChatError::InvalidText(_) => {
            RpcStatusCode::INVALID_ARGUMENT
        }
        ChatError::Unauthenticated => RpcStatusCode::UNAUTHENTICATED,
        ChatError::NameTaken(_) | ChatError::AlreadyMember(_) => RpcStatusCode::ALREADY_EXISTS,
        ChatError::TooManyConnections(_)
        | ChatError::TooManyGroups(_)
        | ChatError::RecipientOverloaded(_) => RpcStatusCode::RESOURCE_EXHAUSTED,
        ChatError::GroupNotFound(_) | ChatError::RecipientNotFound(_) => RpcStatusCode::NOT_FOUND,
        ChatError::NotMember(_) => RpcStatusCode::FAILED_PRECONDITION,
        ChatError::NotMemberOfRecipient(_) => RpcStatusCode::PERMISSION_DENIED,
        ChatError::ShuttingDown => RpcStatusCode::UNAVAILABLE,
    }
}

/// The status a domain error is answered with: its code and its message.
pub fn status_of(error: &ChatError) -> RpcStatus {
    RpcStatus::with_message(code_of(error), error.to_string())
}

/// The status a Connect stream ends with when the server closes it.
pub fn close_status(reason: CloseReason) -> RpcStatus {
    match reason {
        CloseReason::SlowConsumer => RpcStatus::with_message(
            RpcStatusCode::RESOURCE_EXHAUSTED,
            "disconnected: the client did not read its messages fast enough".to_owned(),
        ),
        CloseReason::Shutdown => RpcStatus::with_message(
            RpcStatusCode::UNAVAILABLE,
            "the server is shutting down".to_owned(),
        ),
    }
}

/// Logs a refused call: one line with the RPC, the caller and the status.
pub fn log_refusal(log: &Logger, rpc: &'static str, caller: &str, error: &ChatError) {
    info!(log, "call refused";
        "rpc" => rpc, "caller" => caller, "code" => %CodeName(code_of(error)), "error" => %error);
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
/// is logged and mapped to its status.
pub fn finish<T: Send + 'static>(
    ctx: &RpcContext<'_>,
    sink: UnarySink<T>,
    log: &Logger,
    rpc: &'static str,
    caller: &str,
    result: Result<T, ChatError>,
) {
    let result = result.map_err(|error| {
        log_refusal(log, rpc, caller, &error);
        status_of(&error)
    });
    finish_with_status(ctx, sink, log, rpc, result);
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
    let sent = match result {
        Ok(response) => sink.success(response),
        Err(status) => sink.fail(status),
    };
    let log = log.clone();
    ctx.spawn(sent.map(move |outcome| {
        if let Err(error) = outcome {
            warn!(log, "could not send the reply"; "rpc" => rpc, "error" => %error);
        }
    }));
}
