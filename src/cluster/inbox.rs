//! The node's inbox reader: the one thread that reads the node's inbox
//! stream and applies its entries, in order, to the local connections:
//! joins and leaves to the local group table, messages to the mailboxes of
//! the connections they are addressed to (a direct message's connection,
//! or every local member of the group at that point of the stream). So a
//! member who joined after a send never gets it, and one who left after it
//! still does. An operator's removal takes a connection out of a group and
//! tells it; an operator's disconnect ends a connection's stream after
//! what was queued for it before. Entry ids are a per-node sequence: a gap
//! means entries were lost, and fences the node. Applied entries are
//! trimmed. After a Redis interruption it resumes where it stopped.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redis::Value;
use slog::{debug, info};

use super::{lock, parked, Local, Node};
use crate::domain::Disconnect;
use crate::domain::{
    ChannelKind, CloseReason, Event, EventKinds, Item, MembershipKind, Message, Name, Outbox,
    SessionId,
};

/// How long one XREAD waits for entries before it looks again.
const BLOCK: Duration = Duration::from_millis(500);

/// Most entries read at once.
const COUNT: usize = 1024;

/// Applied entries are trimmed once this many have gathered, or when the
/// stream goes quiet: not a round trip per read.
const TRIM_EVERY: u64 = 1024;

/// One inbox entry: its sequence number and fields.
type Entry = (u64, Vec<(String, Vec<u8>)>);

/// What applying entries leaves to do once the local lock is released.
#[derive(Default)]
struct Effects {
    /// Readers with something new queued.
    wake: Vec<Outbox>,
    /// Slow consumers: their streams end and their names are freed.
    evicted: Vec<(SessionId, Name, Outbox)>,
    /// Connections an operator disconnected (already gone from `Local`,
    /// and from Redis): their streams end, for the reason given.
    closed: Vec<(Name, Outbox, String)>,
}

/// A message's time from the seconds and microseconds Redis's `TIME` gave.
pub fn timestamp(seconds: Option<i64>, micros: Option<i64>) -> SystemTime {
    let seconds = u64::try_from(seconds.unwrap_or(0)).unwrap_or(0);
    let micros = u64::try_from(micros.unwrap_or(0)).unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_micros(micros)
}

/// Reads and applies the inbox until the node stops.
pub(super) fn run(node: &Arc<Node>) {
    let mut connection: Option<redis::Connection> = None;
    let mut stream_of: Arc<str> = Arc::from("");
    let mut last: u64 = 0;
    // Everything up to here has been trimmed.
    let mut trimmed: u64 = 0;
    while !node.stopped.load(Ordering::Acquire) {
        let identity = node.identity();
        if !identity.registered {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        if identity.id != stream_of {
            stream_of = Arc::clone(&identity.id);
            last = 0;
            trimmed = 0;
        }
        if connection.is_none() {
            match node.store.connect(BLOCK + super::store::CALL_TIMEOUT) {
                Ok(fresh) => connection = Some(fresh),
                Err(error) => {
                    debug!(node.log, "inbox reader cannot reach redis"; "error" => %error);
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
        }
        let Some(live) = connection.as_mut() else {
            continue;
        };
        let key = node.store.key(&format!("node:{stream_of}:inbox"));
        let read: redis::RedisResult<Value> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(COUNT)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&key)
            .arg(format!("{last}-0"))
            .query(live);
        let entries = match read {
            Ok(value) => entries_of(value),
            Err(error) => {
                debug!(node.log, "inbox read failed; resuming"; "error" => %error, "last" => last);
                connection = None;
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        // Entries read before a fence belong to the old identity.
        if !entries.is_empty() && node.identity().id == stream_of {
            match apply(node, &entries, last) {
                Ok(applied) => last = applied,
                Err(gap) => {
                    node.fence(&gap);
                    continue;
                }
            }
        }
        let quiet = entries.is_empty();
        if last > trimmed && (quiet || last - trimmed >= TRIM_EVERY) {
            let trim: redis::RedisResult<Value> = redis::cmd("XTRIM")
                .arg(&key)
                .arg("MINID")
                .arg(format!("{}-0", last + 1))
                .query(live);
            match trim {
                Ok(_) => trimmed = last,
                Err(_) => connection = None,
            }
        }
    }
    info!(node.log, "inbox reader stopped");
}

/// Applies `entries` after sequence number `last`; returns the last one
/// applied, or why the stream cannot be trusted.
fn apply(node: &Node, entries: &[Entry], mut last: u64) -> Result<u64, String> {
    let mut effects = Effects::default();
    let mut newest_message = None;
    {
        let mut local = lock(&node.local);
        if local.applied.0 != node.identity().id {
            local.applied = (node.identity().id, 0);
        }
        for (seq, fields) in entries {
            if *seq != last + 1 {
                return Err(format!(
                    "inbox entries lost: expected {}, got {seq}",
                    last + 1
                ));
            }
            last = *seq;
            local.applied.1 = last;
            if let Some(sent_at) = apply_one(&mut local, fields, &mut effects) {
                newest_message = Some(sent_at);
            }
        }
    }
    let Effects {
        wake,
        evicted,
        closed,
    } = effects;
    for outbox in wake {
        outbox.wake();
    }
    for (name, outbox, reason) in closed {
        info!(node.log, "disconnected by an operator"; "user" => &*name, "reason" => &reason);
        outbox.close_by_operator(&reason);
    }
    if let Some(sent_at) = newest_message {
        let lag = SystemTime::now()
            .duration_since(sent_at)
            .unwrap_or(Duration::ZERO);
        let micros = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        node.inbox_lag_micros.store(micros, Ordering::Relaxed);
    }
    for (id, name, outbox) in evicted {
        info!(node.log, "slow consumer dropped"; "user" => &*name);
        outbox.close(CloseReason::SlowConsumer);
        // Its stream may be stuck behind flow control: the name is freed
        // now, not when the stream ends.
        node.disconnect(&name, id);
    }
    Ok(last)
}

fn field<'a>(fields: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map_or(&[][..], |(_, value)| value.as_slice())
}

fn text(fields: &[(String, Vec<u8>)], name: &str) -> String {
    String::from_utf8_lossy(field(fields, name)).into_owned()
}

fn number(fields: &[(String, Vec<u8>)], name: &str) -> Option<i64> {
    std::str::from_utf8(field(fields, name)).ok()?.parse().ok()
}

fn connection_of(fields: &[(String, Vec<u8>)]) -> Option<SessionId> {
    std::str::from_utf8(field(fields, "c")).ok()?.parse().ok()
}

/// A membership event from an entry's fields (`g`, `u`, `n`, `p`,
/// `ts`/`tu`) of `kind`.
fn membership(fields: &[(String, Vec<u8>)], group: Name, kind: MembershipKind) -> Item {
    Item::Event(Arc::new(Event::Membership {
        group,
        user: Arc::from(text(fields, "u")),
        kind,
        member_count: number(fields, "n")
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        position: number(fields, "p")
            .and_then(|p| u64::try_from(p).ok())
            .unwrap_or(0),
        at: timestamp(number(fields, "ts"), number(fields, "tu")),
    }))
}

/// Applies one entry; for a message, returns when it was sent.
fn apply_one(
    local: &mut Local,
    fields: &[(String, Vec<u8>)],
    effects: &mut Effects,
) -> Option<SystemTime> {
    match field(fields, "k") {
        b"j" => {
            let (Some(id), group) = (connection_of(fields), text(fields, "g")) else {
                return None;
            };
            let group: Name = Arc::from(group);
            if let Some(connection) = local.connections.get_mut(&id) {
                if connection.evicted {
                    return None;
                }
                connection.groups.insert(Arc::clone(&group));
                local.groups.entry(group).or_default().insert(id);
            }
            None
        }
        b"l" => {
            if let Some(id) = connection_of(fields) {
                local.leave(id, &text(fields, "g"));
            }
            None
        }
        b"r" => {
            let id = connection_of(fields)?;
            let group: Name = Arc::from(text(fields, "g"));
            local.leave(id, &group);
            let targets = wanting(local, vec![id], EventKinds::MEMBERSHIP);
            let event = membership(fields, group, MembershipKind::Removed);
            deliver(local, &targets, &event, effects);
            None
        }
        b"x" => {
            let id = connection_of(fields)?;
            if let Some(connection) = local.remove(id) {
                let reason = text(fields, "why");
                effects
                    .closed
                    .push((connection.name, connection.outbox, reason));
            }
            None
        }
        kind @ (b"d" | b"g") => {
            let recipient_kind = if kind == b"d" {
                ChannelKind::User
            } else {
                ChannelKind::Group
            };
            let recipient: Name = Arc::from(text(fields, "r"));
            let sent_at = timestamp(number(fields, "ts"), number(fields, "tu"));
            let message = Arc::new(
                Message::new(
                    number(fields, "id")
                        .and_then(|id| u64::try_from(id).ok())
                        .unwrap_or(0),
                    Arc::from(text(fields, "s")),
                    Arc::clone(&recipient),
                    recipient_kind,
                    Arc::from(text(fields, "t")),
                    sent_at,
                )
                .by_operator(field(fields, "op") == b"1"),
            );
            let targets: Vec<SessionId> = if recipient_kind == ChannelKind::User {
                connection_of(fields).into_iter().collect()
            } else {
                group_members(local, &recipient)
            };
            deliver(local, &targets, &Item::Message(message), effects);
            Some(sent_at)
        }
        b"b" => {
            let messages = std::str::from_utf8(field(fields, "m"))
                .ok()
                .and_then(parked::decode)?;
            let connections = std::str::from_utf8(field(fields, "c")).ok()?.split(',');
            let mut newest = None;
            for (message, connection) in messages.into_iter().zip(connections) {
                newest = Some(message.sent_at);
                let targets: Vec<SessionId> = connection.parse().ok().into_iter().collect();
                deliver(local, &targets, &Item::Message(message), effects);
            }
            newest
        }
        b"m" => {
            let group: Name = Arc::from(text(fields, "g"));
            let kind = match field(fields, "mk") {
                b"j" => MembershipKind::Joined,
                b"l" => MembershipKind::Left,
                b"d" => MembershipKind::Disconnected,
                b"r" => MembershipKind::Removed,
                _ => return None,
            };
            let targets = wanting(local, group_members(local, &group), EventKinds::MEMBERSHIP);
            let event = membership(fields, group, kind);
            deliver(local, &targets, &event, effects);
            None
        }
        b"t" => {
            let user: Name = Arc::from(text(fields, "u"));
            let conversation: Name = Arc::from(text(fields, "cv"));
            let (conversation_kind, targets) = if field(fields, "ck") == b"g" {
                let others = group_members(local, &conversation)
                    .into_iter()
                    .filter(|id| local.connections.get(id).is_some_and(|c| c.name != user))
                    .collect();
                (ChannelKind::Group, others)
            } else {
                let to = connection_of(fields).into_iter().collect();
                (ChannelKind::User, to)
            };
            let targets = wanting(local, targets, EventKinds::TYPING);
            let event = Event::Typing {
                conversation,
                conversation_kind,
                user,
            };
            deliver(local, &targets, &Item::Event(Arc::new(event)), effects);
            None
        }
        _ => None,
    }
}

/// The local connections in `group`.
fn group_members(local: &Local, group: &str) -> Vec<SessionId> {
    local
        .groups
        .get(group)
        .map(|members| members.iter().copied().collect())
        .unwrap_or_default()
}

/// Those of `targets` whose stream asked for `kind`.
fn wanting(local: &Local, targets: Vec<SessionId>, kind: EventKinds) -> Vec<SessionId> {
    targets
        .into_iter()
        .filter(|id| {
            local
                .connections
                .get(id)
                .is_some_and(|connection| connection.outbox.wants(kind))
        })
        .collect()
}

/// Queues `item` for the `targets` connections; one whose queue is full is
/// a slow consumer: nothing more is queued for it, its stream ends, and its
/// session frees the name cluster-wide.
fn deliver(local: &mut Local, targets: &[SessionId], item: &Item, effects: &mut Effects) {
    for &id in targets {
        let Some(connection) = local.connections.get_mut(&id) else {
            continue;
        };
        if connection.evicted {
            continue;
        }
        if let Some(held) = &mut connection.held {
            // A resuming connect: its replay goes first.
            held.push(item.clone());
            continue;
        }
        if connection.outbox.queue(item.clone()).is_ok() {
            effects.wake.push(connection.outbox.clone());
        } else {
            connection.evicted = true;
            let groups = std::mem::take(&mut connection.groups);
            effects
                .evicted
                .push((id, Arc::clone(&connection.name), connection.outbox.clone()));
            for group in groups {
                if let Some(members) = local.groups.get_mut(&group) {
                    members.remove(&id);
                }
            }
        }
    }
}

/// The entries of an XREAD reply for one stream, in order.
fn entries_of(value: Value) -> Vec<Entry> {
    let Value::Array(streams) = value else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for stream in streams {
        let Value::Array(mut parts) = stream else {
            continue;
        };
        if parts.len() != 2 {
            continue;
        }
        let Some(Value::Array(items)) = parts.pop() else {
            continue;
        };
        for item in items {
            let Value::Array(pair) = item else { continue };
            let mut pair = pair.into_iter();
            let (Some(id), Some(Value::Array(flat))) = (pair.next(), pair.next()) else {
                continue;
            };
            let Some(seq) = bytes_of(id)
                .and_then(|id| String::from_utf8(id).ok())
                .and_then(|id| id.split('-').next().and_then(|seq| seq.parse().ok()))
            else {
                continue;
            };
            let mut fields = Vec::with_capacity(flat.len() / 2);
            let mut flat = flat.into_iter();
            while let (Some(key), Some(value)) = (flat.next(), flat.next()) {
                if let (Some(key), Some(value)) = (bytes_of(key), bytes_of(value)) {
                    fields.push((String::from_utf8_lossy(&key).into_owned(), value));
                }
            }
            out.push((seq, fields));
        }
    }
    out
}

fn bytes_of(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        Value::Int(number) => Some(number.to_string().into_bytes()),
        _ => None,
    }
}
