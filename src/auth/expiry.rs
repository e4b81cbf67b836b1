//! Ends each Connect stream when its token runs out: one thread for the
//! whole server keeps a min-heap of (deadline, mailbox) and, when the
//! earliest deadline comes, closes that mailbox with
//! [`CloseReason::Expired`], the same path a shutdown or a slow consumer
//! takes; the stream then ends with UNAUTHENTICATED "token expired". No
//! thread or timer per connection. A heap entry holds a [`Closer`], which
//! does not keep its connection alive: an entry whose stream already ended
//! closes nothing, and such entries are dropped in bulk whenever the heap
//! has doubled since the last sweep. This module knows nothing of tokens'
//! contents or of gRPC.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use crate::domain::{CloseReason, Closer};

/// Fewest entries the heap holds before it is swept for ended streams.
const SWEEP_FLOOR: usize = 1024;

/// A handle to the timer thread. Cheap to clone; the thread stops when the
/// last clone is dropped.
#[derive(Debug, Clone)]
pub struct ExpiryTimer {
    owner: Arc<Owner>,
}

/// Stops the thread when dropped.
#[derive(Debug)]
struct Owner {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when an entry becomes the earliest, or on stop.
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Every watched stream, earliest deadline on top.
    due: BinaryHeap<Reverse<Entry>>,
    /// Ties deadlines in arrival order.
    next_seq: u64,
    /// The heap's size after the last sweep of ended streams.
    swept_at: usize,
    /// Every handle is gone: exit.
    stopping: bool,
}

/// One watched stream.
#[derive(Debug)]
struct Entry {
    at: Instant,
    seq: u64,
    closer: Closer,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned lock is still sound.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self) {
        let mut expired = Vec::new();
        let mut state = self.lock();
        loop {
            if state.stopping {
                return;
            }
            let now = Instant::now();
            while state.due.peek().is_some_and(|entry| entry.0.at <= now) {
                if let Some(Reverse(entry)) = state.due.pop() {
                    expired.push(entry.closer);
                }
            }
            if !expired.is_empty() {
                // Close outside the lock: a close wakes a reader.
                drop(state);
                for closer in expired.drain(..) {
                    closer.close(CloseReason::Expired);
                }
                state = self.lock();
                continue;
            }
            state = match state.due.peek().map(|entry| entry.0.at) {
                Some(at) => {
                    self.changed
                        .wait_timeout(state, at.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

impl ExpiryTimer {
    /// Starts the timer thread.
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn start() -> std::io::Result<ExpiryTimer> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("chat-token-expiry".into())
                .spawn(move || shared.run())?
        };
        Ok(ExpiryTimer {
            owner: Arc::new(Owner {
                shared,
                thread: Some(thread),
            }),
        })
    }

    /// Closes `closer`'s mailbox with [`CloseReason::Expired`] at `at` (at
    /// once if it has passed); never, if `at` is `None` (beyond the clock).
    pub fn close_at(&self, at: Option<SystemTime>, closer: Closer) {
        let Some(at) = at else { return };
        let left = at.duration_since(SystemTime::now()).unwrap_or_default();
        let Some(at) = Instant::now().checked_add(left) else {
            return;
        };
        let shared = &self.owner.shared;
        let mut state = shared.lock();
        if state.due.len() >= SWEEP_FLOOR.max(2 * state.swept_at) {
            state.due.retain(|entry| entry.0.closer.is_live());
            state.swept_at = state.due.len();
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        let earliest = state.due.peek().is_none_or(|first| at < first.0.at);
        state.due.push(Reverse(Entry { at, seq, closer }));
        drop(state);
        if earliest {
            shared.changed.notify_one();
        }
    }

    /// How many streams are watched (ended ones not yet swept included).
    pub fn watched(&self) -> usize {
        self.owner.shared.lock().due.len()
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.changed.notify_one();
        if let Some(thread) = self.thread.take() {
            // The thread only waits and closes mailboxes; it cannot fail to
            // finish.
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::mailbox::mailbox;

    #[test]
    fn a_passed_deadline_closes_the_mailbox_as_expired() {
        let timer = ExpiryTimer::start().unwrap();
        let (_outbox, inbox) = mailbox(8, 1 << 20, None);
        timer.close_at(Some(SystemTime::now()), inbox.closer());
        let deadline = Instant::now() + Duration::from_secs(10);
        while inbox.close_reason().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(inbox.close_reason(), Some(CloseReason::Expired));
    }

    #[test]
    fn a_far_deadline_closes_nothing_and_an_ended_stream_is_swept() {
        let timer = ExpiryTimer::start().unwrap();
        let far = SystemTime::now() + Duration::from_secs(3600);
        let (_outbox, kept) = mailbox(8, 1 << 20, None);
        timer.close_at(Some(far), kept.closer());
        timer.close_at(None, kept.closer());
        assert_eq!(timer.watched(), 1);
        for _ in 0..SWEEP_FLOOR {
            let (_outbox, ended) = mailbox(8, 1 << 20, None);
            timer.close_at(Some(far), ended.closer());
        }
        // The push past the floor swept the ended streams first.
        assert_eq!(timer.watched(), 2);
        assert_eq!(kept.close_reason(), None);
    }
}
