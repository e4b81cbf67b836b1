//! `chat-client demo`: a scripted session of three users that exercises every
//! RPC and every error case of the contract against a running server, then
//! a group's history on join and the three ways a session resume turns out
//! (RESUMED with the missed messages replayed, GAP, UNKNOWN), and last who
//! is here: membership events (JOINED, LEFT, DISCONNECTED, with the group's
//! position) and typing notices on streams that ask for them, none on those
//! that do not, and ListGroupMembers a page at a time. Each call is
//! logged with its input, outcome and expected outcome, and each received
//! message as it arrives. Any outcome that differs from the expected one is
//! marked `MISMATCH`, and the demo exits non-zero: it is also a check.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chat_proto::chat::{
    ChannelType, Connected, CreateGroupChatRequest, EventType, GetHistoryRequest,
    JoinGroupChatRequest, LeaveGroupChatRequest, ListChannelsRequest, ListGroupMembersRequest,
    MembershipChangeKind, Message, ResumeRequest, ResumeStatus, SendMessageRequest,
    SendTypingRequest,
};
use grpcio::{RpcStatus, RpcStatusCode};

use crate::api::{
    final_status, open_unread, open_unread_session, status_of, Api, Inbox, InboxEvent,
};
use crate::format::{
    code_name, describe_channel, describe_membership, describe_message, describe_typing,
    membership_kind_name,
};

const WAIT: Duration = Duration::from_secs(5);
/// Most sends the slow-consumer step makes before giving up.
const MAX_STALL_SENDS: usize = 50_000;
/// Messages the GAP step sends to a session that reads none: more than a
/// default server keeps for a resume (`--resume-size` 300).
const GAP_SENDS: usize = 310;
/// How long "nothing more arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);
/// The events the presence steps' streams ask for.
const EVENTS: [EventType; 2] = [
    EventType::EVENT_TYPE_MEMBERSHIP,
    EventType::EVENT_TYPE_TYPING,
];

/// What a call is expected to return.
#[derive(Clone, Copy)]
enum Expect {
    Ok,
    Code(RpcStatusCode),
}

struct Demo {
    api: Api,
    inboxes: BTreeMap<&'static str, Inbox>,
    failures: Vec<String>,
}

/// Runs the demo against `api`; returns the number of mismatches.
pub fn run(api: Api) -> usize {
    let mut demo = Demo {
        api,
        inboxes: BTreeMap::new(),
        failures: Vec::new(),
    };
    println!("[demo] server {}", demo.api.address());
    demo.script();
    for inbox in std::mem::take(&mut demo.inboxes).into_values() {
        inbox.close();
    }
    if demo.failures.is_empty() {
        println!("[demo] all outcomes as expected");
    } else {
        println!("[demo] {} outcome(s) differed:", demo.failures.len());
        for failure in &demo.failures {
            println!("[demo]   {failure}");
        }
    }
    demo.failures.len()
}

impl Demo {
    fn script(&mut self) {
        use RpcStatusCode as C;
        let none = "";

        self.section("connect three users");
        for user in ["alice", "bob", "carol"] {
            self.connect(user, Expect::Ok);
        }
        self.connect("alice", Expect::Code(C::ALREADY_EXISTS));
        self.connect("not valid!", Expect::Code(C::INVALID_ARGUMENT));
        self.connect("", Expect::Code(C::INVALID_ARGUMENT));

        self.section("the authorization header names the caller");
        self.list(none, Expect::Code(C::UNAUTHENTICATED));
        self.list("ghost", Expect::Code(C::UNAUTHENTICATED));
        self.list("Bearer alice", Expect::Ok);

        self.section("group channels");
        self.create("alice", "rust-fans", Expect::Ok);
        self.create("bob", "rust-fans", Expect::Code(C::ALREADY_EXISTS));
        self.create("carol", "bob", Expect::Code(C::ALREADY_EXISTS));
        self.create("carol", "no spaces", Expect::Code(C::INVALID_ARGUMENT));
        self.create(none, "rust-fans-2", Expect::Code(C::UNAUTHENTICATED));
        self.connect("rust-fans", Expect::Code(C::ALREADY_EXISTS));
        self.join("bob", "rust-fans", Expect::Ok);
        self.join("bob", "rust-fans", Expect::Code(C::ALREADY_EXISTS));
        self.join("carol", "no-such-group", Expect::Code(C::NOT_FOUND));
        self.join("carol", "", Expect::Code(C::INVALID_ARGUMENT));
        self.list("carol", Expect::Ok);

        self.section("direct messages");
        self.send(
            "alice",
            "bob",
            "hi bob, this is alice",
            Expect::Ok,
            &["bob"],
        );
        self.send("bob", "alice", "hello alice!", Expect::Ok, &["alice"]);
        self.send("carol", "carol", "a note to myself", Expect::Ok, &["carol"]);
        self.send("alice", "ghost", "anyone?", Expect::Code(C::NOT_FOUND), &[]);
        self.send(
            "alice",
            "bad name",
            "hi",
            Expect::Code(C::INVALID_ARGUMENT),
            &[],
        );
        self.send("alice", "bob", "", Expect::Code(C::INVALID_ARGUMENT), &[]);
        self.send(
            "alice",
            "bob",
            " \t ",
            Expect::Code(C::INVALID_ARGUMENT),
            &[],
        );
        let long = "x".repeat(4097);
        self.send(
            "alice",
            "bob",
            &long,
            Expect::Code(C::INVALID_ARGUMENT),
            &[],
        );
        let huge = "x".repeat(70 * 1024);
        self.send(
            "alice",
            "bob",
            &huge,
            Expect::Code(C::RESOURCE_EXHAUSTED),
            &[],
        );
        self.send(
            none,
            "bob",
            "who am I?",
            Expect::Code(C::UNAUTHENTICATED),
            &[],
        );

        self.section("group messages reach every member, the sender included");
        self.send(
            "bob",
            "rust-fans",
            "welcome to rust-fans",
            Expect::Ok,
            &["alice", "bob"],
        );
        self.send(
            "alice",
            "rust-fans",
            "thanks bob",
            Expect::Ok,
            &["alice", "bob"],
        );
        self.send(
            "carol",
            "rust-fans",
            "can I?",
            Expect::Code(C::PERMISSION_DENIED),
            &[],
        );

        self.section("leaving groups; the last member out deletes the group");
        self.leave("carol", "rust-fans", Expect::Code(C::FAILED_PRECONDITION));
        self.leave("carol", "no-such-group", Expect::Code(C::NOT_FOUND));
        self.leave("carol", "", Expect::Code(C::INVALID_ARGUMENT));
        self.leave("bob", "rust-fans", Expect::Ok);
        self.send(
            "bob",
            "rust-fans",
            "still here?",
            Expect::Code(C::PERMISSION_DENIED),
            &[],
        );
        self.leave("alice", "rust-fans", Expect::Ok);
        self.list("alice", Expect::Ok);
        self.join("bob", "rust-fans", Expect::Code(C::NOT_FOUND));

        self.section("a client that stops reading is dropped when its queue fills");
        self.stall("dave", "alice");

        self.section("disconnecting leaves every group and frees the name");
        self.create("carol", "book-club", Expect::Ok);
        self.join("alice", "book-club", Expect::Ok);
        self.disconnect("carol");
        self.list("alice", Expect::Ok);
        self.send(
            "alice",
            "carol",
            "are you there?",
            Expect::Code(C::NOT_FOUND),
            &[],
        );
        self.connect("carol", Expect::Ok);
        self.disconnect("alice");
        self.join("carol", "book-club", Expect::Code(C::NOT_FOUND));
        self.list("carol", Expect::Ok);

        self.section("group history: who joins reads what was said before");
        self.create("bob", "history-club", Expect::Ok);
        let before = ["first, before carol joined", "second, before carol joined"];
        for text in before {
            self.send("bob", "history-club", text, Expect::Ok, &["bob"]);
        }
        let position = self.join_at("carol", "history-club");
        let recent = History::before(position.saturating_add(1));
        self.history("carol", "history-club", recent, Expect::Ok, &before);
        let live = "third, now that carol is in";
        self.send("bob", "history-club", live, Expect::Ok, &["bob", "carol"]);
        let catch_up = History::after(position);
        self.history("carol", "history-club", catch_up, Expect::Ok, &[live]);
        self.history(
            "carol",
            "no-such-group",
            recent,
            Expect::Code(C::NOT_FOUND),
            &[],
        );

        self.section("resume: a session whose stream ended gets what it missed");
        self.resume_replays("erin", "bob");

        self.section("resume: more missed than the server keeps is a GAP, and nothing is replayed");
        self.resume_gap("frank", "bob");

        self.presence();
    }

    /// Membership events, ListGroupMembers and SendTyping. grace, heidi and
    /// ivan ask for both event kinds; bob, in the group too, asks for none
    /// and gets none; carol is in no group.
    fn presence(&mut self) {
        use MembershipChangeKind as K;
        use RpcStatusCode as C;
        let group = "presence";

        self.section("membership events: JOINED to every member that asked, the joiner included");
        for user in ["grace", "heidi", "ivan"] {
            self.connect_with_events(user);
        }
        self.create("grace", group, Expect::Ok);
        let joined = K::MEMBERSHIP_CHANGE_KIND_JOINED;
        self.expect_membership(&["grace"], group, "grace", joined, 1, 0);
        self.join("heidi", group, Expect::Ok);
        self.expect_membership(&["grace", "heidi"], group, "heidi", joined, 2, 0);
        self.join("bob", group, Expect::Ok);
        self.expect_membership(&["grace", "heidi"], group, "bob", joined, 3, 0);
        self.expect_quiet(&["bob"]);
        let said = "hello, whoever is here";
        let members = ["bob", "grace", "heidi"];
        let position = self.send("heidi", group, said, Expect::Ok, &members);
        let position = position.unwrap_or(0);
        self.join("ivan", group, Expect::Ok);
        let told = ["grace", "heidi", "ivan"];
        self.expect_membership(&told, group, "ivan", joined, 4, position);

        self.section("ListGroupMembers: any user lists any group, a page at a time, sorted");
        let everyone = ["bob", "grace", "heidi", "ivan"];
        self.members_paged("carol", group, 2, &everyone);
        self.list_members("carol", "no-such-group", 0, "", Expect::Code(C::NOT_FOUND));
        let bad = Expect::Code(C::INVALID_ARGUMENT);
        self.list_members("carol", group, 1001, "", bad);
        self.list_members("carol", group, 2, "not a token!", bad);

        self.section("SendTyping: to a user, to a group's other members, one per 2 s");
        self.send_typing("grace", "heidi", Expect::Ok);
        self.expect_typing(&["heidi"], "grace", "grace", false);
        self.send_typing("grace", "heidi", Expect::Ok);
        println!(
            "[demo] {:<14} (within 2 s of the last: answered OK, not forwarded)",
            "grace"
        );
        self.expect_quiet(&["heidi", "grace"]);
        self.send_typing("heidi", group, Expect::Ok);
        self.expect_typing(&["grace", "ivan"], group, "heidi", true);
        self.expect_quiet(&["heidi", "bob", "grace", "ivan"]);
        self.send_typing("carol", group, Expect::Code(C::PERMISSION_DENIED));
        self.send_typing("carol", "ghost", Expect::Code(C::NOT_FOUND));
        self.send_typing("carol", "not valid!", bad);

        self.section("LEFT and DISCONNECTED go to the members that remain");
        self.leave("ivan", group, Expect::Ok);
        let left = K::MEMBERSHIP_CHANGE_KIND_LEFT;
        self.expect_membership(&["grace", "heidi"], group, "ivan", left, 3, position);
        self.disconnect("heidi");
        let gone = K::MEMBERSHIP_CHANGE_KIND_DISCONNECTED;
        self.expect_membership(&["grace"], group, "heidi", gone, 2, position);
        self.leave("bob", group, Expect::Ok);
        self.expect_membership(&["grace"], group, "bob", left, 1, position);
        self.leave("grace", group, Expect::Ok);
        self.expect_quiet(&["grace", "ivan"]);
    }

    /// Connects `user` asking for membership and typing events.
    fn connect_with_events(&mut self, user: &'static str) {
        let result = self.api.open_inbox_with(user, &EVENTS, WAIT);
        let shown = result
            .as_ref()
            .map(|_| "connected".to_owned())
            .map_err(Clone::clone);
        let call = format!("Connect(username={user:?}, events=[MEMBERSHIP, TYPING])");
        if self.record(user, call, &shown, Expect::Ok) {
            if let Ok(inbox) = result {
                self.inboxes.insert(user, inbox);
            }
        }
    }

    /// Each of `receivers` gets, next, the membership change `user` `kind`
    /// in `group` with `members` members after it and the group's
    /// `position`.
    fn expect_membership(
        &mut self,
        receivers: &[&str],
        group: &str,
        user: &str,
        kind: MembershipChangeKind,
        members: u32,
        position: u64,
    ) {
        for receiver in receivers {
            let Some(inbox) = self.inboxes.get(receiver) else {
                continue;
            };
            let failure = match inbox.next_event(WAIT) {
                Some(InboxEvent::Membership(change)) => {
                    println!(
                        "[demo] {receiver:<14} event    {}",
                        describe_membership(&change)
                    );
                    let expected = change.group == group
                        && change.user == user
                        && change.kind.enum_value() == Ok(kind)
                        && change.member_count == members
                        && change.position == position
                        && change.at.is_some();
                    (!expected).then(|| describe_membership(&change))
                }
                Some(other) => Some(format!("{other:?}")),
                None => Some(format!("nothing within {WAIT:?}")),
            };
            if let Some(got) = failure {
                let kind = membership_kind_name(Ok(kind));
                let wanted =
                    format!("#{group}: {user} {kind} ({members} members, position {position})");
                println!("[demo] {receiver:<14} MISMATCH: got {got}, expected {wanted}");
                self.failures
                    .push(format!("{receiver} got {got}, expected {wanted}"));
            }
        }
    }

    /// Each of `receivers` gets, next, `user`'s typing notice for
    /// `conversation` (a group, or for a direct one the typing user).
    fn expect_typing(&mut self, receivers: &[&str], conversation: &str, user: &str, group: bool) {
        let kind = if group {
            ChannelType::CHANNEL_TYPE_GROUP
        } else {
            ChannelType::CHANNEL_TYPE_USER
        };
        for receiver in receivers {
            let Some(inbox) = self.inboxes.get(receiver) else {
                continue;
            };
            let failure = match inbox.next_event(WAIT) {
                Some(InboxEvent::Typing(typing)) => {
                    println!(
                        "[demo] {receiver:<14} event    {}",
                        describe_typing(&typing)
                    );
                    let expected = typing.conversation == conversation
                        && typing.user == user
                        && typing.conversation_type.enum_value() == Ok(kind);
                    (!expected).then(|| format!("{typing:?}"))
                }
                Some(other) => Some(format!("{other:?}")),
                None => Some(format!("nothing within {WAIT:?}")),
            };
            if let Some(got) = failure {
                println!("[demo] {receiver:<14} MISMATCH: got {got}, expected {user} typing");
                self.failures.push(format!(
                    "{receiver} got {got}, expected {user}'s typing notice in {conversation}"
                ));
            }
        }
    }

    /// Nothing more arrives for any of `users` (watched for [`QUIET`] in
    /// all).
    fn expect_quiet(&mut self, users: &[&str]) {
        let mut wait = QUIET;
        for user in users {
            let Some(inbox) = self.inboxes.get(user) else {
                continue;
            };
            match inbox.next_event(wait) {
                None => println!("[demo] {user:<14} nothing more arrives"),
                Some(event) => {
                    println!("[demo] {user:<14} MISMATCH: unexpected event {event:?}");
                    self.failures
                        .push(format!("{user} got an unexpected event: {event:?}"));
                }
            }
            wait = Duration::ZERO;
        }
    }

    /// ListGroupMembers, one page; returns the page when the outcome was
    /// the expected one and OK.
    fn list_members(
        &mut self,
        user: &str,
        group: &str,
        limit: u32,
        token: &str,
        expect: Expect,
    ) -> Option<chat_proto::chat::ListGroupMembersResponse> {
        let mut request = ListGroupMembersRequest::new();
        request.group = group.to_owned();
        request.limit = limit;
        request.page_token = token.to_owned();
        let result = self
            .api
            .client
            .list_group_members_opt(&request, self.api.call_as(user))
            .map_err(status_of);
        let shown = result
            .as_ref()
            .map(|page| {
                format!(
                    "members=[{}], next_page_token={:?}, member_count={}",
                    page.members.join(", "),
                    page.next_page_token,
                    page.member_count
                )
            })
            .map_err(Clone::clone);
        let call =
            format!("ListGroupMembers(group={group:?}, limit={limit}, page_token={token:?})");
        if self.record(user, call, &shown, expect) {
            result.ok()
        } else {
            None
        }
    }

    /// Reads every page of `group`'s members, `limit` at a time; checks
    /// that together they are exactly `members` and the count agrees.
    fn members_paged(&mut self, user: &str, group: &str, limit: u32, members: &[&str]) {
        let mut listed = Vec::new();
        let mut token = String::new();
        let mut count = 0;
        // One page more than needed at most: a token that never ends is a
        // failure, not a hang.
        for _ in 0..=members.len() {
            let Some(page) = self.list_members(user, group, limit, &token, Expect::Ok) else {
                return;
            };
            listed.extend(page.members);
            count = page.member_count;
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        if listed != members || count as usize != members.len() || !token.is_empty() {
            self.failures.push(format!(
                "{group}'s members read {limit} at a time: {listed:?} (count {count}), \
                 expected {members:?}"
            ));
        }
    }

    fn send_typing(&mut self, user: &str, to: &str, expect: Expect) {
        let mut request = SendTypingRequest::new();
        request.recipient = to.to_owned();
        let result = self
            .api
            .client
            .send_typing_opt(&request, self.api.call_as(user))
            .map(|_| String::new())
            .map_err(status_of);
        self.record(
            user,
            format!("SendTyping(recipient={to:?})"),
            &result,
            expect,
        );
    }

    fn section(&self, title: &str) {
        println!("[demo] --- {title} ---");
    }

    /// Logs one call and checks its outcome; `result` holds what to show of
    /// a successful reply. Returns whether the outcome was the expected one.
    fn record(
        &mut self,
        who: &str,
        call: String,
        result: &Result<String, RpcStatus>,
        expect: Expect,
    ) -> bool {
        let outcome = match result {
            Ok(shown) if shown.is_empty() => "OK".to_owned(),
            Ok(shown) => format!("OK {shown}"),
            Err(status) => format!("{} {:?}", code_name(status.code()), status.message()),
        };
        let matches = match (expect, result) {
            (Expect::Ok, Ok(_)) => true,
            (Expect::Code(code), Err(status)) => status.code() == code,
            _ => false,
        };
        let expected = match expect {
            Expect::Ok => "OK".to_owned(),
            Expect::Code(code) => code_name(code),
        };
        let who = if who.is_empty() { "(none)" } else { who };
        if matches {
            println!("[demo] {who:<14} {call} -> {outcome}");
        } else {
            println!("[demo] {who:<14} {call} -> {outcome}   MISMATCH: expected {expected}");
            self.failures
                .push(format!("{who} {call}: got {outcome}, expected {expected}"));
        }
        matches
    }

    fn connect(&mut self, user: &'static str, expect: Expect) {
        let result = self.api.open_inbox(user, WAIT);
        let shown = result
            .as_ref()
            .map(|_| "connected".to_owned())
            .map_err(Clone::clone);
        if self.record(user, format!("Connect(username={user:?})"), &shown, expect) {
            if let Ok(inbox) = result {
                self.inboxes.insert(user, inbox);
            }
        }
    }

    fn disconnect(&mut self, user: &'static str) {
        if let Some(inbox) = self.inboxes.remove(user) {
            inbox.close();
            println!("[demo] {user:<14} closed its Connect stream");
        }
        self.wait_gone(user);
    }

    /// The server removes a user as soon as it sees its stream's cancel;
    /// waits for that (bounded) so the next steps see a settled state.
    fn wait_gone(&mut self, user: &str) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let still_there = self.inboxes.keys().next().is_some_and(|observer| {
                self.api
                    .client
                    .list_channels_opt(&ListChannelsRequest::new(), self.api.call_as(observer))
                    .map(|reply| reply.channels.iter().any(|c| c.name == user))
                    .unwrap_or(false)
            });
            if !still_there {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.failures
            .push(format!("{user} still listed {WAIT:?} after disconnecting"));
    }

    /// `user` connects and stops reading; `sender` sends it 4000-byte texts
    /// until its queue is full and the send fails with RESOURCE_EXHAUSTED;
    /// the stream ends with RESOURCE_EXHAUSTED and `user` is gone.
    fn stall(&mut self, user: &'static str, sender: &'static str) {
        let call = format!("Connect(username={user:?})");
        let stream = match open_unread(&self.api, user) {
            Ok(stream) => {
                let shown = Ok("connected, then reads nothing more".to_owned());
                self.record(user, call, &shown, Expect::Ok);
                stream
            }
            Err(status) => {
                self.record(user, call, &Err(status), Expect::Ok);
                return;
            }
        };
        self.create(user, "daves-den", Expect::Ok);
        let mut request = SendMessageRequest::new();
        request.recipient = user.to_owned();
        request.text = "z".repeat(4000);
        let mut accepted = 0;
        let mut last = Ok(format!("{MAX_STALL_SENDS} sends, all OK"));
        while accepted < MAX_STALL_SENDS {
            match self
                .api
                .client
                .send_message_opt(&request, self.api.call_as(sender))
            {
                Ok(_) => accepted += 1,
                Err(error) => {
                    last = Err(status_of(error));
                    break;
                }
            }
        }
        println!("[demo] {sender:<14} sent {user} {accepted} texts of 4000 bytes, each OK, then:");
        let call = format!("SendMessage(recipient={user:?}, text=<4000 bytes>)");
        self.record(
            sender,
            call,
            &last,
            Expect::Code(RpcStatusCode::RESOURCE_EXHAUSTED),
        );
        let ended = match final_status(stream, WAIT) {
            Some(status) if status.code() == RpcStatusCode::OK => Ok("ended with OK".to_owned()),
            Some(status) => Err(status),
            None => Err(RpcStatus::with_message(
                RpcStatusCode::DEADLINE_EXCEEDED,
                format!("the stream did not end within {WAIT:?}"),
            )),
        };
        let call = "Connect stream read to its end".to_owned();
        self.record(
            user,
            call,
            &ended,
            Expect::Code(RpcStatusCode::RESOURCE_EXHAUSTED),
        );
        self.list(sender, Expect::Ok);
    }

    /// `user` opens a session and reads nothing after `connected`;
    /// `sender` sends it two messages; its stream ends before it read
    /// them. A direct message while it is away is refused. It resumes with
    /// its token and after_id 0 (it received nothing): RESUMED, and both
    /// follow in order. The token is used up: a second resume with it is
    /// UNKNOWN.
    fn resume_replays(&mut self, user: &'static str, sender: &str) {
        let Some((stream, connected)) = self.open_unread(user) else {
            return;
        };
        let missed = ["one for you", "two for you"];
        for text in missed {
            self.send(sender, user, text, Expect::Ok, &[]);
        }
        drop(stream);
        println!("[demo] {user:<14} its stream ends before it read them");
        self.wait_gone(user);
        self.send(
            sender,
            user,
            "back yet?",
            Expect::Code(RpcStatusCode::NOT_FOUND),
            &[],
        );
        let token = connected.resume_token;
        let resumed = ResumeStatus::RESUME_STATUS_RESUMED;
        let Some(inbox) = self.resume(user, &token, 0, resumed) else {
            return;
        };
        self.expect_messages(user, &inbox, &missed);
        inbox.close();
        println!("[demo] {user:<14} closed its Connect stream");
        self.wait_gone(user);
        let unknown = ResumeStatus::RESUME_STATUS_UNKNOWN;
        if let Some(inbox) = self.resume(user, &token, 0, unknown) {
            self.expect_messages(user, &inbox, &[]);
            self.inboxes.insert(user, inbox);
        }
    }

    /// `user` opens a session and reads nothing; `sender` sends it more
    /// messages than the server keeps for a resume; its stream ends. The
    /// resume answers GAP and replays nothing: the client knows it lost
    /// some.
    fn resume_gap(&mut self, user: &'static str, sender: &str) {
        let Some((stream, connected)) = self.open_unread(user) else {
            return;
        };
        let mut request = SendMessageRequest::new();
        request.recipient = user.to_owned();
        let mut accepted = 0;
        let mut last = Ok(format!("{GAP_SENDS} sends, all OK"));
        for n in 1..=GAP_SENDS {
            request.text = format!("message {n} of {GAP_SENDS}");
            match self
                .api
                .client
                .send_message_opt(&request, self.api.call_as(sender))
            {
                Ok(_) => accepted += 1,
                Err(error) => {
                    last = Err(status_of(error));
                    break;
                }
            }
        }
        let call = format!("SendMessage(recipient={user:?}) x {GAP_SENDS}");
        self.record(sender, call, &last, Expect::Ok);
        drop(stream);
        println!("[demo] {user:<14} its stream ends after {accepted} messages it never read");
        self.wait_gone(user);
        let gap = ResumeStatus::RESUME_STATUS_GAP;
        if let Some(inbox) = self.resume(user, &connected.resume_token, 0, gap) {
            self.expect_messages(user, &inbox, &[]);
            self.inboxes.insert(user, inbox);
        }
    }

    /// Opens `user`'s stream and reads `connected` only.
    fn open_unread(
        &mut self,
        user: &str,
    ) -> Option<(
        grpcio::ClientSStreamReceiver<chat_proto::chat::ConnectResponse>,
        Connected,
    )> {
        let call = format!("Connect(username={user:?})");
        match open_unread_session(&self.api, user, None) {
            Ok((stream, connected)) => {
                let shown = Ok(format!(
                    "connected, resume_token=<{} characters>, then reads nothing more",
                    connected.resume_token.len()
                ));
                self.record(user, call, &shown, Expect::Ok);
                Some((stream, connected))
            }
            Err(status) => {
                self.record(user, call, &Err(status), Expect::Ok);
                None
            }
        }
    }

    /// Connects as `user` resuming with `token` after `after_id`; checks
    /// that the resume status is `expected`.
    fn resume(
        &mut self,
        user: &str,
        token: &str,
        after_id: u64,
        expected: ResumeStatus,
    ) -> Option<Inbox> {
        let mut resume = ResumeRequest::new();
        resume.token = token.to_owned();
        resume.after_id = after_id;
        let call = format!(
            "Connect(username={user:?}, resume={{token=<the old session's>, after_id={after_id}}})"
        );
        let result = self.api.open_session(user, Some(resume), WAIT);
        let shown = result
            .as_ref()
            .map(|(_, connected)| {
                format!(
                    "connected, resume_status={}",
                    resume_status_name(connected.resume_status.enum_value())
                )
            })
            .map_err(Clone::clone);
        if !self.record(user, call, &shown, Expect::Ok) {
            return None;
        }
        let (inbox, connected) = result.ok()?;
        let got = connected.resume_status.enum_value();
        if got != Ok(expected) {
            let (got, expected) = (resume_status_name(got), resume_status_name(Ok(expected)));
            println!("[demo] {user:<14} MISMATCH: resume_status={got}, expected {expected}");
            self.failures
                .push(format!("{user} resumed with {got}, expected {expected}"));
        }
        Some(inbox)
    }

    /// Reads `inbox` until `texts` have arrived, in order, and then checks
    /// that nothing more does.
    fn expect_messages(&mut self, user: &str, inbox: &Inbox, texts: &[&str]) {
        let mut received = Vec::new();
        let deadline = Instant::now() + WAIT;
        while received.len() < texts.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match inbox.next_event(left) {
                Some(InboxEvent::Messages(messages)) => {
                    for message in messages {
                        println!("[demo] {user:<14} received {}", describe_message(&message));
                        received.push(message.text);
                    }
                }
                Some(other) => {
                    println!("[demo] {user:<14} unexpected event {other:?}");
                    break;
                }
                None => break,
            }
        }
        match inbox.next_event(QUIET) {
            None => println!("[demo] {user:<14} nothing more arrives"),
            Some(event) => self
                .failures
                .push(format!("{user} got an unexpected event: {event:?}")),
        }
        if received != texts {
            self.failures
                .push(format!("{user} received {received:?}, expected {texts:?}"));
        }
    }

    /// Joins like [`Demo::join`] and shows the position; 0 if it failed.
    fn join_at(&mut self, user: &str, name: &str) -> u64 {
        let mut request = JoinGroupChatRequest::new();
        request.name = name.to_owned();
        let result = self
            .api
            .client
            .join_group_chat_opt(&request, self.api.call_as(user))
            .map_err(status_of);
        let shown = result
            .as_ref()
            .map(|reply| format!("position={}", reply.position))
            .map_err(Clone::clone);
        let call = format!("JoinGroupChat(name={name:?})");
        self.record(user, call, &shown, Expect::Ok);
        result.map_or(0, |reply| reply.position)
    }

    /// GetHistory; when it succeeds, checks that the page holds exactly
    /// `texts`, oldest first.
    fn history(&mut self, user: &str, group: &str, read: History, expect: Expect, texts: &[&str]) {
        let mut request = GetHistoryRequest::new();
        request.group = group.to_owned();
        request.after_id = read.after_id;
        request.before_id = read.before_id;
        let result = self
            .api
            .client
            .get_history_opt(&request, self.api.call_as(user))
            .map_err(status_of);
        let shown = result
            .as_ref()
            .map(|reply| {
                let count = reply.messages.len();
                format!(
                    "{count} message{}, more={}, truncated={}",
                    if count == 1 { "" } else { "s" },
                    reply.more,
                    reply.truncated
                )
            })
            .map_err(Clone::clone);
        let range = if read.after_id > 0 {
            format!("after_id={}", read.after_id)
        } else {
            format!("before_id={}", read.before_id)
        };
        let call = format!("GetHistory(group={group:?}, {range})");
        if !self.record(user, call, &shown, expect) {
            return;
        }
        let Ok(reply) = result else { return };
        for message in &reply.messages {
            println!("[demo] {user:<14} history  {}", describe_message(message));
        }
        let got: Vec<&str> = reply.messages.iter().map(|m| m.text.as_str()).collect();
        if got != texts {
            self.failures.push(format!(
                "{user} read {got:?} in {group}'s history, expected {texts:?}"
            ));
        }
    }

    fn create(&mut self, user: &str, name: &str, expect: Expect) {
        let mut request = CreateGroupChatRequest::new();
        request.name = name.to_owned();
        let result = self
            .api
            .client
            .create_group_chat_opt(&request, self.api.call_as(user))
            .map(|_| String::new())
            .map_err(status_of);
        self.record(
            user,
            format!("CreateGroupChat(name={name:?})"),
            &result,
            expect,
        );
    }

    fn join(&mut self, user: &str, name: &str, expect: Expect) {
        let mut request = JoinGroupChatRequest::new();
        request.name = name.to_owned();
        let result = self
            .api
            .client
            .join_group_chat_opt(&request, self.api.call_as(user))
            .map(|_| String::new())
            .map_err(status_of);
        self.record(
            user,
            format!("JoinGroupChat(name={name:?})"),
            &result,
            expect,
        );
    }

    fn leave(&mut self, user: &str, name: &str, expect: Expect) {
        let mut request = LeaveGroupChatRequest::new();
        request.name = name.to_owned();
        let result = self
            .api
            .client
            .leave_group_chat_opt(&request, self.api.call_as(user))
            .map(|_| String::new())
            .map_err(status_of);
        self.record(
            user,
            format!("LeaveGroupChat(name={name:?})"),
            &result,
            expect,
        );
    }

    fn list(&mut self, user: &str, expect: Expect) {
        let result = self
            .api
            .client
            .list_channels_opt(&ListChannelsRequest::new(), self.api.call_as(user))
            .map_err(status_of)
            .map(|reply| {
                reply
                    .channels
                    .iter()
                    .map(describe_channel)
                    .collect::<Vec<_>>()
                    .join(", ")
            });
        self.record(user, "ListChannels()".to_owned(), &result, expect);
    }

    /// Sends and, when it succeeds, checks that exactly `receivers` get the
    /// message with the id and timestamp the send returned; returns the id.
    fn send(
        &mut self,
        user: &str,
        to: &str,
        text: &str,
        expect: Expect,
        receivers: &[&str],
    ) -> Option<u64> {
        let mut request = SendMessageRequest::new();
        request.recipient = to.to_owned();
        request.text = text.to_owned();
        let result = self
            .api
            .client
            .send_message_opt(&request, self.api.call_as(user))
            .map_err(status_of);
        let shown_text = if text.len() > 40 {
            format!("<{} bytes>", text.len())
        } else {
            format!("{text:?}")
        };
        let shown = result
            .as_ref()
            .map(|reply| format!("message_id={}", reply.message_id))
            .map_err(Clone::clone);
        let call = format!("SendMessage(recipient={to:?}, text={shown_text})");
        if !self.record(user, call, &shown, expect) {
            return None;
        }
        let reply = result.ok()?;
        for receiver in receivers {
            match self.receive(receiver) {
                Some(message)
                    if message.id == reply.message_id
                        && message.sent_at == reply.sent_at
                        && message.sender == user.trim_start_matches("Bearer ")
                        && message.text == text => {}
                Some(message) => self.failures.push(format!(
                    "{receiver} got {} instead of message {}",
                    describe_message(&message),
                    reply.message_id
                )),
                None => self.failures.push(format!(
                    "{receiver} did not receive message {}",
                    reply.message_id
                )),
            }
        }
        // Nobody else receives it.
        for (name, inbox) in &self.inboxes {
            if !receivers.contains(name) {
                if let Some(event) = inbox.next_event(Duration::ZERO) {
                    self.failures
                        .push(format!("{name} got an unexpected event: {event:?}"));
                }
            }
        }
        Some(reply.message_id)
    }

    fn receive(&mut self, user: &str) -> Option<Message> {
        let inbox = self.inboxes.get(user)?;
        match inbox.next_event(WAIT)? {
            InboxEvent::Messages(mut messages) if messages.len() == 1 => {
                let message = messages.pop()?;
                println!("[demo] {user:<14} received {}", describe_message(&message));
                Some(message)
            }
            other => {
                println!("[demo] {user:<14} unexpected event {other:?}");
                None
            }
        }
    }
}

/// Which part of a group's history to read.
#[derive(Clone, Copy)]
struct History {
    after_id: u64,
    before_id: u64,
}

impl History {
    /// Backward: the newest messages with an id below `before_id`.
    fn before(before_id: u64) -> History {
        History {
            after_id: 0,
            before_id,
        }
    }

    /// Forward: the oldest messages with an id above `after_id`.
    fn after(after_id: u64) -> History {
        History {
            after_id,
            before_id: 0,
        }
    }
}

/// A resume status's name, as the proto spells it without its prefix.
fn resume_status_name(status: Result<ResumeStatus, i32>) -> String {
    match status {
        Ok(ResumeStatus::RESUME_STATUS_UNSPECIFIED) => "UNSPECIFIED".to_owned(),
        Ok(ResumeStatus::RESUME_STATUS_RESUMED) => "RESUMED".to_owned(),
        Ok(ResumeStatus::RESUME_STATUS_GAP) => "GAP".to_owned(),
        Ok(ResumeStatus::RESUME_STATUS_UNKNOWN) => "UNKNOWN".to_owned(),
        Err(value) => format!("unknown value {value}"),
    }
}
