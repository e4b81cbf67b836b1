//! The interactive chat's state, with no terminal and no network in it: the
//! conversations (users and groups) with their unread counts, the messages
//! shown in each (membership changes among them), the input line, the
//! status line's notice, who is typing and the connection state, and what a
//! reconnect needs to catch up (the groups joined, the newest message seen
//! from each). Keys, received messages and events go in; [`Effect`]s (the
//! calls to make on the server, typing notices among them) come out, and
//! their [`Outcome`]s go back in. Time comes in as a parameter where it
//! matters ([`App::key_at`], [`App::typing`]). `tui` and `lines` drive it, `view` draws it,
//! `session` makes the calls, `link` keeps the stream open; its unit tests
//! below need none of them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;

use chrono::NaiveTime;

use super::command::{self, Command, COMMANDS, KEYS, NAME_RULE};
use super::input::InputLine;
use super::presence::{self, count_members, Change, Membership, Typing, TypingThrottle, Typists};
use crate::format::{describe_group, visible};

/// Most entries kept; past it the oldest are dropped.
const SCROLLBACK_LIMIT: usize = 10_000;
/// Rows one PageUp/PageDown scrolls.
const PAGE_ROWS: usize = 10;
/// Most pages of history one group's catch-up reads after a reconnect
/// (500 messages each); past it the rest shows as missing.
pub const MAX_CATCH_UP_PAGES: usize = 4;
/// The line a conversation shows where messages may have been lost.
pub const MISSING: &str = "some messages may be missing";

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
    /// The stream ended and the client is connecting again: why it ended.
    Reconnecting(String),
    /// The stream ended for good: why.
    Lost(String),
}

/// What became of the resume a reconnect asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Every message missed follows on the new stream.
    Resumed,
    /// The server no longer kept all of them, and replays none (GAP).
    Gap,
    /// Nothing to resume: the token was unknown, used, expired, or of
    /// another epoch (the server restarted) (UNKNOWN).
    Unknown,
    /// No resume could be asked: the server offered no token.
    NotOffered,
}

/// Which part of a group's history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryRead {
    /// After `/join`: the newest messages with an id below `before_id` (the
    /// join's position + 1), shown above the live ones.
    Recent { before_id: u64 },
    /// After a reconnect: the oldest messages with an id above `after_id`
    /// (the newest seen from the group); `page` counts the pages read, from 1.
    After { after_id: u64, page: usize },
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
    /// After a reconnect: join a group this user was in again (creating it
    /// again if it is gone).
    Rejoin(String),
    /// GetHistory of a group.
    History {
        group: String,
        read: HistoryRead,
    },
    /// ListGroupMembers of a group, every page.
    Members(String),
    /// SendTyping to a user or group: sent without waiting for the reply,
    /// whose errors nobody needs to see.
    Typing(String),
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
    /// Joined `name`; `position` is the id of its newest message then.
    Joined {
        name: String,
        position: u64,
    },
    /// A group is joined again after a reconnect; `position` as for
    /// `Joined` (`None` when the server said this user was still in it),
    /// `recreated` when it was gone and this client created it again.
    Rejoined {
        name: String,
        position: Option<u64>,
        recreated: bool,
    },
    /// A group could not be joined again: the status (code and message).
    NotRejoined {
        name: String,
        error: String,
    },
    /// A page of a group's history, oldest first.
    History {
        group: String,
        read: HistoryRead,
        messages: Vec<Incoming>,
        /// The range holds more messages than were returned.
        more: bool,
        /// Messages of the range are no longer kept.
        truncated: bool,
    },
    Left(String),
    /// A group's members, sorted by name; `count` as the server counted
    /// them, `complete` false when there were too many to read them all.
    Members {
        group: String,
        members: Vec<String>,
        count: u32,
        complete: bool,
    },
    /// The call went out and nobody waits for its reply (SendTyping).
    Dispatched,
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
    /// its sender (it reaches every member), or that both the history and
    /// the stream bring, is not shown a second time. Ids mean something
    /// within one server epoch only: cleared when it changes.
    seen: HashSet<u64>,
    /// The groups this user is in, to join again after a reconnect (the
    /// server drops every membership when a stream ends).
    joined: BTreeSet<String>,
    /// The newest message id seen from each group (on the stream, in its
    /// history, or sent by this client): where its catch-up starts.
    group_last: HashMap<String, u64>,
    /// Conversations that already show a "may be missing" line for the
    /// current reconnect, so one reconnect adds at most one to each.
    marked: HashSet<usize>,
    input: InputLine,
    notice: Option<Notice>,
    connection: Connection,
    /// Who is typing where, shown in the status line until it expires.
    typists: Typists,
    /// Holds back this client's own typing notices.
    throttle: TypingThrottle,
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
            joined: BTreeSet::new(),
            group_last: HashMap::new(),
            marked: HashSet::new(),
            input: InputLine::default(),
            notice: None,
            connection: Connection::Connected,
            typists: Typists::default(),
            throttle: TypingThrottle::default(),
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

    /// Handles a key pressed now; see [`App::key_at`].
    pub fn key(&mut self, key: Key) -> Option<Effect> {
        self.key_at(key, Instant::now())
    }

    /// Handles a key pressed at `now`; returns the call to make, if the key
    /// submitted one, or a typing notice for the current conversation when
    /// a character of a text went in (at most one per conversation per
    /// [`presence::TYPING_EVERY`]).
    pub fn key_at(&mut self, key: Key, now: Instant) -> Option<Effect> {
        let input = &mut self.input;
        match key {
            Key::Char(c) => {
                input.insert(c);
                return self.typed(now);
            }
            Key::Enter => {
                // A line that needs the server stays in the input while the
                // client is not connected: nothing typed is lost.
                if self.connection != Connection::Connected
                    && command::parse(&self.input.text()).needs_server()
                {
                    self.refuse_offline();
                    return None;
                }
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
        if command.needs_server() && self.connection != Connection::Connected {
            self.refuse_offline();
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
            Command::Members(Some(group)) => Some(Effect::Members(group)),
            Command::Members(None) => match self.current_conversation().kind {
                Kind::Group => Some(Effect::Members(self.current_conversation().name.clone())),
                Kind::Home | Kind::User => {
                    self.error("no group open: /members GROUP, or /to #GROUP first");
                    None
                }
            },
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
                if self.joined.contains(&to) {
                    self.saw_from_group(&to, id);
                }
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
            Outcome::Created(name) => {
                self.joined.insert(name.clone());
                self.entered(&name, "created");
            }
            Outcome::Joined { name, position } => {
                self.joined.insert(name.clone());
                self.entered(&name, "joined");
                // What was said before, above what comes live.
                if position > 0 {
                    return Some(Effect::History {
                        group: name,
                        read: HistoryRead::Recent {
                            before_id: position.saturating_add(1),
                        },
                    });
                }
            }
            Outcome::Rejoined {
                name,
                position,
                recreated,
            } => return self.rejoined(name, position, recreated),
            Outcome::NotRejoined { name, error } => {
                self.joined.remove(&name);
                let index = self.open(&name, Kind::Group);
                let text = format!("could not join #{name} again: {error}");
                self.push(index, Body::Info(text.clone()));
                self.error(text);
            }
            Outcome::History {
                group,
                read,
                messages,
                more,
                truncated,
            } => return self.history(group, read, messages, more, truncated),
            Outcome::Left(name) => {
                self.joined.remove(&name);
                self.note(format!("left #{name}"));
            }
            Outcome::Members {
                group,
                members,
                count,
                complete,
            } => {
                let shown = if complete {
                    String::new()
                } else {
                    format!("; the first {}", members.len())
                };
                self.info(format!(
                    "#{group} has {}{shown}: {}",
                    count_members(count),
                    members.join(", ")
                ));
            }
            Outcome::Dispatched => {}
            Outcome::Failed { action, error } => self.error(format!("cannot {action}: {error}")),
        }
        None
    }

    /// Takes in messages received on the inbox stream.
    pub fn incoming(&mut self, messages: Vec<Incoming>) {
        for message in messages {
            self.receive(message);
        }
    }

    /// A membership change in one of this user's groups: a line in the
    /// group's conversation (printed in line mode). This user's own join
    /// is not shown again (the join said so); its removal takes the group
    /// out of those rejoined after a reconnect.
    pub fn membership(&mut self, change: Membership) {
        let index = self.open(&change.group, Kind::Group);
        if change.user == self.me {
            if change.change == Change::Removed {
                self.joined.remove(&change.group);
                let text = format!("you were removed from #{}", change.group);
                self.info_in(index, text.clone());
                self.notice = Some(Notice { text, error: true });
            }
            return;
        }
        if change.change != Change::Joined {
            self.typists.stopped(&change.group, &change.user);
        }
        self.info_in(index, change.line());
    }

    /// Someone is typing, as of `now`: shown in the status line while
    /// their conversation is the current one, until [`App::expire_typing`]
    /// finds it old or their message arrives. The line mode shows none.
    pub fn typing(&mut self, typing: Typing, now: Instant) {
        if typing.user == self.me || self.printed.is_some() {
            return;
        }
        self.typists
            .started(&typing.conversation, &typing.user, now);
    }

    /// Who is typing in the current conversation, for the status line.
    pub fn typing_status(&self) -> Option<String> {
        let conversation = self.current_conversation();
        match conversation.kind {
            Kind::Home => None,
            Kind::User | Kind::Group => self.typists.status(&conversation.name),
        }
    }

    /// When the next typing notice is to go, if one is shown.
    pub fn typing_deadline(&self) -> Option<Instant> {
        self.typists.next_expiry()
    }

    /// Drops the typing notices shown long enough by `now`.
    pub fn expire_typing(&mut self, now: Instant) {
        self.typists.expire(now);
    }

    /// The inbox stream ended for good.
    pub fn disconnected(&mut self, reason: String) {
        self.error(format!("disconnected: {reason}"));
        self.connection = Connection::Lost(reason);
        self.typists.clear();
    }

    /// The inbox stream ended and the client connects again.
    pub fn reconnecting(&mut self, reason: String) {
        self.error(format!("connection lost: {reason}; reconnecting"));
        self.connection = Connection::Reconnecting(reason);
        self.typists.clear();
    }

    /// A character of the input line went in at `now`: a typing notice for
    /// the current conversation, if the line is a text for it and the
    /// throttle lets one go.
    fn typed(&mut self, now: Instant) -> Option<Effect> {
        let conversation = &self.conversations[self.current];
        let open = matches!(conversation.kind, Kind::User | Kind::Group);
        let wanted = open
            && self.connection == Connection::Connected
            && presence::is_text(&self.input.text());
        (wanted && self.throttle.allow(&conversation.name, now))
            .then(|| Effect::Typing(conversation.name.clone()))
    }

    /// A reconnect attempt failed (`why`); the next is in `next`. Shown in
    /// the notice only: the line mode does not print every attempt.
    pub fn retrying(&mut self, why: &str, next: std::time::Duration) {
        let seconds = next.as_secs_f64().ceil();
        self.notice = Some(Notice {
            text: format!("reconnecting: {why}; next try in {seconds}s"),
            error: true,
        });
    }

    /// The stream is open again. `resume` is what became of the resume it
    /// asked for; `new_epoch` says the server lost its state meanwhile (its
    /// ids mean something else now). Returns the calls that catch up: one
    /// rejoin per group this user was in.
    pub fn reconnected(&mut self, resume: Resume, new_epoch: bool) -> Vec<Effect> {
        self.connection = Connection::Connected;
        self.marked.clear();
        if new_epoch {
            self.seen.clear();
            self.group_last.clear();
        }
        let why = match resume {
            Resume::Resumed => None,
            Resume::Gap => Some("the server no longer kept all of them (GAP)"),
            Resume::Unknown => {
                Some("the session could not be resumed (UNKNOWN: the server may have restarted)")
            }
            Resume::NotOffered => Some("the server offers no resume"),
        };
        match why {
            None => self.note("reconnected; nothing was lost".to_owned()),
            Some(why) => {
                // Direct messages cannot be fetched again: every
                // conversation may lack some.
                let line = format!("{MISSING}: {why}");
                if let Some(printed) = &mut self.printed {
                    printed.push(Printed::Out(line.clone()));
                }
                for index in 0..self.conversations.len() {
                    self.marked.insert(index);
                    self.push(index, Body::Info(line.clone()));
                }
                self.note(format!("reconnected; {MISSING}"));
            }
        }
        self.joined
            .iter()
            .map(|group| Effect::Rejoin(group.clone()))
            .collect()
    }

    /// Refuses a line that needs the server while not connected.
    fn refuse_offline(&mut self) {
        match self.connection.clone() {
            Connection::Connected => {}
            Connection::Reconnecting(_) => self.error(
                "not connected yet (reconnecting): the line is kept; Enter sends it once connected",
            ),
            Connection::Lost(reason) => self.error(format!("not connected: {reason}")),
        }
    }

    /// One received message (on the stream or from a history) into its
    /// conversation, once.
    fn receive(&mut self, message: Incoming) {
        let (name, kind) = if message.group {
            (message.recipient.as_str(), Kind::Group)
        } else if message.sender == self.me {
            (message.recipient.as_str(), Kind::User)
        } else {
            (message.sender.as_str(), Kind::User)
        };
        let index = self.open(name, kind);
        // Their text is here: they are no longer typing it.
        let conversation = self.conversations[index].name.clone();
        self.typists.stopped(&conversation, &message.sender);
        if message.group {
            self.saw_from_group(&message.recipient, message.id);
        }
        if self.seen.contains(&message.id) {
            return;
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

    fn saw_from_group(&mut self, group: &str, id: u64) {
        let last = self.group_last.entry(group.to_owned()).or_default();
        *last = (*last).max(id);
    }

    /// A group joined again: reads what it said meanwhile.
    fn rejoined(&mut self, name: String, position: Option<u64>, recreated: bool) -> Option<Effect> {
        self.joined.insert(name.clone());
        let index = self.open(&name, Kind::Group);
        if recreated {
            self.info_in(
                index,
                format!("#{name} no longer existed; created it again"),
            );
            // Its history went with it: what was said since cannot be read.
            self.missing(index, "what it said while you were away is gone with it");
            return None;
        }
        let after_id = self.group_last.get(&name).copied().unwrap_or(0);
        let read = match position {
            _ if after_id > 0 => HistoryRead::After { after_id, page: 1 },
            Some(position) if position > 0 => HistoryRead::Recent {
                before_id: position.saturating_add(1),
            },
            _ => return None,
        };
        Some(Effect::History { group: name, read })
    }

    /// A page of `group`'s history: shown, and the next page asked for
    /// while a catch-up has more (within [`MAX_CATCH_UP_PAGES`]).
    fn history(
        &mut self,
        group: String,
        read: HistoryRead,
        messages: Vec<Incoming>,
        more: bool,
        truncated: bool,
    ) -> Option<Effect> {
        let index = self.open(&group, Kind::Group);
        let newest = messages.last().map(|message| message.id);
        let count = messages.len();
        match read {
            HistoryRead::Recent { .. } => {
                self.incoming(messages);
                if count > 0 {
                    let shown = if more || truncated { "the last " } else { "" };
                    let plural = if count == 1 { "" } else { "s" };
                    self.info_in(
                        index,
                        format!(
                            "above: {shown}{count} message{plural} of #{group} from before you joined"
                        ),
                    );
                }
                None
            }
            HistoryRead::After { page, .. } => {
                if truncated {
                    self.missing(
                        index,
                        &format!("part of what #{group} said meanwhile is no longer kept"),
                    );
                }
                self.incoming(messages);
                match newest {
                    Some(after_id) if more && page < MAX_CATCH_UP_PAGES => Some(Effect::History {
                        group,
                        read: HistoryRead::After {
                            after_id,
                            page: page + 1,
                        },
                    }),
                    _ if more => {
                        self.missing(index, &format!("#{group} said too much to fetch it all"));
                        None
                    }
                    _ => None,
                }
            }
        }
    }

    /// A "may be missing" line in one conversation, unless the current
    /// reconnect already put one there.
    fn missing(&mut self, conversation: usize, why: &str) {
        if self.marked.insert(conversation) {
            self.info_in(conversation, format!("{MISSING}: {why}"));
        }
    }

    /// A line in one conversation's scrollback (printed in line mode).
    fn info_in(&mut self, conversation: usize, text: String) {
        if let Some(printed) = &mut self.printed {
            printed.push(Printed::Out(text.clone()));
        }
        self.push(conversation, Body::Info(text));
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
        app.outcome(Outcome::Joined {
            name: "other".into(),
            position: 0,
        });
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
    fn while_reconnecting_a_line_for_the_server_stays_in_the_input() {
        let mut app = talking_to("bob", false);
        app.reconnecting("UNAVAILABLE gone".into());
        assert_eq!(
            app.connection(),
            &Connection::Reconnecting("UNAVAILABLE gone".into())
        );
        assert_eq!(type_line(&mut app, "still typing"), None);
        assert_eq!(app.input().text(), "still typing");
        assert!(app
            .notice()
            .is_some_and(|n| n.error && n.text.contains("the line is kept")));
        // Commands that need no server still work.
        app.key(Key::KillToStart);
        assert_eq!(type_line(&mut app, "/help"), None);
        assert_eq!(app.input().text(), "");
        assert!(app.reconnected(Resume::Resumed, false).is_empty());
        assert_eq!(app.connection(), &Connection::Connected);
        assert_eq!(
            type_line(&mut app, "now"),
            Some(Effect::Send {
                to: "bob".into(),
                text: "now".into()
            })
        );
    }

    /// Every Info line of conversation `index`.
    fn infos(app: &App, index: usize) -> Vec<String> {
        app.entries
            .iter()
            .filter(|e| e.conversation == index)
            .filter_map(|e| match &e.body {
                Body::Info(text) => Some(text.clone()),
                Body::Message { .. } => None,
            })
            .collect()
    }

    #[test]
    fn a_reconnect_rejoins_every_group_and_catches_up_after_the_last_seen_id() {
        let mut app = App::new("alice", "srv", false);
        app.outcome(Outcome::Created("team".into()));
        app.outcome(Outcome::Joined {
            name: "news".into(),
            position: 0,
        });
        app.outcome(Outcome::Created("gone".into()));
        app.outcome(Outcome::Left("gone".into()));
        app.incoming(vec![message(5, "bob", "team", true, "five")]);
        app.reconnecting("UNAVAILABLE".into());
        let effects = app.reconnected(Resume::Resumed, false);
        assert_eq!(
            effects,
            [Effect::Rejoin("news".into()), Effect::Rejoin("team".into())]
        );
        // A group seen before catches up after its last id; one never
        // heard from reads its recent history from its position.
        assert_eq!(
            app.outcome(Outcome::Rejoined {
                name: "team".into(),
                position: Some(9),
                recreated: false
            }),
            Some(Effect::History {
                group: "team".into(),
                read: HistoryRead::After {
                    after_id: 5,
                    page: 1
                }
            })
        );
        assert_eq!(
            app.outcome(Outcome::Rejoined {
                name: "news".into(),
                position: Some(7),
                recreated: false
            }),
            Some(Effect::History {
                group: "news".into(),
                read: HistoryRead::Recent { before_id: 8 }
            })
        );
        // Pages follow one another while there is more.
        let next = app.outcome(Outcome::History {
            group: "team".into(),
            read: HistoryRead::After {
                after_id: 5,
                page: 1,
            },
            messages: vec![
                message(5, "bob", "team", true, "five"),
                message(6, "bob", "team", true, "six"),
            ],
            more: true,
            truncated: false,
        });
        assert_eq!(
            next,
            Some(Effect::History {
                group: "team".into(),
                read: HistoryRead::After {
                    after_id: 6,
                    page: 2
                }
            })
        );
        let done = app.outcome(Outcome::History {
            group: "team".into(),
            read: HistoryRead::After {
                after_id: 6,
                page: 2,
            },
            messages: vec![message(8, "carol", "team", true, "eight")],
            more: false,
            truncated: false,
        });
        assert_eq!(done, None);
        let team = app.conversations().iter().position(|c| c.name == "team");
        app.switch_to(team.unwrap_or(0));
        assert_eq!(texts(&app), ["bob: five", "bob: six", "carol: eight"]);
        assert!(infos(&app, app.current())
            .iter()
            .all(|l| !l.contains(MISSING)));
    }

    #[test]
    fn a_gap_or_an_unknown_resume_marks_every_conversation_and_a_new_epoch_forgets_ids() {
        let mut app = talking_to("bob", false);
        app.outcome(Outcome::Created("team".into()));
        app.incoming(vec![message(3, "bob", "team", true, "three")]);
        app.reconnecting("UNAVAILABLE".into());
        let effects = app.reconnected(Resume::Unknown, true);
        assert_eq!(effects, [Effect::Rejoin("team".into())]);
        for index in 0..app.conversations().len() {
            let lines = infos(&app, index);
            assert_eq!(
                lines.iter().filter(|l| l.starts_with(MISSING)).count(),
                1,
                "conversation {index}: {lines:?}"
            );
        }
        // The server restarted: the group is gone and created again; the
        // conversation is marked once only.
        let index = app.conversations().iter().position(|c| c.name == "team");
        let index = index.unwrap_or(0);
        assert_eq!(
            app.outcome(Outcome::Rejoined {
                name: "team".into(),
                position: Some(0),
                recreated: true
            }),
            None
        );
        let lines = infos(&app, index);
        assert_eq!(lines.iter().filter(|l| l.starts_with(MISSING)).count(), 1);
        assert_eq!(
            lines.last().map(String::as_str),
            Some("#team no longer existed; created it again")
        );
        // Ids start again in the new epoch: message 3 is a new one.
        app.incoming(vec![message(3, "bob", "team", true, "new three")]);
        app.switch_to(index);
        assert_eq!(texts(&app), ["bob: three", "bob: new three"]);

        let mut app = talking_to("bob", false);
        app.reconnecting("RESOURCE_EXHAUSTED".into());
        app.reconnected(Resume::Gap, false);
        assert!(infos(&app, app.current())
            .iter()
            .any(|l| l.starts_with(MISSING) && l.contains("GAP")));
    }

    #[test]
    fn a_truncated_catch_up_marks_that_group_only() {
        let mut app = App::new("alice", "srv", false);
        app.outcome(Outcome::Created("team".into()));
        app.outcome(Outcome::Created("other".into()));
        app.incoming(vec![message(2, "bob", "team", true, "two")]);
        app.reconnecting("UNAVAILABLE".into());
        app.reconnected(Resume::Resumed, false);
        app.outcome(Outcome::History {
            group: "team".into(),
            read: HistoryRead::After {
                after_id: 2,
                page: 1,
            },
            messages: vec![message(40, "bob", "team", true, "forty")],
            more: false,
            truncated: true,
        });
        let marked: Vec<String> = app
            .conversations()
            .iter()
            .enumerate()
            .filter(|(index, _)| infos(&app, *index).iter().any(|l| l.starts_with(MISSING)))
            .map(|(_, c)| c.label())
            .collect();
        assert_eq!(marked, ["#team"]);
    }

    #[test]
    fn join_shows_the_groups_recent_history_above_the_live_messages() {
        let mut app = App::new("alice", "srv", true);
        app.take_printed();
        let history = app.outcome(Outcome::Joined {
            name: "news".into(),
            position: 12,
        });
        assert_eq!(
            history,
            Some(Effect::History {
                group: "news".into(),
                read: HistoryRead::Recent { before_id: 13 }
            })
        );
        app.outcome(Outcome::History {
            group: "news".into(),
            read: HistoryRead::Recent { before_id: 13 },
            messages: vec![
                message(10, "bob", "news", true, "ten"),
                message(12, "carol", "news", true, "twelve"),
            ],
            more: false,
            truncated: false,
        });
        app.incoming(vec![message(13, "bob", "news", true, "live")]);
        assert_eq!(texts(&app), ["bob: ten", "carol: twelve", "bob: live"]);
        let printed = app.take_printed();
        assert_eq!(
            printed[3],
            Printed::Out("above: 2 messages of #news from before you joined".into())
        );
        assert_eq!(printed.len(), 5);
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

    fn joined(group: &str, user: &str, members: u32) -> Membership {
        Membership {
            group: group.into(),
            user: user.into(),
            change: Change::Joined,
            members,
        }
    }

    #[test]
    fn membership_changes_show_in_the_groups_conversation_and_print_in_line_mode() {
        let mut app = App::new("alice", "srv", true);
        app.outcome(Outcome::Created("general".into()));
        app.take_printed();
        // Her own join was said when she made it.
        app.membership(joined("general", "alice", 1));
        app.membership(joined("general", "bob", 2));
        app.membership(Membership {
            change: Change::Left,
            ..joined("general", "bob", 1)
        });
        app.membership(Membership {
            change: Change::Disconnected,
            ..joined("general", "carol", 1)
        });
        let lines = [
            "bob joined #general (2 members)",
            "bob left #general (1 member)",
            "carol disconnected from #general (1 member)",
        ];
        let general = app.current();
        assert_eq!(infos(&app, general), lines);
        assert_eq!(
            app.take_printed(),
            lines.map(|line| Printed::Out(line.to_owned()))
        );
        // A change in another group goes to that group's conversation,
        // without counting as unread.
        app.membership(joined("news", "bob", 4));
        let news = app.conversations().len() - 1;
        assert_eq!(infos(&app, news), ["bob joined #news (4 members)"]);
        assert_eq!(app.conversations()[news].unread, 0);
        assert_eq!(app.current(), general);
    }

    #[test]
    fn being_removed_from_a_group_says_so_and_it_is_not_rejoined() {
        let mut app = App::new("alice", "srv", false);
        app.outcome(Outcome::Created("general".into()));
        app.outcome(Outcome::Created("news".into()));
        app.membership(Membership {
            change: Change::Removed,
            ..joined("general", "alice", 3)
        });
        assert_eq!(
            app.notice().map(|n| (n.error, n.text.as_str())),
            Some((true, "you were removed from #general"))
        );
        app.reconnecting("UNAVAILABLE".into());
        assert_eq!(
            app.reconnected(Resume::Resumed, false),
            [Effect::Rejoin("news".into())]
        );
    }

    #[test]
    fn typing_shows_for_the_current_conversation_until_the_message_or_five_seconds() {
        let start = Instant::now();
        let mut app = talking_to("general", true);
        let typing = |conversation: &str, user: &str| Typing {
            conversation: conversation.into(),
            user: user.into(),
        };
        app.typing(typing("general", "bob"), start);
        app.typing(typing("general", "alice"), start);
        app.typing(typing("carol", "carol"), start);
        assert_eq!(app.typing_status().as_deref(), Some("bob is typing..."));
        assert_eq!(app.typing_deadline(), Some(start + presence::TYPING_SHOWN));
        // Her message clears it at once.
        app.incoming(vec![message(1, "bob", "general", true, "hi")]);
        assert_eq!(app.typing_status(), None);
        // Carol's, to alice directly, shows in carol's conversation.
        app.incoming(vec![message(2, "carol", "alice", false, "psst")]);
        app.typing(typing("carol", "carol"), start);
        app.key(Key::NextConversation);
        assert_eq!(app.current_conversation().label(), "carol");
        assert_eq!(app.typing_status().as_deref(), Some("carol is typing..."));
        app.expire_typing(start + presence::TYPING_SHOWN);
        assert_eq!(app.typing_status(), None);
        assert_eq!(app.typing_deadline(), None);
        // A member who leaves stops typing; a lost stream forgets everyone.
        app.typing(typing("general", "bob"), start);
        app.membership(Membership {
            change: Change::Left,
            ..joined("general", "bob", 1)
        });
        app.typing(typing("carol", "carol"), start);
        app.reconnecting("UNAVAILABLE".into());
        assert_eq!(app.typing_deadline(), None);
    }

    #[test]
    fn the_line_mode_keeps_no_typing_notices() {
        let mut app = App::new("alice", "srv", true);
        app.typing(
            Typing {
                conversation: "bob".into(),
                user: "bob".into(),
            },
            Instant::now(),
        );
        assert_eq!(app.typing_deadline(), None);
    }

    #[test]
    fn typing_a_text_sends_a_notice_at_most_every_two_seconds_and_commands_none() {
        let start = Instant::now();
        let at = |millis| start + std::time::Duration::from_millis(millis);
        let notice = Some(Effect::Typing("general".into()));
        let mut app = App::new("alice", "srv", false);
        assert_eq!(app.key_at(Key::Char('h'), at(0)), None, "no conversation");
        app.key(Key::KillToStart);
        app.outcome(Outcome::Created("general".into()));
        assert_eq!(app.key_at(Key::Char('/'), at(0)), None, "a command");
        assert_eq!(app.key_at(Key::Char('/'), at(10)), notice, "//text");
        app.key(Key::KillToStart);
        assert_eq!(app.key_at(Key::Char(' '), at(20)), None, "blank");
        assert_eq!(app.key_at(Key::Char('h'), at(30)), None, "throttled");
        assert_eq!(app.key_at(Key::Char('i'), at(1999)), None);
        assert_eq!(app.key_at(Key::Char('!'), at(2010)), notice);
        assert_eq!(app.key_at(Key::Backspace, at(5000)), None, "not typing");
        // Each conversation has its own throttle.
        app.key(Key::KillToStart);
        let bob = type_line(&mut app, "/to bob");
        assert!(matches!(bob, Some(Effect::Lookup { .. })));
        app.outcome(Outcome::Found {
            name: "bob".into(),
            then: AfterLookup::Switch,
            channels: vec![channel("bob", false, false)],
        });
        assert_eq!(app.current_conversation().label(), "bob");
        assert_eq!(
            app.key_at(Key::Char('y'), at(2020)),
            Some(Effect::Typing("bob".into()))
        );
        // Not while reconnecting.
        app.reconnecting("UNAVAILABLE".into());
        assert_eq!(app.key_at(Key::Char('o'), at(9000)), None);
        // Typing notices come back to nothing.
        assert_eq!(app.outcome(Outcome::Dispatched), None);
    }

    #[test]
    fn members_lists_the_current_group_or_the_one_named() {
        let mut app = App::new("alice", "srv", true);
        app.take_printed();
        assert_eq!(app.submit("/members"), None);
        assert_eq!(
            app.take_printed(),
            [Printed::Err(
                "error: no group open: /members GROUP, or /to #GROUP first".into()
            )]
        );
        assert_eq!(
            app.submit("/members #news"),
            Some(Effect::Members("news".into()))
        );
        app.outcome(Outcome::Created("general".into()));
        app.take_printed();
        assert_eq!(
            app.submit("/MEMBERS"),
            Some(Effect::Members("general".into()))
        );
        app.outcome(Outcome::Members {
            group: "general".into(),
            members: vec!["alice".into(), "bob".into(), "carol".into()],
            count: 3,
            complete: true,
        });
        app.outcome(Outcome::Members {
            group: "big".into(),
            members: vec!["a".into(), "b".into()],
            count: 9000,
            complete: false,
        });
        assert_eq!(
            app.take_printed(),
            [
                Printed::Out("#general has 3 members: alice, bob, carol".into()),
                Printed::Out("#big has 9000 members; the first 2: a, b".into()),
            ]
        );
    }
}
