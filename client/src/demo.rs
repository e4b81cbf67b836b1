//! `chat-client demo`: a scripted session of three users that exercises every
//! RPC and every error case of the contract against a running server. Each
//! call is logged with its input, outcome and expected outcome, and each
//! received message as it arrives. Any outcome that differs from the expected
//! one is marked `MISMATCH`, and the demo exits non-zero: it is also a check.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chat_proto::chat::{
    CreateGroupChatRequest, JoinGroupChatRequest, LeaveGroupChatRequest, ListChannelsRequest,
    Message, SendMessageRequest,
};
use grpcio::{RpcStatus, RpcStatusCode};

use crate::api::{final_status, open_unread, status_of, Api, Inbox, InboxEvent};
use crate::format::{code_name, describe_channel, describe_message};

const WAIT: Duration = Duration::from_secs(5);
/// Most sends the slow-consumer step makes before giving up.
const MAX_STALL_SENDS: usize = 50_000;

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
        // The server removes the user as soon as it sees the cancel; wait
        // for that (bounded) so the next steps see a settled state.
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
    /// message with the id and timestamp the send returned.
    fn send(&mut self, user: &str, to: &str, text: &str, expect: Expect, receivers: &[&str]) {
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
            return;
        }
        let Ok(reply) = result else { return };
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
