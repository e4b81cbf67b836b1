//! Token mode over gRPC: every call's caller is the `sub` of the HS256
//! token it carries. Each refusal has its own UNAUTHENTICATED message that
//! never repeats the token; Connect for another user's name is
//! PERMISSION_DENIED; the previous secret still works; a stream ends when
//! its token expires; health checking stays open. Tokens are signed by the
//! test (`common::tokens`), not by the server's code.

mod common;

use std::time::Duration;

use chat_client::api::{bearer, status_of, Api, Credentials};
use chat_proto::chat::{ConnectRequest, ListChannelsRequest, SendMessageRequest};
use chat_proto::health::health_check_response::ServingStatus;
use chat_proto::health::HealthCheckRequest;
use chat_proto::health_grpc::HealthClient;
use common::tokens::*;
use common::*;
use grpcio::{CallOption, MetadataBuilder, RpcStatus, RpcStatusCode as Code};
use serde_json::json;

fn header(value: &str) -> CallOption {
    let mut headers = MetadataBuilder::new();
    headers.add_str("authorization", value).unwrap();
    CallOption::default().headers(headers.build())
}

/// The outcome of a ListChannels call with `opt`.
fn list_as(api: &Api, opt: CallOption) -> Result<(), RpcStatus> {
    api.client
        .list_channels_opt(&ListChannelsRequest::new(), opt)
        .map(drop)
        .map_err(status_of)
}

/// The status a Connect for `username` with `opt` ends with.
fn connect_as(api: &Api, username: &str, opt: CallOption) -> RpcStatus {
    let mut request = ConnectRequest::new();
    request.username = username.to_owned();
    let stream = api
        .client
        .connect_opt(&request, opt)
        .map_err(status_of)
        .unwrap_or_else(|status| panic!("connect: {status:?}"));
    chat_client::api::final_status(stream, WAIT).expect("the stream ends")
}

/// Asserts that `status` is UNAUTHENTICATED with exactly `message`, and
/// does not repeat `token`.
#[track_caller]
fn assert_refused(status: &RpcStatus, message: &str, token: &str, case: &str) {
    assert_eq!(status.code(), Code::UNAUTHENTICATED, "{case}: {status:?}");
    assert_eq!(status.message(), message, "{case}");
    if !token.is_empty() {
        assert!(
            !status.message().contains(token),
            "{case}: echoes the token"
        );
    }
}

/// Every way a header or token is refused, with the message it gets.
fn refusals() -> Vec<(&'static str, Option<String>, &'static str)> {
    let exp = now() + 3600;
    let hs256 = json!({ "alg": "HS256", "typ": "JWT" });
    let claims = json!({ "sub": "alice", "exp": exp });
    let other_secret = b"some-other-secret-of-32-bytes-or-so!";
    let bearer_of = |token: String| Some(format!("Bearer {token}"));
    vec![
        (
            "missing header",
            None,
            "missing authorization header: token mode needs \"Bearer <token>\"",
        ),
        (
            "a bare name",
            Some("alice".to_owned()),
            "authorization header is not \"Bearer <token>\"",
        ),
        (
            "another scheme",
            Some(format!("Basic {}", token_for("alice"))),
            "authorization header is not \"Bearer <token>\"",
        ),
        (
            "bearer name",
            Some("Bearer alice".to_owned()),
            "malformed token",
        ),
        (
            "truncated",
            Some(format!("Bearer {}", &token_for("alice")[..40])),
            "malformed token",
        ),
        (
            "alg none",
            bearer_of(format!(
                "{}.",
                sign_raw(&json!({ "alg": "none" }), &claims, SECRET)
                    .rsplit_once('.')
                    .unwrap()
                    .0
            )),
            "token algorithm must be HS256",
        ),
        (
            "alg HS512",
            bearer_of(sign_raw(&json!({ "alg": "HS512" }), &claims, SECRET)),
            "token algorithm must be HS256",
        ),
        (
            "alg RS256",
            bearer_of(sign_raw(&json!({ "alg": "RS256" }), &claims, SECRET)),
            "token algorithm must be HS256",
        ),
        (
            "forged signature",
            bearer_of(sign_raw(&hs256, &claims, other_secret)),
            "token signature does not verify",
        ),
        (
            "expired",
            bearer_of(sign(&json!({ "sub": "alice", "exp": now() - 60 }))),
            "token expired",
        ),
        (
            "not yet valid",
            bearer_of(sign(
                &json!({ "sub": "alice", "exp": exp, "nbf": now() + 600 }),
            )),
            "token not yet valid",
        ),
        (
            "no exp",
            bearer_of(sign(&json!({ "sub": "alice" }))),
            "token has no exp claim",
        ),
        (
            "string exp",
            bearer_of(sign(&json!({ "sub": "alice", "exp": exp.to_string() }))),
            "token claim exp must be a number",
        ),
        (
            "string nbf",
            bearer_of(sign(&json!({ "sub": "alice", "exp": exp, "nbf": "0" }))),
            "token claim nbf must be a number",
        ),
        (
            "no sub",
            bearer_of(sign(&json!({ "exp": exp }))),
            "token has no sub claim",
        ),
        (
            "numeric sub",
            bearer_of(sign(&json!({ "sub": 42, "exp": exp }))),
            "token claim sub must be a string",
        ),
        (
            "sub not a username",
            bearer_of(sign(&json!({ "sub": "alice smith", "exp": exp }))),
            "token sub is not a valid username",
        ),
    ]
}

fn token_server() -> TestServer {
    TestServer::start_with(token_mode)
}

#[test]
fn every_refusal_has_its_own_message_on_connect_and_every_call() {
    let server = token_server();
    // alice is connected, so only the token can be what is refused.
    let _alice = tokened(&server.api).open_inbox("alice", WAIT).unwrap();
    let mut send = SendMessageRequest::new();
    send.recipient = "alice".into();
    send.text = "hi".into();
    for (case, value, message) in refusals() {
        let opt = || value.as_deref().map_or_else(CallOption::default, header);
        let token = value.as_deref().unwrap_or("");
        let token = token.strip_prefix("Bearer ").unwrap_or(token);
        assert_refused(
            &list_as(&server.api, opt()).unwrap_err(),
            message,
            token,
            case,
        );
        let sent = server.api.client.send_message_opt(&send, opt());
        assert_refused(&status_of(sent.unwrap_err()), message, token, case);
        let status = connect_as(&server.api, "bob", opt());
        assert_refused(&status, message, token, case);
    }
}

#[test]
fn audience_and_issuer_mismatches_are_refused_when_configured() {
    let server = TestServer::start_with(|config| {
        let mut auth = token_config(Duration::from_secs(30));
        auth.audience = Some("chat".into());
        auth.issuer = Some("backend".into());
        config.auth = Some(auth);
    });
    let exp = now() + 3600;
    let token = |claims| format!("Bearer {}", sign(&claims));
    let good = sign(&json!({ "sub": "alice", "exp": exp, "aud": "chat", "iss": "backend" }));
    let api = server
        .api
        .clone()
        .with_credentials(Credentials::Token(good));
    let _alice = api.open_inbox("alice", WAIT).unwrap();
    list_as(&api, api.call_as("alice")).unwrap();
    for (claims, message) in [
        (
            json!({ "sub": "alice", "exp": exp, "aud": "other", "iss": "backend" }),
            "token audience does not match",
        ),
        (
            json!({ "sub": "alice", "exp": exp, "aud": "chat", "iss": "other" }),
            "token issuer does not match",
        ),
        (
            json!({ "sub": "alice", "exp": exp, "iss": "backend" }),
            "token has no aud claim",
        ),
        (
            json!({ "sub": "alice", "exp": exp, "aud": "chat" }),
            "token has no iss claim",
        ),
    ] {
        let value = token(claims.clone());
        let status = list_as(&server.api, header(&value)).unwrap_err();
        assert_refused(&status, message, &value[7..], &claims.to_string());
    }
}

#[test]
fn nobody_can_speak_as_someone_else() {
    let server = token_server();
    let api = tokened(&server.api);
    let alice = api.open_inbox("alice", WAIT).unwrap();
    let _bob = api.open_inbox("bob", WAIT).unwrap();
    // Connect for alice's name with bob's token.
    let status = connect_as(&server.api, "alice", bearer(&token_for("bob")));
    assert_eq!(status.code(), Code::PERMISSION_DENIED, "{status:?}");
    assert_eq!(
        status.message(),
        "the token is for another user than the username to connect"
    );
    // A bare name, even of a connected user, is refused.
    let mut send = SendMessageRequest::new();
    send.recipient = "alice".into();
    send.text = "I am alice".into();
    let bare = server.api.client.send_message_opt(&send, header("alice"));
    assert_code(Code::UNAUTHENTICATED, bare.map_err(status_of));
    // The sender of a message is the token's user, whatever else is said.
    send.text = "from bob".into();
    api.client
        .send_message_opt(&send, api.call_as("bob"))
        .unwrap();
    let messages = receive(&alice, 1);
    assert_eq!(messages[0].sender, "bob");
    assert_eq!(messages[0].text, "from bob");
}

#[test]
fn a_valid_token_of_a_user_not_connected_is_the_usual_unauthenticated() {
    let server = token_server();
    let status = list_as(&server.api, bearer(&token_for("ghost"))).unwrap_err();
    assert_eq!(status.code(), Code::UNAUTHENTICATED);
    // The registry's own message, as in plain mode.
    let plain = TestServer::start();
    let plain_status = list_as(&plain.api, header("ghost")).unwrap_err();
    assert_eq!(status.message(), plain_status.message());
}

#[test]
fn a_token_signed_with_the_previous_secret_is_still_accepted() {
    let server = token_server();
    let claims = json!({ "sub": "dora", "exp": now() + 3600 });
    let old = sign_raw(&json!({ "alg": "HS256" }), &claims, PREVIOUS);
    let api = server
        .api
        .clone()
        .with_credentials(Credentials::Token(old.clone()));
    let _dora = api.open_inbox("dora", WAIT).unwrap();
    list_as(&server.api, bearer(&old)).unwrap();
}

#[test]
fn a_stream_ends_when_its_token_expires_and_the_token_is_refused_after() {
    let server = TestServer::start_with(|config| {
        config.auth = Some(token_config(Duration::ZERO));
    });
    // Valid for two more seconds (whole seconds: at least one).
    let token = sign(&json!({ "sub": "erin", "exp": now() + 2 }));
    let api = server
        .api
        .clone()
        .with_credentials(Credentials::Token(token.clone()));
    let erin = api.open_inbox("erin", WAIT).unwrap();
    let status = end_status(&erin);
    assert_eq!(status.code(), Code::UNAUTHENTICATED, "{status:?}");
    assert_eq!(status.message(), "token expired");
    // The user is gone, and the token no longer opens anything.
    let status = list_as(&server.api, bearer(&token)).unwrap_err();
    assert_eq!(status.message(), "token expired");
    let fresh = tokened(&server.api);
    eventually("erin's name is free", || {
        fresh.open_inbox("erin", WAIT).is_ok()
    });
}

#[test]
fn a_stream_whose_token_is_still_valid_stays_open() {
    let server = token_server();
    let api = tokened(&server.api);
    let frank = api.open_inbox("frank", WAIT).unwrap();
    assert_silent(&frank, Duration::from_millis(200));
    list_as(&server.api, api.call_as("frank")).unwrap();
}

#[test]
fn health_checking_needs_no_token() {
    let server = token_server();
    let channel = grpcio::ChannelBuilder::new(std::sync::Arc::new(grpcio::Environment::new(1)))
        .connect(server.api.address());
    let client = HealthClient::new(channel);
    let mut request = HealthCheckRequest::new();
    request.service = "chat.v1.ChatService".into();
    let status = client
        .check(&request)
        .unwrap()
        .status
        .enum_value_or_default();
    assert_eq!(status, ServingStatus::SERVING);
}

#[test]
fn the_demo_script_runs_clean_in_token_mode() {
    let server = token_server();
    let mismatches = chat_client::demo::run(tokened(&server.new_api()));
    assert_eq!(mismatches, 0);
}

#[test]
fn the_shell_minting_script_makes_a_token_the_server_accepts() {
    let server = token_server();
    let secret = SecretFile::new(&[SECRET, b"\n"].concat());
    let script = manifest_dir().join("scripts/mint-token.sh");
    let output = std::process::Command::new(script)
        .arg(&secret.0)
        .args(["gina", "60"])
        .output()
        .expect("scripts/mint-token.sh runs");
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let api = server
        .api
        .clone()
        .with_credentials(Credentials::Token(token));
    let _gina = api.open_inbox("gina", WAIT).unwrap();
    list_as(&server.api, api.call_as("gina")).unwrap();
}
