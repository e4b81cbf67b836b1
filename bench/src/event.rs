//! Reading Connect events cheaply: the receivers open their streams with a
//! response marshaller that decodes a `ConnectResponse` straight from the
//! protobuf wire format into what the bench uses (each message's id and its
//! decoded [`Payload`]), without building the generated message types and
//! their strings. At hundreds of thousands of messages per second the
//! generated decoder's allocations were a tenth of the load generator's
//! CPU, taken from the server it shares the machine with. Field numbers are
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
    /// An event this bench does not know.
    Other,
}

/// `ConnectResponse`: `connected` = 1, `delivery` = 2.
const RESPONSE_CONNECTED: u32 = 1;
const RESPONSE_DELIVERY: u32 = 2;
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
    use chat_proto::chat::{connect_response, ConnectResponse, Connected, Delivery, Message};
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
