//! How the client prints status codes and messages.

use std::time::{Duration, UNIX_EPOCH};

use chat_proto::chat::{Channel, ChannelType, Message};
use grpcio::RpcStatusCode;

/// A status code's name, e.g. `NOT_FOUND`.
pub fn code_name(code: RpcStatusCode) -> String {
    // grpcio prints codes as "5-NOT_FOUND".
    let shown = format!("{code:?}");
    match shown.split_once('-') {
        Some((_, name)) => name.to_owned(),
        None => shown,
    }
}

/// A channel as ListChannels shows it: `user NAME` or
/// `group NAME (N members, joined)`.
pub fn describe_channel(channel: &Channel) -> String {
    match channel.type_.enum_value_or_default() {
        ChannelType::CHANNEL_TYPE_GROUP => format!(
            "group {} ({} members{})",
            channel.name,
            channel.member_count,
            if channel.joined { ", joined" } else { "" }
        ),
        _ => format!("user {}", channel.name),
    }
}

/// One line describing a received message.
pub fn describe_message(message: &Message) -> String {
    let to = match message.recipient_type.enum_value_or_default() {
        ChannelType::CHANNEL_TYPE_GROUP => format!("#{}", message.recipient),
        _ => message.recipient.clone(),
    };
    format!(
        "#{} {} -> {}: {:?} (sent_at {})",
        message.id,
        message.sender,
        to,
        message.text,
        sent_at(message)
    )
}

fn sent_at(message: &Message) -> String {
    match message.sent_at.as_ref() {
        Some(ts) => {
            let at = UNIX_EPOCH
                + Duration::from_secs(u64::try_from(ts.seconds).unwrap_or(0))
                + Duration::from_nanos(u64::try_from(ts.nanos).unwrap_or(0));
            let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
            let secs = since.as_secs();
            format!(
                "{:02}:{:02}:{:02}.{:03}Z",
                (secs / 3600) % 24,
                (secs / 60) % 60,
                secs % 60,
                since.subsec_millis()
            )
        }
        None => "unset".to_owned(),
    }
}
