//! Every shell line of README.md's "Admin API" subsection runs as written
//! against a real `chat-server` binary this test starts, and each is
//! checked for what it did, not only for its exit status. A line this test
//! does not know fails it: a new line needs a plan here.
//!
//! What "as written" means here:
//! - Every line runs with bash in a fresh directory of its own (where
//!   `admin.token` is made), with `127.0.0.1:13112` replaced by the admin
//!   port the server picked.
//! - `openssl rand ...` and `chmod ...` run as they are; the file they make
//!   is checked.
//! - `chat-server FLAGS &` starts this package's binary with exactly those
//!   flags, but for `127.0.0.1:13112` given as `127.0.0.1:0` and
//!   `--listen 127.0.0.1:0 --threads 2` before them; the chat and admin
//!   ports are read from its log. It is stopped by its PID when the test
//!   ends.
//! - `chat-client admin ...` lines run the `chat-client` binary built beside
//!   this test (`cargo test --workspace` builds it) in place of
//!   `chat-client`.
//! - `buf curl ...` lines run the `buf` of the Node suite's npm packages
//!   (`tests/interop/node/node_modules/.bin`, which `make interop-node`
//!   installs) first on `PATH`.
//!
//! Before each call the test brings the server to the state the README
//! describes (`alice`, `bob` and `mallory` connected unless banned; `lab`
//! with `alice` and `bob` before a line that needs the group), through the
//! chat listener, and afterwards checks the effect through the chat
//! listener: streams ended with `PERMISSION_DENIED`, refused Connects,
//! messages delivered with `from_operator`, memberships gone. Every command
//! is stopped if it has not ended within [`LIMIT`].

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chat_client::api::{status_of, Api, Inbox};
use chat_proto::chat::{ChannelType, CreateGroupChatRequest, JoinGroupChatRequest};
use grpcio::{RpcStatus, RpcStatusCode};

use common::binary::port_in;
use common::{end_status, eventually, list_with, manifest_dir, receive, WAIT};

/// The longest one README line may take.
const LIMIT: Duration = Duration::from_secs(30);

/// The admin address the README's lines spell out.
const README_ADMIN: &str = "127.0.0.1:13112";

/// The users the README's examples act on.
const USERS: [&str; 3] = ["alice", "bob", "mallory"];

/// The group the README's examples act on, and its members when the test
/// makes it.
const GROUP: &str = "lab";
const GROUP_MEMBERS: [&str; 2] = ["alice", "bob"];

/// The shell lines of README.md's `### Admin API` subsection, in order.
fn admin_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).expect("README.md");
    let start = readme
        .find("\n### Admin API\n")
        .expect("README.md has a subsection \"Admin API\"");
    let section = &readme[start + 1..];
    let end = ["\n## ", "\n### "]
        .iter()
        .filter_map(|heading| section[1..].find(heading).map(|end| end + 1))
        .min()
        .unwrap_or(section.len());
    let mut lines = Vec::new();
    let mut in_sh = false;
    for line in section[..end].lines() {
        match (in_sh, line) {
            (false, "```sh") => in_sh = true,
            (true, "```") => in_sh = false,
            (true, line) if !line.trim_start().starts_with('#') => lines.push(line.to_owned()),
            _ => {}
        }
    }
    lines
}

/// The `chat-client` binary built beside this test.
fn client_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let binary = dir.join("chat-client");
    assert!(
        binary.exists(),
        "{} is missing: build the workspace's binaries first (cargo test --workspace)",
        binary.display()
    );
    binary
}

/// The directory holding the Node suite's `buf`.
fn buf_dir() -> PathBuf {
    let dir = manifest_dir().join("tests/interop/node/node_modules/.bin");
    assert!(
        dir.join("buf").exists(),
        "{} has no buf: run `make interop-node` (or npm ci in tests/interop/node) first",
        dir.display()
    );
    dir
}

/// A directory of this test's own, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("chat-admin-readme-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("make a scratch directory");
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `command` with bash in `dir`, `buf` on the `PATH`, stopping it
/// (by its PID) after [`LIMIT`].
fn bash(command: &str, dir: &Path) -> Output {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(buf_dir()).chain(std::env::split_paths(&path)))
        .expect("a PATH");
    let mut child = Command::new("bash")
        .args(["-c", command])
        .current_dir(dir)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash starts");
    let deadline = Instant::now() + LIMIT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{command}` did not end within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `command`, which must succeed; returns its standard output.
#[track_caller]
fn run_ok(command: &str, dir: &Path) -> String {
    let output = bash(command, dir);
    assert!(
        output.status.success(),
        "`{command}` failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// A `chat-server` binary this test started; killed by its PID on drop.
struct Server {
    child: Child,
    chat: String,
    admin: String,
}

impl Server {
    /// Starts the binary in `dir` with `--listen 127.0.0.1:0 --threads 2`
    /// and `flags`, and reads both ports from its log.
    fn start(dir: &Path, flags: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(["--listen", "127.0.0.1:0", "--threads", "2"])
            .args(flags)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chat-server");
        let stderr = child.stderr.take().expect("piped stderr");
        let (ports_tx, ports) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                let _ = ports_tx.send(line);
            }
        });
        let (mut chat, mut admin) = (None, None);
        let mut log = String::new();
        let deadline = Instant::now() + WAIT;
        while chat.is_none() || admin.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = ports.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server logged no chat and admin ports within {WAIT:?}:\n{log}");
            };
            if line.contains("serving admin") {
                admin = port_in(&line);
            } else if line.contains("listening") {
                chat = port_in(&line);
            }
            log.push_str(&line);
            log.push('\n');
        }
        let address = |port: Option<u16>| format!("127.0.0.1:{}", port.unwrap_or_default());
        Server {
            child,
            chat: address(chat),
            admin: address(admin),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The words of a shell line: whitespace-separated, with '...' and "..."
/// quoting (no escapes; enough for the README's lines).
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// An admin call a README line makes, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    ListUsers {
        limit: u32,
        all: bool,
    },
    Publish {
        recipient: String,
        text: String,
        sender: String,
    },
    Remove {
        group: String,
        username: String,
    },
    DeleteGroup {
        group: String,
    },
    Disconnect {
        username: String,
        reason: String,
        ban_secs: u32,
    },
}

/// How a README line makes its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Client,
    BufCurl,
}

/// The call a `chat-client admin` line makes.
fn client_call(line: &str) -> Call {
    let words = words(line);
    let mut rest = words.iter().skip(2).map(String::as_str).peekable();
    // The connection's flags, then the subcommand.
    let mut command = None;
    while let Some(word) = rest.next() {
        match word {
            "--server" | "--token-file" => {
                rest.next();
            }
            word => {
                command = Some(word);
                break;
            }
        }
    }
    let mut args = Vec::new();
    let mut flags = BTreeMap::new();
    while let Some(word) = rest.next() {
        match word.strip_prefix("--") {
            Some("all") => {
                flags.insert("all", String::new());
            }
            Some(flag) => {
                let value = rest
                    .next()
                    .unwrap_or_else(|| panic!("{line}: --{flag} value"));
                flags.insert(flag, value.to_owned());
            }
            None => args.push(word.to_owned()),
        }
    }
    let flag = |name: &str| flags.get(name).cloned().unwrap_or_default();
    let number = |name: &str| flags.get(name).map_or(0, |n| n.parse().expect("a number"));
    match (command, args.as_slice()) {
        (Some("users"), []) => Call::ListUsers {
            limit: number("limit"),
            all: flags.contains_key("all"),
        },
        (Some("publish"), [recipient, text]) => Call::Publish {
            recipient: recipient.clone(),
            text: text.clone(),
            sender: flag("sender"),
        },
        (Some("remove"), [group, username]) => Call::Remove {
            group: group.clone(),
            username: username.clone(),
        },
        (Some("delete-group"), [group]) => Call::DeleteGroup {
            group: group.clone(),
        },
        (Some("disconnect"), [username]) => Call::Disconnect {
            username: username.clone(),
            reason: flag("reason"),
            ban_secs: number("ban-secs"),
        },
        _ => panic!("README chat-client line with no plan in this test: {line:?}"),
    }
}

/// The call a `buf curl ... -d JSON URL` line makes.
fn buf_call(line: &str) -> Call {
    let words = words(line);
    let body = words
        .iter()
        .position(|word| word == "-d")
        .and_then(|at| words.get(at + 1))
        .unwrap_or_else(|| panic!("{line}: no -d"));
    let body: serde_json::Value = serde_json::from_str(body).expect("the -d body is JSON");
    let field = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
    let number = |name: &str| {
        body[name]
            .as_u64()
            .map_or(0, |n| u32::try_from(n).expect("a u32"))
    };
    let url = words.last().cloned().unwrap_or_default();
    let method = url.rsplit('/').next().unwrap_or_default();
    match method {
        "ListUsers" => Call::ListUsers {
            limit: number("limit"),
            all: false,
        },
        "Publish" => Call::Publish {
            recipient: field("recipient"),
            text: field("text"),
            sender: field("sender"),
        },
        "RemoveGroupMember" => Call::Remove {
            group: field("group"),
            username: field("username"),
        },
        "DeleteGroup" => Call::DeleteGroup {
            group: field("group"),
        },
        "DisconnectUser" => Call::Disconnect {
            username: field("username"),
            reason: field("reason"),
            ban_secs: number("banSecs").max(number("ban_secs")),
        },
        _ => panic!("README buf curl line with no plan in this test: {line:?}"),
    }
}

/// The server's users and groups as the test has made them, with a client
/// of the chat listener and each connected user's stream.
struct World {
    api: Api,
    inboxes: BTreeMap<String, Inbox>,
    banned: BTreeSet<String>,
    /// `lab`'s members, when it exists.
    group: Option<BTreeSet<String>>,
}

impl World {
    fn new(chat: &str) -> World {
        World {
            api: Api::connect(chat, WAIT).expect("the chat listener serves"),
            inboxes: BTreeMap::new(),
            banned: BTreeSet::new(),
            group: None,
        }
    }

    /// Connects every user not connected and not banned (a user just
    /// disconnected may take a moment to be free again).
    fn connect_everyone(&mut self) {
        for user in USERS {
            if self.inboxes.contains_key(user) || self.banned.contains(user) {
                continue;
            }
            let mut inbox = None;
            eventually(&format!("{user} connects"), || {
                match self.api.open_inbox(user, WAIT) {
                    Ok(opened) => {
                        inbox = Some(opened);
                        true
                    }
                    Err(status) if status.code() == RpcStatusCode::ALREADY_EXISTS => false,
                    Err(status) => panic!("connect {user}: {status:?}"),
                }
            });
            if let Some(inbox) = inbox {
                self.inboxes.insert(user.to_owned(), inbox);
            }
        }
    }

    /// Makes `lab` with its README members when it does not exist; with
    /// `full`, also joins a member it lost.
    fn make_group(&mut self, full: bool) {
        let members = self.group.get_or_insert_with(BTreeSet::new).clone();
        for (index, user) in GROUP_MEMBERS.iter().enumerate() {
            if members.contains(*user) || (!full && !members.is_empty()) {
                continue;
            }
            let result = if index == 0 && members.is_empty() {
                let mut request = CreateGroupChatRequest::new();
                request.name = GROUP.to_owned();
                self.api
                    .client
                    .create_group_chat_opt(&request, Api::as_user(user))
                    .map(drop)
            } else {
                let mut request = JoinGroupChatRequest::new();
                request.name = GROUP.to_owned();
                self.api
                    .client
                    .join_group_chat_opt(&request, Api::as_user(user))
                    .map(drop)
            };
            result.unwrap_or_else(|error| panic!("{user} into {GROUP}: {:?}", status_of(error)));
            if let Some(group) = &mut self.group {
                group.insert((*user).to_owned());
            }
        }
    }

    /// The state `call` is shown in: everyone connected; `lab` made for the
    /// group calls, with `bob` in it for a removal of `bob`.
    fn prepare(&mut self, call: &Call) {
        self.connect_everyone();
        match call {
            Call::Publish { .. } | Call::DeleteGroup { .. } => self.make_group(false),
            Call::Remove { .. } => self.make_group(true),
            Call::ListUsers { .. } | Call::Disconnect { .. } => {}
        }
    }

    /// How many groups `user` is in.
    fn groups_of(&self, user: &str) -> usize {
        self.group
            .as_ref()
            .map_or(0, |members| usize::from(members.contains(user)))
    }

    /// `lab` as `user`'s ListChannels shows it: (member count, joined), or
    /// `None` when it does not exist.
    fn group_seen_by(&self, user: &str) -> Option<(u32, bool)> {
        list_with(&self.api, user)
            .expect("list channels")
            .into_iter()
            .find(|(name, kind, _, _)| name == GROUP && *kind == ChannelType::CHANNEL_TYPE_GROUP)
            .map(|(_, _, members, joined)| (members, joined))
    }

    /// The refusal a Connect as `user` gets now.
    fn connect_refusal(&self, user: &str) -> RpcStatus {
        match self.api.open_inbox(user, WAIT) {
            Ok(_) => panic!("a Connect as {user} was accepted"),
            Err(status) => status,
        }
    }

    /// Checks what `call`, made through `via`, printed and did.
    #[track_caller]
    fn check(&mut self, line: &str, call: &Call, via: Via, stdout: &str) {
        match call {
            Call::ListUsers { limit, all } => self.check_users(line, *limit, *all, via, stdout),
            Call::Publish {
                recipient,
                text,
                sender,
            } => {
                assert_eq!(recipient, GROUP, "{line}: the examples publish to {GROUP}");
                let id = match via {
                    Via::Client => {
                        let id = stdout
                            .strip_prefix("published message ")
                            .and_then(|rest| rest.strip_suffix(&format!(" to {GROUP}\n")))
                            .unwrap_or_else(|| panic!("{line} printed {stdout:?}"));
                        id.parse::<u64>().expect("a message id")
                    }
                    Via::BufCurl => {
                        let reply = json(line, stdout);
                        assert!(reply["sentAt"].is_string(), "{line}: {reply}");
                        reply["messageId"]
                            .as_str()
                            .and_then(|id| id.parse().ok())
                            .unwrap_or_else(|| panic!("{line}: no messageId in {reply}"))
                    }
                };
                let members = self.group.clone().unwrap_or_default();
                for member in &members {
                    let inbox = &self.inboxes[member];
                    let [message] = receive(inbox, 1).try_into().expect("one message");
                    assert_eq!(message.id, id, "{line}: {member} got another message");
                    assert_eq!(message.text, *text, "{line}");
                    assert_eq!(message.sender, *sender, "{line}");
                    assert!(message.from_operator, "{line}: {member} got {message:?}");
                    assert_eq!(message.recipient, GROUP, "{line}");
                }
            }
            Call::Remove { group, username } => {
                assert_eq!(group, GROUP, "{line}");
                match via {
                    Via::Client => assert_eq!(stdout, format!("removed {username} from {group}\n")),
                    Via::BufCurl => assert_eq!(json(line, stdout), serde_json::json!({})),
                }
                if let Some(members) = &mut self.group {
                    members.remove(username);
                }
                let left = self.group.as_ref().map_or(0, BTreeSet::len);
                // A group that empties is deleted.
                let seen = if left == 0 {
                    self.group = None;
                    None
                } else {
                    Some((u32::try_from(left).expect("a count"), false))
                };
                assert_eq!(
                    self.group_seen_by(username),
                    seen,
                    "{line}: {username} is no longer in {group}"
                );
            }
            Call::DeleteGroup { group } => {
                assert_eq!(group, GROUP, "{line}");
                let removed = self.group.take().map_or(0, |members| members.len());
                match via {
                    Via::Client => {
                        let noun = if removed == 1 { "member" } else { "members" };
                        assert_eq!(
                            stdout,
                            format!("deleted group {group} ({removed} {noun} removed)\n")
                        );
                    }
                    Via::BufCurl => {
                        let reply = json(line, stdout);
                        assert_eq!(reply["removed"].as_u64().unwrap_or(0), removed as u64);
                    }
                }
                for user in GROUP_MEMBERS {
                    if self.inboxes.contains_key(user) {
                        assert_eq!(self.group_seen_by(user), None, "{line}: {group} is gone");
                    }
                }
            }
            Call::Disconnect {
                username,
                reason,
                ban_secs,
            } => {
                match (via, ban_secs) {
                    (Via::Client, 0) => assert_eq!(stdout, format!("disconnected {username}\n")),
                    (Via::Client, secs) => assert_eq!(
                        stdout,
                        format!(
                            "banned {username} for {secs}s (disconnected if it was connected)\n"
                        )
                    ),
                    (Via::BufCurl, _) => assert_eq!(json(line, stdout), serde_json::json!({})),
                }
                if let Some(inbox) = self.inboxes.remove(username.as_str()) {
                    let status = end_status(&inbox);
                    assert_eq!(
                        status.code(),
                        RpcStatusCode::PERMISSION_DENIED,
                        "{line}: {status:?}"
                    );
                    assert!(
                        status.message().contains("operator") && status.message().contains(reason),
                        "{line}: {status:?}"
                    );
                }
                if let Some(members) = &mut self.group {
                    members.remove(username.as_str());
                    if members.is_empty() {
                        self.group = None;
                    }
                }
                if *ban_secs > 0 {
                    self.banned.insert(username.clone());
                    let status = self.connect_refusal(username);
                    assert_eq!(
                        status.code(),
                        RpcStatusCode::PERMISSION_DENIED,
                        "{line}: {status:?}"
                    );
                    assert!(status.message().contains("banned"), "{line}: {status:?}");
                }
            }
        }
    }

    /// `users` lines: every connected user once, sorted, with its group
    /// count; then the total.
    #[track_caller]
    fn check_users(&self, line: &str, limit: u32, all: bool, via: Via, stdout: &str) {
        let connected: Vec<&str> = self.inboxes.keys().map(String::as_str).collect();
        let page = if all || limit == 0 {
            connected.len()
        } else {
            connected.len().min(limit as usize)
        };
        match via {
            Via::Client => {
                let lines: Vec<&str> = stdout.lines().collect();
                assert_eq!(lines.len(), page + 1, "{line} printed:\n{stdout}");
                for (shown, user) in lines.iter().zip(&connected) {
                    assert_user_line(shown, user, self.groups_of(user));
                }
                assert_eq!(
                    lines[page],
                    format!("total: {page} listed, {} connected", connected.len()),
                    "{line} printed:\n{stdout}"
                );
            }
            Via::BufCurl => {
                let reply = json(line, stdout);
                let users = reply["users"].as_array().cloned().unwrap_or_default();
                let names: Vec<&str> = users
                    .iter()
                    .filter_map(|user| user["username"].as_str())
                    .collect();
                assert_eq!(names, connected[..page], "{line}: {reply}");
                assert_eq!(reply["userCount"].as_u64(), Some(connected.len() as u64));
                for user in &users {
                    let name = user["username"].as_str().unwrap_or_default();
                    let groups = user["groupCount"].as_u64().unwrap_or(0);
                    assert_eq!(groups, self.groups_of(name) as u64, "{line}: {user}");
                    assert!(user["connectedAt"].is_string(), "{line}: {user}");
                    assert!(user["peer"].is_string(), "{line}: {user}");
                }
            }
        }
    }
}

/// Checks one `users` line: `user NAME node=- connected_at=RFC3339
/// groups=N peer=ADDRESS`, connected within the last minute.
#[track_caller]
fn assert_user_line(shown: &str, user: &str, groups: usize) {
    let fields: Vec<&str> = shown.split(' ').collect();
    let [kind, name, node, at, count, peer] = fields.as_slice() else {
        panic!("not a user line: {shown:?}");
    };
    assert_eq!((*kind, *name), ("user", user), "{shown}");
    assert_eq!(*node, "node=-", "{shown}: one node has no name");
    let at = at.strip_prefix("connected_at=").expect("connected_at=");
    let at = utc_seconds(at).unwrap_or_else(|| panic!("{shown}: not RFC 3339 UTC"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let now = i64::try_from(now).expect("seconds fit i64");
    assert!(
        (-5..=60).contains(&(now - at)),
        "{shown}: connected {} s ago",
        now - at
    );
    assert_eq!(*count, format!("groups={groups}"), "{shown}");
    assert!(
        peer.starts_with("peer=") && peer.contains("127.0.0.1"),
        "{shown}"
    );
}

/// The seconds since the epoch of `YYYY-MM-DDTHH:MM:SS.mmmZ`, as the
/// client prints `connected_at`; `None` in any other form.
fn utc_seconds(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    let fits = bytes.len() == shape.len()
        && shape.bytes().zip(bytes).all(|(want, got)| match want {
            b'd' => got.is_ascii_digit(),
            want => want == *got,
        });
    if !fits {
        return None;
    }
    let number = |from: usize, to: usize| text[from..to].parse::<i64>().ok();
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

#[test]
fn utc_seconds_reads_the_clients_timestamps() {
    assert_eq!(utc_seconds("1970-01-01T00:00:00.000Z"), Some(0));
    assert_eq!(utc_seconds("2025-05-01T12:00:00.123Z"), Some(1_746_100_800));
    assert_eq!(utc_seconds("2024-02-29T23:59:59.999Z"), Some(1_709_251_199));
    assert_eq!(utc_seconds("2025-05-01T12:00:00Z"), None);
    assert_eq!(utc_seconds("2025-13-01T12:00:00.000Z"), None);
}

#[track_caller]
fn json(line: &str, stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|error| panic!("{line}: {error}:\n{stdout}"))
}

/// `line` with the admin port the test's server picked.
fn localized(line: &str, server: Option<&Server>) -> String {
    match server {
        Some(server) => line.replace(README_ADMIN, &server.admin),
        None => line.to_owned(),
    }
}

#[test]
fn every_admin_api_line_runs_as_written_and_does_what_it_says() {
    let lines = admin_lines();
    assert!(lines.len() >= 10, "too few shell lines found: {lines:?}");
    let scratch = Scratch::new("readme");
    let dir = scratch.path();
    let client = client_binary();
    let mut server: Option<Server> = None;
    let mut world: Option<World> = None;
    let mut made = BTreeSet::new();
    for line in &lines {
        let command = localized(line, server.as_ref());
        if line.starts_with("openssl rand -hex 32 > ") {
            run_ok(&command, dir);
            let secret = std::fs::read_to_string(dir.join("admin.token")).expect("admin.token");
            assert_eq!(secret.len(), 65, "64 hex digits and a newline: {secret:?}");
            assert!(secret.trim_end().chars().all(|c| c.is_ascii_hexdigit()));
            made.insert("secret");
        } else if line.starts_with("chmod 600 ") {
            run_ok(&command, dir);
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("admin.token"))
                .expect("admin.token")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        } else if let Some(flags) = line.strip_prefix("chat-server ") {
            assert!(
                made.contains("secret"),
                "the secret is made before the server starts"
            );
            let flags = flags
                .trim_end_matches('&')
                .replace(README_ADMIN, "127.0.0.1:0");
            let flags: Vec<&str> = flags.split_whitespace().collect();
            assert!(
                !flags.contains(&"--listen"),
                "{line}: the test picks --listen"
            );
            let started = Server::start(dir, &flags);
            // The state the README's examples start from.
            let mut started_world = World::new(&started.chat);
            started_world.connect_everyone();
            started_world.make_group(true);
            world = Some(started_world);
            server = Some(started);
        } else {
            let (call, via, command) = if line.starts_with("chat-client admin ") {
                let binary = format!("'{}'", client.display());
                (
                    client_call(line),
                    Via::Client,
                    command.replacen("chat-client", &binary, 1),
                )
            } else if line.starts_with("buf curl ") && line.contains("--list-methods") {
                let stdout = run_ok(&command, dir);
                for method in [
                    "DisconnectUser",
                    "RemoveGroupMember",
                    "DeleteGroup",
                    "Publish",
                    "ListUsers",
                ] {
                    let method = format!("chat.admin.v1.AdminService/{method}");
                    assert!(
                        stdout.lines().any(|l| l == method),
                        "{line}: no {method} in\n{stdout}"
                    );
                }
                continue;
            } else if line.starts_with("buf curl ")
                && line.ends_with("/grpc.health.v1.Health/Check")
            {
                let stdout = run_ok(&command, dir);
                assert_eq!(
                    json(line, &stdout),
                    serde_json::json!({"status": "SERVING"})
                );
                continue;
            } else if line.starts_with("buf curl ") {
                (buf_call(line), Via::BufCurl, command)
            } else {
                panic!("README line with no plan in this test: {line:?}");
            };
            let world = world.as_mut().expect("the server is started first");
            world.prepare(&call);
            let stdout = run_ok(&command, dir);
            world.check(line, &call, via, &stdout);
            made.insert(match via {
                Via::Client => "client",
                Via::BufCurl => "buf",
            });
        }
    }
    assert!(server.is_some(), "the subsection starts a server");
    assert!(
        made.contains("client") && made.contains("buf"),
        "both chat-client and buf curl lines"
    );
}

/// A server with an admin listener, and the secret file for it, in a
/// directory of their own.
fn admin_server(name: &str) -> (Scratch, Server) {
    let scratch = Scratch::new(name);
    std::fs::write(
        scratch.path().join("admin.token"),
        format!("{}\n", "s".repeat(40)),
    )
    .expect("write admin.token");
    let server = Server::start(
        scratch.path(),
        &[
            "--admin-listen",
            "127.0.0.1:0",
            "--admin-token-file",
            "admin.token",
        ],
    );
    (scratch, server)
}

/// Runs `chat-client ARGS` in `dir`; returns its output.
fn client(dir: &Path, args: &[&str]) -> Output {
    let quoted: Vec<String> = args.iter().map(|arg| format!("'{arg}'")).collect();
    bash(
        &format!("'{}' {}", client_binary().display(), quoted.join(" ")),
        dir,
    )
}

/// Asserts that `output` failed with one line on standard error starting
/// with `start`, and printed nothing on standard output.
#[track_caller]
fn assert_one_line_failure(output: &Output, start: &str) {
    let stderr = text(&output.stderr);
    assert!(
        !output.status.success(),
        "it succeeded: {}",
        text(&output.stdout)
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(
        stderr.starts_with(start),
        "{stderr:?} should start with {start:?}"
    );
    assert_eq!(text(&output.stdout), "", "nothing on standard output");
}

#[test]
fn a_wrong_secret_is_one_unauthenticated_line_and_a_failure() {
    let (scratch, server) = admin_server("wrong-secret");
    let dir = scratch.path();
    std::fs::write(dir.join("wrong.token"), format!("{}\n", "w".repeat(40))).expect("write");
    for action in [
        &["users"][..],
        &["disconnect", "alice"],
        &["remove", "lab", "alice"],
        &["delete-group", "lab"],
        &["publish", "lab", "hello"],
    ] {
        let mut args = vec![
            "admin",
            "--server",
            &server.admin,
            "--token-file",
            "wrong.token",
        ];
        args.extend_from_slice(action);
        assert_one_line_failure(&client(dir, &args), "chat-client: UNAUTHENTICATED");
    }
    // The right one works, with the trailing newline stripped.
    let args = [
        "admin",
        "--server",
        &server.admin,
        "--token-file",
        "admin.token",
        "users",
    ];
    let output = client(dir, &args);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "total: 0 listed, 0 connected\n");
}

#[test]
fn refusals_unreadable_files_and_the_chat_listener_are_one_line_each() {
    let (scratch, server) = admin_server("refusals");
    let dir = scratch.path();
    let admin = |action: &[&str]| {
        let mut args = vec![
            "admin",
            "--server",
            &server.admin,
            "--token-file",
            "admin.token",
        ];
        args.extend_from_slice(action);
        client(dir, &args)
    };
    assert_one_line_failure(
        &admin(&["disconnect", "nobody"]),
        "chat-client: NOT_FOUND: ",
    );
    assert_one_line_failure(
        &admin(&["delete-group", "nothing"]),
        "chat-client: NOT_FOUND: ",
    );
    assert_one_line_failure(
        &admin(&["publish", "nobody", "hi"]),
        "chat-client: NOT_FOUND: ",
    );
    assert_one_line_failure(
        &admin(&["users", "--limit", "1001"]),
        "chat-client: INVALID_ARGUMENT: ",
    );
    let missing = [
        "admin",
        "--server",
        &server.admin,
        "--token-file",
        "missing.token",
        "users",
    ];
    assert_one_line_failure(
        &client(dir, &missing),
        "chat-client: --token-file: cannot read missing.token: ",
    );
    let chat = [
        "admin",
        "--server",
        &server.chat,
        "--token-file",
        "admin.token",
        "users",
    ];
    let output = client(dir, &chat);
    assert_one_line_failure(&output, "chat-client: UNIMPLEMENTED");
    assert!(
        text(&output.stderr).contains("--admin-listen"),
        "{}",
        text(&output.stderr)
    );
    let no_server = ["admin", "--token-file", "admin.token", "users"];
    assert_one_line_failure(
        &client(dir, &no_server),
        "chat-client: admin needs --server",
    );
}

#[test]
fn users_pages_follow_their_tokens() {
    let (scratch, server) = admin_server("pages");
    let dir = scratch.path();
    let api = Api::connect(&server.chat, WAIT).expect("the chat listener serves");
    let names = ["ann", "ben", "cid", "dot", "eve"];
    let _inboxes: Vec<Inbox> = names
        .iter()
        .map(|name| api.open_inbox(name, WAIT).expect("connect"))
        .collect();
    let users = |extra: &[&str]| {
        let mut args = vec![
            "admin",
            "--server",
            &server.admin,
            "--token-file",
            "admin.token",
            "users",
        ];
        args.extend_from_slice(extra);
        let output = client(dir, &args);
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
    };
    let listed = |stdout: &str| -> Vec<String> {
        stdout
            .lines()
            .filter_map(|line| line.strip_prefix("user "))
            .map(|rest| rest.split(' ').next().unwrap_or_default().to_owned())
            .collect()
    };
    // One page at a time, each naming the next.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..names.len() {
        let stdout = match &token {
            None => users(&["--limit", "2"]),
            Some(token) => users(&["--limit", "2", "--page-token", token]),
        };
        let page = listed(&stdout);
        assert!(page.len() <= 2, "{stdout}");
        assert!(
            stdout.contains(&format!("total: {} listed, 5 connected\n", page.len())),
            "{stdout}"
        );
        seen.extend(page);
        token = stdout
            .lines()
            .find_map(|line| line.strip_prefix("next page: --page-token "))
            .map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, names);
    // --all reads them all at once.
    let stdout = users(&["--limit", "2", "--all"]);
    assert_eq!(listed(&stdout), names);
    assert!(
        stdout.ends_with("total: 5 listed, 5 connected\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("next page"), "{stdout}");
}

#[test]
fn every_admin_subcommand_has_help() {
    let scratch = Scratch::new("help");
    for (command, usage) in [
        (
            "disconnect",
            "chat-client admin disconnect [OPTIONS] <username>",
        ),
        (
            "remove",
            "chat-client admin remove [OPTIONS] <group> <username>",
        ),
        (
            "delete-group",
            "chat-client admin delete-group [OPTIONS] <group>",
        ),
        (
            "publish",
            "chat-client admin publish [OPTIONS] <recipient> <text>",
        ),
        ("users", "chat-client admin users [FLAGS] [OPTIONS]"),
    ] {
        let output = client(scratch.path(), &["admin", command, "--help"]);
        let stdout = text(&output.stdout);
        assert!(
            output.status.success(),
            "{command} --help: {}",
            text(&output.stderr)
        );
        assert!(stdout.contains(usage), "{command} --help:\n{stdout}");
        assert!(
            stdout.contains("Prints `"),
            "{command} --help says what it prints:\n{stdout}"
        );
    }
    let output = client(scratch.path(), &["admin", "--help"]);
    let stdout = text(&output.stdout);
    for command in ["disconnect", "remove", "delete-group", "publish", "users"] {
        assert!(
            stdout.contains(command),
            "admin --help lists {command}:\n{stdout}"
        );
    }
}

#[test]
fn over_tls_admin_takes_the_clients_tls_flags() {
    let certs = common::tls::TestCerts::new();
    let scratch = Scratch::new("tls");
    let dir = scratch.path();
    std::fs::write(dir.join("admin.token"), "t".repeat(32)).expect("write admin.token");
    let cert = certs.path("server.pem");
    let key = certs.path("server.key");
    let server = Server::start(
        dir,
        &[
            "--tls-cert",
            &cert.to_string_lossy(),
            "--tls-key",
            &key.to_string_lossy(),
            "--admin-listen",
            "127.0.0.1:0",
            "--admin-token-file",
            "admin.token",
        ],
    );
    let ca = certs.path("ca.pem");
    let ca = ca.to_string_lossy();
    let admin = [
        "admin",
        "--server",
        &server.admin,
        "--token-file",
        "admin.token",
    ];
    let mut secure = vec!["--tls-ca", &ca];
    secure.extend_from_slice(&admin);
    secure.push("users");
    let output = client(dir, &secure);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "total: 0 listed, 0 connected\n");
    let mut plain = admin.to_vec();
    plain.push("users");
    assert_one_line_failure(&client(dir, &plain), "chat-client: cannot reach");
}
