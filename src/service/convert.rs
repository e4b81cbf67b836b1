//! Conversions between the generated protobuf types and the domain's types.
//! The only place that knows both.

use chat_proto::chat::{self as proto, ChannelType};
use protobuf::well_known_types::timestamp::Timestamp;
use protobuf::{EnumOrUnknown, MessageField};

use crate::domain::{
    ChannelInfo, ChannelKind, Connected, HistoryPage, Message, ResumeStatus, Sent,
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
