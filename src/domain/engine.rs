//! The one interface the adapter calls for every chat operation, whichever
//! engine keeps the state: the embedded [`Registry`](super::Registry) of a
//! single node, or the cluster engine that keeps it in Redis
//! (`crate::cluster`). An operation answers with a [`Reply`]: ready at once
//! when the state is in memory, later when it waits on another process, so
//! the caller never blocks a thread on it. Connections (mailboxes, delivery,
//! the slow-consumer rule) stay local to the node in both engines; a
//! [`Session`] owns one and ends it through the engine that made it. Nothing
//! here knows of gRPC or of Redis.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::FutureExt;

use super::admin::UserPage;
use super::error::ChatError;
use super::events::EventKinds;
use super::history::{HistoryPage, HistoryQuery};
use super::mailbox::{Inbox, Outbox};
use super::members::{MemberPage, MemberQuery};
use super::registry::{ChannelInfo, Departure, Left, Name, Sent, SessionId, Wakeups};
use super::resume::{ResumeRequest, ResumeStatus};
use super::stats::ChatStats;

/// What the engine answers an operation with: a result now, or a future
/// that resolves to it once the state's keeper has answered.
#[must_use = "a reply does nothing until it is awaited or taken"]
pub enum Reply<T> {
    /// The result is known now (always so for the embedded engine).
    Ready(Option<Result<T, ChatError>>),
    /// The result arrives later; awaiting it never blocks a thread.
    Later(BoxFuture<'static, Result<T, ChatError>>),
}

impl<T> Reply<T> {
    /// A reply that is known now.
    pub fn now(result: Result<T, ChatError>) -> Reply<T> {
        Reply::Ready(Some(result))
    }

    /// The result, if it is known without waiting; otherwise the reply
    /// itself, to be awaited.
    pub fn try_now(self) -> Result<Result<T, ChatError>, Reply<T>> {
        match self {
            Reply::Ready(Some(result)) => Ok(result),
            other => Err(other),
        }
    }
}

impl Reply<()> {
    /// The refusal this reply (an authentication) answers with, else
    /// `invalid`: a call whose arguments are bad is refused for its caller
    /// first, as every call is.
    pub fn then_refuse<T: Send + 'static>(self, invalid: ChatError) -> Reply<T> {
        match self.try_now() {
            Ok(Ok(())) => Reply::now(Err(invalid)),
            Ok(Err(refused)) => Reply::now(Err(refused)),
            Err(later) => Reply::Later(
                async move {
                    later.await?;
                    Err(invalid)
                }
                .boxed(),
            ),
        }
    }
}

impl<T> Future for Reply<T> {
    type Output = Result<T, ChatError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Reply::Ready(result) => match result.take() {
                Some(result) => Poll::Ready(result),
                None => Poll::Ready(Err(ChatError::ShuttingDown)),
            },
            Reply::Later(future) => future.as_mut().poll(cx),
        }
    }
}

impl<T> Unpin for Reply<T> {}

/// A new connection: the session that owns the user's name, the inbox its
/// stream reads, and what the client is told of its resume.
#[derive(Debug)]
pub struct Connected {
    /// Owns the user's registration.
    pub session: Session,
    /// Where the stream reads its messages; a resumed session's replay is
    /// already queued in it, ahead of anything newer.
    pub inbox: Inbox,
    /// The secret that resumes this session once it ends.
    pub resume_token: String,
    /// The state's epoch: ids, positions and tokens of another mean nothing.
    pub epoch: Arc<str>,
    /// What became of the resume the Connect asked for.
    pub resume_status: ResumeStatus,
}

/// Every chat operation, as the adapter calls it. Callers are named by the
/// username their request carries; each method lists the [`ChatError`]s it
/// answers with.
pub trait ChatEngine: Send + Sync {
    /// Registers `username` as connected and returns its session and inbox.
    /// The first successful connect of a username ends what its last
    /// session left for a resume: with `resume` and the right token, its
    /// kept messages after `resume.after_id` are queued first (or the
    /// status says why not). The stream gets the `events` kinds besides
    /// messages; `peer` is the client's address as the transport saw it,
    /// for an operator's list. A username an operator banned is refused
    /// before anything but a bad name. Errors: `InvalidName`, `Banned`,
    /// `NameTaken`, `TooManyConnections`, `ShuttingDown`, `Unavailable`; a
    /// refused connect changes nothing.
    fn connect(
        &self,
        username: &str,
        peer: &str,
        resume: Option<ResumeRequest>,
        events: EventKinds,
    ) -> Reply<Connected>;

    /// Checks only that `caller` is connected. Errors: `Unauthenticated`,
    /// `ShuttingDown`, `Unavailable`.
    fn authenticate(&self, caller: &str) -> Reply<()>;

    /// Creates group `name` with `caller` as its only member. Errors:
    /// `Unauthenticated`, `InvalidName`, `NameTaken`, `TooManyGroups`,
    /// `ShuttingDown`, `Unavailable`.
    fn create_group(&self, caller: &str, name: &str) -> Reply<()>;

    /// Adds `caller` to group `name`; answers the id of the group's newest
    /// message at the join (0: none). Errors: `Unauthenticated`,
    /// `InvalidName`, `GroupNotFound`, `AlreadyMember`, `TooManyGroups`,
    /// `ShuttingDown`, `Unavailable`.
    fn join_group(&self, caller: &str, name: &str) -> Reply<u64>;

    /// Removes `caller` from group `name`, deleting the group if it empties.
    /// Errors: `Unauthenticated`, `InvalidName`, `GroupNotFound`,
    /// `NotMember`, `ShuttingDown`, `Unavailable`.
    fn leave_group(&self, caller: &str, name: &str) -> Reply<Left>;

    /// Sends `text` from `caller` to the user or group `recipient`. The
    /// returned [`Wakeups`] wake the local readers it queued for, when
    /// dropped. Every send of a connected caller spends one message of its
    /// send limit (`Limits::send_limit`) whatever its outcome, but for one
    /// the limit refuses. Errors: `Unauthenticated`, `SendingTooFast`,
    /// `InvalidText`, `InvalidName`, `RecipientNotFound`,
    /// `NotMemberOfRecipient`, `RecipientOverloaded`, `ShuttingDown`,
    /// `Unavailable`.
    fn send(&self, caller: &str, recipient: &str, text: String) -> Reply<(Sent, Wakeups)>;

    /// Every connected user, then every group, each sorted by name, as seen
    /// by `caller`. Errors: `Unauthenticated`, `ShuttingDown`, `Unavailable`.
    fn list_channels(&self, caller: &str) -> Reply<Vec<ChannelInfo>>;

    /// One page of group `group`'s kept history, for a member. Errors:
    /// `Unauthenticated`, `InvalidName`, `GroupNotFound`, `MembersOnly`,
    /// `ShuttingDown`, `Unavailable`.
    fn history(&self, caller: &str, group: &str, query: HistoryQuery) -> Reply<HistoryPage>;

    /// One page of group `group`'s members, sorted by name; any connected
    /// user may list any group. Errors: `Unauthenticated`, `InvalidName`,
    /// `GroupNotFound`, `ShuttingDown`, `Unavailable`.
    fn list_members(&self, caller: &str, group: &str, query: MemberQuery) -> Reply<MemberPage>;

    /// Tells `recipient` (a connected user, or every other member of a
    /// group `caller` is in) that `caller` is typing, at most once per
    /// sender and conversation per two seconds (more answer OK, dropped).
    /// Errors: `Unauthenticated`, `InvalidName`, `RecipientNotFound`,
    /// `NotMemberOfRecipient`, `RecipientOverloaded`, `ShuttingDown`,
    /// `Unavailable`.
    fn send_typing(&self, caller: &str, recipient: &str) -> Reply<()>;

    /// An operator's disconnect: ends `username`'s stream wherever it is
    /// (closed with [`CloseReason::Operator`](super::CloseReason) and
    /// `reason`), the user leaves every group as on any disconnect, and
    /// nothing is kept for a resume. With `ban`, Connect refuses the
    /// username for that long, connected or not (and a session it left for
    /// a resume is dropped). Answers what the disconnect changed (nothing
    /// for a ban of a user not connected). Errors: `InvalidName`,
    /// `UserNotFound` (not connected, no ban asked), `ShuttingDown`,
    /// `Unavailable`.
    fn disconnect_user(
        &self,
        username: &str,
        reason: &str,
        ban: Option<std::time::Duration>,
    ) -> Reply<Departure>;

    /// An operator's removal of `username` from group `group`, deleting the
    /// group if it empties. The remaining members (within the membership
    /// events' threshold) and the removed user get a `Removed` event where
    /// they asked for membership events. Errors: `InvalidName`,
    /// `GroupNotFound`, `NotMember`, `ShuttingDown`, `Unavailable`.
    fn remove_member(&self, group: &str, username: &str) -> Reply<Left>;

    /// An operator's deletion of group `group` with its history: every
    /// member is removed, and each that asked for membership events gets
    /// one `Removed` event about itself (member count 0). Answers how many
    /// members were removed. Errors: `InvalidName`, `GroupNotFound`,
    /// `ShuttingDown`, `Unavailable`.
    fn delete_group(&self, group: &str) -> Reply<u32>;

    /// An operator's message: `text` to the connected user or group
    /// `recipient` (no membership needed), delivered as a send is, in the
    /// group's order and history, from `sender` (already checked by
    /// [`operator_sender`](super::admin::operator_sender)) with
    /// `from_operator` set. Spends no send limit. Errors: `InvalidText`,
    /// `InvalidName`, `RecipientNotFound`, `RecipientOverloaded`,
    /// `ShuttingDown`, `Unavailable`.
    fn publish(&self, recipient: &str, text: String, sender: &str) -> Reply<(Sent, Wakeups)>;

    /// One page of the connected users (every node's), sorted by name.
    /// Errors: `ShuttingDown`, `Unavailable`.
    fn list_users(&self, query: MemberQuery) -> Reply<UserPage>;

    /// Starts shutdown: new work is refused and every local stream is told
    /// to end with the shutdown reason.
    fn shutdown(&self);

    /// After the server has stopped: releases what the engine holds outside
    /// this process (a cluster node leaves the cluster). Nothing for the
    /// embedded engine.
    fn stop(&self) {}

    /// How many users have their stream on this node.
    fn local_users(&self) -> usize;

    /// Counts for monitoring, read at scrape time.
    fn stats(&self) -> ChatStats;
}

/// How a session's engine removes the user when the session ends.
pub trait Disconnect: Send + Sync {
    /// Removes the user of session `id` named `name`; a no-op (`None`) if
    /// that session no longer owns the name. Returns what changed, when the
    /// engine knows it at once.
    fn disconnect(&self, name: &Name, id: SessionId) -> Option<Departure>;
}

/// A connected user's registration. Dropping it disconnects the user: they
/// leave every group and their name is free again. Every way a stream can end
/// (cancel, dead peer, slow consumer, shutdown) goes through this one path.
pub struct Session {
    owner: Arc<dyn Disconnect>,
    name: Name,
    id: SessionId,
    /// The user's outbox, where an eviction leaves its departure.
    outbox: Outbox,
    ended: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("name", &self.name)
            .field("id", &self.id)
            .field("ended", &self.ended)
            .finish()
    }
}

impl Session {
    /// A session of `name` (connection `id`) whose end is reported to
    /// `owner`.
    pub fn new(owner: Arc<dyn Disconnect>, name: Name, id: SessionId, outbox: Outbox) -> Session {
        Session {
            owner,
            name,
            id,
            outbox,
            ended: false,
        }
    }

    /// The connected user's name.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// Disconnects the user now and reports what changed, including when
    /// the engine already removed it as a slow consumer; later calls, and
    /// the drop, do nothing and return `None`.
    pub fn end(&mut self) -> Option<Departure> {
        if std::mem::replace(&mut self.ended, true) {
            return None;
        }
        self.owner
            .disconnect(&self.name, self.id)
            .or_else(|| self.outbox.take_departure())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.end();
    }
}
