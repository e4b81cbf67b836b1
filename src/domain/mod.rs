//! The chat domain: names, users, groups, mailboxes and message delivery, as
//! plain Rust types with one typed error. Nothing in here knows about gRPC,
//! protobuf or logging; the adapter in `crate::service` translates.

pub mod admin;
pub mod engine;
pub mod error;
pub mod events;
pub mod history;
pub mod mailbox;
pub mod members;
pub mod names;
pub mod registry;
pub mod resume;
pub mod send_limit;
pub mod stats;
pub mod wake_ticker;

pub use admin::{operator_sender, Bans, UserInfo, UserPage};
pub use engine::{ChatEngine, Connected, Disconnect, Reply, Session};
pub use error::{ChatError, TextProblem};
pub use events::{Event, EventKinds, Item, MembershipKind};
pub use history::{Evicted, HistoryLimits, HistoryPage, HistoryQuery, KeptMessage};
pub use mailbox::{CloseReason, Closer, Inbox, Outbox};
pub use members::{MemberPage, MemberQuery};
pub use names::{check_name, NameProblem, MAX_NAME_LEN};
pub use registry::{
    check_group_name, check_message, check_username, ChannelInfo, ChannelKind, Departure, Left,
    Limits, Message, Name, Registry, Sent, SessionId, Wakeups,
};
pub use resume::{Recent, ResumeLimits, ResumeRequest, ResumeStatus};
pub use send_limit::{SendBudgets, SendLimit};
pub use stats::{ChatStats, StoreStats, ROUND_TRIP_BOUNDS};
pub use wake_ticker::{WakeTicker, BUSY_WAKES_PER_MS};
