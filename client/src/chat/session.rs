//! The chat's side of the calls: makes the calls that `app` asks for (as
//! [`Effect`]s) on the server and turns their replies, and the messages of
//! the inbox stream, into the app's plain types. With `link`, the only part
//! of the chat that knows the generated protocol types.

use std::time::{Duration, UNIX_EPOCH};

use chat_proto::chat::{
    ChannelType, CreateGroupChatRequest, GetHistoryRequest, JoinGroupChatRequest,
    LeaveGroupChatRequest, ListChannelsRequest, Message, SendMessageRequest,
};
use chrono::{DateTime, Local, NaiveTime};
use grpcio::{CallOption, RpcStatus, RpcStatusCode};
use protobuf::well_known_types::timestamp::Timestamp;

use super::app::{ChannelInfo, Effect, HistoryRead, Incoming, Outcome};
use crate::api::{status_of, Api};
use crate::format::code_name;

/// How long one call may take before it is given up.
const CALL_DEADLINE: Duration = Duration::from_secs(5);
/// Messages one page of history asks for: `/join` shows a screenful,
/// a catch-up reads as much as the server gives at once.
const RECENT_LIMIT: u32 = 50;
const CATCH_UP_LIMIT: u32 = 500;

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

    /// The connection the calls go out on.
    pub fn api(&self) -> &Api {
        &self.api
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
            Effect::Join(name) => self
                .join(&name)
                .map(|position| Outcome::Joined {
                    name: name.clone(),
                    position,
                })
                .map_err(failed(format!("join {name}"))),
            Effect::Rejoin(name) => Ok(self.rejoin(name)),
            Effect::History { group, read } => {
                let mut request = GetHistoryRequest::new();
                request.group = group.clone();
                match read {
                    HistoryRead::Recent { before_id } => {
                        request.before_id = before_id;
                        request.limit = RECENT_LIMIT;
                    }
                    HistoryRead::After { after_id, .. } => {
                        request.after_id = after_id;
                        request.limit = CATCH_UP_LIMIT;
                    }
                }
                client
                    .get_history_opt(&request, opts())
                    .map(|reply| Outcome::History {
                        group: group.clone(),
                        read,
                        messages: reply.messages.into_iter().map(incoming).collect(),
                        more: reply.more,
                        truncated: reply.truncated,
                    })
                    .map_err(failed(format!("read the history of #{group}")))
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

    /// JoinGroupChat; the group's position.
    fn join(&self, name: &str) -> Result<u64, grpcio::Error> {
        let mut request = JoinGroupChatRequest::new();
        request.name = name.to_owned();
        let opts = self.api.call_as(&self.user).timeout(CALL_DEADLINE);
        Ok(self
            .api
            .client
            .join_group_chat_opt(&request, opts)?
            .position)
    }

    /// Joins `name` again after a reconnect. A group that is gone (its
    /// members all left, or the server restarted) is created again, so
    /// the conversation goes on where the others come back to it; if
    /// someone else created it first, it is joined.
    fn rejoin(&self, name: String) -> Outcome {
        let code = |error: &grpcio::Error| match error {
            grpcio::Error::RpcFailure(status) => status.code(),
            _ => RpcStatusCode::UNAVAILABLE,
        };
        let rejoined = |position, recreated| Outcome::Rejoined {
            name: name.clone(),
            position,
            recreated,
        };
        let result = match self.join(&name) {
            Ok(position) => Ok(rejoined(Some(position), false)),
            // Still a member: nothing was dropped.
            Err(error) if code(&error) == RpcStatusCode::ALREADY_EXISTS => {
                Ok(rejoined(None, false))
            }
            Err(error) if code(&error) == RpcStatusCode::NOT_FOUND => {
                let mut request = CreateGroupChatRequest::new();
                request.name = name.clone();
                let opts = self.api.call_as(&self.user).timeout(CALL_DEADLINE);
                match self.api.client.create_group_chat_opt(&request, opts) {
                    Ok(_) => Ok(rejoined(Some(0), true)),
                    Err(error) if code(&error) == RpcStatusCode::ALREADY_EXISTS => self
                        .join(&name)
                        .map(|position| rejoined(Some(position), false)),
                    Err(error) => Err(error),
                }
            }
            Err(error) => Err(error),
        };
        result.unwrap_or_else(|error| Outcome::NotRejoined {
            name: name.clone(),
            error: describe_status(&status_of(error)),
        })
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
