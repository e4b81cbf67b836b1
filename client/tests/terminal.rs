//! The real `chat-client` binary in a pseudo-terminal, against a real server
//! on `127.0.0.1:0`: what a person at a terminal sees and what the other
//! side receives. The screen is read the way a terminal draws it (vt100);
//! every wait polls with a deadline, and the client is killed if a test
//! fails before it exits. The restart tests run the server in this process
//! on a fixed loopback port, stop it completely and start a new one on the
//! same port underneath the client: in the pseudo-terminal, and once in the
//! plain line mode (pipes, no terminal). The presence tests check what the
//! chat shows of who joins, leaves and types, and the typing notices it
//! sends.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_client::api::{Api, Inbox, InboxEvent};
use chat_proto::chat::{
    EventType, JoinGroupChatRequest, LeaveGroupChatRequest, SendMessageRequest, SendTypingRequest,
};
use chat_server::config::Config;
use chat_server::logging;
use chat_server::server::{start, RunningServer};
use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};

/// The longest any one step may take.
const WAIT: Duration = Duration::from_secs(10);
const ROWS: u16 = 24;
const COLS: u16 = 100;

/// The chat client running in a pseudo-terminal, its screen kept up to date
/// by a reader thread.
struct Terminal {
    child: Box<dyn Child + Send + Sync>,
    master: Box<dyn MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    screen: Arc<Mutex<vt100::Parser>>,
    /// Everything the client wrote, for checks on the raw output.
    output: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    /// Starts `chat-client --server ADDRESS chat --user USER` on a fresh pty.
    fn start(address: &str, user: &str) -> Terminal {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal");
        let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_chat-client"));
        command.args(["--server", address, "chat", "--user", user]);
        command.env("TERM", "xterm-256color");
        // The package's directory when the test runs, not when it was built.
        command.cwd(
            std::env::var_os("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        );
        let child = pair
            .slave
            .spawn_command(command)
            .expect("the client starts");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("pty reader");
        let writer = pair.master.take_writer().expect("pty writer");
        let size = (
            std::num::NonZeroU16::new(ROWS).unwrap(),
            std::num::NonZeroU16::new(COLS).unwrap(),
        );
        let screen = Arc::new(Mutex::new(vt100::Parser::new(size.0, size.1, 0)));
        let output = Arc::new(Mutex::new(Vec::new()));
        let (screen_w, output_w) = (screen.clone(), output.clone());
        // Ends when the client's side of the pty closes (it exits or is killed).
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                screen_w.lock().unwrap().process(&buffer[..n]);
                output_w.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        Terminal {
            child,
            master: pair.master,
            writer,
            screen,
            output,
        }
    }

    /// Types `keys` (raw bytes, as a terminal sends them).
    fn type_keys(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// The screen's rows, trailing spaces trimmed.
    fn rows(&self) -> Vec<String> {
        let parser = self.screen.lock().unwrap();
        parser
            .screen()
            .rows(0, COLS)
            .map(|row| row.trim_end().to_owned())
            .collect()
    }

    /// Waits until some row satisfies `matches`; returns that row.
    #[track_caller]
    fn wait_for_row(&self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let rows = self.rows();
            if let Some(row) = rows.iter().find(|row| matches(row)) {
                return row.clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "{what}: not on screen within {WAIT:?}:\n{}",
                    rows.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The bottom row: the input line.
    fn input_row(&self) -> String {
        self.rows().last().cloned().unwrap_or_default()
    }

    /// Waits for the client to exit; its exit code.
    #[track_caller]
    fn wait_exit(&mut self) -> u32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.exit_code();
            }
            assert!(
                Instant::now() < deadline,
                "the client did not exit within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the pty is back in cooked mode (line editing and echo on).
    fn cooked(&self) -> bool {
        let termios = self.master.get_termios().expect("termios of the pty");
        let flags = termios.local_flags.bits();
        let wanted = libc::ICANON | libc::ECHO;
        flags & wanted == wanted
    }

    /// Waits until everything the client wrote contains `bytes`.
    #[track_caller]
    fn wait_for_output(&self, what: &str, bytes: &[u8]) {
        let deadline = Instant::now() + WAIT;
        while !self
            .output
            .lock()
            .unwrap()
            .windows(bytes.len())
            .any(|w| w == bytes)
        {
            assert!(
                Instant::now() < deadline,
                "{what}: not written within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts a server on `address` (a fixed port, so a restarted server is
/// found where the client left the first). Retries for up to [`WAIT`] while
/// the port cannot be bound yet, as just after a server on it has stopped.
fn start_server_on(address: &str) -> RunningServer {
    let deadline = Instant::now() + WAIT;
    loop {
        match start(&Config::with_listen(address), &logging::discard()) {
            Ok(server) => return server,
            Err(error) => assert!(
                Instant::now() < deadline,
                "no server on {address} within {WAIT:?}: {error}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback port free right now (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

fn start_server() -> RunningServer {
    start(&Config::with_listen("127.0.0.1:0"), &logging::discard()).expect("server starts")
}

fn send(api: &Api, from: &str, to: &str, text: &str) {
    let mut request = SendMessageRequest::new();
    request.recipient = to.to_owned();
    request.text = text.to_owned();
    api.client
        .send_message_opt(&request, Api::as_user(from))
        .expect("send");
}

/// Every message `inbox` receives until nothing more comes for `quiet`.
fn drain(inbox: &Inbox, quiet: Duration) -> Vec<(String, String)> {
    let mut received = Vec::new();
    while let Some(event) = inbox.next_event(quiet) {
        if let InboxEvent::Messages(messages) = event {
            received.extend(messages.into_iter().map(|m| (m.sender, m.text)));
        }
    }
    received
}

#[test]
fn a_message_arriving_while_typing_leaves_the_line_intact_and_the_typed_text_is_sent() {
    let server = start_server();
    let address = format!("127.0.0.1:{}", server.port());
    let api = Api::connect(&address, WAIT).unwrap();
    let bob = api.open_inbox("bob", WAIT).unwrap();

    let mut alice = Terminal::start(&address, "alice");
    alice.wait_for_row("the status line", |row| {
        row.contains("alice on 127.0.0.1") && row.contains("connected")
    });
    alice.type_keys("/TO bob\r");
    alice.wait_for_row("bob as the current conversation", |row| {
        row.contains("to bob │ connected")
    });

    alice.type_keys("hello \"wor");
    alice.wait_for_row("the half-typed line", |row| row == "> hello \"wor");
    send(&api, "bob", "alice", "tab\there, \\ and \"quotes\"");
    alice.wait_for_row("bob's message", |row| {
        row.contains("[bob] bob: tab    here, \\ and \"quotes\"")
    });
    assert_eq!(alice.input_row(), "> hello \"wor");

    // Backspace (DEL), then Left and Right around an insertion.
    alice.type_keys("ldd\x7f\"\x1b[D!\x1b[C\r");
    alice.wait_for_row("alice's own message, once", |row| {
        row.contains("[bob] alice: hello \"world!\"")
    });
    assert_eq!(alice.input_row(), ">");
    let shown = alice
        .rows()
        .iter()
        .filter(|row| row.contains("alice: hello"))
        .count();
    assert_eq!(shown, 1);

    assert_eq!(
        drain(&bob, Duration::from_millis(300)),
        [("alice".to_owned(), "hello \"world!\"".to_owned())]
    );

    alice.type_keys("/quit\r");
    assert_eq!(alice.wait_exit(), 0);
    alice.wait_for_output("leaving the alternate screen", b"\x1b[?1049l");
    assert!(alice.cooked(), "the terminal is left in raw mode");
    server.stop();
}

#[test]
fn a_group_conversation_shows_each_line_once_and_counts_unread() {
    let server = start_server();
    let address = format!("127.0.0.1:{}", server.port());
    let api = Api::connect(&address, WAIT).unwrap();
    let _carol = api.open_inbox("carol", WAIT).unwrap();

    let mut alice = Terminal::start(&address, "alice");
    alice.wait_for_row("the status line", |row| row.contains("connected"));
    alice.type_keys("/create team\r");
    alice.wait_for_row("the new group", |row| row.contains("to #team │"));
    alice.type_keys("first\r");
    alice.wait_for_row("the group line", |row| row.contains("[#team] alice: first"));
    send(&api, "carol", "alice", "over here");
    alice.wait_for_row("carol's unread count", |row| row.contains("carol (1)"));
    // Tab: the next conversation, carol's.
    alice.type_keys("\t");
    alice.wait_for_row("carol's message", |row| {
        row.contains("[carol] carol: over here")
    });
    alice.type_keys("\x1b[Z");
    alice.wait_for_row("back in the group", |row| row.contains("to #team │"));
    let group_lines = alice
        .rows()
        .iter()
        .filter(|row| row.contains("alice: first"))
        .count();
    assert_eq!(group_lines, 1);

    // Ctrl-C quits too, and leaves the terminal as it was.
    alice.type_keys("\x03");
    assert_eq!(alice.wait_exit(), 0);
    assert!(alice.cooked(), "the terminal is left in raw mode");
    server.stop();
}

fn join(api: &Api, user: &str, group: &str) {
    let mut request = JoinGroupChatRequest::new();
    request.name = group.to_owned();
    api.client
        .join_group_chat_opt(&request, Api::as_user(user))
        .expect("join");
}

#[test]
fn join_shows_the_groups_recent_history_above_the_live_messages() {
    let server = start_server();
    let address = format!("127.0.0.1:{}", server.port());
    let api = Api::connect(&address, WAIT).unwrap();
    let _bob = api.open_inbox("bob", WAIT).unwrap();
    let mut create = chat_proto::chat::CreateGroupChatRequest::new();
    create.name = "news".into();
    api.client
        .create_group_chat_opt(&create, Api::as_user("bob"))
        .unwrap();
    send(&api, "bob", "news", "said before alice came");
    send(&api, "bob", "news", "and this too");

    let mut alice = Terminal::start(&address, "alice");
    alice.wait_for_row("the status line", |row| row.contains("│ connected"));
    alice.type_keys("/join news\r");
    alice.wait_for_row("the history's summary", |row| {
        row.contains("above: 2 messages of #news from before you joined")
    });
    send(&api, "bob", "news", "said live");
    alice.wait_for_row("the live message", |row| {
        row.contains("[#news] bob: said live")
    });
    let rows = alice.rows();
    let at = |text: &str| rows.iter().position(|row| row.contains(text));
    let order = [
        at("bob: said before alice came"),
        at("bob: and this too"),
        at("above: 2 messages"),
        at("bob: said live"),
    ];
    assert!(
        order.iter().all(Option::is_some) && order.windows(2).all(|w| w[0] < w[1]),
        "history, then live:\n{}",
        rows.join("\n")
    );
    alice.type_keys("/quit\r");
    assert_eq!(alice.wait_exit(), 0);
    server.stop();
}

#[test]
fn a_restarted_server_is_reconnected_to_with_the_typed_line_intact_and_losses_shown() {
    let address = format!("127.0.0.1:{}", free_port());
    let first = start_server_on(&address);
    let mut alice = Terminal::start(&address, "alice");
    alice.wait_for_row("the status line", |row| row.contains("│ connected"));
    alice.type_keys("/create team\r");
    alice.wait_for_row("the new group", |row| row.contains("to #team │ connected"));
    alice.type_keys("before the restart\r");
    alice.wait_for_row("the group line", |row| {
        row.contains("[#team] alice: before the restart")
    });
    alice.type_keys("typed while");

    first.stop();
    alice.wait_for_row("reconnecting", |row| {
        row.contains("to #team │ reconnecting")
    });
    alice.type_keys(" away");
    alice.wait_for_row("the line, still being typed", |row| {
        row == "> typed while away"
    });

    let second = start_server_on(&address);
    alice.wait_for_row("connected again", |row| {
        row.contains("to #team │ connected")
    });
    // A restarted server has a new epoch: nothing to resume.
    alice.wait_for_row("the may-be-missing line", |row| {
        row.contains("some messages may be missing: the session could not be resumed (UNKNOWN")
    });
    alice.wait_for_row("the group, created again", |row| {
        row.contains("#team no longer existed; created it again")
    });
    assert_eq!(alice.input_row(), "> typed while away");
    alice.type_keys("\r");
    alice.wait_for_row("the line, sent on the new connection", |row| {
        row.contains("[#team] alice: typed while away")
    });

    // The stream is live: another user's message reaches alice.
    let api = Api::connect(&address, WAIT).unwrap();
    let _bob = api.open_inbox("bob", WAIT).unwrap();
    join(&api, "bob", "team");
    send(&api, "bob", "team", "welcome back");
    alice.wait_for_row("bob's message", |row| {
        row.contains("[#team] bob: welcome back")
    });
    alice.type_keys("/quit\r");
    assert_eq!(alice.wait_exit(), 0);
    assert!(alice.cooked(), "the terminal is left in raw mode");
    second.stop();
}

#[test]
fn a_lost_server_shows_reconnecting_in_the_status_line_and_the_terminal_is_restored_on_exit() {
    let server = start_server();
    let address = format!("127.0.0.1:{}", server.port());
    let mut alice = Terminal::start(&address, "alice");
    alice.wait_for_row("the status line", |row| row.contains("│ connected"));
    server.stop();
    alice.wait_for_row("the lost connection", |row| row.contains("│ reconnecting"));
    alice.type_keys("\x03");
    assert_eq!(alice.wait_exit(), 1);
    assert!(alice.cooked(), "the terminal is left in raw mode");
    // Back on the main screen, the reason is the last thing printed.
    alice.wait_for_row("the exit message", |row| {
        row.starts_with("chat-client: disconnected: the server ended the session")
    });
}

/// A stream of the plain line mode's output, collected by a thread.
fn collect(mut from: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let into = text.clone();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = from.read(&mut buffer) {
            if n == 0 {
                break;
            }
            into.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
    text
}

/// Waits until `text` holds `wanted`.
#[track_caller]
fn wait_for_text(what: &str, text: &Mutex<String>, wanted: &str) {
    let deadline = Instant::now() + WAIT;
    while !text.lock().unwrap().contains(wanted) {
        assert!(
            Instant::now() < deadline,
            "{what}: {wanted:?} not written within {WAIT:?}:\n{}",
            text.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_line_mode_reconnects_too_and_runs_the_lines_that_waited() {
    let address = format!("127.0.0.1:{}", free_port());
    let first = start_server_on(&address);
    let mut client = Command::new(env!("CARGO_BIN_EXE_chat-client"))
        .args(["--server", &address, "chat", "--user", "alice"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the client starts");
    let mut stdin = client.stdin.take().expect("piped stdin");
    let stdout = collect(client.stdout.take().expect("piped stdout"));
    let stderr = collect(client.stderr.take().expect("piped stderr"));
    // Killed if the test fails before it exits.
    struct Reaper(std::process::Child);
    impl Drop for Reaper {
        fn drop(&mut self) {
            if let Ok(None) = self.0.try_wait() {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
    let mut client = Reaper(client);

    writeln!(stdin, "/create team").unwrap();
    wait_for_text("the group", &stdout, "created #team");
    first.stop();
    wait_for_text("the loss", &stderr, "error: connection lost: ");
    wait_for_text("the loss", &stderr, "; reconnecting");
    // Needs the server: waits for it.
    writeln!(stdin, "said while away").unwrap();
    let second = start_server_on(&address);
    wait_for_text(
        "the may-be-missing line",
        &stdout,
        "some messages may be missing: the session could not be resumed (UNKNOWN",
    );
    wait_for_text(
        "the group, created again",
        &stdout,
        "#team no longer existed; created it again",
    );
    wait_for_text(
        "the line that waited",
        &stdout,
        "[#team] alice: said while away",
    );
    drop(stdin);
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = client.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the client did not exit at end of input"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status:?}");
    second.stop();
}

/// Both event kinds, as the chat asks for them.
const EVENTS: [EventType; 2] = [
    EventType::EVENT_TYPE_MEMBERSHIP,
    EventType::EVENT_TYPE_TYPING,
];

fn leave(api: &Api, user: &str, group: &str) {
    let mut request = LeaveGroupChatRequest::new();
    request.name = group.to_owned();
    api.client
        .leave_group_chat_opt(&request, Api::as_user(user))
        .expect("leave");
}

fn send_typing(api: &Api, from: &str, to: &str) {
    let mut request = SendTypingRequest::new();
    request.recipient = to.to_owned();
    api.client
        .send_typing_opt(&request, Api::as_user(from))
        .expect("typing");
}

/// Waits up to `within` for `done`.
#[track_caller]
fn wait_until(what: &str, within: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The typing notices `inbox` receives until nothing more comes for
/// `quiet`, as (conversation, user); other events are skipped.
fn typing_notices(inbox: &Inbox, quiet: Duration) -> Vec<(String, String)> {
    let mut notices = Vec::new();
    while let Some(event) = inbox.next_event(quiet) {
        if let InboxEvent::Typing(typing) = event {
            notices.push((typing.conversation, typing.user));
        }
    }
    notices
}

#[test]
fn membership_lines_the_typing_indicator_and_members_show_and_typing_notices_go_out() {
    let server = start_server();
    let address = format!("127.0.0.1:{}", server.port());
    let api = Api::connect(&address, WAIT).unwrap();
    let bob = api.open_inbox_with("bob", &EVENTS, WAIT).unwrap();
    let carol = api.open_inbox("carol", WAIT).unwrap();

    let mut alice = Terminal::start(&address, "alice");
    alice.wait_for_row("the status line", |row| row.contains("│ connected"));
    alice.type_keys("/create general\r");
    alice.wait_for_row("the new group", |row| {
        row.contains("to #general │ connected")
    });
    join(&api, "bob", "general");
    alice.wait_for_row("bob's join", |row| {
        row.contains("bob joined #general (2 members)")
    });

    // Bob types in the group: alice's status line says so until his
    // message arrives.
    send_typing(&api, "bob", "general");
    alice.wait_for_row("bob typing", |row| {
        row.ends_with("to #general │ connected │ bob is typing...")
    });
    send(&api, "bob", "general", "hello all");
    alice.wait_for_row("bob's message", |row| {
        row.contains("[#general] bob: hello all")
    });
    let typing_shown = || alice.rows().iter().any(|row| row.contains("is typing"));
    wait_until("bob's message clears it", Duration::from_secs(2), || {
        !typing_shown()
    });

    // Carol's notice goes by itself, five seconds after it came.
    join(&api, "carol", "general");
    alice.wait_for_row("carol's join", |row| {
        row.contains("carol joined #general (3 members)")
    });
    send_typing(&api, "carol", "general");
    alice.wait_for_row("carol typing", |row| row.ends_with("│ carol is typing..."));
    let shown = Instant::now();
    wait_until("the notice expires", WAIT, || !typing_shown());
    assert!(
        shown.elapsed() >= Duration::from_secs(4),
        "gone after {:?}",
        shown.elapsed()
    );

    alice.type_keys("/members\r");
    alice.wait_for_row("the member list", |row| {
        row.contains("#general has 3 members: alice, bob, carol")
    });

    // Alice types: bob hears of it once, however much she types.
    typing_notices(&bob, Duration::from_millis(100));
    alice.type_keys("hel");
    let deadline = Instant::now() + WAIT;
    let first = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match bob.next_event(left) {
            Some(InboxEvent::Typing(typing)) => break (typing.conversation, typing.user),
            Some(_) => continue,
            None => panic!("bob got no typing notice within {WAIT:?}"),
        }
    };
    assert_eq!(first, ("general".to_owned(), "alice".to_owned()));
    alice.type_keys("lo there");
    alice.wait_for_row("the typed line", |row| row == "> hello there");
    assert_eq!(typing_notices(&bob, Duration::from_millis(500)), []);
    alice.type_keys("\r");
    alice.wait_for_row("alice's message", |row| {
        row.contains("[#general] alice: hello there")
    });

    leave(&api, "bob", "general");
    alice.wait_for_row("bob's leave", |row| {
        row.contains("bob left #general (2 members)")
    });
    carol.close();
    alice.wait_for_row("carol's disconnect", |row| {
        row.contains("carol disconnected from #general (1 member)")
    });
    alice.type_keys("/quit\r");
    assert_eq!(alice.wait_exit(), 0);
    server.stop();
}

#[test]
fn the_line_mode_prints_membership_lines_and_members() {
    let server = start_server();
    let address = format!("127.0.0.1:{}", server.port());
    let api = Api::connect(&address, WAIT).unwrap();
    let _bob = api.open_inbox("bob", WAIT).unwrap();
    let mut client = Command::new(env!("CARGO_BIN_EXE_chat-client"))
        .args(["--server", &address, "chat", "--user", "alice"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the client starts");
    let mut stdin = client.stdin.take().expect("piped stdin");
    let stdout = collect(client.stdout.take().expect("piped stdout"));
    writeln!(stdin, "/create team").unwrap();
    wait_for_text("the group", &stdout, "created #team");
    join(&api, "bob", "team");
    wait_for_text("bob's join", &stdout, "bob joined #team (2 members)\n");
    writeln!(stdin, "/members").unwrap();
    wait_for_text("the members", &stdout, "#team has 2 members: alice, bob\n");
    leave(&api, "bob", "team");
    wait_for_text("bob's leave", &stdout, "bob left #team (1 member)\n");
    drop(stdin);
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = client.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = client.kill();
            panic!("the client did not exit at end of input");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status:?}");
    server.stop();
}
