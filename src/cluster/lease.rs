//! The lease thread: renews the node's lease three times per lease period,
//! fences the node when the lease is gone (expired while the node was
//! paused or cut off, or Redis lost its data, which the epoch tells), and
//! registers it anew; reports whether the node can serve; frees the users
//! of nodes whose lease expired, and of this node's own old identities, in
//! batches; retries disconnects that could not reach Redis.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slog::{debug, info, warn};

use super::store::{Call, Script, CALL_TIMEOUT};
use super::{lock, Node, REAP_BATCH};

/// Renews the lease until the node stops; `connection` is the one the node
/// registered on.
pub(super) fn run(node: &Arc<Node>, connection: redis::Connection) {
    let mut connection = Some(connection);
    let period = node.lease / 3;
    let mut next = Instant::now() + period;
    while !node.stopped.load(Ordering::Acquire) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(50)));
            continue;
        }
        next = Instant::now() + period;
        if connection.is_none() {
            match node.store.connect(CALL_TIMEOUT) {
                Ok(fresh) => connection = Some(fresh),
                Err(error) => {
                    node.set_serving(false, "redis unreachable");
                    debug!(node.log, "lease: cannot reach redis"; "error" => %error);
                }
            }
        }
        let identity = node.identity();
        if identity.registered && Instant::now() > identity.lease_deadline {
            node.fence("the lease ran out before it could be renewed");
        }
        let Some(live) = connection.as_mut() else {
            continue;
        };
        if tick(node, live).is_err() {
            connection = None;
        }
    }
}

/// One round: register or renew, then reap and retry. An error means the
/// connection failed.
fn tick(node: &Arc<Node>, connection: &mut redis::Connection) -> Result<(), ()> {
    let identity = node.identity();
    if node.closing.load(Ordering::Acquire) {
        return Ok(());
    }
    if !identity.registered {
        if let Err(error) = node.register(connection) {
            warn!(node.log, "cannot register again yet"; "error" => %error);
            return Err(());
        }
    } else {
        let ttl = node.lease.as_millis().to_string();
        let sent = Instant::now();
        let call = Call::new(
            Script::Renew,
            &[
                identity.id.as_bytes(),
                ttl.as_bytes(),
                identity.epoch.as_bytes(),
            ],
        );
        let renewed = node.store.run_one(connection, &call);
        let failed = !matches!(&renewed, Ok(answer) if answer.is_ok());
        node.renewals[usize::from(failed)].fetch_add(1, Ordering::Relaxed);
        match renewed {
            Ok(answer) => match answer.status() {
                "OK" => {
                    let kept = |index| answer.int(index).and_then(|n| u64::try_from(n).ok());
                    node.history_kept[0].store(kept(1).unwrap_or(0), Ordering::Relaxed);
                    node.history_kept[1].store(kept(2).unwrap_or(0), Ordering::Relaxed);
                    let mut current = lock(&node.identity);
                    if current.id == identity.id {
                        current.lease_deadline = sent + node.lease;
                    }
                    drop(current);
                    node.set_serving(true, "lease renewed");
                }
                "EPOCH" => node.fence("redis lost its data (the epoch changed)"),
                _ => node.fence("the lease expired"),
            },
            Err(error) => {
                node.set_serving(false, "redis unreachable");
                debug!(node.log, "lease renewal failed"; "error" => %error);
                return Err(());
            }
        }
    }
    let me = node.identity();
    if !me.registered {
        return Ok(());
    }
    let deadline = Instant::now() + node.lease / 3;
    let retired = std::mem::take(&mut *lock(&node.retired));
    for old in retired {
        if !reap(node, connection, &me.id, &old, true, deadline) {
            lock(&node.retired).push(old);
        }
    }
    let dead = node
        .store
        .run_one(
            connection,
            &Call::new(Script::DeadNodes, &[me.id.as_bytes()]),
        )
        .map_err(|_| ())?;
    for index in 1..dead.field_count() {
        if let Some(other) = dead.text(index) {
            reap(node, connection, &me.id, other, false, deadline);
        }
    }
    let pending = std::mem::take(&mut *lock(&node.pending));
    for one in pending {
        node.release(one);
    }
    Ok(())
}

/// Frees `dead`'s users in batches until none is left or `deadline`
/// passes; true when done. With `force`, the lease is not checked (the
/// node's own old identity).
pub(super) fn reap(
    node: &Node,
    connection: &mut redis::Connection,
    me: &str,
    dead: &str,
    force: bool,
    deadline: Instant,
) -> bool {
    let batch = REAP_BATCH.to_string();
    let force = if force { "1" } else { "0" };
    let most = node.limits.membership_events_max_members.to_string();
    let mut freed = 0;
    loop {
        let call = Call::new(
            Script::Reap,
            &[
                me.as_bytes(),
                dead.as_bytes(),
                batch.as_bytes(),
                force.as_bytes(),
                most.as_bytes(),
            ],
        );
        match node.store.run_one(connection, &call) {
            Ok(answer) => {
                freed += answer.int(1).unwrap_or(0);
                match answer.status() {
                    "DONE" => {
                        info!(node.log, "freed the users of a departed node";
                            "node" => dead, "users" => freed);
                        return true;
                    }
                    "MORE" if Instant::now() < deadline => continue,
                    _ => return false,
                }
            }
            Err(error) => {
                debug!(node.log, "reap failed"; "node" => dead, "error" => %error);
                return false;
            }
        }
    }
}
