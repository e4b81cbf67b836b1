//! The chat service's protobuf messages and grpcio stubs, generated from
//! `proto/` by `scripts/gen.sh`. Every file here except this one is tool
//! output: regenerate it, never edit it (`make check-generated` fails on
//! drift). The server and the client share only this crate.

/// Messages of `chat.v1` (from `proto/chat/v1/chat.proto`).
#[allow(clippy::all, missing_docs, rustdoc::all, renamed_and_removed_lints)]
#[rustfmt::skip]
pub mod chat;

/// grpcio client and service stubs of `chat.v1.ChatService`. The generated
/// code refers to `super::chat`, so both modules are siblings here.
#[allow(clippy::all, missing_docs, rustdoc::all, renamed_and_removed_lints)]
#[rustfmt::skip]
pub mod chat_grpc;
