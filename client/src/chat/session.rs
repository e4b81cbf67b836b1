//! The chat's side of the network: makes the calls that `app` asks for (as
//! [`Effect`]s) on the server and turns their replies, and the messages of
//! the inbox stream, into the app's plain types. The only part of the chat
//! that knows the generated protocol types.

use std::time::{Duration, UNIX_EPOCH};

use chat_proto::chat::{
    ChannelType, CreateGroupChatRequest, JoinGroupChatRequest, LeaveGroupChatRequest,
    ListChannelsRequest, Message, SendMessageRequest,
};
use chrono::{DateTime, Local, NaiveTime};
use grpcio::{CallOption, RpcStatus};
use protobuf::well_known_types::timestamp::Timestamp;

use super::app::{App, ChannelInfo, Effect, Incoming, Outcome};
use crate::api::{status_of, Api, InboxEvent};
use crate::format::code_name;

/// How long one call may take before it is given up.
const CALL_DEADLINE: Duration = Duration::from_secs(5);

/// Makes calls as one user.
pub struct Session {
    api: Api,
    user: String,
}

impl Session {
    pub fn new(api: Api, user: &str) -> Session {
        Session {
            api,
            user: user.to_owned(),
        }
    }

    /// Makes the call `effect` stands for and waits for its reply (at most
    /// 5 seconds).
    pub fn run(&self, effect: Effect) -> Outcome {
        let client = &self.api.client;
        let opts = || self.api.call_as(&self.user).timeout(CALL_DEADLINE);
        let failed = |action: String| {
            move |error: grpcio::Error| Outcome::Failed {
                action,
                error: describe_status(&status_of(error)),
            }
        };
        let result = match effect {
            Effect::Send { to, text } => {
                let mut request = SendMessageRequest::new();
                request.recipient = to.clone();
                request.text = text.clone();
                client
                    .send_message_opt(&request, opts())
                    .map(|reply| Outcome::Sent {
                        to: to.clone(),
                        text,
                        id: reply.message_id,
                        time: local_time(reply.sent_at.as_ref()),
                    })
                    .map_err(failed(format!("send to {to}")))
            }
            Effect::Lookup { name, then } => self
                .channels(opts())
                .map(|channels| Outcome::Found {
                    name: name.clone(),
                    then,
                    channels,
                })
                .map_err(failed(format!("look up {name}"))),
            Effect::List => self
                .channels(opts())
                .map(Outcome::Listed)
                .map_err(failed("list channels".to_owned())),
            Effect::Create(name) => {
                let mut request = CreateGroupChatRequest::new();
                request.name = name.clone();
                client
                    .create_group_chat_opt(&request, opts())
                    .map(|_| Outcome::Created(name.clone()))
                    .map_err(failed(format!("create {name}")))
            }
            Effect::Join(name) => {
                let mut request = JoinGroupChatRequest::new();
                request.name = name.clone();
                client
                    .join_group_chat_opt(&request, opts())
                    .map(|_| Outcome::Joined(name.clone()))
                    .map_err(failed(format!("join {name}")))
            }
            Effect::Leave(name) => {
                let mut request = LeaveGroupChatRequest::new();
                request.name = name.clone();
                client
                    .leave_group_chat_opt(&request, opts())
                    .map(|_| Outcome::Left(name.clone()))
                    .map_err(failed(format!("leave {name}")))
            }
        };
        result.unwrap_or_else(|failure| failure)
    }

    fn channels(&self, opts: CallOption) -> Result<Vec<ChannelInfo>, grpcio::Error> {
        let reply = self
            .api
            .client
            .list_channels_opt(&ListChannelsRequest::new(), opts)?;
        Ok(reply
            .channels
            .into_iter()
            .map(|channel| ChannelInfo {
                group: channel.type_.enum_value_or_default() == ChannelType::CHANNEL_TYPE_GROUP,
                name: channel.name,
                members: channel.member_count,
                joined: channel.joined,
            })
            .collect())
    }
}

/// Takes one event of the inbox stream (or the news that its channel
/// closed) into `app`; false once the stream has ended, when the caller
/// should stop waiting on it.
pub fn take_inbox_event(
    app: &mut App,
    event: Result<InboxEvent, crossbeam_channel::RecvError>,
) -> bool {
    match event {
        Ok(InboxEvent::Messages(messages)) => {
            app.incoming(messages.into_iter().map(incoming).collect());
            true
        }
        Ok(InboxEvent::Connected(_)) => true,
        Ok(InboxEvent::Ended(status)) => {
            app.disconnected(format!(
                "the server ended the session: {}",
                describe_status(&status)
            ));
            false
        }
        Err(_) => {
            app.disconnected("the connection to the server was lost".to_owned());
            false
        }
    }
}

/// A received message in the app's terms.
pub fn incoming(message: Message) -> Incoming {
    Incoming {
        id: message.id,
        group: message.recipient_type.enum_value_or_default() == ChannelType::CHANNEL_TYPE_GROUP,
        time: local_time(message.sent_at.as_ref()),
        sender: message.sender,
        recipient: message.recipient,
        text: message.text,
    }
}

/// A status as one line: `NOT_FOUND no such group`.
pub fn describe_status(status: &RpcStatus) -> String {
    format!("{} {}", code_name(status.code()), status.message())
}

/// The local time of day of a server timestamp (now, if it has none).
fn local_time(at: Option<&Timestamp>) -> NaiveTime {
    let when: DateTime<Local> = match at {
        Some(ts) => {
            let since = Duration::from_secs(u64::try_from(ts.seconds).unwrap_or(0))
                + Duration::from_nanos(u64::try_from(ts.nanos).unwrap_or(0));
            DateTime::from(UNIX_EPOCH + since)
        }
        None => Local::now(),
    };
    when.time()
}
