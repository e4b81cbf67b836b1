//! An in-memory real-time chat service over gRPC (grpcio, gRPC C-core).
//!
//! Components, from the inside out:
//! - [`domain`]: users, groups, mailboxes and delivery; plain Rust, no gRPC.
//!   [`domain::ChatEngine`] is the one interface to the chat's state;
//!   [`domain::Registry`], the embedded engine, keeps it behind one mutex.
//! - [`cluster`]: the cluster engine, the same interface with the shared
//!   state in Redis (`--redis`); the only code that knows Redis.
//! - [`service`]: the gRPC adapter implementing `chat.v1.ChatService`; maps
//!   requests to engine calls and [`domain::ChatError`]s to status codes
//!   ([`service::status`]); feeds each Connect stream from its mailbox
//!   ([`service::delivery`]).
//! - [`admin`]: the operator's gRPC adapter, `chat.admin.v1.AdminService`,
//!   served on its own listener (`--admin-listen`) with its own secret;
//!   each action one engine operation.
//! - [`server`]: bootstrap; builds the grpcio environment and server from a
//!   [`config::Config`] and runs it until an injected shutdown signal fires.
//! - [`auth`]: token mode; checks the signed token every call carries and
//!   ends a stream when its token expires. No gRPC, and the domain never
//!   sees a token.
//! - [`tls`]: TLS and mutual TLS on `--listen`, certificates reloaded when
//!   their files change.
//! - [`metrics`]: the Prometheus counters the adapter records into, the
//!   gauges read from the domain at scrape time, and the HTTP endpoint
//!   (`--metrics-listen`) that serves them.
//! - [`config`] and [`logging`]: flags into a validated config; the root
//!   logger.

// Handlers run on shared completion-queue threads: no unwrap, expect or
// panic on anything a client controls (tests may).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admin;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod logging;
pub mod metrics;
pub mod server;
pub mod service;
pub mod tls;
