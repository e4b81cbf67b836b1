//! Deferred wake-ups for `--write-delay`: one thread that, every `period`,
//! wakes every reader handed to it since its last tick. A mailbox with a
//! ticker gives its reader's waker here instead of waking it at once, so
//! messages that arrive meanwhile are written together, and the wake-ups
//! of all connections that became ready during a period cost one timer
//! thread tick instead of one timer per connection. A mailbox close flushes
//! it, so an ending stream never waits for the tick. A ticker started
//! [`WakeTicker::under_load`] defers only while the waking thread is busy
//! (it woke more than [`BUSY_WAKES_PER_MS`] readers in its last millisecond
//! or so); an idle server's lone message is woken at once. While the waking
//! thread is also saturated (on the CPU [`SATURATED_SHARE`] of that time or
//! more), its wake-ups wait [`SATURATED_TICKS`] ticks instead of one: a
//! server that cannot keep up writes fewer, fuller deliveries, which costs
//! it and its clients less per message, and its latency is its queue's
//! anyway. The thread sleeps while
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

/// A busy thread on the CPU at least this share of the time (averaged over
/// its last windows, each weighing `SHARE_WEIGHT`) is saturated: its
/// wake-ups wait [`SATURATED_TICKS`] ticks.
pub const SATURATED_SHARE: f64 = 0.85;

/// The weight of a window's CPU share in the thread's running average.
const SHARE_WEIGHT: f64 = 0.125;

/// How many ticks a saturated thread's wake-ups wait.
pub const SATURATED_TICKS: u32 = 5;

/// How often a thread reads the clock to close its window: every this many
/// wake-ups, so the meter costs no clock read per recipient.
const WAKES_PER_CLOCK_READ: u32 = 16;

/// How loaded the thread making a wake-up is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    /// Fewer than [`BUSY_WAKES_PER_MS`] wake-ups a millisecond.
    Idle,
    /// Busy, with time to spare.
    Busy,
    /// Busy and on the CPU [`SATURATED_SHARE`] of the time or more.
    Saturated,
}

/// One thread's count of the wake-ups it made in its current window, and
/// its CPU time when the window started.
#[derive(Clone, Copy)]
struct Meter {
    window_start: Option<(Instant, Duration)>,
    wakes: u32,
    /// The running average of the share of its windows the thread spent on
    /// the CPU.
    share: f64,
    load: Load,
}

thread_local! {
    static METER: Cell<Meter> = const {
        Cell::new(Meter { window_start: None, wakes: 0, share: 0.0, load: Load::Idle })
    };
}

/// The CPU time this thread has used; zero if the clock cannot be read.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
        return Duration::ZERO;
    }
    let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(now.tv_nsec).unwrap_or(0);
    Duration::new(seconds, nanos)
}

/// Counts one wake-up on this thread; how loaded the thread is.
fn load_after_one_more_wake() -> Load {
    METER.with(|cell| {
        let mut meter = cell.get();
        meter.wakes += 1;
        if meter.wakes % WAKES_PER_CLOCK_READ == 0 || meter.window_start.is_none() {
            let now = Instant::now();
            let (start, cpu_start) = match meter.window_start {
                Some(start) => start,
                None => {
                    let start = (now, thread_cpu_time());
                    meter.window_start = Some(start);
                    start
                }
            };
            let elapsed = now.saturating_duration_since(start);
            if elapsed >= Duration::from_millis(1) {
                // The window's rate, per millisecond.
                let per_ms = u128::from(meter.wakes) * 1_000_000 / elapsed.as_nanos().max(1);
                let cpu = thread_cpu_time();
                let share = cpu.saturating_sub(cpu_start).as_secs_f64() / elapsed.as_secs_f64();
                meter.share += (share.min(1.0) - meter.share) * SHARE_WEIGHT;
                meter.load = if per_ms < u128::from(BUSY_WAKES_PER_MS) {
                    Load::Idle
                } else if meter.share >= SATURATED_SHARE {
                    Load::Saturated
                } else {
                    Load::Busy
                };
                meter.wakes = 0;
                meter.window_start = Some((now, cpu));
            }
        }
        cell.set(meter);
        meter.load
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
    /// Readers deferred by a saturated thread: woken at the
    /// [`SATURATED_TICKS`]th tick since the first of them came.
    saturated: Vec<Waker>,
    /// Ticks since `saturated` stopped being empty.
    saturated_ticks: u32,
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
            while due.wakers.is_empty() && due.saturated.is_empty() && !due.stopping {
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
            std::mem::swap(&mut due.wakers, &mut ready);
            if !due.saturated.is_empty() {
                due.saturated_ticks += 1;
                if due.saturated_ticks >= SATURATED_TICKS || stopping || due.flush {
                    ready.append(&mut due.saturated);
                    due.saturated_ticks = 0;
                }
            }
            due.flush = false;
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
    /// under-load ticker: at once unless this thread is busy, and at the
    /// [`SATURATED_TICKS`]th tick while it is saturated).
    pub fn defer(&self, waker: Waker) {
        let shared = &self.owner.shared;
        let load = if shared.under_load {
            load_after_one_more_wake()
        } else {
            Load::Busy
        };
        if load == Load::Idle {
            waker.wake();
            return;
        }
        let mut due = shared.lock();
        if load == Load::Saturated {
            due.saturated.push(waker);
        } else {
            due.wakers.push(waker);
        }
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
        if due.wakers.is_empty() && due.saturated.is_empty() {
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
    fn a_saturated_thread_s_wakes_wait_longer_and_all_arrive() {
        let ticker = WakeTicker::under_load(Duration::from_secs(3600)).unwrap();
        let count = Arc::new(Count::default());
        // A thread that has been on the CPU all along (set here, so a
        // machine busy with other tests cannot make it look otherwise);
        // deferring without pause keeps it busy.
        METER.with(|cell| {
            cell.set(Meter {
                share: 1.0,
                ..cell.get()
            });
        });
        let started = std::time::Instant::now();
        let mut deferred = 0;
        while ticker.owner.shared.lock().saturated.is_empty()
            && started.elapsed() < Duration::from_secs(10)
        {
            ticker.defer(Waker::from(Arc::clone(&count)));
            deferred += 1;
        }
        let due = ticker.owner.shared.lock();
        assert_eq!(
            due.saturated.len(),
            1,
            "a saturated thread's wake waits longer"
        );
        drop(due);
        // A flush (a closing mailbox) wakes both kinds at once.
        ticker.flush_now();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while count.0.load(Ordering::SeqCst) < deferred && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(count.0.load(Ordering::SeqCst), deferred);
    }

    #[test]
    fn saturated_wakes_come_at_the_saturated_tick() {
        let ticker = WakeTicker::start(Duration::from_millis(20)).unwrap();
        let count = Arc::new(Count::default());
        // As a saturated thread would have deferred it.
        {
            let mut due = ticker.owner.shared.lock();
            due.saturated.push(Waker::from(Arc::clone(&count)));
            due.idle = false;
        }
        ticker.owner.shared.wanted.notify_one();
        let started = std::time::Instant::now();
        let deadline = started + Duration::from_secs(10);
        while count.0.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        // Not before SATURATED_TICKS - 1 whole ticks.
        assert!(started.elapsed() >= Duration::from_millis(20) * (SATURATED_TICKS - 1));
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
