//! Keeps the chat's inbox stream open: reads it into the app (messages,
//! membership changes and typing notices: every connect, reconnects
//! included, asks for [`EVENTS`]), and when it ends with a status worth
//! retrying (the server went away, the connection dropped, the client read
//! too slowly) connects again on a thread of its own, with exponential backoff and jitter ([`Backoff`], at most 30 s),
//! resuming the old session with its token and the last message id
//! received; then has the app rejoin its groups and catch up. The loops of
//! `tui` and `lines` wait on it and on their own input at once
//! ([`Link::next`]), so nothing typed waits for the network; it also wakes
//! them when a typing notice is to leave the status line.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use chat_proto::chat::{Connected, EventType, ResumeRequest, ResumeStatus};
use crossbeam_channel::{at, never, select, Receiver, RecvError};
use grpcio::{RpcStatus, RpcStatusCode};

use super::app::{App, Resume};
use super::session::{describe_status, incoming, membership, typing, Session};
use super::tui::run_effects;
use crate::api::{Api, Inbox, InboxEvent};

/// The events every stream of the chat asks for besides messages.
pub const EVENTS: &[EventType] = &[
    EventType::EVENT_TYPE_MEMBERSHIP,
    EventType::EVENT_TYPE_TYPING,
];

/// How long a reconnect may take to reach the server.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a reconnect waits for `connected` once the server is reached.
const CONNECTED_TIMEOUT: Duration = Duration::from_secs(10);

/// The waits between reconnect attempts: twice as long after each failed
/// one, from [`Backoff::FIRST`] up to [`Backoff::MOST`], each shortened by
/// a random part of up to half, so that clients that lost the same server
/// do not all come back in the same instant.
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    /// Attempts since the last success.
    failures: u32,
}

impl Backoff {
    /// The longest first wait.
    pub const FIRST: Duration = Duration::from_millis(250);
    /// The longest wait.
    pub const MOST: Duration = Duration::from_secs(30);

    /// The wait before the next attempt; `jitter` (0 to 1) is the random
    /// part, 1 halving it.
    pub fn next(&mut self, jitter: f64) -> Duration {
        let doubling = 2u32.saturating_pow(self.failures);
        let ceiling = Backoff::FIRST.saturating_mul(doubling).min(Backoff::MOST);
        self.failures = self.failures.saturating_add(1);
        ceiling.mul_f64(1.0 - jitter.clamp(0.0, 1.0) / 2.0)
    }

    /// Connected again: the next loss starts from the shortest wait.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A number from 0 to 1 that differs from call to call (std's hasher keys
/// are random per process and per call; nothing here needs more).
fn jitter() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos()),
    );
    // The top 53 bits, as a fraction.
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether a stream that ended with `code` is worth connecting again for.
/// UNAVAILABLE (shutdown, a dropped connection) and the other transport
/// outcomes are; so is RESOURCE_EXHAUSTED, the slow-consumer end: the
/// resume replays what the full queue held. A refusal of this user
/// (UNAUTHENTICATED: an expired token; PERMISSION_DENIED; ALREADY_EXISTS:
/// the name was taken over) would only be refused again.
pub fn reconnects_after(code: RpcStatusCode) -> bool {
    matches!(
        code,
        RpcStatusCode::OK
            | RpcStatusCode::UNAVAILABLE
            | RpcStatusCode::RESOURCE_EXHAUSTED
            | RpcStatusCode::CANCELLED
            | RpcStatusCode::DEADLINE_EXCEEDED
            | RpcStatusCode::ABORTED
            | RpcStatusCode::INTERNAL
            | RpcStatusCode::UNKNOWN
    )
}

/// Whether a reconnect refused with `code` is worth trying again. Besides
/// the transport outcomes: RESOURCE_EXHAUSTED (the server is full for
/// now) and ALREADY_EXISTS (the server has not yet noticed that the old
/// connection is dead, and still holds the name until its keepalive does).
pub fn retries_after(code: RpcStatusCode) -> bool {
    code == RpcStatusCode::ALREADY_EXISTS || reconnects_after(code)
}

/// Why a reconnect attempt failed.
enum Refused {
    /// Worth another attempt: why this one failed.
    Retry(String),
    /// Not: why.
    GiveUp(String),
}

/// What a reconnect attempt brings back: the fresh connection, its open
/// inbox and its `connected` event.
type Attempt = Result<(Api, Inbox, Connected), Refused>;

/// The inbox stream of one user, kept open.
pub struct Link {
    user: String,
    /// Makes the app's calls, on the current connection.
    session: Session,
    /// The open stream; `None` while reconnecting or once lost.
    inbox: Option<Inbox>,
    /// The current session's resume token (empty: the server offers none).
    token: String,
    /// The server's epoch when the stream opened: a change means its ids
    /// and tokens of before mean nothing.
    epoch: String,
    /// The id of the last message received on a stream (0: none yet, in
    /// this epoch): where a resume starts.
    last_id: u64,
    backoff: Backoff,
    /// When the next attempt starts, while waiting for it.
    retry_at: Option<Instant>,
    /// The attempt under way, while there is one.
    attempt: Option<Receiver<Attempt>>,
}

impl Link {
    /// A link over the stream `inbox` that `api` opened for `user`, whose
    /// `connected` event was `connected`.
    pub fn new(api: Api, user: &str, inbox: Inbox, connected: Connected) -> Link {
        Link {
            user: user.to_owned(),
            session: Session::new(api, user),
            inbox: Some(inbox),
            token: connected.resume_token,
            epoch: connected.epoch,
            last_id: 0,
            backoff: Backoff::default(),
            retry_at: None,
            attempt: None,
        }
    }

    /// Makes the app's calls.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Waits for `other` (the person's keys or lines) and, meanwhile, for
    /// the stream, the reconnect timer and attempts and the end of a typing
    /// notice, taking those into `app`. Returns what `other` gave, or `None` after a link event
    /// (the screen may have changed).
    pub fn next<T>(&mut self, app: &mut App, other: &Receiver<T>) -> Option<Result<T, RecvError>> {
        let events = self
            .inbox
            .as_ref()
            .map_or_else(never, |inbox| inbox.events().clone());
        let timer = self.retry_at.map_or_else(never, at);
        let attempt = self.attempt.clone().unwrap_or_else(never);
        let typing_ends = app.typing_deadline().map_or_else(never, at);
        select! {
            recv(other) -> item => return Some(item),
            recv(events) -> event => self.take_event(app, event),
            recv(timer) -> _ => {
                self.retry_at = None;
                self.start_attempt();
            }
            recv(attempt) -> result => {
                self.attempt = None;
                let result = result.unwrap_or_else(|_| {
                    Err(Refused::Retry("the connect attempt stopped".to_owned()))
                });
                self.attempted(app, result);
            }
            recv(typing_ends) -> _ => app.expire_typing(Instant::now()),
        }
        None
    }

    /// One event of the stream (or the news that its channel closed).
    fn take_event(&mut self, app: &mut App, event: Result<InboxEvent, RecvError>) {
        match event {
            Ok(InboxEvent::Messages(messages)) => {
                if let Some(last) = messages.last() {
                    self.last_id = last.id;
                }
                app.incoming(messages.into_iter().map(incoming).collect());
            }
            Ok(InboxEvent::Membership(change)) => {
                // A kind this client does not know is skipped.
                if let Some(change) = membership(change) {
                    app.membership(change);
                }
            }
            Ok(InboxEvent::Typing(notice)) => app.typing(typing(notice), Instant::now()),
            Ok(InboxEvent::Connected(_)) => {}
            Ok(InboxEvent::Ended(status)) => {
                let reason = format!("the server ended the session: {}", describe_status(&status));
                self.ended(app, status.code(), reason);
            }
            Err(_) => {
                let reason = "the connection to the server was lost".to_owned();
                self.ended(app, RpcStatusCode::UNAVAILABLE, reason);
            }
        }
    }

    fn ended(&mut self, app: &mut App, code: RpcStatusCode, reason: String) {
        self.inbox = None;
        if reconnects_after(code) {
            app.reconnecting(reason);
            self.retry_at = Some(Instant::now() + self.backoff.next(jitter()));
        } else {
            app.disconnected(reason);
        }
    }

    /// Starts connecting again on a thread of its own.
    fn start_attempt(&mut self) {
        let (done, result) = crossbeam_channel::bounded(1);
        let api = self.session.api().clone();
        let user = self.user.clone();
        let resume = (!self.token.is_empty()).then(|| {
            let mut resume = ResumeRequest::new();
            resume.token = self.token.clone();
            resume.after_id = self.last_id;
            resume
        });
        std::thread::spawn(move || {
            // The chat may have quit meanwhile: then nobody takes it.
            let _ = done.send(attempt(&api, &user, resume));
        });
        self.attempt = Some(result);
    }

    fn attempted(&mut self, app: &mut App, result: Attempt) {
        match result {
            Ok((api, inbox, connected)) => self.reconnected(app, api, inbox, connected),
            Err(Refused::Retry(why)) => {
                let wait = self.backoff.next(jitter());
                self.retry_at = Some(Instant::now() + wait);
                app.retrying(&why, wait);
            }
            Err(Refused::GiveUp(why)) => app.disconnected(why),
        }
    }

    /// The stream is open again: the app learns what the resume gave and
    /// rejoins its groups and catches up, on the new connection.
    fn reconnected(&mut self, app: &mut App, api: Api, inbox: Inbox, connected: Connected) {
        let asked = !self.token.is_empty();
        let new_epoch = connected.epoch != self.epoch;
        if new_epoch {
            self.last_id = 0;
        }
        let resume = match connected.resume_status.enum_value() {
            Ok(ResumeStatus::RESUME_STATUS_RESUMED) => Resume::Resumed,
            Ok(ResumeStatus::RESUME_STATUS_GAP) => Resume::Gap,
            Ok(ResumeStatus::RESUME_STATUS_UNSPECIFIED) if !asked => Resume::NotOffered,
            // UNKNOWN, no answer to a resume asked, or a status this client
            // does not know: nothing can be taken as resumed.
            Ok(ResumeStatus::RESUME_STATUS_UNKNOWN | ResumeStatus::RESUME_STATUS_UNSPECIFIED)
            | Err(_) => Resume::Unknown,
        };
        self.token = connected.resume_token;
        self.epoch = connected.epoch;
        self.session = Session::new(api, &self.user);
        self.inbox = Some(inbox);
        self.backoff.reset();
        for effect in app.reconnected(resume, new_epoch) {
            run_effects(app, &self.session, Some(effect));
        }
    }
}

/// One reconnect attempt: a fresh connection to the server, and the stream
/// opened on it.
fn attempt(api: &Api, user: &str, resume: Option<ResumeRequest>) -> Attempt {
    let api = api.reconnect(REACH_TIMEOUT).map_err(Refused::Retry)?;
    let (inbox, connected) = api
        .open_session_with(user, resume, EVENTS, CONNECTED_TIMEOUT)
        .map_err(|status: RpcStatus| {
            let why = format!("the server refused: {}", describe_status(&status));
            if retries_after(status.code()) {
                Refused::Retry(why)
            } else {
                Refused::GiveUp(why)
            }
        })?;
    Ok((api, inbox, connected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        let mut backoff = Backoff::default();
        let waits: Vec<Duration> = (0..12).map(|_| backoff.next(0.0)).collect();
        assert_eq!(waits[0], Duration::from_millis(250));
        assert_eq!(waits[1], Duration::from_millis(500));
        assert_eq!(waits[4], Duration::from_secs(4));
        assert_eq!(waits[7], Backoff::MOST);
        assert_eq!(waits[11], Backoff::MOST);
        backoff.reset();
        assert_eq!(backoff.next(0.0), Duration::from_millis(250));
    }

    #[test]
    fn jitter_takes_off_at_most_half() {
        let mut full = Backoff::default();
        let mut halved = Backoff::default();
        for _ in 0..40 {
            let ceiling = full.next(0.0);
            assert_eq!(halved.next(1.0), ceiling / 2);
        }
        let mut backoff = Backoff::default();
        for _ in 0..100 {
            let random = jitter();
            assert!((0.0..1.0).contains(&random), "{random}");
            let wait = backoff.next(random);
            assert!(wait <= Backoff::MOST && wait >= Duration::from_millis(125));
        }
    }

    #[test]
    fn transport_ends_and_slow_consumption_reconnect_refusals_of_the_user_do_not() {
        for code in [
            RpcStatusCode::UNAVAILABLE,
            RpcStatusCode::RESOURCE_EXHAUSTED,
            RpcStatusCode::INTERNAL,
            RpcStatusCode::OK,
        ] {
            assert!(reconnects_after(code), "{code:?}");
        }
        for code in [
            RpcStatusCode::UNAUTHENTICATED,
            RpcStatusCode::PERMISSION_DENIED,
            RpcStatusCode::ALREADY_EXISTS,
            RpcStatusCode::INVALID_ARGUMENT,
        ] {
            assert!(!reconnects_after(code), "{code:?}");
        }
        // The old connection may still hold the name for a while.
        assert!(retries_after(RpcStatusCode::ALREADY_EXISTS));
        assert!(!retries_after(RpcStatusCode::UNAUTHENTICATED));
    }
}
