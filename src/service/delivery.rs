//! The Connect stream's source: a `futures::Stream` over a connection's
//! [`Inbox`] that yields the `connected` event first, then one `delivery` per
//! write holding everything already queued (up to [`MAX_MESSAGES`] messages
//! and [`MAX_DELIVERY_BYTES`] encoded), never waiting for more. When the
//! inbox is empty it registers the task's waker and returns `Pending`, so no
//! thread is parked per connection; when the server closes the inbox it ends
//! with an error carrying the status the stream must finish with.

use std::pin::Pin;
use std::task::{Context, Poll};

use chat_proto::chat::{connect_response, ConnectResponse, Connected, Delivery};
use futures::Stream;
use grpcio::WriteFlags;
use protobuf::Message as _;

use super::convert::message_to_proto;
use super::status::close_status;
use crate::domain::{mailbox, CloseReason, Inbox};

/// Most messages in one `Delivery`.
pub const MAX_MESSAGES: usize = 256;
/// Most bytes in one encoded `Delivery`.
pub const MAX_DELIVERY_BYTES: usize = 64 * 1024;

/// See the module documentation.
pub struct DeliveryStream {
    inbox: Inbox,
    /// The username for the `connected` event, until it is sent.
    connected: Option<String>,
    /// A message taken from the inbox that did not fit in the last delivery.
    carry: Option<(chat_proto::chat::Message, usize)>,
    /// Set when the server closed the inbox; the stream has ended.
    closed: Option<CloseReason>,
    /// Messages and deliveries yielded, for the connection's closing log line.
    delivered: (u64, u64),
}

impl DeliveryStream {
    /// A stream for `username`'s connection, reading from `inbox`.
    pub fn new(username: String, inbox: Inbox) -> DeliveryStream {
        DeliveryStream {
            inbox,
            connected: Some(username),
            carry: None,
            closed: None,
            delivered: (0, 0),
        }
    }

    /// Why the server ended this stream, if it did.
    pub fn closed_by_server(&self) -> Option<CloseReason> {
        self.closed
    }

    /// How many messages, in how many deliveries, this stream has yielded.
    pub fn delivered(&self) -> (u64, u64) {
        self.delivered
    }

    fn close(&mut self, reason: CloseReason) -> Poll<Option<grpcio::Result<Event>>> {
        self.closed = Some(reason);
        Poll::Ready(Some(Err(grpcio::Error::RpcFailure(close_status(reason)))))
    }
}

type Event = (ConnectResponse, WriteFlags);

/// The encoded size of `len` bytes as one entry of a repeated field numbered
/// below 16: a one-byte tag, the length as a varint, then the bytes.
fn entry_size(len: usize) -> usize {
    let mut varint = 1;
    let mut rest = len >> 7;
    while rest > 0 {
        varint += 1;
        rest >>= 7;
    }
    1 + varint + len
}

impl Stream for DeliveryStream {
    type Item = grpcio::Result<Event>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.closed.is_some() {
            return Poll::Ready(None);
        }
        if let Some(username) = this.connected.take() {
            let mut connected = Connected::new();
            connected.username = username;
            let mut event = ConnectResponse::new();
            event.event = Some(connect_response::Event::Connected(connected));
            return Poll::Ready(Some(Ok((event, WriteFlags::default()))));
        }
        if let Some(reason) = this.inbox.close_reason() {
            return this.close(reason);
        }
        let mut delivery = Delivery::new();
        let mut bytes = 0;
        if let Some((message, size)) = this.carry.take() {
            delivery.messages.push(message);
            bytes += size;
        }
        while delivery.messages.len() < MAX_MESSAGES {
            let next = if delivery.messages.is_empty() {
                match this.inbox.poll(cx.waker()) {
                    mailbox::Poll::Message(message) => message,
                    mailbox::Poll::Empty => return Poll::Pending,
                    mailbox::Poll::Closed(reason) => return this.close(reason),
                }
            } else {
                match this.inbox.try_take() {
                    Some(message) => message,
                    None => break,
                }
            };
            let message = message_to_proto(&next);
            let size = entry_size(message.compute_size() as usize);
            if bytes + size > MAX_DELIVERY_BYTES && !delivery.messages.is_empty() {
                this.carry = Some((message, size));
                break;
            }
            bytes += size;
            delivery.messages.push(message);
        }
        this.delivered.0 += delivery.messages.len() as u64;
        this.delivered.1 += 1;
        let mut event = ConnectResponse::new();
        event.event = Some(connect_response::Event::Delivery(delivery));
        Poll::Ready(Some(Ok((event, WriteFlags::default()))))
    }
}

#[cfg(test)]
mod tests {
    use super::entry_size;

    #[test]
    fn entry_size_counts_tag_varint_and_payload() {
        assert_eq!(entry_size(0), 2);
        assert_eq!(entry_size(127), 129);
        assert_eq!(entry_size(128), 131);
        assert_eq!(entry_size(16_384), 16_388);
    }
}
