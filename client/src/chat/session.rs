//! The chat's side of the calls: makes the calls that `app` asks for (as
//! [`Effect`]s) on the server and turns their replies, and the messages and
//! events of the inbox stream, into the app's plain types. With `link`, the
//! only part of the chat that knows the generated protocol types.

use std::time::{Duration, UNIX_EPOCH};

use chat_proto::chat::{
    ChannelType, CreateGroupChatRequest, GetHistoryRequest, JoinGroupChatRequest,
    LeaveGroupChatRequest, ListChannelsRequest, ListGroupMembersRequest, MembershipChange,
    MembershipChangeKind, Message, SendMessageRequest, SendTypingRequest, TypingStarted,
};
use chrono::{DateTime, Local, NaiveTime};
use grpcio::{CallOption, RpcStatus, RpcStatusCode};
use protobuf::well_known_types::timestamp::Timestamp;

use super::app::{ChannelInfo, Effect, HistoryRead, Incoming, Outcome};
use super::presence::{Change, Membership, Typing};
use crate::api::{status_of, Api};
use crate::format::code_name;

/// How long one call may take before it is given up.
const CALL_DEADLINE: Duration = Duration::from_secs(5);
/// Messages one page of history asks for: `/join` shows a screenful,
/// a catch-up reads as much as the server gives at once.
const RECENT_LIMIT: u32 = 50;
const CATCH_UP_LIMIT: u32 = 500;
/// Members one page of ListGroupMembers asks for, and the most pages
/// `/members` reads: a group larger than that shows its first names.
const MEMBERS_PAGE: u32 = 500;
const MAX_MEMBER_PAGES: usize = 20;

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
            Effect::Members(group) => self
                .members(&group)
                .map(|(members, count, complete)| Outcome::Members {
                    group: group.clone(),
                    members,
                    count,
                    complete,
                })
                .map_err(failed(format!("list the members of #{group}"))),
            Effect::Typing(to) => {
                self.send_typing(&to);
                Ok(Outcome::Dispatched)
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

    /// Every member of `group`, read a page at a time (at most
    /// [`MAX_MEMBER_PAGES`]); with the count the last page gave and whether
    /// the list is complete.
    fn members(&self, group: &str) -> Result<(Vec<String>, u32, bool), grpcio::Error> {
        all_pages(MAX_MEMBER_PAGES, |token| {
            let mut request = ListGroupMembersRequest::new();
            request.group = group.to_owned();
            request.limit = MEMBERS_PAGE;
            request.page_token = token.to_owned();
            let opts = self.api.call_as(&self.user).timeout(CALL_DEADLINE);
            let reply = self.api.client.list_group_members_opt(&request, opts)?;
            Ok(Page {
                members: reply.members,
                next: reply.next_page_token,
                count: reply.member_count,
            })
        })
    }

    /// SendTyping to `to`, without waiting: the reply is read on the
    /// channel's completion queue and dropped. A notice that does not
    /// arrive (the user went away, the connection dropped) is not worth
    /// telling the person about.
    fn send_typing(&self, to: &str) {
        let mut request = SendTypingRequest::new();
        request.recipient = to.to_owned();
        let opts = self.api.call_as(&self.user).timeout(CALL_DEADLINE);
        if let Ok(reply) = self.api.client.send_typing_async_opt(&request, opts) {
            self.api.client.spawn(async move {
                let _ = reply.await;
            });
        }
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

/// A received message in the app's terms. An operator's message shows its
/// sender marked `[operator]`, so it is never taken for a user's of the
/// same name (and a direct one opens a conversation of its own).
pub fn incoming(message: Message) -> Incoming {
    let sender = if message.from_operator {
        format!("{} [operator]", message.sender)
    } else {
        message.sender
    };
    Incoming {
        id: message.id,
        group: message.recipient_type.enum_value_or_default() == ChannelType::CHANNEL_TYPE_GROUP,
        time: local_time(message.sent_at.as_ref()),
        sender,
        recipient: message.recipient,
        text: message.text,
    }
}

/// One page of a paged list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub members: Vec<String>,
    /// The next page's token; empty on the last page.
    pub next: String,
    /// How many there are in all, as of this page.
    pub count: u32,
}

/// Reads pages with `fetch` (given the page token, empty for the first)
/// until the last one or `max_pages` of them; returns every name, the
/// count the last page read gave, and whether the last page was reached.
///
/// # Errors
/// The first error `fetch` returns.
pub fn all_pages<E>(
    max_pages: usize,
    mut fetch: impl FnMut(&str) -> Result<Page, E>,
) -> Result<(Vec<String>, u32, bool), E> {
    let mut members = Vec::new();
    let mut token = String::new();
    let mut count = 0;
    for _ in 0..max_pages {
        let page = fetch(&token)?;
        members.extend(page.members);
        count = page.count;
        if page.next.is_empty() {
            return Ok((members, count, true));
        }
        token = page.next;
    }
    Ok((members, count, false))
}

/// A membership change in the app's terms; `None` for a kind this client
/// does not know.
pub fn membership(change: MembershipChange) -> Option<Membership> {
    let change_kind = match change.kind.enum_value() {
        Ok(MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_JOINED) => Change::Joined,
        Ok(MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_LEFT) => Change::Left,
        Ok(MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_DISCONNECTED) => Change::Disconnected,
        Ok(MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_REMOVED) => Change::Removed,
        Ok(MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_UNSPECIFIED) | Err(_) => return None,
    };
    Some(Membership {
        group: change.group,
        user: change.user,
        change: change_kind,
        members: change.member_count,
    })
}

/// A typing notice in the app's terms.
pub fn typing(typing: TypingStarted) -> Typing {
    Typing {
        conversation: typing.conversation,
        user: typing.user,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn page(members: &[&str], next: &str, count: u32) -> Page {
        Page {
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            next: next.to_owned(),
            count,
        }
    }

    #[test]
    fn an_operators_message_is_marked_and_a_users_is_not() {
        let mut message = Message::new();
        message.sender = "alice".to_owned();
        message.recipient = "bob".to_owned();
        assert_eq!(incoming(message.clone()).sender, "alice");
        message.from_operator = true;
        assert_eq!(incoming(message).sender, "alice [operator]");
    }

    #[test]
    fn every_page_is_read_with_the_token_of_the_one_before() {
        let mut asked = Vec::new();
        let result: Result<_, ()> = all_pages(10, |token| {
            asked.push(token.to_owned());
            Ok(match token {
                "" => page(&["alice", "bob"], "bob", 5),
                "bob" => page(&["carol", "dave"], "dave", 5),
                _ => page(&["erin"], "", 5),
            })
        });
        assert_eq!(asked, ["", "bob", "dave"]);
        let names = ["alice", "bob", "carol", "dave", "erin"].map(String::from);
        assert_eq!(result, Ok((names.to_vec(), 5, true)));
    }

    #[test]
    fn paging_stops_at_the_page_limit_or_the_first_error() {
        let endless: Result<_, ()> =
            all_pages(3, |token| Ok(page(&["x"], &format!("{token}x"), 900)));
        assert_eq!(endless, Ok((vec!["x".to_owned(); 3], 900, false)));
        let failed = all_pages(3, |token| match token {
            "" => Ok(page(&["a"], "a", 2)),
            _ => Err("NOT_FOUND"),
        });
        assert_eq!(failed, Err("NOT_FOUND"));
    }

    #[test]
    fn membership_kinds_map_and_unknown_ones_are_skipped() {
        let mut change = MembershipChange::new();
        change.group = "general".into();
        change.user = "bob".into();
        change.member_count = 2;
        change.kind = MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_DISCONNECTED.into();
        assert_eq!(
            membership(change.clone()).map(|m| m.line()),
            Some("bob disconnected from #general (2 members)".to_owned())
        );
        change.kind = MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_REMOVED.into();
        assert_eq!(
            membership(change.clone()).map(|m| m.change),
            Some(Change::Removed)
        );
        change.kind = protobuf::EnumOrUnknown::from_i32(99);
        assert_eq!(membership(change), None);
    }
}
