//! `chat-client chat --user NAME`: an interactive line-based chat. Incoming
//! messages print as they arrive; lines starting with `/` are commands, any
//! other line is sent to the current target chosen with `/to`.

use std::io::{BufRead, Write};
use std::time::Duration;

use chat_proto::chat::{
    CreateGroupChatRequest, JoinGroupChatRequest, LeaveGroupChatRequest, ListChannelsRequest,
    SendMessageRequest,
};
use crossbeam_channel::select;
use grpcio::{RpcStatus, RpcStatusCode};

use crate::api::{status_of, Api, InboxEvent};
use crate::format::{code_name, describe_channel, describe_message};

const HELP: &str = "\
commands:
  /to NAME            send plain lines to user or group NAME
  /msg NAME TEXT      send TEXT to user or group NAME
  /list               list connected users and groups
  /create GROUP       create a group (you join it)
  /join GROUP         join a group
  /leave GROUP        leave a group
  /help               this text
  /quit               disconnect and exit (as does end of input)
any other line is sent to the /to target";

/// Runs the interactive chat; returns an error line when it cannot start or
/// the server ends the session.
pub fn run(api: Api, user: &str) -> Result<(), String> {
    let inbox = api
        .open_inbox(user, Duration::from_secs(10))
        .map_err(|status| match status.code() {
            RpcStatusCode::ALREADY_EXISTS => format!("the name {user:?} is taken"),
            _ => format!("cannot connect as {user:?}: {}", describe_status(&status)),
        })?;
    println!(
        "connected to {} as {user}; /help for commands",
        api.address()
    );

    let (lines_tx, lines) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });

    let mut session = Session {
        api,
        user: user.to_owned(),
        target: None,
    };
    prompt();
    loop {
        select! {
            recv(inbox.events()) -> event => match event {
                Ok(InboxEvent::Messages(messages)) => {
                    for message in &messages {
                        println!("\r{}", describe_message(message));
                    }
                    prompt();
                }
                Ok(InboxEvent::Connected(_)) => {}
                Ok(InboxEvent::Ended(status)) => {
                    return Err(format!("the server ended the session: {}", describe_status(&status)));
                }
                Err(_) => return Err("the connection to the server was lost".to_owned()),
            },
            recv(lines) -> line => match line {
                Ok(line) => {
                    if !session.handle(line.trim()) {
                        break;
                    }
                    prompt();
                }
                Err(_) => break,
            },
        }
    }
    inbox.close();
    println!("bye");
    Ok(())
}

fn prompt() {
    print!("> ");
    let _ = std::io::stdout().flush();
}

fn describe_status(status: &RpcStatus) -> String {
    format!("{} {}", code_name(status.code()), status.message())
}

struct Session {
    api: Api,
    user: String,
    target: Option<String>,
}

impl Session {
    /// Handles one input line; false means quit.
    fn handle(&mut self, line: &str) -> bool {
        if line.is_empty() {
            return true;
        }
        let (command, rest) = match line.strip_prefix('/') {
            Some(command) => {
                let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
                (Some(name), rest.trim())
            }
            None => (None, line),
        };
        let opts = || Api::as_user(&self.user);
        let client = &self.api.client;
        let result: Result<String, grpcio::Error> = match command {
            None => match &self.target {
                Some(target) => self.send(target.clone(), rest.to_owned()),
                None => {
                    println!("no target yet: /to NAME first, or /msg NAME TEXT");
                    return true;
                }
            },
            Some("quit") => return false,
            Some("help") => Ok(HELP.to_owned()),
            Some("to") if !rest.is_empty() => {
                self.target = Some(rest.to_owned());
                Ok(format!("sending to {rest}"))
            }
            Some("msg") => match rest.split_once(' ') {
                Some((to, text)) => self.send(to.to_owned(), text.to_owned()),
                None => Ok("usage: /msg NAME TEXT".to_owned()),
            },
            Some("list") => client
                .list_channels_opt(&ListChannelsRequest::new(), opts())
                .map(|reply| {
                    let lines: Vec<String> = reply
                        .channels
                        .iter()
                        .map(|channel| format!("  {}", describe_channel(channel)))
                        .collect();
                    lines.join("\n")
                }),
            Some("create") if !rest.is_empty() => {
                let mut request = CreateGroupChatRequest::new();
                request.name = rest.to_owned();
                client
                    .create_group_chat_opt(&request, opts())
                    .map(|_| format!("created {rest}"))
            }
            Some("join") if !rest.is_empty() => {
                let mut request = JoinGroupChatRequest::new();
                request.name = rest.to_owned();
                client
                    .join_group_chat_opt(&request, opts())
                    .map(|_| format!("joined {rest}"))
            }
            Some("leave") if !rest.is_empty() => {
                let mut request = LeaveGroupChatRequest::new();
                request.name = rest.to_owned();
                client
                    .leave_group_chat_opt(&request, opts())
                    .map(|_| format!("left {rest}"))
            }
            Some(other) => Ok(format!("unknown or incomplete command /{other}; try /help")),
        };
        match result {
            Ok(text) => println!("{text}"),
            Err(error) => println!("error: {}", describe_status(&status_of(error))),
        }
        true
    }

    fn send(&self, to: String, text: String) -> Result<String, grpcio::Error> {
        let mut request = SendMessageRequest::new();
        request.recipient = to;
        request.text = text;
        self.api
            .client
            .send_message_opt(&request, Api::as_user(&self.user))
            .map(|reply| format!("sent #{}", reply.message_id))
    }
}
