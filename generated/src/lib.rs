//! The service's protobuf messages and grpcio stubs, generated from `proto/`
//! by `scripts/gen.sh`. Every file here except this one is tool output:
//! regenerate it, never edit it (`make check-generated` fails on drift). The
//! server and the client share only this crate. Each `*_grpc` module refers
//! to its messages as `super::<name>`, so the two are declared as siblings.

/// Messages of `chat.v1` (from `proto/chat/v1/chat.proto`).
#[allow(clippy::all, missing_docs, rustdoc::all, renamed_and_removed_lints)]
#[rustfmt::skip]
pub mod chat;

/// grpcio client and service stubs of `chat.v1.ChatService`.
#[allow(clippy::all, missing_docs, rustdoc::all, renamed_and_removed_lints)]
#[rustfmt::skip]
pub mod chat_grpc;

/// Messages of `chat.admin.v1` (from `proto/chat/admin/v1/admin.proto`).
#[allow(clippy::all, missing_docs, rustdoc::all, renamed_and_removed_lints)]
#[rustfmt::skip]
pub mod admin;

/// grpcio client and service stubs of `chat.admin.v1.AdminService`.
#[allow(clippy::all, missing_docs, rustdoc::all, renamed_and_removed_lints)]
#[rustfmt::skip]
pub mod admin_grpc;

/// Messages of the standard health checking protocol, `grpc.health.v1`.
#[allow(clippy::all, missing_docs, rustdoc::all, renamed_and_removed_lints)]
#[rustfmt::skip]
pub mod health;

/// grpcio stubs of `grpc.health.v1.Health`.
#[allow(clippy::all, missing_docs, rustdoc::all, renamed_and_removed_lints)]
#[rustfmt::skip]
pub mod health_grpc;

/// Server reflection, `grpc.reflection.v1`.
pub mod reflection_v1 {
    /// Messages of `grpc.reflection.v1`.
    #[allow(clippy::all, missing_docs, rustdoc::all, renamed_and_removed_lints)]
    #[rustfmt::skip]
    pub mod reflection; /// grpcio stubs of `grpc.reflection.v1.ServerReflection`.
    #[allow(clippy::all, missing_docs, rustdoc::all, renamed_and_removed_lints)]
    #[rustfmt::skip]
    pub mod reflection_grpc;
}

/// Server reflection, `grpc.reflection.v1alpha` (the older name many tools
/// still ask for; the same messages as v1).
pub mod reflection_v1alpha {
    /// Messages of `grpc.reflection.v1alpha`.
    #[allow(clippy::all, missing_docs, rustdoc::all, renamed_and_removed_lints)]
    #[rustfmt::skip]
    pub mod reflection; /// grpcio stubs of `grpc.reflection.v1alpha.ServerReflection`.
    #[allow(clippy::all, missing_docs, rustdoc::all, renamed_and_removed_lints)]
    #[rustfmt::skip]
    pub mod reflection_grpc;
}
