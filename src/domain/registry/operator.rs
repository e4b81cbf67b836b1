//! The embedded engine's operator actions (the admin API): disconnecting
//! and banning a user, removing a member, deleting a group, publishing as
//! the operator and listing connected users. Each is one critical section
//! under the registry's lock, like every other operation, reusing its
//! removal, eviction and delivery paths so an operator's change looks to
//! the members exactly like any other.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{check_group_name, check_message, check_username, From, Registry, Wakeups};
use crate::domain::admin::{UserInfo, UserPage};
use crate::domain::error::ChatError;
use crate::domain::events::{Event, EventKinds, MembershipKind};
use crate::domain::mailbox::Outbox;
use crate::domain::members::MemberQuery;
use crate::domain::registry::{now_in_micros, Departure, Left, Name, Sent};

impl Registry {
    /// See [`ChatEngine::disconnect_user`](crate::domain::ChatEngine::disconnect_user).
    ///
    /// # Errors
    /// `InvalidName`, `UserNotFound`, `ShuttingDown`.
    pub fn disconnect_user(
        &self,
        username: &str,
        reason: &str,
        ban: Option<Duration>,
    ) -> Result<Departure, ChatError> {
        check_username(username)?;
        let mut wake = Wakeups::default();
        let mut state = self.lock();
        state.accepting()?;
        if let Some(length) = ban {
            let name: Name = match state.users.get_key_value(username) {
                Some((name, _)) => Arc::clone(name),
                None => Arc::from(username),
            };
            state.bans.ban(name, length, Instant::now());
            state.parked.discard(username);
        }
        let Some(outbox) = state.users.get(username).map(|c| c.outbox.clone()) else {
            if ban.is_some() {
                return Ok(Departure::default());
            }
            return Err(ChatError::UserNotFound(username.to_owned()));
        };
        // Closed first: the removal then keeps nothing for a resume.
        outbox.close_by_operator(reason);
        let departure = state
            .remove_user(username, &self.limits, &mut wake.0)
            .unwrap_or_default();
        outbox.keep_departure(departure.clone());
        drop(state);
        Ok(departure)
    }

    /// See [`ChatEngine::remove_member`](crate::domain::ChatEngine::remove_member).
    ///
    /// # Errors
    /// `InvalidName`, `GroupNotFound`, `NotMember`, `ShuttingDown`.
    pub fn remove_member(&self, group: &str, username: &str) -> Result<Left, ChatError> {
        check_group_name(group)?;
        check_username(username)?;
        let mut wake = Wakeups::default();
        let mut state = self.lock();
        state.accepting()?;
        let (group_name, entry) = state
            .groups
            .get_key_value(group)
            .ok_or_else(|| ChatError::GroupNotFound(group.to_owned()))?;
        let Some((member, outbox)) = entry.members.get_key_value(username) else {
            return Err(ChatError::NotMember(group.to_owned()));
        };
        let (group_name, member, outbox) =
            (Arc::clone(group_name), Arc::clone(member), outbox.clone());
        let before = entry.members.len();
        let position = entry.history.position();
        state.leave_behind(&member, group, &self.limits);
        let deleted = state.remove_member(group, &member);
        if !deleted {
            state.announce(
                &group_name,
                &member,
                MembershipKind::Removed,
                before,
                &self.limits,
                &mut wake.0,
            );
        }
        // The removed user is told whatever the group's size: one event.
        let mut full = Vec::new();
        let at = now_in_micros();
        let left = before - 1;
        tell_removed(
            &group_name,
            &member,
            &outbox,
            left,
            position,
            at,
            &mut wake.0,
            &mut full,
        );
        for name in full {
            state.evict(&name, &self.limits, &mut wake.0);
        }
        drop(state);
        Ok(if deleted {
            Left::GroupDeleted
        } else {
            Left::GroupKept
        })
    }

    /// See [`ChatEngine::delete_group`](crate::domain::ChatEngine::delete_group).
    ///
    /// # Errors
    /// `InvalidName`, `GroupNotFound`, `ShuttingDown`.
    pub fn delete_group(&self, group: &str) -> Result<u32, ChatError> {
        check_group_name(group)?;
        let mut wake = Wakeups::default();
        let mut state = self.lock();
        state.accepting()?;
        let (group_name, entry) = state
            .groups
            .get_key_value(group)
            .ok_or_else(|| ChatError::GroupNotFound(group.to_owned()))?;
        let group_name = Arc::clone(group_name);
        let position = entry.history.position();
        let members: Vec<(Name, Outbox)> = entry
            .members
            .iter()
            .map(|(name, outbox)| (Arc::clone(name), outbox.clone()))
            .collect();
        // Each member leaves as in a removal; the last one's leaving
        // deletes the group and its history.
        for (member, _) in &members {
            state.leave_behind(member, group, &self.limits);
            state.remove_member(group, member);
        }
        let at = now_in_micros();
        let mut full = Vec::new();
        for (member, outbox) in &members {
            tell_removed(
                &group_name,
                member,
                outbox,
                0,
                position,
                at,
                &mut wake.0,
                &mut full,
            );
        }
        for name in full {
            state.evict(&name, &self.limits, &mut wake.0);
        }
        drop(state);
        Ok(u32::try_from(members.len()).unwrap_or(u32::MAX))
    }

    /// See [`ChatEngine::publish`](crate::domain::ChatEngine::publish);
    /// the recipients' wake-ups happen when the returned [`Wakeups`] is
    /// dropped.
    ///
    /// # Errors
    /// `InvalidText`, `InvalidName`, `RecipientNotFound`,
    /// `RecipientOverloaded`, `ShuttingDown`.
    pub fn publish(
        &self,
        recipient: &str,
        text: String,
        sender: &str,
    ) -> Result<(Sent, Wakeups), ChatError> {
        check_message(recipient, &text, self.limits.max_text_bytes)?;
        let mut wake = Wakeups::default();
        let mut state = self.lock();
        state.accepting()?;
        let from = From::Operator(Arc::from(sender));
        let sent = state.deliver(from, recipient, text, &self.limits, &mut wake.0)?;
        drop(state);
        Ok((sent, wake))
    }

    /// See [`ChatEngine::list_users`](crate::domain::ChatEngine::list_users).
    ///
    /// # Errors
    /// `ShuttingDown`.
    pub fn list_users(&self, query: &MemberQuery) -> Result<UserPage, ChatError> {
        let state = self.lock();
        state.accepting()?;
        let names = query.names_wanted(state.users.keys());
        let found = names
            .into_iter()
            .filter_map(|name| {
                let connection = state.users.get(&name)?;
                Some(UserInfo {
                    node: String::new(),
                    connected_at: connection.connected_at,
                    group_count: u32::try_from(connection.groups.len()).unwrap_or(u32::MAX),
                    peer: connection.peer.clone(),
                    name,
                })
            })
            .collect();
        let count = state.users.len();
        drop(state);
        Ok(UserPage::assemble(query, found, count))
    }
}

/// Queues for `member`'s own stream, if it asked for membership events, a
/// `Removed` event about it in `group`, which has `member_count` members
/// left; a member whose queue is full is left in `full` for eviction.
#[allow(clippy::too_many_arguments)]
fn tell_removed(
    group: &Name,
    member: &Name,
    outbox: &Outbox,
    member_count: usize,
    position: u64,
    at: SystemTime,
    wake: &mut Vec<Outbox>,
    full: &mut Vec<Name>,
) {
    if !outbox.wants(EventKinds::MEMBERSHIP) {
        return;
    }
    let event = Arc::new(Event::Membership {
        group: Arc::clone(group),
        user: Arc::clone(member),
        kind: MembershipKind::Removed,
        member_count: u32::try_from(member_count).unwrap_or(u32::MAX),
        position,
        at,
    });
    if outbox.push_event(event).is_ok() {
        wake.push(outbox.clone());
    } else {
        full.push(Arc::clone(member));
    }
}
