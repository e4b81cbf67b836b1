//! Draws an [`App`] into a ratatui frame: the conversation list on the
//! left, the current conversation's messages on the right, then the status
//! line (with who is typing in the current conversation), the notice line
//! and the input line. Reads the state, never changes
//! it, and knows nothing of the terminal it draws on (the tests draw on
//! ratatui's `TestBackend`).

use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;
use unicode_width::UnicodeWidthChar;

use super::app::{App, Body, Connection, Entry};

/// Widest the conversation list gets.
const LIST_WIDTH: u16 = 24;
/// Prompt before the input text.
const PROMPT: &str = "> ";

/// Sender colours; a sender keeps one for the whole session.
const PALETTE: [Color; 6] = [
    Color::Cyan,
    Color::Magenta,
    Color::Yellow,
    Color::Blue,
    Color::LightRed,
    Color::LightGreen,
];

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let [main, status, notice, input] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let list_width = LIST_WIDTH.min(main.width / 3);
    let [list, messages] =
        Layout::horizontal([Constraint::Length(list_width), Constraint::Min(1)]).areas(main);
    draw_list(frame, app, list);
    draw_messages(frame, app, messages);
    draw_status(frame, app, status);
    draw_notice(frame, app, notice);
    draw_input(frame, app, input);
}

fn draw_list(frame: &mut Frame, app: &App, area: Rect) {
    let lines: Vec<Line> = app
        .conversations()
        .iter()
        .enumerate()
        .map(|(index, conversation)| {
            let mut spans = vec![Span::raw(conversation.label())];
            if conversation.unread > 0 {
                spans.push(Span::styled(
                    format!(" ({})", conversation.unread),
                    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
                ));
            }
            let line = Line::from(spans);
            if index == app.current() {
                line.style(Style::new().add_modifier(Modifier::REVERSED))
            } else {
                line
            }
        })
        .collect();
    let block = Block::new().borders(Borders::ALL).title(" conversations ");
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_messages(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::new()
        .borders(Borders::ALL)
        .title(format!(" {} ", app.current_conversation().label()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = usize::from(inner.width.max(1));
    let height = usize::from(inner.height);
    let rows: Vec<Line> = app
        .visible_entries()
        .flat_map(|entry| wrap(entry_spans(entry), width))
        .collect();
    let end = rows
        .len()
        .saturating_sub(app.scroll().min(rows.len().saturating_sub(height)));
    let start = end.saturating_sub(height);
    frame.render_widget(Paragraph::new(rows[start..end].to_vec()), inner);
}

/// One scrollback entry: `12:03:04 [#general] alice: text`.
fn entry_spans(entry: &Entry) -> Vec<Span<'static>> {
    match &entry.body {
        Body::Message {
            time,
            sender,
            conversation,
            text,
            own,
        } => {
            let sender_style = if *own {
                Style::new().add_modifier(Modifier::BOLD)
            } else {
                Style::new()
                    .fg(colour_of(sender))
                    .add_modifier(Modifier::BOLD)
            };
            vec![
                Span::styled(
                    format!("{} ", time.format("%H:%M:%S")),
                    Style::new().fg(Color::DarkGray),
                ),
                Span::styled(
                    format!("[{conversation}] "),
                    Style::new().fg(Color::DarkGray),
                ),
                Span::styled(format!("{sender}:"), sender_style),
                Span::raw(format!(" {text}")),
            ]
        }
        Body::Info(text) => vec![Span::styled(text.clone(), Style::new().fg(Color::Gray))],
    }
}

/// Cuts `spans` into rows at most `width` cells wide (by character: a chat
/// line is short, and words longer than the pane still show whole).
fn wrap(spans: Vec<Span<'static>>, width: usize) -> Vec<Line<'static>> {
    let mut rows = vec![Vec::new()];
    let mut used = 0;
    for span in spans {
        let mut piece = String::new();
        for c in span.content.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width && used > 0 {
                if let Some(row) = rows.last_mut() {
                    row.push(Span::styled(std::mem::take(&mut piece), span.style));
                }
                rows.push(Vec::new());
                used = 0;
            }
            piece.push(c);
            used += w;
        }
        if let Some(row) = rows.last_mut() {
            row.push(Span::styled(piece, span.style));
        }
    }
    rows.into_iter().map(Line::from).collect()
}

/// The colour a sender is shown in: the same for the same name.
fn colour_of(name: &str) -> Color {
    let hash = name.bytes().fold(0u32, |hash, b| {
        hash.wrapping_mul(31).wrapping_add(u32::from(b))
    });
    PALETTE[hash as usize % PALETTE.len()]
}

fn draw_status(frame: &mut Frame, app: &App, area: Rect) {
    let (state, state_style) = match app.connection() {
        Connection::Connected => ("connected", Style::new().fg(Color::Green)),
        Connection::Reconnecting(_) => ("reconnecting", Style::new().fg(Color::Yellow)),
        Connection::Lost(_) => ("disconnected", Style::new().fg(Color::Red)),
    };
    let mut spans = vec![
        Span::raw(format!(" {} on {} │ ", app.me(), app.server())),
        Span::raw(format!("to {} │ ", app.current_conversation().label())),
        Span::styled(state, state_style.add_modifier(Modifier::BOLD)),
    ];
    if let Some(typing) = app.typing_status() {
        spans.push(Span::raw(" │ "));
        spans.push(Span::styled(
            typing,
            Style::new().add_modifier(Modifier::ITALIC),
        ));
    }
    let line = Line::from(spans);
    let bar = Style::new().add_modifier(Modifier::REVERSED);
    frame.render_widget(Paragraph::new(line).style(bar), area);
}

fn draw_notice(frame: &mut Frame, app: &App, area: Rect) {
    let Some(notice) = app.notice() else {
        return;
    };
    let style = if notice.error {
        Style::new().fg(Color::Red)
    } else {
        Style::new().fg(Color::Green)
    };
    let text = if notice.error {
        format!(" error: {}", notice.text)
    } else {
        format!(" {}", notice.text)
    };
    frame.render_widget(Paragraph::new(Span::styled(text, style)), area);
}

fn draw_input(frame: &mut Frame, app: &App, area: Rect) {
    let input = app.input();
    let room = usize::from(area.width)
        .saturating_sub(PROMPT.len() + 1)
        .max(1);
    let before: Vec<char> = input.before_cursor().chars().collect();
    let text: Vec<char> = input.text().chars().collect();
    // Scroll the line sideways so the cursor stays in view.
    let mut first = 0;
    while cells(&before[first..]) > room {
        first += 1;
    }
    let shown: String = text[first..].iter().collect();
    let line = Line::from(vec![
        Span::styled(PROMPT, Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(crate::format::visible(&shown)),
    ]);
    frame.render_widget(Paragraph::new(line), area);
    let column = PROMPT.len() + cells(&before[first..]);
    let x = area
        .x
        .saturating_add(u16::try_from(column).unwrap_or(u16::MAX));
    frame.set_cursor_position(Position::new(x.min(area.right().saturating_sub(1)), area.y));
}

fn cells(chars: &[char]) -> usize {
    chars.iter().map(|c| c.width().unwrap_or(0)).sum()
}

#[cfg(test)]
mod tests {
    use chrono::NaiveTime;
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;
    use ratatui::Terminal;

    use super::super::app::{AfterLookup, ChannelInfo, Incoming, Key, Outcome};
    use super::super::presence::Typing;
    use super::*;

    /// The screen as text, one string per row, trailing spaces trimmed.
    fn screen(app: &App, width: u16, height: u16) -> (Vec<String>, Buffer, Position) {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|frame| draw(frame, app)).unwrap();
        let cursor = terminal.get_cursor_position().unwrap();
        let buffer = terminal.backend().buffer().clone();
        let rows = (0..height)
            .map(|y| {
                let row: String = (0..width)
                    .map(|x| buffer[(x, y)].symbol().to_owned())
                    .collect();
                row.trim_end().to_owned()
            })
            .collect();
        (rows, buffer, cursor)
    }

    fn at(h: u32, m: u32, s: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, s).unwrap()
    }

    fn general_with_bob() -> App {
        let mut app = App::new("alice", "127.0.0.1:13111", false);
        app.outcome(Outcome::Created("general".into()));
        app.outcome(Outcome::Sent {
            to: "general".into(),
            text: "morning!".into(),
            id: 1,
            time: at(9, 0, 1),
        });
        app.incoming(vec![
            Incoming {
                id: 1,
                sender: "alice".into(),
                recipient: "general".into(),
                group: true,
                text: "morning!".into(),
                time: at(9, 0, 1),
            },
            Incoming {
                id: 2,
                sender: "bob".into(),
                recipient: "general".into(),
                group: true,
                text: "hi \"alice\"\tand \\ all".into(),
                time: at(9, 0, 5),
            },
            Incoming {
                id: 3,
                sender: "carol".into(),
                recipient: "alice".into(),
                group: false,
                text: "psst".into(),
                time: at(9, 1, 0),
            },
        ]);
        app
    }

    #[test]
    fn the_main_screen_shows_list_messages_status_and_input() {
        let mut app = general_with_bob();
        "half typed".chars().for_each(|c| {
            app.key(Key::Char(c));
        });
        let (rows, _, cursor) = screen(&app, 80, 10);
        let expected = [
            "┌ conversations ───────┐┌ #general ────────────────────────────────────────────┐",
            "│(home)                ││09:00:01 [#general] alice: morning!                   │",
            "│#general              ││09:00:05 [#general] bob: hi \"alice\"    and \\ all      │",
            "│carol (1)             ││                                                      │",
            "│                      ││                                                      │",
            "│                      ││                                                      │",
            "└──────────────────────┘└──────────────────────────────────────────────────────┘",
            " alice on 127.0.0.1:13111 │ to #general │ connected",
            "",
            "> half typed",
        ];
        assert_eq!(rows, expected);
        assert_eq!(cursor, Position::new(12, 9));
    }

    #[test]
    fn senders_have_colours_and_the_current_conversation_is_highlighted() {
        let app = general_with_bob();
        let (rows, buffer, _) = screen(&app, 80, 10);
        let bob_x = rows[2].find("bob:").unwrap();
        let bob_x = rows[2][..bob_x].chars().count() as u16;
        assert_eq!(buffer[(bob_x, 2)].fg, colour_of("bob"));
        assert!(buffer[(1, 2)].modifier.contains(Modifier::REVERSED));
        assert!(!buffer[(1, 3)].modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn an_error_shows_as_one_line_in_the_status_area() {
        let mut app = App::new("alice", "127.0.0.1:13111", false);
        app.submit("/to nobody");
        app.outcome(Outcome::Found {
            name: "nobody".into(),
            then: AfterLookup::Switch,
            channels: vec![ChannelInfo {
                name: "alice".into(),
                group: false,
                members: 0,
                joined: false,
            }],
        });
        let (rows, buffer, _) = screen(&app, 60, 8);
        assert_eq!(
            rows[6],
            " error: no connected user or group is named \"nobody\""
        );
        assert_eq!(buffer[(1, 6)].fg, Color::Red);
        assert_eq!(rows[5], " alice on 127.0.0.1:13111 │ to (home) │ connected");
    }

    #[test]
    fn long_messages_wrap_and_the_newest_rows_stay_in_view() {
        let mut app = App::new("alice", "srv", false);
        app.outcome(Outcome::Created("g".into()));
        for id in 1..=6 {
            app.outcome(Outcome::Sent {
                to: "g".into(),
                text: format!("message {id} is long enough to wrap"),
                id,
                time: at(10, 0, id as u32),
            });
        }
        let (rows, _, _) = screen(&app, 40, 9);
        // Inner pane: 40 - 13 (list) - 2 (borders) = 25 columns, 4 rows.
        assert_eq!(rows[1], "│(home)     ││rap                      │");
        assert_eq!(rows[2], "│#g         ││10:00:06 [#g] alice: mess│");
        assert_eq!(rows[3], "│           ││age 6 is long enough to w│");
        assert_eq!(rows[4], "│           ││rap                      │");
        app.key(Key::PageUp);
        let (scrolled, _, _) = screen(&app, 40, 9);
        assert_eq!(scrolled[1], "│(home)     ││age 2 is long enough to w│");
    }

    #[test]
    fn a_lost_connection_shows_in_the_status_line() {
        let mut app = App::new("alice", "srv", false);
        app.disconnected("UNAVAILABLE the server is shutting down".into());
        let (rows, buffer, _) = screen(&app, 60, 8);
        assert_eq!(rows[5], " alice on srv │ to (home) │ disconnected");
        assert_eq!(
            rows[6],
            " error: disconnected: UNAVAILABLE the server is shutting dow"
        );
        let x = rows[5].find("disconnected").unwrap();
        let x = rows[5][..x].chars().count() as u16;
        assert_eq!(buffer[(x, 5)].fg, Color::Red);
    }

    #[test]
    fn reconnecting_shows_in_the_status_line_and_the_typed_line_stays() {
        let mut app = App::new("alice", "srv", false);
        "not lost".chars().for_each(|c| {
            app.key(Key::Char(c));
        });
        app.reconnecting("UNAVAILABLE gone".into());
        let (rows, buffer, _) = screen(&app, 60, 8);
        assert_eq!(rows[5], " alice on srv │ to (home) │ reconnecting");
        assert_eq!(
            rows[6],
            " error: connection lost: UNAVAILABLE gone; reconnecting"
        );
        assert_eq!(rows[7], "> not lost");
        let x = rows[5].find("reconnecting").unwrap();
        let x = rows[5][..x].chars().count() as u16;
        assert_eq!(buffer[(x, 5)].fg, Color::Yellow);
    }

    #[test]
    fn who_is_typing_in_the_current_conversation_shows_in_the_status_line() {
        let mut app = general_with_bob();
        let now = std::time::Instant::now();
        let typing = |conversation: &str, user: &str| Typing {
            conversation: conversation.into(),
            user: user.into(),
        };
        app.typing(typing("general", "bob"), now);
        app.typing(typing("carol", "carol"), now);
        let (rows, buffer, _) = screen(&app, 80, 10);
        assert_eq!(
            rows[7],
            " alice on 127.0.0.1:13111 │ to #general │ connected │ bob is typing..."
        );
        let x = rows[7].find("bob is").unwrap();
        let x = rows[7][..x].chars().count() as u16;
        assert!(buffer[(x, 7)].modifier.contains(Modifier::ITALIC));
        app.expire_typing(now + crate::chat::presence::TYPING_SHOWN);
        let (rows, _, _) = screen(&app, 80, 10);
        assert_eq!(
            rows[7],
            " alice on 127.0.0.1:13111 │ to #general │ connected"
        );
    }

    #[test]
    fn a_long_input_line_scrolls_to_keep_the_cursor_in_view() {
        let mut app = App::new("alice", "srv", false);
        "abcdefghijklmnopqrstuvwxyz".chars().for_each(|c| {
            app.key(Key::Char(c));
        });
        let (rows, _, cursor) = screen(&app, 20, 6);
        assert_eq!(rows[5], "> jklmnopqrstuvwxyz");
        assert_eq!(cursor, Position::new(19, 5));
        app.key(Key::Home);
        let (rows, _, cursor) = screen(&app, 20, 6);
        assert_eq!(rows[5], "> abcdefghijklmnopqr");
        assert_eq!(cursor, Position::new(2, 5));
    }
}
