//! How the client prints status codes, channels and message texts: the
//! pieces of text that both the scripted demo and the interactive chat show.

use std::time::{Duration, UNIX_EPOCH};

use chat_proto::chat::{
    Channel, ChannelType, MembershipChange, MembershipChangeKind, Message, TypingStarted,
};
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
        ChannelType::CHANNEL_TYPE_GROUP => {
            describe_group(&channel.name, channel.member_count, channel.joined)
        }
        _ => format!("user {}", channel.name),
    }
}

/// `group NAME (1 member, joined)`.
pub fn describe_group(name: &str, members: u32, joined: bool) -> String {
    format!(
        "group {name} ({members} {}{})",
        if members == 1 { "member" } else { "members" },
        if joined { ", joined" } else { "" }
    )
}

/// One line describing a received message.
pub fn describe_message(message: &Message) -> String {
    let to = match message.recipient_type.enum_value_or_default() {
        ChannelType::CHANNEL_TYPE_GROUP => format!("#{}", message.recipient),
        _ => message.recipient.clone(),
    };
    let operator = if message.from_operator {
        " [operator]"
    } else {
        ""
    };
    format!(
        "#{} {}{} -> {}: {:?} (sent_at {})",
        message.id,
        message.sender,
        operator,
        to,
        message.text,
        sent_at(message)
    )
}

/// One line describing a membership change:
/// `#general: bob JOINED (2 members, position 7, at 12:03:04.005Z)`.
pub fn describe_membership(change: &MembershipChange) -> String {
    format!(
        "#{}: {} {} ({} member{}, position {}, at {})",
        change.group,
        change.user,
        membership_kind_name(change.kind.enum_value()),
        change.member_count,
        if change.member_count == 1 { "" } else { "s" },
        change.position,
        utc_time(change.at.as_ref())
    )
}

/// A membership change kind's name, as the proto spells it without its
/// prefix.
pub fn membership_kind_name(kind: Result<MembershipChangeKind, i32>) -> String {
    match kind {
        Ok(MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_UNSPECIFIED) => "UNSPECIFIED".to_owned(),
        Ok(MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_JOINED) => "JOINED".to_owned(),
        Ok(MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_LEFT) => "LEFT".to_owned(),
        Ok(MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_DISCONNECTED) => "DISCONNECTED".to_owned(),
        Ok(MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_REMOVED) => "REMOVED".to_owned(),
        Err(value) => format!("unknown kind {value}"),
    }
}

/// One line describing a typing notice: `bob is typing in #general`, or
/// `bob is typing to you` in a direct conversation.
pub fn describe_typing(typing: &TypingStarted) -> String {
    match typing.conversation_type.enum_value_or_default() {
        ChannelType::CHANNEL_TYPE_GROUP => {
            format!("{} is typing in #{}", typing.user, typing.conversation)
        }
        _ => format!(
            "{} is typing to you (conversation {})",
            typing.user, typing.conversation
        ),
    }
}

fn sent_at(message: &Message) -> String {
    utc_time(message.sent_at.as_ref())
}

/// A timestamp's UTC time of day, `12:03:04.005Z`; `unset` without one.
fn utc_time(at: Option<&protobuf::well_known_types::timestamp::Timestamp>) -> String {
    match at {
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

/// `text` as a terminal can show it safely: printable characters as they
/// are, a tab as spaces, other control characters (C0, DEL, C1) as their
/// Unicode control pictures or U+FFFD, and the bidirectional overrides that
/// could reorder what follows them as `<U+202E>`. No quoting, no escaping
/// of quotes or backslashes.
pub fn visible(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => shown.push_str("    "),
            // U+2400.. are the pictures of 0x00..0x1F.
            '\0'..='\u{1f}' => shown.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}')),
            '\u{7f}' => shown.push('\u{2421}'),
            '\u{80}'..='\u{9f}' => shown.push('\u{fffd}'),
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                shown.push_str(&format!("<U+{:04X}>", c as u32));
            }
            _ => shown.push(c),
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_keeps_text_as_written_and_pictures_controls() {
        assert_eq!(visible("\"q\" \\ é"), "\"q\" \\ é");
        assert_eq!(visible("a\tb"), "a    b");
        assert_eq!(
            visible("\u{1b}[2J\r\n\u{7f}\u{9b}"),
            "\u{241b}[2J\u{240d}\u{240a}\u{2421}\u{fffd}"
        );
        assert_eq!(visible("abc\u{202e}def"), "abc<U+202E>def");
    }

    #[test]
    fn one_member_is_not_plural() {
        let mut channel = Channel::new();
        channel.name = "general".into();
        channel.type_ = ChannelType::CHANNEL_TYPE_GROUP.into();
        channel.member_count = 1;
        channel.joined = true;
        assert_eq!(
            describe_channel(&channel),
            "group general (1 member, joined)"
        );
        channel.member_count = 2;
        assert_eq!(
            describe_channel(&channel),
            "group general (2 members, joined)"
        );
    }
}
