//! The plain line mode, for when standard input or output is not a
//! terminal (scripts, pipes): each input line is a command or a text, each
//! message and command result is printed as one line on standard output,
//! errors as `error: ...` on standard error. No prompt, no cursor control;
//! the same [`App`] decides what lines mean and what is shown.

use std::io::{BufRead, Write};

use crossbeam_channel::{never, select};

use super::app::{App, Connection, Printed};
use super::session::{take_inbox_event, Session};
use super::tui::run_effects;
use crate::api::Inbox;

/// Runs until end of input or `/quit`.
///
/// # Errors
/// A one-line message when the connection was lost before the end.
pub fn run(mut app: App, session: &Session, inbox: &Inbox) -> Result<(), String> {
    let (lines_tx, lines) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut events = inbox.events().clone();
    print(&mut app);
    while !app.quitting() {
        select! {
            recv(lines) -> line => match line {
                Ok(line) => {
                    let effect = app.submit(&line);
                    run_effects(&mut app, session, effect);
                }
                Err(_) => break,
            },
            recv(events) -> event => {
                if !take_inbox_event(&mut app, event) {
                    events = never();
                }
            }
        }
        print(&mut app);
    }
    match app.connection() {
        Connection::Connected => Ok(()),
        // Already printed as an error line.
        Connection::Lost(_) => Err(String::new()),
    }
}

fn print(app: &mut App) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in app.take_printed() {
        match line {
            Printed::Out(text) => {
                let _ = writeln!(out, "{text}");
            }
            Printed::Err(text) => {
                let _ = out.flush();
                eprintln!("{text}");
            }
        }
    }
    let _ = out.flush();
}
