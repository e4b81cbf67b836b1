//! Group history: what a group keeps of its recent messages, and how one
//! page of it is read. [`History`] is the embedded engine's per-group store
//! (bounded by [`HistoryLimits`] in messages and in bytes of text, oldest
//! evicted first); [`HistoryQuery`] checks a read's arguments and
//! [`HistoryPage::assemble`] turns the kept messages a read found into the
//! page, with its `more` and `truncated` flags. The cluster engine keeps its
//! history in Redis and assembles its pages with the same function, so both
//! engines answer a read alike. Nothing here knows gRPC or Redis.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::error::ChatError;
use super::registry::{ChannelKind, Message, Name};

/// Messages a read returns when it asks for 0.
pub const DEFAULT_HISTORY_LIMIT: u32 = 50;
/// Most messages one read may ask for.
pub const MAX_HISTORY_LIMIT: u32 = 500;

/// How much history each group keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Most messages kept per group (`--history-size`; 0: history off).
    pub messages: usize,
    /// Most bytes of text kept per group (`--history-bytes`).
    pub bytes: usize,
}

impl HistoryLimits {
    /// The defaults: 100 messages and 256 KiB of text per group.
    pub const DEFAULT: HistoryLimits = HistoryLimits {
        messages: 100,
        bytes: 256 * 1024,
    };
}

/// One kept group message. Compact on purpose: the group is the
/// recipient, the text is the message's own shared allocation, and the
/// time is kept in microseconds (the precision messages are stamped with),
/// so an entry costs 48 bytes plus the text's shared header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptMessage {
    /// The message's id.
    pub id: u64,
    /// Its sender.
    pub sender: Name,
    /// Its text, shared with every other holder of the message.
    pub text: Arc<str>,
    /// When it was accepted, in microseconds since the Unix epoch, with
    /// [`OPERATOR_BIT`] set when an operator sent it (one word for both
    /// keeps an entry at 48 bytes).
    stamp: u64,
}

/// The bit of [`KeptMessage`]'s stamp that marks an operator's message:
/// microseconds since 1970 need 51 bits until the year 2041 and 63 long
/// after.
const OPERATOR_BIT: u64 = 1 << 63;

impl KeptMessage {
    /// The kept form of `message`, sharing its sender and text.
    pub fn of(message: &Message) -> KeptMessage {
        KeptMessage {
            id: message.id,
            sender: Arc::clone(&message.sender),
            text: Arc::clone(&message.text),
            stamp: (micros_since_epoch(message.sent_at) & !OPERATOR_BIT)
                | if message.from_operator {
                    OPERATOR_BIT
                } else {
                    0
                },
        }
    }

    /// When it was accepted, in microseconds since the Unix epoch.
    pub fn sent_at_micros(&self) -> u64 {
        self.stamp & !OPERATOR_BIT
    }

    /// Whether an operator sent it.
    pub fn from_operator(&self) -> bool {
        self.stamp & OPERATOR_BIT != 0
    }

    /// The message as it was delivered to the members of `group`.
    pub fn to_message(&self, group: &Name) -> Message {
        Message::new(
            self.id,
            Arc::clone(&self.sender),
            Arc::clone(group),
            ChannelKind::Group,
            Arc::clone(&self.text),
            SystemTime::UNIX_EPOCH + Duration::from_micros(self.sent_at_micros()),
        )
        .by_operator(self.from_operator())
    }
}

/// `time` in whole microseconds since the Unix epoch (0 before it).
pub fn micros_since_epoch(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

/// The span of a group's messages that are no longer kept: every evicted
/// message has an id between `oldest` and `newest` (both evicted
/// themselves). Ids are shared by all conversations, so not every id in
/// the span was the group's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evicted {
    /// The id of the group's oldest evicted message (0: none evicted).
    pub oldest: u64,
    /// The id of its newest evicted message (0: none evicted).
    pub newest: u64,
}

impl Evicted {
    /// Whether any message was evicted.
    pub fn any(&self) -> bool {
        self.newest > 0
    }

    /// Records the eviction of message `id` (ids are evicted oldest first).
    pub fn record(&mut self, id: u64) {
        if self.oldest == 0 {
            self.oldest = id;
        }
        self.newest = id;
    }

    /// Whether an evicted message may lie strictly between `after` and
    /// `before` (`None`: no upper bound). Exact except for a range that
    /// lies wholly inside the span without touching its ends, where the
    /// answer is "may": true.
    fn within(&self, after: u64, before: Option<u64>) -> bool {
        if !self.any() {
            return false;
        }
        let below = |id: u64| before.is_none_or(|before| id < before);
        // The span [oldest, newest] meets the open range (after, before).
        self.newest > after && below(self.oldest)
    }
}

/// A read of a group's history, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuery {
    /// > 0: read forward from here (exclusive).
    pub after_id: u64,
    /// > 0: read below this id (exclusive); backward when `after_id` is 0.
    pub before_id: u64,
    /// Most messages to return (1 to [`MAX_HISTORY_LIMIT`]).
    pub limit: usize,
}

impl HistoryQuery {
    /// A query from a request's fields: `limit` 0 means
    /// [`DEFAULT_HISTORY_LIMIT`].
    ///
    /// # Errors
    /// `InvalidLimit` when `limit` is over [`MAX_HISTORY_LIMIT`].
    pub fn new(after_id: u64, before_id: u64, limit: u32) -> Result<HistoryQuery, ChatError> {
        if limit > MAX_HISTORY_LIMIT {
            return Err(ChatError::InvalidLimit {
                limit,
                max: MAX_HISTORY_LIMIT,
            });
        }
        let limit = if limit == 0 {
            DEFAULT_HISTORY_LIMIT
        } else {
            limit
        };
        Ok(HistoryQuery {
            after_id,
            before_id,
            limit: limit as usize,
        })
    }

    /// Whether the read goes forward (oldest first from `after_id`).
    pub fn forward(&self) -> bool {
        self.after_id > 0
    }

    /// The upper bound, if any.
    pub fn upper(&self) -> Option<u64> {
        (self.before_id > 0).then_some(self.before_id)
    }

    /// Whether message `id` is in the query's range.
    pub fn contains(&self, id: u64) -> bool {
        id > self.after_id && self.upper().is_none_or(|before| id < before)
    }
}

/// One page of a group's history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryPage {
    /// Oldest first.
    pub messages: Vec<Arc<Message>>,
    /// The range holds more kept messages than were returned.
    pub more: bool,
    /// Messages of the range that are no longer kept lie beyond this page
    /// in the direction of reading.
    pub truncated: bool,
}

impl HistoryPage {
    /// The page for `query` from `found`: the kept messages of the range
    /// nearest its start in the direction of reading (for a forward read
    /// the oldest, for a backward read the newest), oldest first, at most
    /// `query.limit + 1` of them (one more than the page tells whether
    /// there is more); `evicted` is the group's evicted span.
    pub fn assemble(
        query: &HistoryQuery,
        mut found: Vec<Arc<Message>>,
        evicted: Evicted,
    ) -> HistoryPage {
        let more = found.len() > query.limit;
        if more {
            if query.forward() {
                found.truncate(query.limit);
            } else {
                found.drain(..found.len() - query.limit);
            }
        }
        let truncated = if query.forward() {
            // Between after_id and the first message returned.
            let upper = found.first().map(|first| first.id).or(query.upper());
            evicted.within(query.after_id, upper)
        } else if more {
            false
        } else {
            // Older than the oldest returned, which is the oldest kept.
            let upper = found.first().map(|first| first.id).or(query.upper());
            evicted.within(0, upper)
        };
        HistoryPage {
            messages: found,
            more,
            truncated,
        }
    }
}

/// A group's kept messages, oldest first, within [`HistoryLimits`].
#[derive(Debug, Default)]
pub struct History {
    kept: VecDeque<KeptMessage>,
    /// Bytes of text kept.
    bytes: usize,
    evicted: Evicted,
    /// The id of the group's newest message, kept or not (0: none yet).
    newest: u64,
}

impl History {
    /// The id of the group's newest message (0: none yet): a joiner's
    /// position.
    pub fn position(&self) -> u64 {
        self.newest
    }

    /// How many messages, and bytes of text, are kept.
    pub fn kept(&self) -> (usize, usize) {
        (self.kept.len(), self.bytes)
    }

    /// Keeps `message`, evicting the oldest until the group is within
    /// `limits`; returns the change in messages and bytes kept.
    pub fn push(&mut self, message: &Message, limits: HistoryLimits) -> (isize, isize) {
        let before = (self.kept.len() as isize, self.bytes as isize);
        self.newest = message.id;
        let size = message.text.len();
        if limits.messages == 0 || size > limits.bytes {
            self.evicted.record(message.id);
        } else {
            // Room first, so a full history never grows its ring.
            while self.kept.len() >= limits.messages {
                self.evict_oldest();
            }
            if self.kept.len() == self.kept.capacity() {
                // Grow by doubling, but never past the limit: a full
                // history holds no spare slots.
                let room = self
                    .kept
                    .len()
                    .max(4)
                    .min(limits.messages - self.kept.len());
                self.kept.reserve_exact(room);
            }
            self.kept.push_back(KeptMessage::of(message));
            self.bytes += size;
        }
        while self.kept.len() > limits.messages || self.bytes > limits.bytes {
            if !self.evict_oldest() {
                break;
            }
        }
        (
            self.kept.len() as isize - before.0,
            self.bytes as isize - before.1,
        )
    }

    /// Evicts the oldest kept message; false when none is kept.
    fn evict_oldest(&mut self) -> bool {
        let Some(oldest) = self.kept.pop_front() else {
            return false;
        };
        self.bytes -= oldest.text.len();
        self.evicted.record(oldest.id);
        true
    }

    /// The page `query` reads from the messages of `group`.
    pub fn page(&self, group: &Name, query: &HistoryQuery) -> HistoryPage {
        let wanted = query.limit + 1;
        let found: Vec<Arc<Message>> = if query.forward() {
            let start = self.kept.partition_point(|kept| kept.id <= query.after_id);
            self.kept
                .range(start..)
                .take_while(|kept| query.contains(kept.id))
                .take(wanted)
                .map(|kept| Arc::new(kept.to_message(group)))
                .collect()
        } else {
            let end = match query.upper() {
                Some(before) => self.kept.partition_point(|kept| kept.id < before),
                None => self.kept.len(),
            };
            let start = end.saturating_sub(wanted);
            self.kept
                .range(start..end)
                .map(|kept| Arc::new(kept.to_message(group)))
                .collect()
        };
        HistoryPage::assemble(query, found, self.evicted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: u64, text: &str) -> Message {
        Message::new(
            id,
            Arc::from("alice"),
            Arc::from("g"),
            ChannelKind::Group,
            Arc::from(text),
            SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_000 + id),
        )
    }

    fn ids(page: &HistoryPage) -> Vec<u64> {
        page.messages.iter().map(|m| m.id).collect()
    }

    fn history(ids: impl IntoIterator<Item = u64>, limits: HistoryLimits) -> History {
        let mut history = History::default();
        for id in ids {
            let _ = history.push(&message(id, "hello"), limits);
        }
        history
    }

    fn query(after: u64, before: u64, limit: u32) -> HistoryQuery {
        HistoryQuery::new(after, before, limit).unwrap()
    }

    const TEN: HistoryLimits = HistoryLimits {
        messages: 10,
        bytes: 1 << 20,
    };

    #[test]
    fn a_limit_of_zero_means_fifty_and_over_five_hundred_is_refused() {
        assert_eq!(query(0, 0, 0).limit, 50);
        assert_eq!(query(0, 0, 500).limit, 500);
        assert_eq!(
            HistoryQuery::new(0, 0, 501),
            Err(ChatError::InvalidLimit {
                limit: 501,
                max: 500
            })
        );
    }

    #[test]
    fn backward_reads_give_the_newest_below_the_bound_oldest_first() {
        let group: Name = Arc::from("g");
        let history = history((1..=20).map(|i| i * 2), TEN);
        // Kept: 22..=40 even.
        let page = history.page(&group, &query(0, 0, 3));
        assert_eq!(ids(&page), vec![36, 38, 40]);
        assert!(page.more && !page.truncated);
        let page = history.page(&group, &query(0, 37, 3));
        assert_eq!(ids(&page), vec![32, 34, 36]);
        let page = history.page(&group, &query(0, 26, 3));
        assert_eq!(ids(&page), vec![22, 24]);
        assert!(!page.more);
        assert!(page.truncated, "2..=20 were evicted");
        let page = history.page(&group, &query(0, 22, 3));
        assert!(page.messages.is_empty() && page.truncated);
        let page = history.page(&group, &query(0, 2, 3));
        assert!(
            page.messages.is_empty() && !page.truncated,
            "nothing below 2"
        );
    }

    #[test]
    fn forward_reads_give_the_oldest_above_the_bound() {
        let group: Name = Arc::from("g");
        let history = history((1..=20).map(|i| i * 2), TEN);
        let page = history.page(&group, &query(30, 0, 3));
        assert_eq!(ids(&page), vec![32, 34, 36]);
        assert!(page.more && !page.truncated);
        let page = history.page(&group, &query(36, 0, 10));
        assert_eq!(ids(&page), vec![38, 40]);
        assert!(!page.more && !page.truncated);
        let page = history.page(&group, &query(5, 0, 3));
        assert_eq!(ids(&page), vec![22, 24, 26]);
        assert!(page.truncated, "6..=20 were evicted");
        let page = history.page(&group, &query(20, 0, 3));
        assert!(!page.truncated, "20 itself is not in the range");
        let page = history.page(&group, &query(40, 0, 3));
        assert!(page.messages.is_empty() && !page.more && !page.truncated);
    }

    #[test]
    fn both_bounds_read_the_oldest_strictly_between() {
        let group: Name = Arc::from("g");
        let history = history((1..=20).map(|i| i * 2), TEN);
        let page = history.page(&group, &query(23, 31, 10));
        assert_eq!(ids(&page), vec![24, 26, 28, 30]);
        assert!(!page.more && !page.truncated);
        let page = history.page(&group, &query(23, 31, 2));
        assert_eq!(ids(&page), vec![24, 26]);
        assert!(page.more);
        let page = history.page(&group, &query(1, 10, 5));
        assert!(page.messages.is_empty() && page.truncated);
    }

    #[test]
    fn bytes_bound_the_history_too() {
        let group: Name = Arc::from("g");
        let limits = HistoryLimits {
            messages: 100,
            bytes: 12,
        };
        let mut history = History::default();
        for id in 1..=5 {
            let _ = history.push(&message(id, "abcde"), limits);
        }
        assert_eq!(history.kept(), (2, 10));
        let page = history.page(&group, &query(0, 0, 0));
        assert_eq!(ids(&page), vec![4, 5]);
        assert!(page.truncated);
        assert_eq!(history.position(), 5);
    }

    #[test]
    fn history_off_keeps_nothing_but_knows_the_position_and_the_gap() {
        let group: Name = Arc::from("g");
        let off = HistoryLimits {
            messages: 0,
            bytes: 1024,
        };
        let history = history([3, 7], off);
        assert_eq!(history.kept(), (0, 0));
        assert_eq!(history.position(), 7);
        let page = history.page(&group, &query(0, 0, 0));
        assert!(page.messages.is_empty() && page.truncated);
        let page = history.page(&group, &query(7, 0, 0));
        assert!(!page.truncated);
    }

    #[test]
    fn a_full_history_has_no_spare_slots() {
        let limits = HistoryLimits {
            messages: 100,
            bytes: 1 << 20,
        };
        let history = history(1..=250, limits);
        assert_eq!(history.kept.len(), 100);
        assert_eq!(history.kept.capacity(), 100);
    }

    #[test]
    fn a_kept_message_reads_back_as_delivered() {
        let group: Name = Arc::from("g");
        let original = message(9, "hi there");
        let kept = KeptMessage::of(&original);
        assert_eq!(kept.to_message(&group), original);
        assert!(Arc::ptr_eq(&kept.text, &original.text));
        assert_eq!(std::mem::size_of::<KeptMessage>(), 48);
    }
}
