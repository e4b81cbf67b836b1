//! The chat service's command-line client as a library: [`api`] wraps the
//! generated grpcio client for blocking use, [`demo`] is the scripted
//! session, [`chat`] the interactive one, [`admin`] the operator's
//! commands. The `chat-client` binary and the server's integration tests
//! both use it.

pub mod admin;
pub mod api;
pub mod chat;
pub mod demo;
pub mod format;
