//! The domain's one error type. Each case documents the gRPC status code the
//! adapter maps it to (the mapping itself lives in `crate::service::status`),
//! but nothing here depends on gRPC.

use std::fmt;

use super::names::NameProblem;

/// Every way a chat operation can be refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatError {
    /// A username, group name or recipient is not a valid name.
    /// Status: INVALID_ARGUMENT.
    InvalidName {
        /// Which argument: "username", "group name" or "recipient".
        field: &'static str,
        /// What is wrong with it.
        problem: NameProblem,
    },
    /// The text of a message is empty, whitespace-only or too long.
    /// Status: INVALID_ARGUMENT.
    InvalidText(TextProblem),
    /// A page size is over its maximum. Status: INVALID_ARGUMENT.
    InvalidLimit {
        /// The limit asked for.
        limit: u32,
        /// The most allowed.
        max: u32,
    },
    /// A page token that no page gave. Status: INVALID_ARGUMENT.
    InvalidPageToken,
    /// An operator's sender name is not 1-64 printable ASCII characters
    /// without a leading or trailing space. Status: INVALID_ARGUMENT.
    InvalidSender(&'static str),
    /// The caller did not name a connected user. Status: UNAUTHENTICATED.
    Unauthenticated,
    /// The name is held by a connected user or an existing group.
    /// Status: ALREADY_EXISTS.
    NameTaken(String),
    /// The server already holds its maximum number of connections.
    /// Status: RESOURCE_EXHAUSTED.
    TooManyConnections(usize),
    /// The caller is in as many groups as one user may be.
    /// Status: RESOURCE_EXHAUSTED.
    TooManyGroups(usize),
    /// No group has this name. Status: NOT_FOUND.
    GroupNotFound(String),
    /// No connected user or group has this name. Status: NOT_FOUND.
    RecipientNotFound(String),
    /// No connected user has this name (an operator's disconnect).
    /// Status: NOT_FOUND.
    UserNotFound(String),
    /// An operator banned the username for this many more seconds.
    /// Status: PERMISSION_DENIED.
    Banned(u64),
    /// The caller sent more than its send limit allows; it may send again
    /// in this many milliseconds. Status: RESOURCE_EXHAUSTED.
    SendingTooFast(u64),
    /// The caller is already a member of the group. Status: ALREADY_EXISTS.
    AlreadyMember(String),
    /// The caller tried to leave a group it is not in.
    /// Status: FAILED_PRECONDITION.
    NotMember(String),
    /// The caller tried to send to a group it is not in.
    /// Status: PERMISSION_DENIED.
    NotMemberOfRecipient(String),
    /// The caller asked for the history of a group it is not in.
    /// Status: PERMISSION_DENIED.
    MembersOnly(String),
    /// A direct recipient's outbound queue was full; that recipient has been
    /// disconnected. Status: RESOURCE_EXHAUSTED.
    RecipientOverloaded(String),
    /// The server is shutting down and takes no new work. Status: UNAVAILABLE.
    ShuttingDown,
    /// The shared state cannot be reached or answered in time (a cluster
    /// node without its store), so the call was not carried out, or may have
    /// been only in part for a send. Status: UNAVAILABLE.
    Unavailable(String),
}

/// Why a message text is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextProblem {
    /// The text is empty or holds only whitespace.
    Blank,
    /// The text is longer than the limit, in bytes of UTF-8.
    TooLong {
        /// The text's length in bytes.
        len: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
}

impl fmt::Display for ChatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatError::InvalidName { field, problem } => write!(f, "invalid {field}: {problem}"),
            ChatError::InvalidText(TextProblem::Blank) => {
                write!(f, "invalid text: empty or whitespace only")
            }
            ChatError::InvalidText(TextProblem::TooLong { len, limit }) => {
                write!(f, "invalid text: {len} bytes, the limit is {limit}")
            }
            ChatError::InvalidLimit { limit, max } => {
                write!(f, "invalid limit: {limit}, the most is {max}")
            }
            ChatError::InvalidPageToken => write!(f, "invalid page token"),
            ChatError::InvalidSender(problem) => write!(f, "invalid sender: {problem}"),
            ChatError::Unauthenticated => write!(
                f,
                "the authorization header must name a connected user (connect first)"
            ),
            ChatError::NameTaken(name) => {
                write!(f, "name {name:?} is held by a connected user or a group")
            }
            ChatError::TooManyConnections(limit) => {
                write!(f, "the server holds its maximum of {limit} connections")
            }
            ChatError::TooManyGroups(limit) => {
                write!(f, "already in {limit} groups, the most one user may be in")
            }
            ChatError::GroupNotFound(name) => write!(f, "no group named {name:?}"),
            ChatError::RecipientNotFound(name) => {
                write!(f, "no connected user or group named {name:?}")
            }
            ChatError::UserNotFound(name) => write!(f, "no connected user named {name:?}"),
            ChatError::Banned(secs) => write!(f, "banned for {secs} more seconds"),
            ChatError::SendingTooFast(millis) => {
                write!(f, "sending too fast: retry in {millis} ms")
            }
            ChatError::AlreadyMember(name) => write!(f, "already a member of group {name:?}"),
            ChatError::NotMember(name) => write!(f, "not a member of group {name:?}"),
            ChatError::NotMemberOfRecipient(name) => {
                write!(f, "only members may send to group {name:?}")
            }
            ChatError::MembersOnly(name) => {
                write!(f, "only members may read the history of group {name:?}")
            }
            ChatError::RecipientOverloaded(name) => write!(
                f,
                "user {name:?} was not reading its messages and has been disconnected"
            ),
            ChatError::ShuttingDown => write!(f, "the server is shutting down"),
            ChatError::Unavailable(why) => write!(f, "the chat is unavailable: {why}"),
        }
    }
}

impl std::error::Error for ChatError {}
