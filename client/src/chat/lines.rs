//! The plain line mode, for when standard input or output is not a
//! terminal (scripts, pipes): each input line is a command or a text, each
//! message and command result is printed as one line on standard output,
//! errors as `error: ...` on standard error. No prompt, no cursor control;
//! the same [`App`] decides what lines mean and what is shown.

use std::collections::VecDeque;
use std::io::{BufRead, Write};

use crossbeam_channel::never;

use super::app::{App, Connection, Printed};
use super::command;
use super::link::Link;
use super::tui::run_effects;

/// Runs until end of input or `/quit`. While the client reconnects, lines
/// that need the server wait, in order, and run once it is back; end of
/// input then still runs them first.
///
/// # Errors
/// A one-line message when the connection was lost before the end.
pub fn run(mut app: App, link: &mut Link) -> Result<(), String> {
    let (lines_tx, lines) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut waiting: VecDeque<String> = VecDeque::new();
    let mut ended = false;
    print(&mut app);
    while !app.quitting() {
        let reconnecting = matches!(app.connection(), Connection::Reconnecting(_));
        if !reconnecting {
            if let Some(line) = waiting.pop_front() {
                submit(&mut app, link, &line);
                print(&mut app);
                continue;
            }
        }
        if ended && (waiting.is_empty() || !reconnecting) {
            break;
        }
        let source = if ended { never() } else { lines.clone() };
        match link.next(&mut app, &source) {
            Some(Ok(line)) if reconnecting && command::parse(&line).needs_server() => {
                waiting.push_back(line);
            }
            Some(Ok(line)) => submit(&mut app, link, &line),
            Some(Err(_)) => ended = true,
            None => {}
        }
        print(&mut app);
    }
    match app.connection() {
        Connection::Connected => Ok(()),
        // Already printed as an error line.
        Connection::Reconnecting(_) | Connection::Lost(_) => Err(String::new()),
    }
}

fn submit(app: &mut App, link: &Link, line: &str) {
    let effect = app.submit(line);
    run_effects(app, link.session(), effect);
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
