//! Who is calling, as the adapter reads it from the `authorization` header:
//! in plain mode the name the header carries (see [`super::caller_of`]); in
//! token mode the `sub` of the token it carries, checked by
//! [`crate::auth::TokenVerifier`]. A refused token is answered here, with
//! UNAUTHENTICATED and the refusal's own message; a Connect whose username
//! is not the token's is PERMISSION_DENIED. The token itself is never
//! logged nor echoed.

use std::sync::Arc;
use std::time::SystemTime;

use grpcio::{RpcContext, RpcStatus, RpcStatusCode};
use slog::{info, Logger};

use crate::auth::{AuthError, Identity, TokenAuth};
use crate::domain::{check_name, ChatError, Inbox};

use super::status::{log_refusal, status_of};
use super::AUTHORIZATION;

/// The value of the call's `authorization` header, if it has one.
pub fn authorization_header<'a>(ctx: &'a RpcContext<'_>) -> Option<&'a [u8]> {
    ctx.request_headers()
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(AUTHORIZATION))
        .map(|(_, value)| value)
}

/// The status a refused token is answered with.
pub fn auth_status(error: &AuthError) -> RpcStatus {
    RpcStatus::with_message(RpcStatusCode::UNAUTHENTICATED, error.to_string())
}

/// Checks the call's token; on refusal logs it and returns the status to
/// answer with.
pub fn verify(
    auth: &TokenAuth,
    ctx: &RpcContext<'_>,
    log: &Logger,
    rpc: &'static str,
) -> Result<Identity, RpcStatus> {
    auth.verifier
        .verify_header(authorization_header(ctx))
        .map_err(|error| {
            info!(log, "call refused";
                "rpc" => rpc, "code" => "UNAUTHENTICATED", "error" => %error);
            auth_status(&error)
        })
}

/// In token mode, checks that Connect's `username` is the token's user and
/// returns what ends its stream when the token runs out; `None` in plain
/// mode.
///
/// # Errors
/// INVALID_ARGUMENT for an invalid username (as in plain mode),
/// UNAUTHENTICATED for a refused token, PERMISSION_DENIED for another
/// user's.
pub fn connect_identity(
    auth: Option<&Arc<TokenAuth>>,
    ctx: &RpcContext<'_>,
    log: &Logger,
    username: &str,
) -> Result<Option<Expiry>, RpcStatus> {
    let Some(auth) = auth else { return Ok(None) };
    // An invalid username is refused as in plain mode, before the token:
    // the naming rule is no secret, and no token can match such a name.
    if let Err(problem) = check_name(username) {
        let error = ChatError::InvalidName {
            field: "username",
            problem,
        };
        log_refusal(log, "Connect", username, &error);
        return Err(status_of(&error));
    }
    let identity = verify(auth, ctx, log, "Connect")?;
    if identity.user != username {
        info!(log, "call refused";
            "rpc" => "Connect", "code" => "PERMISSION_DENIED", "caller" => &identity.user,
            "username" => username, "error" => "the token is for another user");
        return Err(RpcStatus::with_message(
            RpcStatusCode::PERMISSION_DENIED,
            "the token is for another user than the username to connect".to_owned(),
        ));
    }
    Ok(Some(Expiry {
        auth: Arc::clone(auth),
        at: identity.refused_from,
    }))
}

/// When a token-mode stream must end.
pub struct Expiry {
    auth: Arc<TokenAuth>,
    at: Option<SystemTime>,
}

impl Expiry {
    /// Has the stream reading `inbox` ended when the token runs out.
    pub fn watch(&self, inbox: &Inbox) {
        self.auth.expiry.close_at(self.at, inbox.closer());
    }
}
