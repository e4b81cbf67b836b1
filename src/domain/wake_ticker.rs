//! Deferred wake-ups for `--write-delay`: one thread that, every `period`,
//! wakes every reader handed to it since its last tick. A mailbox with a
//! ticker gives its reader's waker here instead of waking it at once, so
//! messages that arrive meanwhile are written together, and the wake-ups
//! of all connections that became ready during a period cost one timer
//! thread tick instead of one timer per connection. A mailbox close flushes
//! it, so an ending stream never waits for the tick. A ticker started
//! [`WakeTicker::under_load`] defers only while the waking thread is busy
//! (it woke more than [`BUSY_WAKES_PER_MS`] readers in its last millisecond
//! or so); an idle server's lone message is woken at once. The thread sleeps while
//! nothing is waiting, and wakes what is left and exits when the last
//! handle is dropped. This module knows nothing of gRPC.

use std::cell::Cell;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A handle to the ticker thread. Cheap to clone; the thread stops when the
/// last clone is dropped.
#[derive(Debug, Clone)]
pub struct WakeTicker {
    owner: Arc<Owner>,
}

/// Stops the thread when dropped, after waking whatever is still waiting.
#[derive(Debug)]
struct Owner {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A thread that woke at least this many readers in its last window of
/// about a millisecond is busy: an under-load ticker defers its wake-ups.
pub const BUSY_WAKES_PER_MS: u32 = 32;

/// How often a thread reads the clock to close its window: every this many
/// wake-ups, so the meter costs no clock read per recipient.
const WAKES_PER_CLOCK_READ: u32 = 16;

/// One thread's count of the wake-ups it made in its current window.
#[derive(Clone, Copy)]
struct Meter {
    window_start: Option<Instant>,
    wakes: u32,
    busy: bool,
}

thread_local! {
    static METER: Cell<Meter> = const {
        Cell::new(Meter { window_start: None, wakes: 0, busy: false })
    };
}

/// Counts one wake-up on this thread; whether the thread is busy.
fn busy_after_one_more_wake() -> bool {
    METER.with(|cell| {
        let mut meter = cell.get();
        meter.wakes += 1;
        if meter.wakes % WAKES_PER_CLOCK_READ == 0 || meter.window_start.is_none() {
            let now = Instant::now();
            let start = *meter.window_start.get_or_insert(now);
            let elapsed = now.saturating_duration_since(start);
            if elapsed >= Duration::from_millis(1) {
                // The window's rate, per millisecond.
                let per_ms = u128::from(meter.wakes) * 1_000_000 / elapsed.as_nanos().max(1);
                meter.busy = per_ms >= u128::from(BUSY_WAKES_PER_MS);
                meter.wakes = 0;
                meter.window_start = Some(now);
            }
        }
        cell.set(meter);
        meter.busy
    })
}

#[derive(Debug)]
struct Shared {
    period: Duration,
    /// Defer only while the waking thread is busy.
    under_load: bool,
    state: Mutex<Due>,
    /// Signalled when the first waker arrives at an idle ticker, or on stop.
    wanted: Condvar,
}

#[derive(Debug, Default)]
struct Due {
    /// Readers to wake at the next tick.
    wakers: Vec<Waker>,
    /// The thread is waiting on `wanted` (nothing was due).
    idle: bool,
    /// Wake what is due now rather than at the tick (set by
    /// [`WakeTicker::flush_now`]).
    flush: bool,
    /// Every handle is gone: wake what is due and exit.
    stopping: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Due> {
        // Nothing panics while holding it; a poisoned lock is still sound.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self) {
        let mut ready = Vec::new();
        loop {
            let mut due = self.lock();
            while due.wakers.is_empty() && !due.stopping {
                due.idle = true;
                due = self
                    .wanted
                    .wait(due)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            due.idle = false;
            // Something is due: let more collect for one period (cut short
            // by a stop), then wake everything that arrived meanwhile,
            // outside the lock.
            let deadline = Instant::now() + self.period;
            while !due.stopping && !due.flush {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                due = self
                    .wanted
                    .wait_timeout(due, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            let stopping = due.stopping;
            due.flush = false;
            std::mem::swap(&mut due.wakers, &mut ready);
            drop(due);
            ready.drain(..).for_each(Waker::wake);
            if stopping {
                return;
            }
        }
    }
}

impl WakeTicker {
    /// Starts the ticker thread, which wakes what it is given after at most
    /// `period`.
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn start(period: Duration) -> std::io::Result<WakeTicker> {
        WakeTicker::spawn(period, false)
    }

    /// Starts a ticker that defers a wake-up only while the thread making
    /// it is busy (see [`BUSY_WAKES_PER_MS`]), for at most `period`; other
    /// wake-ups happen at once.
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn under_load(period: Duration) -> std::io::Result<WakeTicker> {
        WakeTicker::spawn(period, true)
    }

    fn spawn(period: Duration, under_load: bool) -> std::io::Result<WakeTicker> {
        let shared = Arc::new(Shared {
            period,
            under_load,
            state: Mutex::new(Due::default()),
            wanted: Condvar::new(),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("chat-write-tick".into())
                .spawn(move || shared.run())?
        };
        Ok(WakeTicker {
            owner: Arc::new(Owner {
                shared,
                thread: Some(thread),
            }),
        })
    }

    /// Wakes `waker` at the next tick, at most one period from now (for an
    /// under-load ticker: at once unless this thread is busy).
    pub fn defer(&self, waker: Waker) {
        let shared = &self.owner.shared;
        if shared.under_load && !busy_after_one_more_wake() {
            waker.wake();
            return;
        }
        let mut due = shared.lock();
        due.wakers.push(waker);
        let start = due.idle;
        due.idle = false;
        drop(due);
        if start {
            shared.wanted.notify_one();
        }
    }

    /// Wakes everything due now instead of at the next tick: for a reader
    /// whose mailbox was closed while its wake-up waits here.
    pub fn flush_now(&self) {
        let shared = &self.owner.shared;
        let mut due = shared.lock();
        if due.wakers.is_empty() {
            return;
        }
        due.flush = true;
        drop(due);
        shared.wanted.notify_one();
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.wanted.notify_one();
        let thread = self.thread.take();
        // A wake-up run by the thread itself may drop the last handle; the
        // thread then finishes on its own after this wake-up round.
        if let Some(thread) = thread.filter(|t| t.thread().id() != std::thread::current().id()) {
            // The thread only sleeps and wakes; it cannot fail to finish.
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_deferred_wake_waits_for_the_tick_and_stopping_delivers_it() {
        // A period no test run reaches: the wake can only come from the stop.
        let ticker = WakeTicker::start(Duration::from_secs(3600)).unwrap();
        let count = Arc::new(Count::default());
        ticker.defer(Waker::from(Arc::clone(&count)));
        ticker.defer(Waker::from(Arc::clone(&count)));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        drop(ticker);
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn flush_now_wakes_what_is_due_without_waiting_for_the_tick() {
        let ticker = WakeTicker::start(Duration::from_secs(3600)).unwrap();
        let count = Arc::new(Count::default());
        ticker.flush_now();
        ticker.defer(Waker::from(Arc::clone(&count)));
        ticker.flush_now();
        // Only the flush can wake it before the hour is up.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while count.0.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn under_load_a_lone_wake_is_at_once_and_a_burst_waits_for_the_tick() {
        let ticker = WakeTicker::under_load(Duration::from_secs(3600)).unwrap();
        let count = Arc::new(Count::default());
        // Idle: at once.
        ticker.defer(Waker::from(Arc::clone(&count)));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        // A burst far above the busy rate: once the meter has seen a
        // millisecond of it, wakes wait for the tick (here: the stop).
        let started = std::time::Instant::now();
        let mut woken_at_once = 0;
        let mut deferred = 0;
        while deferred == 0 && started.elapsed() < Duration::from_secs(10) {
            let before = count.0.load(Ordering::SeqCst);
            ticker.defer(Waker::from(Arc::clone(&count)));
            if count.0.load(Ordering::SeqCst) > before {
                woken_at_once += 1;
            } else {
                deferred += 1;
            }
        }
        assert_eq!(deferred, 1, "a busy thread's wake is deferred");
        drop(ticker);
        assert_eq!(count.0.load(Ordering::SeqCst), 1 + woken_at_once + deferred);
    }

    #[test]
    fn every_deferred_wake_arrives_across_ticks() {
        let ticker = WakeTicker::start(Duration::from_millis(1)).unwrap();
        let count = Arc::new(Count::default());
        for _ in 0..20 {
            ticker.defer(Waker::from(Arc::clone(&count)));
            std::thread::sleep(Duration::from_millis(2));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while count.0.load(Ordering::SeqCst) < 20 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(count.0.load(Ordering::SeqCst), 20);
    }
}
