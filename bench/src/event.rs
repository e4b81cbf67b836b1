//! Reading Connect events cheaply: the receivers open their streams with a
//! response marshaller that decodes a `ConnectResponse` straight from the
//! protobuf wire format into what the bench uses (each message's id and its
//! decoded [`Payload`]), without building the generated message types and
//! their strings. At hundreds of thousands of messages per second the
//! generated decoder's allocations were a tenth of the load generator's
//! CPU, taken from the server it shares the machine with. Membership
//! events (`presence`) are read into a [`Membership`] with the fields the
//! checks use; typing events are not read (`Other`). Field numbers are
//! those of `proto/chat/v1/chat.proto`; unknown fields are skipped as
//! protobuf requires.

use grpcio::{Marshaller, Method, MethodType};

use chat_proto::chat::ConnectRequest;

use crate::payload::Payload;

/// A Connect event as the bench sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `connected`.
    Connected,
    /// `delivery`: each message's id and its payload (`None` when the text
    /// is not a benchmark payload).
    Delivery(Vec<(u64, Option<Payload>)>),
    /// `membership`: a change in one of the stream's groups.
    Membership(Membership),
    /// An event this bench does not read (`typing`, or one it does not
    /// know).
    Other,
}

/// A `MembershipChange` as the bench sees it (`at` is not read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// The group.
    pub group: String,
    /// The user who joined, left, disconnected or was removed.
    pub user: String,
    /// `MembershipChangeKind` as a number: see [`JOINED`] and [`LEFT`].
    pub kind: u32,
    /// Members after the change.
    pub member_count: u32,
    /// Id of the group's newest message at the change.
    pub position: u64,
}

/// `MEMBERSHIP_CHANGE_KIND_JOINED`.
pub const JOINED: u32 = 1;
/// `MEMBERSHIP_CHANGE_KIND_LEFT`.
pub const LEFT: u32 = 2;

/// `ConnectResponse`: `connected` = 1, `delivery` = 2, `membership` = 3.
const RESPONSE_CONNECTED: u32 = 1;
const RESPONSE_DELIVERY: u32 = 2;
const RESPONSE_MEMBERSHIP: u32 = 3;
/// `MembershipChange`: `group` = 1, `user` = 2, `kind` = 3,
/// `member_count` = 4, `position` = 5.
const CHANGE_GROUP: u32 = 1;
const CHANGE_USER: u32 = 2;
const CHANGE_KIND: u32 = 3;
const CHANGE_MEMBER_COUNT: u32 = 4;
const CHANGE_POSITION: u32 = 5;
/// `Delivery.messages` = 1.
const DELIVERY_MESSAGES: u32 = 1;
/// `Message.id` = 1, `Message.text` = 5.
const MESSAGE_ID: u32 = 1;
const MESSAGE_TEXT: u32 = 5;

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LENGTH_DELIMITED: u32 = 2;
const FIXED32: u32 = 5;

/// A cursor over protobuf wire bytes.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first()?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn bytes(&mut self, len: usize) -> Option<&'a [u8]> {
        if self.0.len() < len {
            return None;
        }
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(taken)
    }

    /// The next field: its number and wire type, or `None` at the end.
    fn key(&mut self) -> Option<Option<(u32, u32)>> {
        if self.0.is_empty() {
            return Some(None);
        }
        let key = self.varint()?;
        Some(Some(((key >> 3) as u32, (key & 7) as u32)))
    }

    /// The bytes of a length-delimited field.
    fn delimited(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        self.bytes(len)
    }

    /// Skips a field of wire type `kind`; `None` for groups and bad data.
    fn skip(&mut self, kind: u32) -> Option<()> {
        match kind {
            VARINT => self.varint().map(drop),
            FIXED64 => self.bytes(8).map(drop),
            LENGTH_DELIMITED => self.delimited().map(drop),
            FIXED32 => self.bytes(4).map(drop),
            _ => None,
        }
    }
}

fn message(bytes: &[u8]) -> Option<(u64, Option<Payload>)> {
    let mut wire = Wire(bytes);
    let (mut id, mut payload) = (0, None);
    while let Some((field, kind)) = wire.key()? {
        match (field, kind) {
            (MESSAGE_ID, VARINT) => id = wire.varint()?,
            (MESSAGE_TEXT, LENGTH_DELIMITED) => payload = Payload::decode_bytes(wire.delimited()?),
            _ => wire.skip(kind)?,
        }
    }
    Some((id, payload))
}

fn delivery(bytes: &[u8]) -> Option<Vec<(u64, Option<Payload>)>> {
    let mut wire = Wire(bytes);
    let mut messages = Vec::new();
    while let Some((field, kind)) = wire.key()? {
        match (field, kind) {
            (DELIVERY_MESSAGES, LENGTH_DELIMITED) => messages.push(message(wire.delimited()?)?),
            _ => wire.skip(kind)?,
        }
    }
    Some(messages)
}

fn text(bytes: &[u8]) -> Option<String> {
    String::from_utf8(bytes.to_vec()).ok()
}

fn membership(bytes: &[u8]) -> Option<Membership> {
    let mut wire = Wire(bytes);
    let mut change = Membership::default();
    while let Some((field, kind)) = wire.key()? {
        match (field, kind) {
            (CHANGE_GROUP, LENGTH_DELIMITED) => change.group = text(wire.delimited()?)?,
            (CHANGE_USER, LENGTH_DELIMITED) => change.user = text(wire.delimited()?)?,
            (CHANGE_KIND, VARINT) => change.kind = wire.varint()? as u32,
            (CHANGE_MEMBER_COUNT, VARINT) => change.member_count = wire.varint()? as u32,
            (CHANGE_POSITION, VARINT) => change.position = wire.varint()?,
            _ => wire.skip(kind)?,
        }
    }
    Some(change)
}

/// Decodes an encoded `ConnectResponse`; `None` when the bytes are not one.
pub fn decode(bytes: &[u8]) -> Option<Event> {
    let mut wire = Wire(bytes);
    let mut event = Event::Other;
    while let Some((field, kind)) = wire.key()? {
        match (field, kind) {
            (RESPONSE_CONNECTED, LENGTH_DELIMITED) => {
                wire.delimited()?;
                event = Event::Connected;
            }
            (RESPONSE_DELIVERY, LENGTH_DELIMITED) => {
                event = Event::Delivery(delivery(wire.delimited()?)?);
            }
            (RESPONSE_MEMBERSHIP, LENGTH_DELIMITED) => {
                event = Event::Membership(membership(wire.delimited()?)?);
            }
            _ => wire.skip(kind)?,
        }
    }
    Some(event)
}

fn deserialize(mut reader: grpcio::MessageReader) -> grpcio::Result<Event> {
    let mut bytes = Vec::with_capacity(reader.len());
    std::io::Read::read_to_end(&mut reader, &mut bytes)
        .map_err(|error| grpcio::Error::Codec(Box::new(error)))?;
    decode(&bytes).ok_or_else(|| grpcio::Error::Codec("malformed ConnectResponse".into()))
}

fn serialize(_: &Event, _: &mut grpcio::GrpcSlice) -> grpcio::Result<()> {
    Err(grpcio::Error::Codec("the bench never sends events".into()))
}

/// `chat.v1.ChatService/Connect`, reading events with [`decode`].
pub const CONNECT: Method<ConnectRequest, Event> = Method {
    ty: MethodType::ServerStreaming,
    name: "/chat.v1.ChatService/Connect",
    req_mar: Marshaller {
        ser: grpcio::pb_ser,
        de: grpcio::pb_de,
    },
    resp_mar: Marshaller {
        ser: serialize,
        de: deserialize,
    },
};

#[cfg(test)]
mod tests {
    use chat_proto::chat::{
        connect_response, ChannelType, ConnectResponse, Connected, Delivery, MembershipChange,
        MembershipChangeKind, Message, TypingStarted,
    };
    use protobuf::Message as _;

    use super::*;

    fn encoded(event: connect_response::Event) -> Vec<u8> {
        let mut response = ConnectResponse::new();
        response.event = Some(event);
        response.write_to_bytes().unwrap()
    }

    #[test]
    fn reads_what_the_generated_code_writes() {
        let payload = Payload {
            sender: 3,
            chan: 9,
            seq: 70_000,
            idx: 5,
            sent_ns: 123_456_789,
        };
        let mut delivery = Delivery::new();
        for (id, text) in [(7u64, payload.encode()), (300, "hello".to_owned())] {
            let mut message = Message::new();
            message.id = id;
            message.sender = "alice".into();
            message.recipient = "bob".into();
            message.text = text;
            message.sent_at = protobuf::MessageField::some(Default::default());
            delivery.messages.push(message);
        }
        assert_eq!(
            decode(&encoded(connect_response::Event::Delivery(delivery))),
            Some(Event::Delivery(vec![(7, Some(payload)), (300, None)]))
        );
        let mut connected = Connected::new();
        connected.username = "bob".into();
        assert_eq!(
            decode(&encoded(connect_response::Event::Connected(connected))),
            Some(Event::Connected)
        );
        assert_eq!(decode(&[]), Some(Event::Other));
    }

    #[test]
    fn reads_membership_changes_and_passes_over_typing() {
        let mut change = MembershipChange::new();
        change.group = "general".into();
        change.user = "bob".into();
        change.kind = MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_LEFT.into();
        change.member_count = 999;
        change.position = 1 << 40;
        change.at = protobuf::MessageField::some(Default::default());
        let bytes = encoded(connect_response::Event::Membership(change));
        assert_eq!(
            decode(&bytes),
            Some(Event::Membership(Membership {
                group: "general".into(),
                user: "bob".into(),
                kind: LEFT,
                member_count: 999,
                position: 1 << 40,
            }))
        );
        for cut in 1..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(
            MembershipChangeKind::MEMBERSHIP_CHANGE_KIND_JOINED as u32,
            JOINED
        );
        let mut typing = TypingStarted::new();
        typing.conversation = "general".into();
        typing.conversation_type = ChannelType::CHANNEL_TYPE_GROUP.into();
        typing.user = "alice".into();
        assert_eq!(
            decode(&encoded(connect_response::Event::Typing(typing))),
            Some(Event::Other)
        );
    }

    #[test]
    fn refuses_truncated_bytes() {
        let mut delivery = Delivery::new();
        delivery.messages.push(Message::new());
        delivery.messages[0].text = "x".repeat(64);
        let bytes = encoded(connect_response::Event::Delivery(delivery));
        for cut in 1..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
    }
}
