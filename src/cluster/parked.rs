//! How a node writes an ended session's recent messages into Redis for a
//! resume on any node, and reads them back. The form is text-safe (the
//! scripts and the store's answers carry it as a string): per message a
//! header `id,seconds,microseconds,kind,sender_len,recipient_len,text_len;`
//! followed by the sender, recipient and text bytes; the kind is `d` or `g`
//! (direct or group), `D` or `G` for an operator's message. The disconnect script
//! writes the same form for the messages still on their way to the node
//! when the session ended (`scripts::DISCONNECT`). Lengths are in bytes, and each string
//! is whole UTF-8, so slicing at them never splits a character. A record
//! that does not parse is treated as absent (the resume answers GAP).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::domain::history::micros_since_epoch;
use crate::domain::{ChannelKind, Message, Recent};

/// `recent`'s messages in the stored form.
pub fn encode(recent: &Recent) -> String {
    let mut out = String::new();
    for message in recent.messages() {
        let kind = match (message.recipient_kind, message.from_operator) {
            (ChannelKind::User, false) => 'd',
            (ChannelKind::Group, false) => 'g',
            (ChannelKind::User, true) => 'D',
            (ChannelKind::Group, true) => 'G',
        };
        let micros = micros_since_epoch(message.sent_at);
        let _ = write!(
            out,
            "{},{},{},{},{},{},{};",
            message.id,
            micros / 1_000_000,
            micros % 1_000_000,
            kind,
            message.sender.len(),
            message.recipient.len(),
            message.text.len()
        );
        out.push_str(&message.sender);
        out.push_str(&message.recipient);
        out.push_str(&message.text);
    }
    out
}

/// The messages of a stored record, oldest first; `None` when it is
/// malformed.
pub fn decode(mut stored: &str) -> Option<Vec<Arc<Message>>> {
    let mut messages = Vec::new();
    while !stored.is_empty() {
        let (header, rest) = stored.split_once(';')?;
        let mut fields = header.split(',');
        let id: u64 = fields.next()?.parse().ok()?;
        let seconds: u64 = fields.next()?.parse().ok()?;
        let micros: u64 = fields.next()?.parse().ok()?;
        let (kind, from_operator) = match fields.next()? {
            "d" => (ChannelKind::User, false),
            "g" => (ChannelKind::Group, false),
            "D" => (ChannelKind::User, true),
            "G" => (ChannelKind::Group, true),
            _ => return None,
        };
        let mut length = || -> Option<usize> { fields.next()?.parse().ok() };
        let (sender_len, recipient_len, text_len) = (length()?, length()?, length()?);
        let sender = rest.get(..sender_len)?;
        let rest = rest.get(sender_len..)?;
        let recipient = rest.get(..recipient_len)?;
        let rest = rest.get(recipient_len..)?;
        let text = rest.get(..text_len)?;
        stored = rest.get(text_len..)?;
        messages.push(Arc::new(
            Message::new(
                id,
                Arc::from(sender),
                Arc::from(recipient),
                kind,
                Arc::from(text),
                SystemTime::UNIX_EPOCH
                    + Duration::from_secs(seconds)
                    + Duration::from_micros(micros),
            )
            .by_operator(from_operator),
        ));
    }
    Some(messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ResumeLimits;

    #[test]
    fn a_record_reads_back_as_written() {
        let mut recent = Recent::default();
        let limits = ResumeLimits::DEFAULT;
        for (id, text, kind, by_operator) in [
            (3, "héllo; a,b", ChannelKind::User, false),
            (9, "naïve ✓", ChannelKind::Group, false),
            (10, "from the ops", ChannelKind::Group, true),
            (11, "to you", ChannelKind::User, true),
        ] {
            recent.push(
                Arc::new(
                    Message::new(
                        id,
                        Arc::from("alice"),
                        Arc::from("room.1"),
                        kind,
                        Arc::from(text),
                        SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456),
                    )
                    .by_operator(by_operator),
                ),
                &limits,
            );
        }
        let decoded = decode(&encode(&recent)).unwrap();
        let original: Vec<Message> = recent.messages().map(|m| (**m).clone()).collect();
        let decoded: Vec<Message> = decoded.iter().map(|m| (**m).clone()).collect();
        assert_eq!(decoded, original);
        assert_eq!(decode(""), Some(Vec::new()));
    }

    #[test]
    fn a_malformed_record_is_none() {
        for bad in [
            "x",
            "1,2,3,d,5,1,1;ab",
            "1,2,3,q,1,1,1;abc",
            "1,2,3,d,1,1;abc",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
