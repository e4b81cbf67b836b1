//! A connection's bounded outbound queue. The registry holds the sending half
//! ([`Outbox`]) of every connected user; the connection's stream holds the
//! receiving half ([`Inbox`]) and is woken through a registered waker when a
//! message arrives or the mailbox is closed. Nothing here blocks: a full
//! queue is reported to the sender, which decides what to do with the slow
//! reader. The queue is bounded in messages and in bytes. With a
//! [`WakeTicker`] the reader is woken at the ticker's next tick rather than
//! at once, so what arrives meanwhile is read in one go. With resume on, the
//! mailbox also keeps the connection's most recent messages for a resume
//! once it ends (see `ResumeKeep`). The queue carries messages and the
//! events the reader asked for ([`Item`]). This module knows nothing of gRPC
//! or of how messages are written.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::task::Waker;

use crossbeam_channel::{Receiver, Sender};
use futures::task::AtomicWaker;

use super::events::{Event, EventKinds, Item};
use super::registry::{ChannelKind, Departure, Message};
use super::resume::{Recent, ResumeLimits};
use super::wake_ticker::WakeTicker;

/// Why the server closed a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The queue filled up: the reader fell too far behind.
    SlowConsumer,
    /// The server is shutting down.
    Shutdown,
    /// The node lost its place in the cluster (its lease expired, or the
    /// shared store lost its data): its connections must start anew.
    Fenced,
    /// The connection's credentials ran out (in token mode, its token's
    /// expiry): the client must reconnect with fresh ones.
    Expired,
    /// An operator disconnected the user ([`Inbox::operator_reason`] says
    /// why).
    Operator,
}

const OPEN: u8 = 0;
const SLOW_CONSUMER: u8 = 1;
const SHUTDOWN: u8 = 2;
const FENCED: u8 = 3;
const EXPIRED: u8 = 4;
const OPERATOR: u8 = 5;

/// State shared by the two halves: who to wake, and whether the server closed
/// the mailbox.
#[derive(Debug, Default)]
struct Signal {
    /// The reader's waker, registered each time it finds the queue empty.
    waker: AtomicWaker,
    /// `OPEN` or the close reason; the first reason set wins.
    closed: AtomicU8,
    /// What the user's removal changed, when the registry removed it on its
    /// own (a slow consumer), kept for the session to report.
    departure: Mutex<Option<Departure>>,
    /// Bytes queued (by [`Message::queued_bytes`]), and the most allowed.
    queued_bytes: AtomicUsize,
    byte_limit: usize,
    /// Messages queued, and the most allowed. Counted here rather than by a
    /// bounded channel, which would allocate every slot up front (16 KiB per
    /// idle connection at the default depth of 1024).
    queued_messages: AtomicUsize,
    message_limit: usize,
    /// Defers the reader's wake-ups for new messages (not for closing).
    ticker: Option<WakeTicker>,
    /// What is kept for a resume once the connection ends; `None` with
    /// resume off.
    resume: Option<ResumeKeep>,
    /// The events the reader asked for besides messages.
    events: EventKinds,
    /// Why an operator disconnected the user, set before the close.
    operator_reason: OnceLock<String>,
}

/// Which messages a mailbox keeps for a resume: every one, or only direct
/// messages when the engine takes a session's group messages from the
/// groups' own logs when the session ends (the embedded engine), which
/// saves touching a per-connection ring for every delivery of a group
/// message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Direct and group messages.
    Every,
    /// Direct messages only.
    DirectOnly,
}

impl Keep {
    fn keeps(self, message: &Message) -> bool {
        self == Keep::Every || message.recipient_kind == ChannelKind::User
    }
}

/// The most recent messages addressed to a connection, queued or already
/// written, for a resume (those its [`Keep`] says). Every message is in exactly one place at any
/// moment the lock is free: still in the queue, in the reader's ring (it
/// moves what it took there under the lock, in one go per delivery, so a
/// message costs no extra reference count), or refused by a full queue.
/// Gathered by [`Outbox::take_recent`] once the connection has ended.
#[derive(Debug)]
struct ResumeKeep {
    kept: Mutex<Kept>,
    limits: ResumeLimits,
    keep: Keep,
    /// The queue's other end, to gather what is still queued at the end.
    queued: Receiver<Item>,
}

/// What the keep holds: see [`ResumeKeep`].
#[derive(Debug, Default)]
struct Kept {
    /// What the reader took, oldest first, within the resume limits.
    written: Recent,
    /// Messages a full queue refused (the connection is being dropped as a
    /// slow consumer): addressed to it all the same.
    refused: Vec<Arc<Message>>,
}

/// The reader's hold on what is kept for a resume while it takes messages
/// for one delivery: what it takes goes into the ring when it is done.
#[derive(Debug)]
pub struct Taking<'a> {
    kept: MutexGuard<'a, Kept>,
    limits: &'a ResumeLimits,
    keep: Keep,
}

impl Taking<'_> {
    /// Keeps the messages of a delivery just built, moving them out of
    /// `batch` (oldest first), but for the first `kept_already` (kept
    /// when they were carried over from the last delivery).
    pub fn keep(&mut self, batch: &mut Vec<Arc<Message>>, kept_already: usize) {
        for message in batch.drain(..).skip(kept_already) {
            if self.keep.keeps(&message) {
                self.kept.written.push(message, self.limits);
            }
        }
    }

    /// Keeps one message taken but not yet written (carried to the next
    /// delivery): a clone, as the reader still holds it.
    pub fn keep_one(&mut self, message: &Arc<Message>) {
        if self.keep.keeps(message) {
            self.kept.written.push(Arc::clone(message), self.limits);
        }
    }
}

/// The sending half, held by the registry. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox {
    sender: Sender<Item>,
    signal: Arc<Signal>,
}

/// The receiving half, held by the connection's stream.
#[derive(Debug)]
pub struct Inbox {
    receiver: Receiver<Item>,
    signal: Arc<Signal>,
}

/// Closes a mailbox without keeping it alive: for a timer that ends a
/// connection at a deadline, and that must not hold a connection that has
/// already ended. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Closer(Weak<Signal>);

impl Closer {
    /// Closes the mailbox for `reason`, as [`Outbox::close`] does; nothing
    /// if the connection has already ended.
    pub fn close(&self, reason: CloseReason) {
        if let Some(signal) = self.0.upgrade() {
            close_signal(&signal, reason);
        }
    }

    /// Whether the connection is still there to be closed.
    pub fn is_live(&self) -> bool {
        self.0.strong_count() > 0
    }
}

/// The queue had no room: the message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// Creates a mailbox that holds at most `capacity` undelivered messages and
/// `byte_limit` bytes of them, and wakes its reader for new messages at once
/// or, with a `ticker`, at its next tick.
pub fn mailbox(capacity: usize, byte_limit: usize, ticker: Option<WakeTicker>) -> (Outbox, Inbox) {
    resumable_mailbox(
        capacity,
        byte_limit,
        ticker,
        ResumeLimits::OFF,
        EventKinds::NONE,
    )
}

/// [`mailbox`], also keeping the most recent messages addressed to the
/// connection (within `resume`) for [`Outbox::take_recent`] when resume is
/// on, for a reader that asked for the `events` kinds besides messages.
pub fn resumable_mailbox(
    capacity: usize,
    byte_limit: usize,
    ticker: Option<WakeTicker>,
    resume: ResumeLimits,
    events: EventKinds,
) -> (Outbox, Inbox) {
    keeping_mailbox(capacity, byte_limit, ticker, resume, events, Keep::Every)
}

/// [`resumable_mailbox`], keeping only the messages `keep` says.
pub fn keeping_mailbox(
    capacity: usize,
    byte_limit: usize,
    ticker: Option<WakeTicker>,
    resume: ResumeLimits,
    events: EventKinds,
    keep: Keep,
) -> (Outbox, Inbox) {
    // Unbounded as a channel, bounded by the counts in `Signal`: it grows
    // in small blocks only when messages are queued.
    let (sender, receiver) = crossbeam_channel::unbounded();
    let signal = Arc::new(Signal {
        byte_limit,
        message_limit: capacity,
        ticker,
        resume: resume.on().then(|| ResumeKeep {
            kept: Mutex::new(Kept::default()),
            limits: resume,
            keep,
            queued: receiver.clone(),
        }),
        events,
        ..Signal::default()
    });
    (
        Outbox {
            sender,
            signal: Arc::clone(&signal),
        },
        Inbox { receiver, signal },
    )
}

impl Outbox {
    /// Queues `message` without waking the reader; call [`Outbox::wake`]
    /// once the batch of pushes is done (and any lock is released).
    ///
    /// # Errors
    /// [`QueueFull`] when the queue has no room. A queue whose reader is gone
    /// accepts and drops the message: the reader's cleanup is on its way.
    /// [`QueueFull`] also when the message would take the queued bytes past
    /// the mailbox's byte limit.
    ///
    /// Every message pushed is also kept for a resume (when resume is on),
    /// queued or not: a message refused here was still addressed to the
    /// connection, and a resume of it replays the message.
    pub fn push(&self, message: Arc<Message>) -> Result<(), QueueFull> {
        // No reference is counted for the keep up front: a refused message
        // comes back from the queue (one shared count per delivery would
        // be touched by every recipient's pusher).
        self.push_item(Item::Message(message)).map_err(|refused| {
            if let (Some(resume), Item::Message(message)) = (&self.signal.resume, refused) {
                lock_kept(resume).refused.push(message);
            }
            QueueFull
        })
    }

    /// Whether the reader asked for events of `kind`.
    pub fn wants(&self, kind: EventKinds) -> bool {
        self.signal.events.wants(kind)
    }

    /// Queues `event` without waking the reader, as [`Outbox::push`] does a
    /// message; the caller checks [`Outbox::wants`] first.
    ///
    /// # Errors
    /// [`QueueFull`], as for a message: events count against the limits.
    pub fn push_event(&self, event: Arc<Event>) -> Result<(), QueueFull> {
        self.push_item(Item::Event(event)).map_err(|_| QueueFull)
    }

    /// Queues a message ([`Outbox::push`]) or an event
    /// ([`Outbox::push_event`]).
    ///
    /// # Errors
    /// [`QueueFull`], as they do.
    pub fn queue(&self, item: Item) -> Result<(), QueueFull> {
        match item {
            Item::Message(message) => self.push(message),
            Item::Event(event) => self.push_event(event),
        }
    }

    /// Queues `item`, or hands it back when the queue has no room for it.
    fn push_item(&self, item: Item) -> Result<(), Item> {
        let signal = &self.signal;
        let size = item.queued_bytes();
        if signal.queued_messages.fetch_add(1, Ordering::AcqRel) >= signal.message_limit {
            signal.queued_messages.fetch_sub(1, Ordering::AcqRel);
            return Err(item);
        }
        if signal.queued_bytes.fetch_add(size, Ordering::AcqRel) + size > signal.byte_limit {
            signal.queued_bytes.fetch_sub(size, Ordering::AcqRel);
            signal.queued_messages.fetch_sub(1, Ordering::AcqRel);
            return Err(item);
        }
        // An unbounded channel only refuses when the reader is gone; its
        // cleanup is on its way, so the message is dropped.
        let _ = self.sender.try_send(item);
        Ok(())
    }

    /// Wakes the reader if it is waiting: at once, or at the ticker's next
    /// tick. Either way a reader is woken once however many messages follow
    /// before it reads: the first wake takes its registered waker.
    pub fn wake(&self) {
        match &self.signal.ticker {
            None => self.signal.waker.wake(),
            Some(ticker) => {
                if let Some(waker) = self.signal.waker.take() {
                    ticker.defer(waker);
                }
            }
        }
    }

    /// Closes the mailbox for `reason` and wakes the reader, which then ends
    /// its stream without draining what is left.
    pub fn close(&self, reason: CloseReason) {
        close_signal(&self.signal, reason);
    }

    /// Closes the mailbox because an operator disconnected the user, for
    /// `reason`; nothing is kept of it for a resume (see
    /// [`Outbox::take_recent`]).
    pub fn close_by_operator(&self, reason: &str) {
        let _ = self.signal.operator_reason.set(reason.to_owned());
        close_signal(&self.signal, CloseReason::Operator);
    }

    /// How many messages, and how many bytes of them, are queued now (for
    /// monitoring: a relaxed read of the two counts the queue keeps anyway).
    pub fn queued(&self) -> (usize, usize) {
        (
            self.signal.queued_messages.load(Ordering::Relaxed),
            self.signal.queued_bytes.load(Ordering::Relaxed),
        )
    }

    /// The messages kept for a resume, oldest first: those the reader took,
    /// then those still queued, then those a full queue refused. Taken once
    /// the connection has ended (nothing is pushed to it any more, and its
    /// reader takes nothing more); `None` with resume off, and for a
    /// connection an operator closed (its session cannot be resumed).
    pub fn take_recent(&self) -> Option<Recent> {
        let resume = self.signal.resume.as_ref()?;
        if self.signal.operator_reason.get().is_some() {
            return None;
        }
        let mut kept = lock_kept(resume);
        let Kept { written, refused } = &mut *kept;
        let mut recent = std::mem::take(written);
        while let Ok(item) = resume.queued.try_recv() {
            if let Item::Message(message) = item {
                if resume.keep.keeps(&message) {
                    recent.push(message, &resume.limits);
                }
            }
        }
        for message in refused.drain(..) {
            recent.push(message, &resume.limits);
        }
        Some(recent)
    }

    /// Keeps what the user's removal changed, for [`Outbox::take_departure`].
    pub fn keep_departure(&self, departure: Departure) {
        *self.departure() = Some(departure);
    }

    /// What the registry's own removal of this user changed, once.
    pub fn take_departure(&self) -> Option<Departure> {
        self.departure().take()
    }

    fn departure(&self) -> std::sync::MutexGuard<'_, Option<Departure>> {
        self.signal
            .departure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn lock_kept(resume: &ResumeKeep) -> MutexGuard<'_, Kept> {
    // Each step leaves the ring consistent: a poisoned lock still is.
    resume.kept.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Marks the mailbox closed for `reason` (the first reason wins) and wakes
/// its reader.
fn close_signal(signal: &Signal, reason: CloseReason) {
    let code = match reason {
        CloseReason::SlowConsumer => SLOW_CONSUMER,
        CloseReason::Shutdown => SHUTDOWN,
        CloseReason::Fenced => FENCED,
        CloseReason::Expired => EXPIRED,
        CloseReason::Operator => OPERATOR,
    };
    let _ = signal
        .closed
        .compare_exchange(OPEN, code, Ordering::AcqRel, Ordering::Acquire);
    signal.waker.wake();
    // The reader's waker may be waiting at the ticker: a close is not
    // held back for the tick.
    if let Some(ticker) = &signal.ticker {
        ticker.flush_now();
    }
}

/// What the reader finds when it looks at its mailbox.
#[derive(Debug)]
pub enum Poll {
    /// The oldest queued message or event.
    Item(Item),
    /// Nothing queued; the waker passed in will be woken on the next change.
    Empty,
    /// The server closed the mailbox.
    Closed(CloseReason),
}

impl Inbox {
    /// Takes the oldest queued message, or reports that the mailbox is
    /// closed, or registers `waker` to be woken when either changes. The
    /// close check comes first: a closed mailbox is not drained.
    pub fn poll(&self, waker: &Waker) -> Poll {
        if let Some(reason) = self.close_reason() {
            return Poll::Closed(reason);
        }
        if let Some(item) = self.try_take() {
            return Poll::Item(item);
        }
        self.signal.waker.register(waker);
        // Re-check after registering: a push or close that raced with the
        // registration has already fired its wake on the old waker.
        if let Some(reason) = self.close_reason() {
            return Poll::Closed(reason);
        }
        match self.try_take() {
            Some(item) => Poll::Item(item),
            None => Poll::Empty,
        }
    }

    /// Takes the oldest queued message or event if there is one, without
    /// registering for wake-ups.
    pub fn try_take(&self) -> Option<Item> {
        // Empty or disconnected alike: nothing to take.
        let item = self.receiver.try_recv().ok()?;
        self.signal
            .queued_bytes
            .fetch_sub(item.queued_bytes(), Ordering::AcqRel);
        self.signal.queued_messages.fetch_sub(1, Ordering::AcqRel);
        Some(item)
    }

    /// The hold on what is kept for a resume, for the reader to take one
    /// delivery's messages under (`None` with resume off): nothing is
    /// gathered for a resume while it is held.
    pub fn taking(&self) -> Option<Taking<'_>> {
        let resume = self.signal.resume.as_ref()?;
        Some(Taking {
            kept: lock_kept(resume),
            limits: &resume.limits,
            keep: resume.keep,
        })
    }

    /// How many messages are waiting.
    pub fn queued(&self) -> usize {
        self.receiver.len()
    }

    /// The reason the server closed this mailbox, if it did.
    pub fn close_reason(&self) -> Option<CloseReason> {
        match self.signal.closed.load(Ordering::Acquire) {
            SLOW_CONSUMER => Some(CloseReason::SlowConsumer),
            SHUTDOWN => Some(CloseReason::Shutdown),
            FENCED => Some(CloseReason::Fenced),
            EXPIRED => Some(CloseReason::Expired),
            OPERATOR => Some(CloseReason::Operator),
            _ => None,
        }
    }

    /// Why an operator disconnected the user, once it has.
    pub fn operator_reason(&self) -> Option<&str> {
        self.signal.operator_reason.get().map(String::as_str)
    }

    /// A handle that closes this mailbox without keeping it alive.
    pub fn closer(&self) -> Closer {
        Closer(Arc::downgrade(&self.signal))
    }
}
