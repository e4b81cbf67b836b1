//! Conversions between the generated protobuf types and the domain's types.
//! The only place that knows both.

use chat_proto::chat::{self as proto, ChannelType};
use protobuf::well_known_types::timestamp::Timestamp;
use protobuf::{EnumOrUnknown, MessageField};

use crate::domain::{ChannelInfo, ChannelKind, Message, Sent};

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
    out.text = message.text.clone();
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
