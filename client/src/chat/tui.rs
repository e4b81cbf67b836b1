//! The full-screen chat's terminal side: raw mode and the alternate screen
//! (restored on every way out, a panic included), the terminal's keys
//! mapped to the app's [`Key`]s, and the loop that waits on keys and on the
//! link (the inbox stream, and reconnecting) at once, so a message that
//! arrives, or a reconnect, while a line is half typed only redraws the
//! screen around it.

use std::io::{self, Stdout};

use crossbeam_channel::Receiver;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{
    self, DisableBracketedPaste, EnableBracketedPaste, Event, KeyCode, KeyEvent, KeyEventKind,
    KeyModifiers,
};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::Terminal;

use super::app::{App, Connection, Effect, Key};
use super::link::Link;
use super::session::Session;
use super::view;

/// Runs the full-screen chat until the user quits.
///
/// # Errors
/// A one-line message when the terminal cannot be set up or drawn on, or
/// when the client was not connected by the time the user quit.
pub fn run(mut app: App, link: &mut Link) -> Result<(), String> {
    let terminal_error = |error: io::Error| format!("terminal: {error}");
    let guard = TerminalGuard::enter().map_err(terminal_error)?;
    let mut terminal =
        Terminal::new(CrosstermBackend::new(io::stdout())).map_err(terminal_error)?;
    let keys = spawn_key_reader();
    loop {
        terminal
            .draw(|frame| view::draw(frame, &app))
            .map_err(terminal_error)?;
        if app.quitting() {
            break;
        }
        match link.next(&mut app, &keys) {
            Some(Ok(event)) => handle_terminal_event(&mut app, link.session(), event),
            // The terminal is gone: nothing more can be typed.
            Some(Err(_)) => break,
            None => {}
        }
    }
    drop(terminal);
    drop(guard);
    match app.connection() {
        Connection::Connected => Ok(()),
        Connection::Reconnecting(reason) | Connection::Lost(reason) => {
            Err(format!("disconnected: {reason}"))
        }
    }
}

/// Makes `effect` and every follow-up call it leads to, one after another.
pub fn run_effects(app: &mut App, session: &Session, mut effect: Option<Effect>) {
    while let Some(next) = effect {
        effect = app.outcome(session.run(next));
    }
}

fn handle_terminal_event(app: &mut App, session: &Session, event: Event) {
    match event {
        Event::Key(key) => {
            if let Some(key) = map_key(key) {
                let effect = app.key(key);
                run_effects(app, session, effect);
            }
        }
        // A pasted block is typed in as one line: its line breaks would
        // otherwise send the first part before the rest is in. Its typing
        // notice goes once, as the throttle allows.
        Event::Paste(text) => {
            for c in text.chars() {
                let c = if c == '\n' || c == '\r' { ' ' } else { c };
                let effect = app.key(Key::Char(c));
                run_effects(app, session, effect);
            }
        }
        // A resize needs only the redraw that follows every event.
        _ => {}
    }
}

/// The app's key for a terminal key press; `None` for keys it ignores.
pub fn map_key(key: KeyEvent) -> Option<Key> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    Some(match key.code {
        KeyCode::Char(c) if ctrl => match c.to_ascii_lowercase() {
            'c' => Key::Quit,
            'd' => Key::EndOfInput,
            'u' => Key::KillToStart,
            'k' => Key::KillToEnd,
            'w' => Key::KillWord,
            'a' => Key::Home,
            'e' => Key::End,
            'h' => Key::Backspace,
            'n' => Key::NextConversation,
            'p' => Key::PreviousConversation,
            _ => return None,
        },
        KeyCode::Char(_) if alt => return None,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Delete => Key::Delete,
        KeyCode::Left | KeyCode::Up if alt => Key::PreviousConversation,
        KeyCode::Right | KeyCode::Down if alt => Key::NextConversation,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Up => Key::HistoryBack,
        KeyCode::Down => Key::HistoryForward,
        KeyCode::Tab => Key::NextConversation,
        KeyCode::BackTab => Key::PreviousConversation,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Esc => Key::Dismiss,
        _ => return None,
    })
}

/// Reads terminal events on a thread of its own; the channel closes when
/// the terminal can no longer be read.
fn spawn_key_reader() -> Receiver<Event> {
    let (sender, events) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        while let Ok(event) = event::read() {
            if sender.send(event).is_err() {
                return;
            }
        }
    });
    events
}

/// Raw mode, the alternate screen and bracketed paste while it lives; the
/// terminal as it was once it is dropped, or when the program panics.
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> io::Result<TerminalGuard> {
        install_panic_hook();
        enable_raw_mode()?;
        // From here on, Drop restores whatever part of this took effect.
        let guard = TerminalGuard;
        execute!(io::stdout(), EnterAlternateScreen, EnableBracketedPaste)?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore(&mut io::stdout());
    }
}

/// Leaves the alternate screen and raw mode; errors are ignored, as this
/// runs on the way out (and from the panic hook).
fn restore(out: &mut Stdout) {
    let _ = execute!(
        out,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
    let _ = disable_raw_mode();
}

/// Restores the terminal before the panic message is printed, so it is
/// readable and the shell is usable afterwards.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore(&mut io::stdout());
        previous(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> Option<Key> {
        map_key(KeyEvent::new(code, modifiers))
    }

    #[test]
    fn readline_keys_map_to_editing() {
        let ctrl = KeyModifiers::CONTROL;
        assert_eq!(press(KeyCode::Char('u'), ctrl), Some(Key::KillToStart));
        assert_eq!(press(KeyCode::Char('w'), ctrl), Some(Key::KillWord));
        assert_eq!(press(KeyCode::Char('a'), ctrl), Some(Key::Home));
        assert_eq!(press(KeyCode::Char('c'), ctrl), Some(Key::Quit));
        assert_eq!(
            press(KeyCode::Up, KeyModifiers::NONE),
            Some(Key::HistoryBack)
        );
        assert_eq!(
            press(KeyCode::Char('é'), KeyModifiers::SHIFT),
            Some(Key::Char('é'))
        );
    }

    #[test]
    fn tab_ctrl_n_p_and_alt_arrows_switch_conversation() {
        let none = KeyModifiers::NONE;
        assert_eq!(press(KeyCode::Tab, none), Some(Key::NextConversation));
        assert_eq!(
            press(KeyCode::BackTab, KeyModifiers::SHIFT),
            Some(Key::PreviousConversation)
        );
        assert_eq!(
            press(KeyCode::Char('n'), KeyModifiers::CONTROL),
            Some(Key::NextConversation)
        );
        assert_eq!(
            press(KeyCode::Up, KeyModifiers::ALT),
            Some(Key::PreviousConversation)
        );
        assert_eq!(
            press(KeyCode::Down, KeyModifiers::ALT),
            Some(Key::NextConversation)
        );
        assert_eq!(press(KeyCode::Char('x'), KeyModifiers::ALT), None);
    }
}
