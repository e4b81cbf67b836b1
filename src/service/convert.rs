//! Conversions between the generated protobuf types and the domain's types.
//! The only place that knows both.

use chat_proto::chat::{self as proto, ChannelType};
use protobuf::well_known_types::timestamp::Timestamp;
use protobuf::{EnumOrUnknown, MessageField};

use crate::domain::{
    ChannelInfo, ChannelKind, Connected, Event, EventKinds, HistoryPage, MemberPage,
    MembershipKind, Message, ResumeStatus, Sent,
};

fn channel_type(kind: ChannelKind) -> EnumOrUnknown<ChannelType> {
    EnumOrUnknown::new(match kind {
        ChannelKind::User => ChannelType::CHANNEL_TYPE_USER,
        ChannelKind::Group => ChannelType::CHANNEL_TYPE_GROUP,
    })
}

/// A queued message as it is delivered.
pub fn message_to_proto(message: &Message) -> proto::Message {
    let mut out = proto::Message::new();
    out.id = message.id;
    out.sender = message.sender.to_string();
    out.recipient = message.recipient.to_string();
    out.recipient_type = channel_type(message.recipient_kind);
    out.text = message.text.to_string();
    out.sent_at = MessageField::some(Timestamp::from(message.sent_at));
    out.from_operator = message.from_operator;
    out
}

/// The reply to a successful send.
pub fn sent_to_proto(sent: &Sent) -> proto::SendMessageResponse {
    let mut out = proto::SendMessageResponse::new();
    out.message_id = sent.id;
    out.sent_at = MessageField::some(Timestamp::from(sent.sent_at));
    out
}

/// The reply to ListChannels.
pub fn channels_to_proto(channels: &[ChannelInfo]) -> proto::ListChannelsResponse {
    let mut out = proto::ListChannelsResponse::new();
    out.channels = channels
        .iter()
        .map(|info| {
            let mut channel = proto::Channel::new();
            channel.name = info.name.to_string();
            channel.type_ = channel_type(info.kind);
            channel.member_count = info.member_count;
            channel.joined = info.joined;
            channel
        })
        .collect();
    out
}

/// The `connected` event's body for a new connection of `username`.
pub fn connected_to_proto(username: String, connected: &Connected) -> proto::Connected {
    let mut out = proto::Connected::new();
    out.username = username;
    out.resume_token = connected.resume_token.clone();
    out.epoch = connected.epoch.to_string();
    out.resume_status = EnumOrUnknown::new(match connected.resume_status {
        ResumeStatus::NotAsked => proto::ResumeStatus::RESUME_STATUS_UNSPECIFIED,
        ResumeStatus::Resumed => proto::ResumeStatus::RESUME_STATUS_RESUMED,
        ResumeStatus::Gap => proto::ResumeStatus::RESUME_STATUS_GAP,
        ResumeStatus::Unknown => proto::ResumeStatus::RESUME_STATUS_UNKNOWN,
    });
    out
}

/// The reply to GetHistory.
pub fn history_to_proto(page: &HistoryPage) -> proto::GetHistoryResponse {
    let mut out = proto::GetHistoryResponse::new();
    out.messages = page.messages.iter().map(|m| message_to_proto(m)).collect();
    out.more = page.more;
    out.truncated = page.truncated;
    out
}

/// A membership or typing event as the stream writes it.
pub fn event_to_proto(event: &Event) -> proto::connect_response::Event {
    match event {
        Event::Membership {
            group,
            user,
            kind,
            member_count,
            position,
            at,
        } => {
            let mut out = proto::MembershipChange::new();
            out.group = group.to_string();
            out.user = user.to_string();
            out.kind = EnumOrUnknown::new(match kind {
                MembershipKind::Joined => {
                    proto::MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_JOINED
                }
                MembershipKind::Left => proto::MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_LEFT,
                MembershipKind::Disconnected => {
                    proto::MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_DISCONNECTED
                }
                MembershipKind::Removed => {
                    proto::MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_REMOVED
                }
            });
            out.member_count = *member_count;
            out.position = *position;
            out.at = MessageField::some(Timestamp::from(*at));
            proto::connect_response::Event::Membership(out)
        }
        Event::Typing {
            conversation,
            conversation_kind,
            user,
        } => {
            let mut out = proto::TypingStarted::new();
            out.conversation = conversation.to_string();
            out.conversation_type = channel_type(*conversation_kind);
            out.user = user.to_string();
            proto::connect_response::Event::Typing(out)
        }
    }
}

/// The event kinds a Connect asked for (unknown and unspecified ones are
/// ignored).
pub fn event_kinds(asked: &[EnumOrUnknown<proto::EventType>]) -> EventKinds {
    asked
        .iter()
        .fold(EventKinds::NONE, |kinds, kind| match kind.enum_value() {
            Ok(proto::EventType::EVENT_TYPE_MEMBERSHIP) => kinds.with(EventKinds::MEMBERSHIP),
            Ok(proto::EventType::EVENT_TYPE_TYPING) => kinds.with(EventKinds::TYPING),
            Ok(proto::EventType::EVENT_TYPE_UNSPECIFIED) | Err(_) => kinds,
        })
}

/// The reply to ListGroupMembers.
pub fn members_to_proto(page: &MemberPage) -> proto::ListGroupMembersResponse {
    let mut out = proto::ListGroupMembersResponse::new();
    out.members = page.members.iter().map(|name| name.to_string()).collect();
    out.next_page_token = page.next_page_token.clone();
    out.member_count = page.member_count;
    out
}
