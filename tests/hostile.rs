//! Hostile input: bytes that are not the message the method expects get
//! INVALID_ARGUMENT (never INTERNAL, never a crash), unknown fields are
//! ignored, oversize requests get RESOURCE_EXHAUSTED, odd header values are
//! unauthenticated; and the server keeps serving throughout.

mod common;

use chat_client::api::{status_of, Api};
use chat_proto::chat::SendMessageRequest;
use common::*;
use futures::{SinkExt, StreamExt};
use grpcio::{
    CallOption, GrpcSlice, Marshaller, MessageReader, Method, MethodType, RpcStatus,
    RpcStatusCode as Code, WriteFlags,
};
use protobuf::Message as _;

fn raw_ser(bytes: &Vec<u8>, buf: &mut GrpcSlice) -> grpcio::Result<()> {
    *buf = GrpcSlice::from(bytes.as_slice());
    Ok(())
}

fn raw_de(mut reader: MessageReader) -> grpcio::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut bytes)
        .map_err(|e| grpcio::Error::Codec(Box::new(e)))?;
    Ok(bytes)
}

const RAW: Marshaller<Vec<u8>> = Marshaller {
    ser: raw_ser,
    de: raw_de,
};

const UNARY: [&str; 5] = [
    "/chat.v1.ChatService/CreateGroupChat",
    "/chat.v1.ChatService/JoinGroupChat",
    "/chat.v1.ChatService/LeaveGroupChat",
    "/chat.v1.ChatService/SendMessage",
    "/chat.v1.ChatService/ListChannels",
];

fn method(name: &'static str, ty: MethodType) -> Method<Vec<u8>, Vec<u8>> {
    Method {
        ty,
        name,
        req_mar: RAW,
        resp_mar: RAW,
    }
}

/// Sends `bytes` as the request of the unary method `path`.
fn unary(
    server: &TestServer,
    path: &'static str,
    bytes: &[u8],
    user: &str,
) -> Result<Vec<u8>, RpcStatus> {
    server
        .api
        .client
        .client
        .unary_call(
            &method(path, MethodType::Unary),
            &bytes.to_vec(),
            Api::as_user(user),
        )
        .map_err(status_of)
}

/// Sends `bytes` as a Connect request; the stream's first outcome.
fn connect(server: &TestServer, bytes: &[u8]) -> Result<Vec<u8>, RpcStatus> {
    let method = method("/chat.v1.ChatService/Connect", MethodType::ServerStreaming);
    let mut stream = server
        .api
        .client
        .client
        .server_streaming(&method, &bytes.to_vec(), CallOption::default())
        .map_err(status_of)?;
    match futures::executor::block_on(stream.next()) {
        Some(result) => result.map_err(status_of),
        None => Err(RpcStatus::new(Code::OK)),
    }
}

/// Sends `bytes` as the first request of the duplex method `path`; the
/// stream's first outcome.
fn duplex(server: &TestServer, path: &'static str, bytes: &[u8]) -> Result<Vec<u8>, RpcStatus> {
    let method = method(path, MethodType::Duplex);
    let (mut sender, mut receiver) = server
        .api
        .client
        .client
        .duplex_streaming(&method, CallOption::default())
        .map_err(status_of)?;
    futures::executor::block_on(async {
        // The server may end the call before this write completes, which
        // then fails: the call's status is what the receiver reports.
        let _written = sender.send((bytes.to_vec(), WriteFlags::default())).await;
        match receiver.next().await {
            Some(result) => result.map_err(status_of),
            None => Err(RpcStatus::new(Code::OK)),
        }
    })
}

const REFLECTION: [&str; 2] = [
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// Byte strings that are not valid requests. The flag says whether they are
/// broken protobuf for any type; the others are wrong only where field 1 is
/// a string: a field 1 of the wrong wire type is skipped by the decoder, and
/// the request then fails its own checks (an empty name), while to the
/// empty ListChannelsRequest (and the health check, where an empty service
/// is the whole server) field 1 is merely unknown.
fn malformed_inputs() -> Vec<(&'static str, Vec<u8>, bool)> {
    let mut valid = SendMessageRequest::new();
    valid.recipient = "alice".into();
    valid.text = "hello there".into();
    let valid = valid.write_to_bytes().unwrap();
    // Start-group tags for field 5, nested far past any sane depth (the
    // shape of RUSTSEC-2024-0437), yet under the 64 KiB request limit.
    let deep_groups = vec![0x2b; 60_000];
    vec![
        ("garbage", vec![0xff; 16], true),
        ("truncated", valid[..valid.len() - 3].to_vec(), true),
        ("length past the end", vec![0x0a, 0x7f, b'a'], true),
        ("deeply nested unknown groups", deep_groups, true),
        ("a lone end-group tag", vec![0x2c], true),
        ("field 1 as a varint", vec![0x08, 0x01], false),
        (
            "invalid UTF-8 in field 1",
            vec![0x0a, 0x02, 0xc3, 0x28],
            false,
        ),
    ]
}

#[test]
fn malformed_requests_get_invalid_argument_on_every_rpc() {
    let server = TestServer::start();
    let _alice = server.connect("alice");
    for (what, bytes, broken_for_any_type) in malformed_inputs() {
        for path in UNARY {
            if !broken_for_any_type && path.ends_with("/ListChannels") {
                continue;
            }
            match unary(&server, path, &bytes, "alice") {
                Err(status) => assert_eq!(
                    status.code(),
                    Code::INVALID_ARGUMENT,
                    "{what} to {path}: {status:?}"
                ),
                Ok(reply) => panic!("{what} to {path} succeeded: {reply:?}"),
            }
        }
        match connect(&server, &bytes) {
            Err(status) => assert_eq!(
                status.code(),
                Code::INVALID_ARGUMENT,
                "{what} to Connect: {status:?}"
            ),
            Ok(reply) => panic!("{what} to Connect succeeded: {reply:?}"),
        }
    }
    // The health check and reflection decode their requests the same way.
    for (what, bytes, _) in malformed_inputs().into_iter().filter(|input| input.2) {
        assert_code(
            Code::INVALID_ARGUMENT,
            unary(&server, "/grpc.health.v1.Health/Check", &bytes, "alice")
                .map_err(|status| RpcStatus::with_message(status.code(), what.to_owned())),
        );
        for path in REFLECTION {
            assert_code(
                Code::INVALID_ARGUMENT,
                duplex(&server, path, &bytes)
                    .map_err(|status| RpcStatus::with_message(status.code(), what.to_owned())),
            );
        }
    }
    // Still serving, state intact.
    assert_eq!(server.names("alice"), ["alice"]);
    server.send("alice", "alice", "still here").unwrap();
}

#[test]
fn unknown_fields_are_ignored() {
    let server = TestServer::start();
    let alice = server.connect("alice");
    let mut request = SendMessageRequest::new();
    request.recipient = "alice".into();
    request.text = "with extras".into();
    let mut bytes = request.write_to_bytes().unwrap();
    // Field 99 (varint) and field 100 (bytes): unknown to the server.
    bytes.extend_from_slice(&[0x98, 0x06, 0x2a, 0xa2, 0x06, 0x03, b'x', b'y', b'z']);
    unary(&server, "/chat.v1.ChatService/SendMessage", &bytes, "alice").unwrap();
    assert_eq!(receive(&alice, 1)[0].text, "with extras");
}

#[test]
fn oversize_requests_are_refused_and_the_server_goes_on() {
    let server = TestServer::start();
    let _alice = server.connect("alice");
    let big = vec![0x0a; 70 * 1024];
    for path in UNARY {
        assert_code(
            Code::RESOURCE_EXHAUSTED,
            unary(&server, path, &big, "alice"),
        );
    }
    assert_code(Code::RESOURCE_EXHAUSTED, connect(&server, &big));
    assert_code(
        Code::RESOURCE_EXHAUSTED,
        unary(&server, "/grpc.health.v1.Health/Check", &big, "alice"),
    );
    for path in REFLECTION {
        assert_code(Code::RESOURCE_EXHAUSTED, duplex(&server, path, &big));
    }
    server.list("alice").unwrap();
}

#[test]
fn a_request_of_exactly_the_limit_is_decoded() {
    let server = TestServer::start();
    let _alice = server.connect("alice");
    // Field 99 (bytes), unknown to every request type, padding the request
    // to exactly 64 KiB: its tag (2 bytes), its length 65,531 as a varint
    // (3 bytes), then the bytes. Past the size check, decoded and ignored.
    let limit = 64 * 1024;
    let mut bytes = vec![0x9a, 0x06, 0xfb, 0xff, 0x03];
    bytes.resize(limit, b'x');
    unary(
        &server,
        "/chat.v1.ChatService/ListChannels",
        &bytes,
        "alice",
    )
    .unwrap();
    bytes.push(b'x');
    assert_code(
        Code::RESOURCE_EXHAUSTED,
        unary(
            &server,
            "/chat.v1.ChatService/ListChannels",
            &bytes,
            "alice",
        ),
    );
}

#[test]
fn names_and_texts_at_and_past_every_limit() {
    let server = TestServer::start();
    let longest = "n".repeat(64);
    let _user = server.connect(&longest);
    assert_eq!(
        server.connect_err(&"n".repeat(65)).code(),
        Code::INVALID_ARGUMENT
    );
    server.create(&longest, &"g".repeat(64)).unwrap();
    assert_code(
        Code::INVALID_ARGUMENT,
        server.create(&longest, &"g".repeat(65)),
    );
    server.send(&longest, &longest, &"t".repeat(4096)).unwrap();
    assert_code(
        Code::INVALID_ARGUMENT,
        server.send(&longest, &longest, &"t".repeat(4097)),
    );
    // Control characters, NUL, bidi overrides and zero-width characters.
    for name in ["a\0b", "a\u{7f}", "\u{202e}abc", "a\u{200b}b", "a\nb"] {
        assert_code(Code::INVALID_ARGUMENT, server.create(&longest, name));
        assert_code(Code::INVALID_ARGUMENT, server.send(&longest, name, "hi"));
    }
    // Odd but valid names.
    for name in ["..", "-", "_"] {
        server.create(&longest, name).unwrap();
    }
    server.list(&longest).unwrap();
}

#[test]
fn odd_authorization_values_are_unauthenticated() {
    let server = TestServer::start();
    let _alice = server.connect("alice");
    for value in [
        "Bearer\talice",
        "Basic alice",
        "alice bob",
        "Bearer  ",
        " ",
        "\u{7f}",
    ] {
        let mut headers = grpcio::MetadataBuilder::new();
        if headers.add_str("authorization", value).is_err() {
            continue; // The client library refuses the value itself.
        }
        let opt = CallOption::default().headers(headers.build());
        let result = server
            .api
            .client
            .list_channels_opt(&chat_proto::chat::ListChannelsRequest::new(), opt)
            .map_err(status_of);
        assert_code(Code::UNAUTHENTICATED, result);
    }
    server.list("alice").unwrap();
}
