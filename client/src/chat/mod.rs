//! `chat-client chat --user NAME`: the interactive chat. On a terminal it
//! is a full-screen client ([`tui`]); when standard input or output is not
//! a terminal it reads and prints plain lines ([`lines`]) so scripts and
//! pipes work. Both run the same [`app`] state, which knows neither the
//! terminal nor the network; [`session`] makes the calls, [`link`] keeps
//! the stream open (reconnecting and resuming when it ends), [`presence`]
//! keeps who joined, left and is typing, [`view`] draws.

pub mod app;
pub mod command;
pub mod input;
pub mod lines;
pub mod link;
pub mod presence;
pub mod session;
pub mod tui;
pub mod view;

use std::io::IsTerminal;
use std::time::Duration;

use grpcio::RpcStatusCode;

use crate::api::Api;
use app::App;
use link::{Link, EVENTS};
use session::describe_status;

/// How the chat talks to the person using it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Full screen, on a terminal.
    Screen,
    /// Plain lines in and out.
    Lines,
}

impl Mode {
    /// Full screen when both standard input and output are terminals.
    pub fn detect() -> Mode {
        if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            Mode::Screen
        } else {
            Mode::Lines
        }
    }
}

/// Connects as `user` and runs the chat in `mode` until the user quits.
///
/// # Errors
/// A one-line message when it cannot connect, or when the connection was
/// lost (empty if that was already printed).
pub fn run(api: Api, user: &str, mode: Mode) -> Result<(), String> {
    let (inbox, connected) = api
        .open_session_with(user, None, EVENTS, Duration::from_secs(10))
        .map_err(|status| match status.code() {
            RpcStatusCode::ALREADY_EXISTS => format!("the name {user:?} is taken"),
            RpcStatusCode::INVALID_ARGUMENT => {
                format!("{user:?} is not a valid name: {}", command::NAME_RULE)
            }
            _ => format!("cannot connect as {user:?}: {}", describe_status(&status)),
        })?;
    let address = api.address().to_owned();
    let mut link = Link::new(api, user, inbox, connected);
    match mode {
        Mode::Screen => tui::run(App::new(user, &address, false), &mut link),
        Mode::Lines => lines::run(App::new(user, &address, true), &mut link),
    }
    // Dropping the link closes the stream.
}
