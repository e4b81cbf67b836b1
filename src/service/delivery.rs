//! The Connect stream's source: a `futures::Stream` over a connection's
//! [`Inbox`] that yields the `connected` event first, then one `delivery` per
//! write holding everything already queued (up to [`MAX_MESSAGES`] messages
//! and [`MAX_DELIVERY_BYTES`] encoded), never waiting for more. When the
//! inbox is empty it registers the task's waker and returns `Pending`, so no
//! thread is parked per connection; when the server closes the inbox it ends
//! with an error carrying the status the stream must finish with.
//!
//! Events are written as pre-encoded bytes ([`EncodedEvent`], sent through
//! [`EVENT_MARSHALLER`]): each message is encoded once, by the first stream
//! that writes it, and every recipient's `Delivery` is the concatenation of
//! those encodings (a repeated field is just its entries back to back).
//!
//! Each delivery written is counted here, per connection, into the metrics'
//! per-thread counters: the messages it holds and the one write.

use std::pin::Pin;
use std::task::{Context, Poll};

use chat_proto::chat::{connect_response, ConnectResponse};
use futures::Stream;
use grpcio::{GrpcSlice, Marshaller, MessageReader, WriteFlags};
use protobuf::Message as _;

use super::convert::event_to_proto;
use super::convert::message_to_proto;
use super::status::close_status;
use std::sync::Arc;

use crate::domain::{mailbox, CloseReason, Event, Inbox, Item, Message};
use crate::metrics::Metrics;

/// Most messages in one `Delivery`.
pub const MAX_MESSAGES: usize = 256;
/// Most bytes in one encoded `Delivery`.
pub const MAX_DELIVERY_BYTES: usize = 64 * 1024;

/// Field 1 (`Delivery.messages`), length-delimited.
const DELIVERY_MESSAGES_TAG: u8 = 0x0a;
/// Field 2 (`ConnectResponse.delivery`), length-delimited.
const CONNECT_RESPONSE_DELIVERY_TAG: u8 = 0x12;

/// One `ConnectResponse`, already encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent(pub Vec<u8>);

fn serialize_event(event: &EncodedEvent, buf: &mut GrpcSlice) -> grpcio::Result<()> {
    *buf = GrpcSlice::from(event.0.as_slice());
    Ok(())
}

fn deserialize_event(mut reader: MessageReader) -> grpcio::Result<EncodedEvent> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut bytes)
        .map_err(|error| grpcio::Error::Codec(Box::new(error)))?;
    Ok(EncodedEvent(bytes))
}

/// Writes [`EncodedEvent`]s as they are (and reads them back as bytes).
pub const EVENT_MARSHALLER: Marshaller<EncodedEvent> = Marshaller {
    ser: serialize_event,
    de: deserialize_event,
};

/// See the module documentation.
pub struct DeliveryStream {
    inbox: Inbox,
    /// The `connected` event, until it is sent.
    connected: Option<EncodedEvent>,
    /// What was taken from the inbox but not written yet: a message that
    /// did not fit in the last delivery (and whether it is already kept
    /// for a resume), or an event that ended it.
    carry: Option<(Item, bool)>,
    /// The messages of the delivery being built (kept to reuse its capacity).
    batch: Vec<std::sync::Arc<Message>>,
    /// Set when the server closed the inbox; the stream has ended.
    closed: Option<CloseReason>,
    /// Messages and deliveries yielded, for the connection's closing log line.
    delivered: (u64, u64),
    /// Where each delivery is counted.
    metrics: Metrics,
}

impl DeliveryStream {
    /// A stream that writes `connected` first, then reads from `inbox`,
    /// writing what is queued whenever it is woken, counting each delivery
    /// in `metrics`.
    pub fn new(connected: EncodedEvent, inbox: Inbox, metrics: Metrics) -> DeliveryStream {
        DeliveryStream {
            inbox,
            connected: Some(connected),
            carry: None,
            batch: Vec::new(),
            closed: None,
            delivered: (0, 0),
            metrics,
        }
    }

    /// Why the server ended this stream, if it did.
    pub fn closed_by_server(&self) -> Option<CloseReason> {
        self.closed
    }

    /// Why an operator disconnected the user, if one did.
    pub fn operator_reason(&self) -> Option<&str> {
        self.inbox.operator_reason()
    }

    /// How many messages, in how many deliveries, this stream has yielded.
    pub fn delivered(&self) -> (u64, u64) {
        self.delivered
    }

    /// Writes one membership or typing event, on its own.
    fn write_event(&mut self, event: &Event) -> Poll<Option<grpcio::Result<Written>>> {
        let more = self.inbox.queued() > 0;
        let flags = WriteFlags::default().buffer_hint(more);
        Poll::Ready(Some(Ok((other_event(event), flags))))
    }

    fn close(&mut self, reason: CloseReason) -> Poll<Option<grpcio::Result<Written>>> {
        self.closed = Some(reason);
        let status = close_status(reason, self.inbox.operator_reason());
        Poll::Ready(Some(Err(grpcio::Error::RpcFailure(status))))
    }
}

/// One event as written, with its write flags.
type Written = (EncodedEvent, WriteFlags);

/// How many bytes `value` takes as a varint.
fn varint_len(value: usize) -> usize {
    let mut len = 1;
    let mut rest = value >> 7;
    while rest > 0 {
        len += 1;
        rest >>= 7;
    }
    len
}

fn put_varint(out: &mut Vec<u8>, mut value: usize) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// `message` encoded as one entry of `Delivery.messages`: tag, length,
/// bytes. Computed once per message and shared by all its recipients.
fn entry(message: &Message) -> &[u8] {
    message.encoded.get_or_init(|| {
        let payload = message_to_proto(message)
            .write_to_bytes()
            .unwrap_or_default();
        let mut entry = Vec::with_capacity(1 + varint_len(payload.len()) + payload.len());
        entry.push(DELIVERY_MESSAGES_TAG);
        put_varint(&mut entry, payload.len());
        entry.extend_from_slice(&payload);
        entry.into_boxed_slice()
    })
}

/// The `connected` event.
pub fn connected_event(connected: chat_proto::chat::Connected) -> EncodedEvent {
    let mut event = ConnectResponse::new();
    event.event = Some(connect_response::Event::Connected(connected));
    EncodedEvent(event.write_to_bytes().unwrap_or_default())
}

/// An event other than a delivery (membership, typing), encoded.
fn other_event(event: &Event) -> EncodedEvent {
    let mut response = ConnectResponse::new();
    response.event = Some(event_to_proto(event));
    EncodedEvent(response.write_to_bytes().unwrap_or_default())
}

/// A `delivery` event holding `batch`, whose entries take `body` bytes.
fn delivery_event(batch: &[std::sync::Arc<Message>], body: usize) -> EncodedEvent {
    let mut out = Vec::with_capacity(1 + varint_len(body) + body);
    out.push(CONNECT_RESPONSE_DELIVERY_TAG);
    put_varint(&mut out, body);
    for message in batch {
        out.extend_from_slice(entry(message));
    }
    EncodedEvent(out)
}

impl Stream for DeliveryStream {
    type Item = grpcio::Result<Written>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.closed.is_some() {
            return Poll::Ready(None);
        }
        if let Some(connected) = this.connected.take() {
            return Poll::Ready(Some(Ok((connected, WriteFlags::default()))));
        }
        if let Some(reason) = this.inbox.close_reason() {
            return this.close(reason);
        }
        match fill(&this.inbox, &mut this.batch, &mut this.carry, cx.waker()) {
            Filled::Delivery(event, messages) => {
                this.delivered.0 += messages as u64;
                this.delivered.1 += 1;
                this.metrics.delivery_written(messages);
                // More is already waiting: let C-core hold this write and
                // send it with the next one. The last delivery of a burst
                // goes without the hint, which flushes; a lone message is
                // never held back.
                let more = this.carry.is_some() || this.inbox.queued() > 0;
                let flags = WriteFlags::default().buffer_hint(more);
                Poll::Ready(Some(Ok((event, flags))))
            }
            Filled::Event(event) => this.write_event(&event),
            Filled::Pending => Poll::Pending,
            Filled::Closed(reason) => this.close(reason),
        }
    }
}

/// What one look at the inbox gave.
enum Filled {
    /// A delivery, and how many messages it holds.
    Delivery(EncodedEvent, usize),
    /// An event to write on its own.
    Event(Arc<Event>),
    /// Nothing queued: the waker is registered.
    Pending,
    /// The server closed the inbox.
    Closed(CloseReason),
}

/// Takes what is queued (after `carry`, what the last look took and could
/// not write) into one delivery, or finds an event, nothing, or the close.
/// With resume on, the messages of the delivery are kept for a resume as
/// they are taken, under the keep's lock (see `Inbox::taking`); a message
/// carried to the next delivery is kept now, and not again then.
fn fill(
    inbox: &Inbox,
    batch: &mut Vec<Arc<Message>>,
    carry: &mut Option<(Item, bool)>,
    waker: &std::task::Waker,
) -> Filled {
    let mut taking = inbox.taking();
    batch.clear();
    let mut body = 0;
    let mut kept_already = 0;
    match carry.take() {
        Some((Item::Event(event), _)) => return Filled::Event(event),
        Some((Item::Message(message), kept)) => {
            body += entry(&message).len();
            kept_already = usize::from(kept);
            batch.push(message);
        }
        None => {}
    }
    while batch.len() < MAX_MESSAGES {
        let next = if batch.is_empty() {
            match inbox.poll(waker) {
                mailbox::Poll::Item(Item::Message(message)) => message,
                mailbox::Poll::Item(Item::Event(event)) => return Filled::Event(event),
                mailbox::Poll::Empty => return Filled::Pending,
                mailbox::Poll::Closed(reason) => return Filled::Closed(reason),
            }
        } else {
            match inbox.try_take() {
                Some(Item::Message(message)) => message,
                Some(event @ Item::Event(_)) => {
                    // The delivery so far goes first: the event keeps its
                    // place in the order.
                    *carry = Some((event, false));
                    break;
                }
                None => break,
            }
        };
        let size = entry(&next).len();
        if body + size > MAX_DELIVERY_BYTES && !batch.is_empty() {
            *carry = Some((Item::Message(next), false));
            break;
        }
        body += size;
        batch.push(next);
    }
    let event = delivery_event(batch, body);
    let messages = batch.len();
    if let Some(taking) = &mut taking {
        taking.keep(batch, kept_already);
        // A message carried over is kept now, after the delivery's, in the
        // order it was taken.
        if let Some((Item::Message(message), kept)) = carry {
            taking.keep_one(message);
            *kept = true;
        }
    }
    Filled::Delivery(event, messages)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::SystemTime;

    use futures::task::noop_waker;

    use super::*;
    use crate::domain::{mailbox::mailbox, ChannelKind, Message, Outbox};

    fn message(id: u64, text_len: usize) -> Message {
        Message::new(
            id,
            Arc::from("alice"),
            Arc::from("bob"),
            ChannelKind::User,
            Arc::from("x".repeat(text_len)),
            SystemTime::now(),
        )
    }

    fn bob_connected() -> EncodedEvent {
        let mut connected = chat_proto::chat::Connected::new();
        connected.username = "bob".into();
        connected_event(connected)
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
            Poll::Ready(Some(Ok((event, _)))) => match ConnectResponse::parse_from_bytes(&event.0)
                .expect("the event decodes")
                .event
            {
                Some(connect_response::Event::Delivery(delivery)) => {
                    assert!(delivery.compute_size() as usize <= MAX_DELIVERY_BYTES);
                    for decoded in &delivery.messages {
                        assert_eq!(decoded.sender, "alice");
                        assert_eq!(decoded.recipient, "bob");
                        assert!(decoded.sent_at.is_some());
                    }
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
        let (outbox, inbox) = mailbox(capacity, 1 << 20, None);
        let mut stream = DeliveryStream::new(bob_connected(), inbox, Metrics::off());
        assert_eq!(poll(&mut stream).unwrap().unwrap(), Vec::<u64>::new());
        (outbox, stream)
    }

    #[test]
    fn connected_comes_first_even_with_messages_waiting() {
        let (outbox, inbox) = mailbox(8, 1 << 20, None);
        push(&outbox, 1, 10);
        let mut stream = DeliveryStream::new(bob_connected(), inbox, Metrics::off());
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
        let fit = MAX_DELIVERY_BYTES / entry(&message(1, 4000)).len();
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
    fn varints_are_sized_and_written_as_protobuf_does() {
        for value in [0usize, 1, 127, 128, 300, 16_383, 16_384, 65_536] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
            let mut input = protobuf::CodedInputStream::from_bytes(&out);
            assert_eq!(input.read_raw_varint64().unwrap(), value as u64);
        }
    }

    #[test]
    fn what_was_written_queued_and_carried_is_kept_for_a_resume_once_in_order() {
        let limits = crate::domain::ResumeLimits::DEFAULT;
        let (outbox, inbox) = crate::domain::mailbox::resumable_mailbox(
            64,
            1 << 20,
            None,
            limits,
            crate::domain::EventKinds::NONE,
        );
        let mut stream = DeliveryStream::new(bob_connected(), inbox, Metrics::off());
        assert_eq!(poll(&mut stream).unwrap().unwrap(), Vec::<u64>::new());
        for id in 0..40 {
            push(&outbox, id, 4000);
        }
        // Two deliveries written (the second began with a carried message,
        // and another is carried now); the rest still queued.
        let mut written = poll(&mut stream).unwrap().unwrap();
        written.extend(poll(&mut stream).unwrap().unwrap());
        assert!(written.len() < 40);
        let kept: Vec<u64> = outbox
            .take_recent()
            .unwrap()
            .messages()
            .map(|m| m.id)
            .collect();
        assert_eq!(kept, (0..40).collect::<Vec<_>>());
    }

    #[test]
    fn a_message_is_encoded_once_and_shared() {
        let shared = message(9, 10);
        let first = entry(&shared).as_ptr();
        assert_eq!(entry(&shared).as_ptr(), first);
    }
}
