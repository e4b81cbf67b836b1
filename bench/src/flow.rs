//! Flow control on the sending side. A [`Flow`] counts, for each message a
//! sender has started, how many of its recipients have not received it yet;
//! a message is *done* once every recipient has it (or its send failed).
//! Senders keep `started - done` under a window, so the messages the server
//! holds for any one recipient never exceed that window and the bench never
//! trips the server's slow-consumer rule, however slowly it reads.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use futures::task::AtomicWaker;

/// See the module documentation.
#[derive(Debug)]
pub struct Flow {
    /// Per message index: receipts still expected.
    remaining: Box<[AtomicU32]>,
    /// Messages started (their index is below this).
    started: AtomicU64,
    /// Messages received by every recipient, or failed.
    done: AtomicU64,
    /// The sender waiting for room in the window, if any.
    waker: AtomicWaker,
}

impl Flow {
    /// A flow for at most `capacity` messages.
    pub fn new(capacity: usize) -> Flow {
        Flow {
            remaining: (0..capacity).map(|_| AtomicU32::new(0)).collect(),
            started: AtomicU64::new(0),
            done: AtomicU64::new(0),
            waker: AtomicWaker::new(),
        }
    }

    /// How many messages this flow can hold.
    pub fn capacity(&self) -> usize {
        self.remaining.len()
    }

    /// Records that message `idx` is about to be sent to `recipients`
    /// recipients. Call before the send starts.
    pub fn begin(&self, idx: u32, recipients: u32) {
        if let Some(slot) = self.remaining.get(idx as usize) {
            slot.store(recipients, Ordering::Release);
        }
        self.started.fetch_add(1, Ordering::AcqRel);
        if recipients == 0 {
            self.finish_one();
        }
    }

    /// Records one receipt of message `idx`; false if none was expected (a
    /// duplicate, or a message this flow does not know).
    pub fn received(&self, idx: u32) -> bool {
        let Some(slot) = self.remaining.get(idx as usize) else {
            return false;
        };
        match slot.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1)) {
            Ok(1) => {
                self.finish_one();
                true
            }
            Ok(_) => true,
            Err(_) => false,
        }
    }

    /// Records that the send of message `idx` failed: no receipts will come.
    pub fn failed(&self, idx: u32) {
        if let Some(slot) = self.remaining.get(idx as usize) {
            if slot.swap(0, Ordering::AcqRel) > 0 {
                self.finish_one();
            }
        }
    }

    fn finish_one(&self) {
        self.done.fetch_add(1, Ordering::AcqRel);
        self.waker.wake();
    }

    /// Messages started and not yet done.
    pub fn outstanding(&self) -> u64 {
        let done = self.done.load(Ordering::Acquire);
        self.started.load(Ordering::Acquire).saturating_sub(done)
    }

    /// Registers the task to wake when a message becomes done.
    pub fn register(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
    }

    /// Wakes the waiting sender, if any (used to deliver an abort).
    pub fn wake(&self) {
        self.waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_done_when_every_recipient_has_it() {
        let flow = Flow::new(4);
        flow.begin(0, 3);
        flow.begin(1, 1);
        assert_eq!(flow.outstanding(), 2);
        assert!(flow.received(0));
        assert!(flow.received(0));
        assert_eq!(flow.outstanding(), 2);
        assert!(flow.received(0));
        assert_eq!(flow.outstanding(), 1);
        assert!(!flow.received(0), "a fourth receipt is a duplicate");
        flow.failed(1);
        assert_eq!(flow.outstanding(), 0);
        assert!(!flow.received(9));
    }
}
