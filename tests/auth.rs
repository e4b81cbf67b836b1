//! The `authorization` header names the caller of every RPC but Connect.

mod common;

use chat_client::api::{status_of, Api};
use chat_proto::chat::{
    CreateGroupChatRequest, JoinGroupChatRequest, LeaveGroupChatRequest, ListChannelsRequest,
    SendMessageRequest,
};
use common::*;
use grpcio::{CallOption, MetadataBuilder, RpcStatus, RpcStatusCode as Code};

fn with_header(value: &str) -> CallOption {
    let mut headers = MetadataBuilder::new();
    headers.add_str("authorization", value).unwrap();
    CallOption::default().headers(headers.build())
}

/// Calls every RPC but Connect with `opt`; returns each outcome.
fn call_all(api: &Api, opt: &CallOption) -> Vec<(&'static str, Result<(), RpcStatus>)> {
    let client = &api.client;
    let mut create = CreateGroupChatRequest::new();
    create.name = "g".into();
    let mut join = JoinGroupChatRequest::new();
    join.name = "g".into();
    let mut leave = LeaveGroupChatRequest::new();
    leave.name = "g".into();
    let mut send = SendMessageRequest::new();
    send.recipient = "alice".into();
    send.text = "hi".into();
    vec![
        (
            "ListChannels",
            client
                .list_channels_opt(&ListChannelsRequest::new(), opt.clone())
                .map(drop)
                .map_err(status_of),
        ),
        (
            "CreateGroupChat",
            client
                .create_group_chat_opt(&create, opt.clone())
                .map(drop)
                .map_err(status_of),
        ),
        (
            "JoinGroupChat",
            client
                .join_group_chat_opt(&join, opt.clone())
                .map(drop)
                .map_err(status_of),
        ),
        (
            "LeaveGroupChat",
            client
                .leave_group_chat_opt(&leave, opt.clone())
                .map(drop)
                .map_err(status_of),
        ),
        (
            "SendMessage",
            client
                .send_message_opt(&send, opt.clone())
                .map(drop)
                .map_err(status_of),
        ),
    ]
}

#[test]
fn missing_empty_or_unknown_callers_are_unauthenticated_on_every_rpc() {
    let server = TestServer::start();
    let _alice = server.connect("alice");
    let cases = [
        ("no header", CallOption::default()),
        ("empty", with_header("")),
        ("unknown user", with_header("mallory")),
        ("bearer only", with_header("Bearer ")),
        ("invalid name", with_header("not a name")),
        ("wrong case", with_header("ALICE")),
    ];
    for (case, opt) in cases {
        for (rpc, outcome) in call_all(&server.api, &opt) {
            match outcome {
                Err(status) => assert_eq!(status.code(), Code::UNAUTHENTICATED, "{case}: {rpc}"),
                Ok(()) => panic!("{case}: {rpc} succeeded"),
            }
        }
    }
}

#[test]
fn the_caller_may_be_named_bare_or_as_a_bearer_token() {
    let server = TestServer::start();
    let alice = server.connect("alice");
    for value in ["alice", "Bearer alice", "bearer alice"] {
        let opt = with_header(value);
        let outcomes = call_all(&server.api, &opt);
        // Every call got past authentication: create succeeds or finds the
        // group already there, and so on; none is UNAUTHENTICATED.
        for (rpc, outcome) in outcomes {
            if let Err(status) = outcome {
                assert_ne!(status.code(), Code::UNAUTHENTICATED, "{value}: {rpc}");
            }
        }
    }
    // The sends above reached alice, from alice.
    let messages = receive(&alice, 3);
    assert!(messages.iter().all(|m| m.sender == "alice"));
}

#[test]
fn a_disconnected_user_is_no_longer_authenticated() {
    let server = TestServer::start();
    let alice = server.connect("alice");
    server.list("alice").unwrap();
    alice.close();
    eventually(
        "alice is unauthenticated",
        || matches!(server.list("alice"), Err(s) if s.code() == Code::UNAUTHENTICATED),
    );
}
