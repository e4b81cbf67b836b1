//! The interactive chat's state, with no terminal and no network in it: the
//! conversations (users and groups) with their unread counts, the messages
//! shown in each, the input line, the status line's notice and the
//! connection state. Keys and received messages go in; [`Effect`]s (the
//! calls to make on the server) come out, and their [`Outcome`]s go back
//! in. `tui` and `lines` drive it, `view` draws it, `session` makes the
//! calls; its unit tests below need none of them.

use std::collections::HashSet;

use chrono::NaiveTime;

use super::command::{self, Command, COMMANDS, KEYS, NAME_RULE};
use super::input::InputLine;
use crate::format::{describe_group, visible};

/// Most entries kept; past it the oldest are dropped.
const SCROLLBACK_LIMIT: usize = 10_000;
/// Rows one PageUp/PageDown scrolls.
const PAGE_ROWS: usize = 10;

/// A key, as the chat understands it (the terminal's keys are mapped to
/// these in `tui`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A character to insert.
    Char(char),
    Enter,
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
    /// Ctrl-U.
    KillToStart,
    /// Ctrl-K.
    KillToEnd,
    /// Ctrl-W.
    KillWord,
    /// Up: an earlier line from the history.
    HistoryBack,
    /// Down: a later line from the history.
    HistoryForward,
    NextConversation,
    PreviousConversation,
    PageUp,
    PageDown,
    /// Esc: clear the status notice.
    Dismiss,
    /// Ctrl-C.
    Quit,
    /// Ctrl-D: quit when the line is empty, else delete under the cursor.
    EndOfInput,
}

/// What kind of conversation this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The first entry of the list: where command output goes before any
    /// conversation is open.
    Home,
    /// One-to-one with a connected user.
    User,
    /// A group channel.
    Group,
}

/// One entry of the conversation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The user's or group's name (they share one namespace).
    pub name: String,
    pub kind: Kind,
    /// Messages received while another conversation was shown.
    pub unread: usize,
}

impl Conversation {
    /// The name as shown: `#general` for a group, `bob` for a user.
    pub fn label(&self) -> String {
        match self.kind {
            Kind::Home => "(home)".to_owned(),
            Kind::User => self.name.clone(),
            Kind::Group => format!("#{}", self.name),
        }
    }
}

/// A message received on the inbox stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub id: u64,
    pub sender: String,
    pub recipient: String,
    /// Whether `recipient` is a group.
    pub group: bool,
    pub text: String,
    /// When the server accepted it, in local time.
    pub time: NaiveTime,
}

/// One line of a conversation's scrollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Message {
        time: NaiveTime,
        sender: String,
        /// The conversation's label (`#general`, `bob`).
        conversation: String,
        /// The text, made safe to show ([`visible`]).
        text: String,
        /// Sent by this client's user.
        own: bool,
    },
    /// What a command reports (help, lists, "joined #general").
    Info(String),
}

/// A scrollback line and the conversation it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Index into [`App::conversations`].
    pub conversation: usize,
    pub body: Body,
}

/// The status line's notice: the outcome of the last thing done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

/// Whether the inbox stream is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    Connected,
    /// The stream ended: why.
    Lost(String),
}

/// What to do once a name has been looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterLookup {
    /// `/to`: make it the current conversation.
    Switch,
    /// `/msg`: send it this text.
    Send(String),
}

/// A call to make on the server; its result comes back as an [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Send {
        to: String,
        text: String,
    },
    /// ListChannels, to check that `name` exists before using it.
    Lookup {
        name: String,
        then: AfterLookup,
    },
    List,
    Create(String),
    Join(String),
    Leave(String),
}

/// A user or group as ListChannels reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    pub name: String,
    pub group: bool,
    pub members: u32,
    pub joined: bool,
}

/// How an [`Effect`] turned out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent {
        to: String,
        text: String,
        id: u64,
        time: NaiveTime,
    },
    Found {
        name: String,
        then: AfterLookup,
        channels: Vec<ChannelInfo>,
    },
    Listed(Vec<ChannelInfo>),
    Created(String),
    Joined(String),
    Left(String),
    /// The call failed: `action` says what was tried ("send to bob"),
    /// `error` the status (code and message).
    Failed {
        action: String,
        error: String,
    },
}

/// The interactive chat's whole state.
#[derive(Debug)]
pub struct App {
    me: String,
    server: String,
    conversations: Vec<Conversation>,
    /// Index into `conversations` of the one shown and sent to.
    current: usize,
    entries: Vec<Entry>,
    /// Ids of the messages shown, so a group message that comes back to
    /// its sender (it reaches every member) is not shown a second time.
    seen: HashSet<u64>,
    input: InputLine,
    notice: Option<Notice>,
    connection: Connection,
    /// Rows the message pane is scrolled up from the newest line.
    scroll: usize,
    quit: bool,
    /// Line mode only: the lines to print, in order (entries as text and
    /// notices as `error: ...`), taken by [`App::take_printed`].
    printed: Option<Vec<Printed>>,
}

/// A line for the plain line mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Printed {
    /// For standard output.
    Out(String),
    /// For standard error.
    Err(String),
}

impl App {
    /// The state of a chat that has just connected as `me` to `server`.
    /// `plain` keeps a copy of every line for the line mode to print.
    pub fn new(me: &str, server: &str, plain: bool) -> App {
        let mut app = App {
            me: me.to_owned(),
            server: server.to_owned(),
            conversations: vec![Conversation {
                name: String::new(),
                kind: Kind::Home,
                unread: 0,
            }],
            current: 0,
            entries: Vec::new(),
            seen: HashSet::new(),
            input: InputLine::default(),
            notice: None,
            connection: Connection::Connected,
            scroll: 0,
            quit: false,
            printed: plain.then(Vec::new),
        };
        app.info(format!(
            "connected to {server} as {me}; /to NAME to start talking, /help for commands"
        ));
        app
    }

    /// This client's user.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The server's address.
    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn conversations(&self) -> &[Conversation] {
        &self.conversations
    }

    /// The index of the conversation shown.
    pub fn current(&self) -> usize {
        self.current
    }

    /// The conversation shown.
    pub fn current_conversation(&self) -> &Conversation {
        &self.conversations[self.current]
    }

    /// The scrollback lines of the conversation shown, oldest first.
    pub fn visible_entries(&self) -> impl Iterator<Item = &Entry> {
        let current = self.current;
        self.entries
            .iter()
            .filter(move |entry| entry.conversation == current)
    }

    pub fn input(&self) -> &InputLine {
        &self.input
    }

    pub fn notice(&self) -> Option<&Notice> {
        self.notice.as_ref()
    }

    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Rows the message pane is scrolled up (the view clamps it).
    pub fn scroll(&self) -> usize {
        self.scroll
    }

    /// Whether the user has asked to quit.
    pub fn quitting(&self) -> bool {
        self.quit
    }

    /// Line mode: the lines produced since the last call.
    pub fn take_printed(&mut self) -> Vec<Printed> {
        self.printed
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Handles a key; returns the call to make, if the key submitted one.
    pub fn key(&mut self, key: Key) -> Option<Effect> {
        let input = &mut self.input;
        match key {
            Key::Char(c) => input.insert(c),
            Key::Enter => {
                let line = self.input.submit();
                return self.submit(&line);
            }
            Key::Backspace => input.backspace(),
            Key::Delete => input.delete(),
            Key::Left => input.left(),
            Key::Right => input.right(),
            Key::Home => input.home(),
            Key::End => input.end(),
            Key::KillToStart => input.kill_to_start(),
            Key::KillToEnd => input.kill_to_end(),
            Key::KillWord => input.kill_word(),
            Key::HistoryBack => input.history_back(),
            Key::HistoryForward => input.history_forward(),
            Key::NextConversation => self.switch_by(1),
            Key::PreviousConversation => self.switch_by(self.conversations.len() - 1),
            Key::PageUp => self.scroll += PAGE_ROWS,
            Key::PageDown => self.scroll = self.scroll.saturating_sub(PAGE_ROWS),
            Key::Dismiss => self.notice = None,
            Key::Quit => self.quit = true,
            Key::EndOfInput if input.text().is_empty() => self.quit = true,
            Key::EndOfInput => input.delete(),
        }
        None
    }

    /// Handles one submitted line; returns the call to make, if any.
    pub fn submit(&mut self, line: &str) -> Option<Effect> {
        let command = command::parse(line);
        let needs_server = !matches!(
            command,
            Command::Help | Command::Quit | Command::Nothing | Command::Invalid(_)
        );
        if let (true, Connection::Lost(reason)) = (needs_server, &self.connection) {
            let reason = reason.clone();
            self.error(format!("not connected: {reason}"));
            return None;
        }
        match command {
            Command::Nothing => None,
            Command::Say(text) => match self.current_conversation().kind {
                Kind::Home => {
                    self.error("no conversation open: /to NAME first, or /msg NAME TEXT");
                    None
                }
                Kind::User | Kind::Group => Some(Effect::Send {
                    to: self.current_conversation().name.clone(),
                    text,
                }),
            },
            Command::To(name) => Some(Effect::Lookup {
                name,
                then: AfterLookup::Switch,
            }),
            Command::Msg { to, text } => Some(Effect::Lookup {
                name: to,
                then: AfterLookup::Send(text),
            }),
            Command::List => Some(Effect::List),
            Command::Create(name) => Some(Effect::Create(name)),
            Command::Join(name) => Some(Effect::Join(name)),
            Command::Leave(name) => Some(Effect::Leave(name)),
            Command::Help => {
                self.help();
                None
            }
            Command::Quit => {
                self.quit = true;
                None
            }
            Command::Invalid(message) => {
                self.error(message);
                None
            }
        }
    }

    /// Takes in how a call turned out; returns a follow-up call, if any.
    pub fn outcome(&mut self, outcome: Outcome) -> Option<Effect> {
        match outcome {
            Outcome::Sent { to, text, id, time } => {
                let index = self.open(&to, Kind::User);
                let label = self.conversations[index].label();
                let me = self.me.clone();
                self.show_message(index, id, time, me, label, &text);
                self.notice = None;
            }
            Outcome::Found {
                name,
                then,
                channels,
            } => {
                let Some(channel) = channels.iter().find(|c| c.name == name) else {
                    self.error(format!("no connected user or group is named {name:?}"));
                    return None;
                };
                if channel.group && !channel.joined {
                    self.error(format!("you are not in #{name}: /join {name} first"));
                    return None;
                }
                let kind = if channel.group {
                    Kind::Group
                } else {
                    Kind::User
                };
                let index = self.open(&name, kind);
                match then {
                    AfterLookup::Switch => {
                        self.switch_to(index);
                        let label = self.conversations[index].label();
                        self.note(format!("talking to {label}"));
                    }
                    AfterLookup::Send(text) => return Some(Effect::Send { to: name, text }),
                }
            }
            Outcome::Listed(channels) => {
                if channels.is_empty() {
                    self.info("nobody is connected and there are no groups".to_owned());
                }
                for channel in channels {
                    let line = if channel.group {
                        let name = format!("#{}", channel.name);
                        format!(
                            "  {}",
                            describe_group(&name, channel.members, channel.joined)
                        )
                    } else {
                        format!("  user {}", channel.name)
                    };
                    self.info(line);
                }
            }
            Outcome::Created(name) => self.entered(&name, "created"),
            Outcome::Joined(name) => self.entered(&name, "joined"),
            Outcome::Left(name) => self.note(format!("left #{name}")),
            Outcome::Failed { action, error } => self.error(format!("cannot {action}: {error}")),
        }
        None
    }

    /// Takes in messages received on the inbox stream.
    pub fn incoming(&mut self, messages: Vec<Incoming>) {
        for message in messages {
            let (name, kind) = if message.group {
                (message.recipient.as_str(), Kind::Group)
            } else if message.sender == self.me {
                (message.recipient.as_str(), Kind::User)
            } else {
                (message.sender.as_str(), Kind::User)
            };
            let index = self.open(name, kind);
            if self.seen.contains(&message.id) {
                continue;
            }
            if index != self.current {
                self.conversations[index].unread += 1;
            }
            let label = self.conversations[index].label();
            self.show_message(
                index,
                message.id,
                message.time,
                message.sender,
                label,
                &message.text,
            );
        }
    }

    /// The inbox stream ended.
    pub fn disconnected(&mut self, reason: String) {
        self.error(format!("disconnected: {reason}"));
        self.connection = Connection::Lost(reason);
    }

    /// The conversation named `name`, added to the list if it is new.
    fn open(&mut self, name: &str, kind: Kind) -> usize {
        if let Some(index) = self
            .conversations
            .iter()
            .position(|c| c.kind != Kind::Home && c.name == name)
        {
            // A name once a user can be a group now (the namespace is shared).
            if kind == Kind::Group {
                self.conversations[index].kind = Kind::Group;
            }
            return index;
        }
        self.conversations.push(Conversation {
            name: name.to_owned(),
            kind,
            unread: 0,
        });
        self.conversations.len() - 1
    }

    fn switch_by(&mut self, step: usize) {
        let next = (self.current + step) % self.conversations.len();
        self.switch_to(next);
    }

    fn switch_to(&mut self, index: usize) {
        self.current = index;
        self.conversations[index].unread = 0;
        self.scroll = 0;
    }

    fn entered(&mut self, group: &str, verb: &str) {
        let index = self.open(group, Kind::Group);
        self.switch_to(index);
        self.note(format!("{verb} #{group}; you are talking there now"));
    }

    fn show_message(
        &mut self,
        conversation: usize,
        id: u64,
        time: NaiveTime,
        sender: String,
        label: String,
        text: &str,
    ) {
        if !self.seen.insert(id) {
            return;
        }
        let own = sender == self.me;
        let text = visible(text);
        if let Some(printed) = &mut self.printed {
            printed.push(Printed::Out(format!(
                "{} [{label}] {sender}: {text}",
                time.format("%H:%M:%S")
            )));
        }
        self.push(
            conversation,
            Body::Message {
                time,
                sender,
                conversation: label,
                text,
                own,
            },
        );
    }

    fn help(&mut self) {
        self.info("commands (any case):".to_owned());
        for (form, meaning) in COMMANDS {
            self.info(format!("  {form:<16} {meaning}"));
        }
        self.info("  any other line goes to the current conversation (//text sends /text)".into());
        self.info("keys:".to_owned());
        for (keys, meaning) in KEYS {
            self.info(format!("  {keys:<26} {meaning}"));
        }
        self.info(NAME_RULE.to_owned());
    }

    /// A line in the current conversation's scrollback.
    fn info(&mut self, text: String) {
        if let Some(printed) = &mut self.printed {
            printed.push(Printed::Out(text.clone()));
        }
        self.push(self.current, Body::Info(text));
    }

    /// A notice that something worked.
    fn note(&mut self, text: String) {
        if let Some(printed) = &mut self.printed {
            printed.push(Printed::Out(text.clone()));
        }
        self.notice = Some(Notice { text, error: false });
    }

    fn error(&mut self, text: impl Into<String>) {
        let text = text.into();
        if let Some(printed) = &mut self.printed {
            printed.push(Printed::Err(format!("error: {text}")));
        }
        self.notice = Some(Notice { text, error: true });
    }

    fn push(&mut self, conversation: usize, body: Body) {
        self.entries.push(Entry { conversation, body });
        if self.entries.len() > SCROLLBACK_LIMIT {
            let dropped = self.entries.len() - SCROLLBACK_LIMIT;
            self.entries.drain(..dropped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32, s: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, s).unwrap_or_default()
    }

    fn message(id: u64, sender: &str, recipient: &str, group: bool, text: &str) -> Incoming {
        Incoming {
            id,
            sender: sender.into(),
            recipient: recipient.into(),
            group,
            text: text.into(),
            time: at(12, 0, id as u32 % 60),
        }
    }

    fn channel(name: &str, group: bool, joined: bool) -> ChannelInfo {
        ChannelInfo {
            name: name.into(),
            group,
            members: u32::from(group),
            joined,
        }
    }

    fn type_line(app: &mut App, line: &str) -> Option<Effect> {
        line.chars().for_each(|c| {
            app.key(Key::Char(c));
        });
        app.key(Key::Enter)
    }

    /// An app whose current conversation is `name`, found by `/to`.
    fn talking_to(name: &str, group: bool) -> App {
        let mut app = App::new("alice", "127.0.0.1:13111", false);
        let effect = type_line(&mut app, &format!("/to {name}"));
        assert_eq!(
            effect,
            Some(Effect::Lookup {
                name: name.into(),
                then: AfterLookup::Switch
            })
        );
        let found = app.outcome(Outcome::Found {
            name: name.into(),
            then: AfterLookup::Switch,
            channels: vec![channel("alice", false, false), channel(name, group, true)],
        });
        assert_eq!(found, None);
        app
    }

    fn texts(app: &App) -> Vec<String> {
        app.visible_entries()
            .filter_map(|entry| match &entry.body {
                Body::Message { sender, text, .. } => Some(format!("{sender}: {text}")),
                Body::Info(_) => None,
            })
            .collect()
    }

    #[test]
    fn to_checks_the_name_before_switching() {
        let mut app = App::new("alice", "srv", false);
        type_line(&mut app, "/to nobody");
        app.outcome(Outcome::Found {
            name: "nobody".into(),
            then: AfterLookup::Switch,
            channels: vec![channel("alice", false, false)],
        });
        assert_eq!(app.current_conversation().kind, Kind::Home);
        let notice = app.notice().cloned();
        assert_eq!(
            notice.map(|n| (n.error, n.text)),
            Some((
                true,
                "no connected user or group is named \"nobody\"".to_owned()
            ))
        );

        let app = talking_to("bob", false);
        assert_eq!(app.current_conversation().label(), "bob");
        assert_eq!(app.notice().map(|n| n.error), Some(false));
    }

    #[test]
    fn to_a_group_not_joined_says_to_join_it() {
        let mut app = App::new("alice", "srv", false);
        type_line(&mut app, "/to #general");
        app.outcome(Outcome::Found {
            name: "general".into(),
            then: AfterLookup::Switch,
            channels: vec![channel("general", true, false)],
        });
        assert_eq!(app.current(), 0);
        assert_eq!(
            app.notice().map(|n| n.text.as_str()),
            Some("you are not in #general: /join general first")
        );
    }

    #[test]
    fn plain_lines_go_to_the_current_conversation_as_typed() {
        let mut app = talking_to("bob", false);
        assert_eq!(
            type_line(&mut app, "  \"quoted\" and \\backslash"),
            Some(Effect::Send {
                to: "bob".into(),
                text: "  \"quoted\" and \\backslash".into()
            })
        );
        assert_eq!(app.input().text(), "");
    }

    #[test]
    fn a_plain_line_with_no_conversation_open_is_an_error() {
        let mut app = App::new("alice", "srv", false);
        assert_eq!(type_line(&mut app, "hello"), None);
        assert!(app.notice().is_some_and(|n| n.error));
    }

    #[test]
    fn an_own_group_message_shows_once_whichever_copy_comes_first() {
        let mut app = talking_to("general", true);
        app.outcome(Outcome::Sent {
            to: "general".into(),
            text: "hi all".into(),
            id: 7,
            time: at(12, 0, 7),
        });
        app.incoming(vec![message(7, "alice", "general", true, "hi all")]);
        app.incoming(vec![message(8, "alice", "general", true, "echo first")]);
        app.outcome(Outcome::Sent {
            to: "general".into(),
            text: "echo first".into(),
            id: 8,
            time: at(12, 0, 8),
        });
        assert_eq!(texts(&app), ["alice: hi all", "alice: echo first"]);
        assert_eq!(app.conversations()[app.current()].unread, 0);
    }

    #[test]
    fn a_direct_send_shows_in_the_recipients_conversation() {
        let mut app = App::new("alice", "srv", false);
        let effect = type_line(&mut app, "/MSG bob hello there");
        assert_eq!(
            effect,
            Some(Effect::Lookup {
                name: "bob".into(),
                then: AfterLookup::Send("hello there".into())
            })
        );
        let send = app.outcome(Outcome::Found {
            name: "bob".into(),
            then: AfterLookup::Send("hello there".into()),
            channels: vec![channel("bob", false, false)],
        });
        assert_eq!(
            send,
            Some(Effect::Send {
                to: "bob".into(),
                text: "hello there".into()
            })
        );
        app.outcome(Outcome::Sent {
            to: "bob".into(),
            text: "hello there".into(),
            id: 3,
            time: at(9, 30, 0),
        });
        // /msg does not switch: the message is in bob's conversation.
        assert_eq!(app.current(), 0);
        app.key(Key::NextConversation);
        assert_eq!(app.current_conversation().label(), "bob");
        assert_eq!(texts(&app), ["alice: hello there"]);
    }

    #[test]
    fn messages_elsewhere_count_as_unread_until_shown() {
        let mut app = talking_to("bob", false);
        app.incoming(vec![
            message(1, "carol", "alice", false, "psst"),
            message(2, "bob", "alice", false, "hi"),
            message(3, "carol", "alice", false, "are you there"),
            message(4, "dave", "team", true, "standup"),
        ]);
        let unread: Vec<(String, usize)> = app
            .conversations()
            .iter()
            .map(|c| (c.label(), c.unread))
            .collect();
        assert_eq!(
            unread,
            [
                ("(home)".to_owned(), 0),
                ("bob".to_owned(), 0),
                ("carol".to_owned(), 2),
                ("#team".to_owned(), 1)
            ]
        );
        app.key(Key::NextConversation);
        assert_eq!(app.current_conversation().label(), "carol");
        assert_eq!(app.current_conversation().unread, 0);
        assert_eq!(texts(&app), ["carol: psst", "carol: are you there"]);
        app.key(Key::PreviousConversation);
        app.key(Key::PreviousConversation);
        app.key(Key::PreviousConversation);
        assert_eq!(app.current_conversation().label(), "#team");
    }

    #[test]
    fn incoming_messages_leave_the_input_line_alone() {
        let mut app = talking_to("bob", false);
        "half-typ".chars().for_each(|c| {
            app.key(Key::Char(c));
        });
        app.key(Key::Left);
        app.incoming(vec![message(1, "bob", "alice", false, "interrupting")]);
        assert_eq!(app.input().text(), "half-typ");
        assert_eq!(app.input().cursor(), 7);
    }

    #[test]
    fn texts_are_shown_as_written_with_controls_made_visible() {
        let mut app = talking_to("bob", false);
        app.incoming(vec![message(
            1,
            "bob",
            "alice",
            false,
            "\"quoted\" \\ tab\there \u{1b}[31mred",
        )]);
        assert_eq!(
            texts(&app),
            ["bob: \"quoted\" \\ tab    here \u{241b}[31mred"]
        );
    }

    #[test]
    fn created_and_joined_groups_open_and_become_current() {
        let mut app = App::new("alice", "srv", false);
        assert_eq!(
            type_line(&mut app, "/Create team"),
            Some(Effect::Create("team".into()))
        );
        app.outcome(Outcome::Created("team".into()));
        assert_eq!(app.current_conversation().label(), "#team");
        app.outcome(Outcome::Joined("other".into()));
        assert_eq!(app.current_conversation().label(), "#other");
        app.outcome(Outcome::Failed {
            action: "join nope".into(),
            error: "NOT_FOUND no group".into(),
        });
        assert_eq!(
            app.notice().map(|n| n.text.as_str()),
            Some("cannot join nope: NOT_FOUND no group")
        );
    }

    #[test]
    fn help_lists_commands_keys_and_the_name_rule_in_the_current_view() {
        let mut app = App::new("alice", "srv", false);
        assert_eq!(type_line(&mut app, "/HELP"), None);
        let lines: Vec<String> = app
            .visible_entries()
            .filter_map(|e| match &e.body {
                Body::Info(text) => Some(text.clone()),
                Body::Message { .. } => None,
            })
            .collect();
        assert!(lines.iter().any(|l| l.contains("/to NAME")));
        assert!(lines.iter().any(|l| l.contains("Ctrl-W")));
        assert!(lines.iter().any(|l| l.contains("1-64 ASCII")));
    }

    #[test]
    fn quit_by_command_ctrl_c_or_ctrl_d_on_an_empty_line() {
        let mut app = App::new("alice", "srv", false);
        type_line(&mut app, "/quit");
        assert!(app.quitting());
        let mut app = App::new("alice", "srv", false);
        app.key(Key::Char('x'));
        app.key(Key::Home);
        app.key(Key::EndOfInput);
        assert!(!app.quitting());
        assert_eq!(app.input().text(), "");
        app.key(Key::EndOfInput);
        assert!(app.quitting());
        let mut app = App::new("alice", "srv", false);
        app.key(Key::Quit);
        assert!(app.quitting());
    }

    #[test]
    fn after_the_connection_is_lost_calls_are_refused_with_the_reason() {
        let mut app = talking_to("bob", false);
        app.disconnected("UNAVAILABLE server shutting down".into());
        assert_eq!(type_line(&mut app, "hello?"), None);
        assert_eq!(
            app.notice().map(|n| n.text.as_str()),
            Some("not connected: UNAVAILABLE server shutting down")
        );
        assert!(matches!(app.connection(), Connection::Lost(_)));
    }

    #[test]
    fn line_mode_prints_each_message_once_and_errors_apart() {
        let mut app = App::new("alice", "srv", true);
        app.take_printed();
        app.submit("nobody to talk to");
        app.outcome(Outcome::Created("g".into()));
        app.outcome(Outcome::Sent {
            to: "g".into(),
            text: "tab\tand \"quotes\"".into(),
            id: 1,
            time: at(8, 5, 9),
        });
        app.incoming(vec![message(1, "alice", "g", true, "tab\tand \"quotes\"")]);
        assert_eq!(
            app.take_printed(),
            [
                Printed::Err(
                    "error: no conversation open: /to NAME first, or /msg NAME TEXT".into()
                ),
                Printed::Out("created #g; you are talking there now".into()),
                Printed::Out("08:05:09 [#g] alice: tab    and \"quotes\"".into()),
            ]
        );
    }
}
