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
    use std::sync::Arc;
    use std::time::SystemTime;

    use futures::task::noop_waker;

    use super::*;
    use crate::domain::{mailbox::mailbox, ChannelKind, Message, Outbox};

    fn message(id: u64, text_len: usize) -> Message {
        Message {
            id,
            sender: Arc::from("alice"),
            recipient: Arc::from("bob"),
            recipient_kind: ChannelKind::User,
            text: "x".repeat(text_len),
            sent_at: SystemTime::now(),
        }
    }

    fn push(outbox: &Outbox, id: u64, text_len: usize) {
        outbox.push(Arc::new(message(id, text_len))).unwrap();
    }

    /// Polls once: `Some(Ok(n))` for a delivery of n messages (checking its
    /// encoded size), `Some(Err(()))` for an error, `None` for pending or end.
    fn poll(stream: &mut DeliveryStream) -> Option<Result<Vec<u64>, grpcio::Error>> {
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        match Pin::new(stream).poll_next(&mut cx) {
            Poll::Ready(Some(Ok((event, _)))) => match event.event {
                Some(connect_response::Event::Delivery(delivery)) => {
                    assert!(delivery.compute_size() as usize <= MAX_DELIVERY_BYTES);
                    Some(Ok(delivery.messages.iter().map(|m| m.id).collect()))
                }
                Some(connect_response::Event::Connected(c)) => {
                    assert_eq!(c.username, "bob");
                    Some(Ok(Vec::new()))
                }
                other => panic!("unexpected event {other:?}"),
            },
            Poll::Ready(Some(Err(error))) => Some(Err(error)),
            Poll::Ready(None) | Poll::Pending => None,
        }
    }

    fn stream(capacity: usize) -> (Outbox, DeliveryStream) {
        let (outbox, inbox) = mailbox(capacity);
        let mut stream = DeliveryStream::new("bob".into(), inbox);
        assert_eq!(poll(&mut stream).unwrap().unwrap(), Vec::<u64>::new());
        (outbox, stream)
    }

    #[test]
    fn connected_comes_first_even_with_messages_waiting() {
        let (outbox, inbox) = mailbox(8);
        push(&outbox, 1, 10);
        let mut stream = DeliveryStream::new("bob".into(), inbox);
        assert_eq!(poll(&mut stream).unwrap().unwrap(), Vec::<u64>::new());
        assert_eq!(poll(&mut stream).unwrap().unwrap(), vec![1]);
    }

    #[test]
    fn a_lone_message_goes_out_alone_and_an_empty_inbox_is_pending() {
        let (outbox, mut stream) = stream(8);
        assert!(poll(&mut stream).is_none());
        push(&outbox, 7, 10);
        assert_eq!(poll(&mut stream).unwrap().unwrap(), vec![7]);
        assert!(poll(&mut stream).is_none());
    }

    #[test]
    fn queued_messages_are_drained_256_at_a_time_in_order() {
        let (outbox, mut stream) = stream(1024);
        for id in 0..600 {
            push(&outbox, id, 10);
        }
        let mut seen = Vec::new();
        for expected in [256, 256, 88] {
            let ids = poll(&mut stream).unwrap().unwrap();
            assert_eq!(ids.len(), expected);
            seen.extend(ids);
        }
        assert_eq!(seen, (0..600).collect::<Vec<_>>());
        assert!(poll(&mut stream).is_none());
        assert_eq!(stream.delivered(), (600, 3));
    }

    #[test]
    fn a_delivery_stops_before_64_kib_and_the_rest_follows() {
        let (outbox, mut stream) = stream(64);
        for id in 0..40 {
            push(&outbox, id, 4000);
        }
        let entry = entry_size(message_to_proto(&message(1, 4000)).compute_size() as usize);
        let fit = MAX_DELIVERY_BYTES / entry;
        assert!(fit < 40);
        let mut seen = Vec::new();
        while let Some(Ok(ids)) = poll(&mut stream) {
            // As many as fit, except the last delivery.
            assert!(
                ids.len() == fit || seen.len() + ids.len() == 40,
                "{}",
                ids.len()
            );
            seen.extend(ids);
        }
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
    }

    #[test]
    fn a_closed_inbox_ends_the_stream_with_the_status_without_draining() {
        let (outbox, mut stream) = stream(8);
        push(&outbox, 1, 10);
        outbox.close(CloseReason::SlowConsumer);
        match poll(&mut stream) {
            Some(Err(grpcio::Error::RpcFailure(status))) => {
                assert_eq!(status.code(), grpcio::RpcStatusCode::RESOURCE_EXHAUSTED);
            }
            other => panic!("expected the closing status, got {other:?}"),
        }
        assert_eq!(stream.closed_by_server(), Some(CloseReason::SlowConsumer));
        assert!(poll(&mut stream).is_none());
    }

    #[test]
    fn entry_size_counts_tag_varint_and_payload() {
        assert_eq!(entry_size(0), 2);
        assert_eq!(entry_size(127), 129);
        assert_eq!(entry_size(128), 131);
        assert_eq!(entry_size(16_384), 16_388);
    }
}
