//! The correctness checks run after every message scenario, from what the
//! senders recorded (start and acknowledgement time, result, intended
//! recipients) and what every receiver recorded (payloads in arrival
//! order). Per recipient and (sender, channel):
//!
//! * lost: a message whose send returned OK and which named this recipient
//!   never arrived;
//! * duplicated: it arrived more than once;
//! * reordered: message B arrived before message A although A's send was
//!   acknowledged before B's send began (calls in flight together have no
//!   defined order). Sends are sorted by acknowledgement time and a prefix
//!   maximum of arrival positions is searched by B's start time, so the
//!   check is O(n log n);
//! * unexpected: a message arrived that was not meant for this recipient.
//!
//! For groups, every member must also see the group's messages in one
//! order: each member's sequence of message ids must be an in-order
//! subsequence of the longest member's sequence.
//!
//! It also computes latency percentiles.

use std::collections::HashMap;

use crate::net::ReceiverOutcome;
use crate::payload::GROUP_BIT;

/// Who a message was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipients {
    /// One user, by index.
    User(u32),
    /// The members of a group as of one membership version.
    Group {
        /// The group's index.
        group: u32,
        /// Index into the group's membership history.
        version: u32,
    },
}

/// One send as the sender recorded it.
#[derive(Debug, Clone, Copy)]
pub struct SendRec {
    /// Sender index.
    pub sender: u32,
    /// Channel (user index or [`GROUP_BIT`] | group index).
    pub chan: u32,
    /// Sequence number per (sender, channel).
    pub seq: u32,
    /// When the call was started (process clock, ns).
    pub start_ns: u64,
    /// When its answer was seen (process clock, ns).
    pub ack_ns: u64,
    /// The message id the server returned (0 when it failed).
    pub id: u64,
    /// Whether the send returned OK.
    pub ok: bool,
    /// Who it was for.
    pub recipients: Recipients,
}

/// Every group's membership over time: for each group, a list of versions,
/// each the sorted member indices after one change.
#[derive(Debug, Clone, Default)]
pub struct Membership {
    versions: Vec<Vec<Vec<u32>>>,
}

impl Membership {
    /// Groups whose membership never changed.
    pub fn fixed(groups: Vec<Vec<u32>>) -> Membership {
        Membership {
            versions: groups
                .into_iter()
                .map(|mut members| {
                    members.sort_unstable();
                    vec![members]
                })
                .collect(),
        }
    }

    /// Appends a new version of `group`'s members; returns its number.
    pub fn push(&mut self, group: u32, mut members: Vec<u32>) -> u32 {
        members.sort_unstable();
        let history = &mut self.versions[group as usize];
        history.push(members);
        (history.len() - 1) as u32
    }

    /// The members of `group` at `version`.
    pub fn members(&self, group: u32, version: u32) -> &[u32] {
        self.versions
            .get(group as usize)
            .and_then(|h| h.get(version as usize))
            .map_or(&[], Vec::as_slice)
    }

    /// The latest version of `group` and its members.
    pub fn latest(&self, group: u32) -> (u32, &[u32]) {
        let history = &self.versions[group as usize];
        ((history.len() - 1) as u32, &history[history.len() - 1])
    }

    fn intended(&self, recipients: Recipients, user: u32) -> bool {
        match recipients {
            Recipients::User(u) => u == user,
            Recipients::Group { group, version } => {
                self.members(group, version).binary_search(&user).is_ok()
            }
        }
    }

    /// Every group `user` was ever a member of.
    fn groups_of(&self, user: u32) -> Vec<u32> {
        (0..self.versions.len() as u32)
            .filter(|&g| {
                self.versions[g as usize]
                    .iter()
                    .any(|m| m.binary_search(&user).is_ok())
            })
            .collect()
    }
}

/// What the checks found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checks {
    /// Expected receipts that never came.
    pub lost: u64,
    /// Receipts of a message already received.
    pub duplicated: u64,
    /// Receipts that came before an earlier-acknowledged message's.
    pub reordered: u64,
    /// Receipts of messages not meant for the receiver.
    pub unexpected: u64,
    /// Group members whose order differs from the other members'.
    pub order_mismatches: u64,
}

impl Checks {
    /// Whether every check passed.
    pub fn clean(&self) -> bool {
        *self == Checks::default()
    }
}

const UNSEEN: u32 = u32::MAX;

/// Runs every check over `users` users. `receivers` may lack users whose
/// receiver never reported back: everything meant for them is lost.
pub fn check(
    sends: &[SendRec],
    receivers: &[ReceiverOutcome],
    membership: &Membership,
    users: u32,
) -> Checks {
    let mut checks = Checks::default();
    // (sender, chan) -> index into `sends` by seq.
    let mut by_key: HashMap<(u32, u32), Vec<u32>> = HashMap::new();
    for (i, send) in sends.iter().enumerate() {
        let slots = by_key.entry((send.sender, send.chan)).or_default();
        let seq = send.seq as usize;
        if slots.len() <= seq {
            slots.resize(seq + 1, UNSEEN);
        }
        slots[seq] = i as u32;
    }
    let mut keys_by_chan: HashMap<u32, Vec<(u32, u32)>> = HashMap::new();
    for key in by_key.keys() {
        keys_by_chan.entry(key.1).or_default().push(*key);
    }
    let empty = ReceiverOutcome::default();
    let by_user: HashMap<u32, &ReceiverOutcome> = receivers.iter().map(|r| (r.user, r)).collect();
    for user in 0..users {
        let outcome = by_user.get(&user).copied().unwrap_or(&empty);
        // (sender, chan) -> arrival position by seq.
        let mut positions: HashMap<(u32, u32), Vec<u32>> = HashMap::new();
        for (pos, receipt) in outcome.receipts.iter().enumerate() {
            let key = (receipt.sender, receipt.chan);
            let send = by_key
                .get(&key)
                .and_then(|slots| slots.get(receipt.seq as usize))
                .filter(|&&i| i != UNSEEN)
                .map(|&i| &sends[i as usize]);
            let Some(send) = send else {
                checks.unexpected += 1;
                continue;
            };
            if !send.ok || !membership.intended(send.recipients, user) {
                checks.unexpected += 1;
                continue;
            }
            let slots = positions
                .entry(key)
                .or_insert_with(|| vec![UNSEEN; by_key[&key].len()]);
            let slot = &mut slots[receipt.seq as usize];
            if *slot == UNSEEN {
                *slot = pos as u32;
            } else {
                checks.duplicated += 1;
            }
        }
        // Lost: every OK send meant for this user must have a position.
        let mut chans = vec![user];
        chans.extend(
            membership
                .groups_of(user)
                .into_iter()
                .map(|g| g | GROUP_BIT),
        );
        for chan in chans {
            for key in keys_by_chan.get(&chan).map_or(&[][..], Vec::as_slice) {
                let got = positions.get(key);
                for (seq, &i) in by_key[key].iter().enumerate() {
                    if i == UNSEEN {
                        continue;
                    }
                    let send = &sends[i as usize];
                    if !send.ok || !membership.intended(send.recipients, user) {
                        continue;
                    }
                    if got.is_none_or(|p| p[seq] == UNSEEN) {
                        checks.lost += 1;
                    }
                }
            }
        }
        // Reordered, per (sender, chan).
        for (key, slots) in &positions {
            checks.reordered += reordered(sends, &by_key[key], slots);
        }
    }
    checks.order_mismatches = group_order_mismatches(receivers);
    checks
}

/// Receipts B that came after some A whose send was acknowledged before
/// B's began. `send_of[seq]` indexes `sends`, `pos_of[seq]` is the arrival
/// position (or [`UNSEEN`]).
fn reordered(sends: &[SendRec], send_of: &[u32], pos_of: &[u32]) -> u64 {
    // (ack, pos) of received messages, sorted by ack.
    let mut acked: Vec<(u64, u32)> = Vec::new();
    let mut starts: Vec<(u64, u32)> = Vec::new();
    for (seq, &pos) in pos_of.iter().enumerate() {
        if pos == UNSEEN {
            continue;
        }
        let send = &sends[send_of[seq] as usize];
        acked.push((send.ack_ns, pos));
        starts.push((send.start_ns, pos));
    }
    acked.sort_unstable();
    let mut prefix_max = Vec::with_capacity(acked.len());
    let mut max = 0u32;
    for &(_, pos) in &acked {
        max = max.max(pos);
        prefix_max.push(max);
    }
    let mut count = 0;
    for (start, pos) in starts {
        let before = acked.partition_point(|&(ack, _)| ack < start);
        if before > 0 && prefix_max[before - 1] > pos {
            count += 1;
        }
    }
    count
}

/// Members whose sequence of a group's message ids is not an in-order
/// subsequence of the longest member's sequence for that group.
fn group_order_mismatches(receivers: &[ReceiverOutcome]) -> u64 {
    // group -> user -> ids in arrival order.
    let mut sequences: HashMap<u32, Vec<Vec<u64>>> = HashMap::new();
    for outcome in receivers {
        let mut mine: HashMap<u32, Vec<u64>> = HashMap::new();
        for receipt in &outcome.receipts {
            if receipt.chan & GROUP_BIT != 0 {
                mine.entry(receipt.chan).or_default().push(receipt.id);
            }
        }
        for (chan, ids) in mine {
            sequences.entry(chan).or_default().push(ids);
        }
    }
    let mut mismatches = 0;
    for members in sequences.values() {
        let Some(reference) = members.iter().max_by_key(|ids| ids.len()) else {
            continue;
        };
        let rank: HashMap<u64, usize> = reference
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, i))
            .collect();
        for ids in members {
            let mut last = None;
            let in_order = ids.iter().filter_map(|id| rank.get(id)).all(|&r| {
                let ok = last.is_none_or(|l| r > l);
                last = Some(r);
                ok
            });
            if !in_order {
                mismatches += 1;
            }
        }
    }
    mismatches
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Number of samples.
    pub samples: usize,
}

/// Nearest-rank percentiles of `samples` (nanoseconds); `None` if empty.
pub fn latency(mut samples: Vec<u64>) -> Option<Latency> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let n = samples.len();
    let at = |p: f64| {
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        samples[rank.clamp(1, n) - 1] as f64 / 1000.0
    };
    Some(Latency {
        p50: at(50.0),
        p90: at(90.0),
        p99: at(99.0),
        max: samples[n - 1] as f64 / 1000.0,
        samples: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Receipt;

    fn send(seq: u32, start: u64, ack: u64) -> SendRec {
        SendRec {
            sender: 0,
            chan: 1,
            seq,
            start_ns: start,
            ack_ns: ack,
            id: u64::from(seq) + 100,
            ok: true,
            recipients: Recipients::User(1),
        }
    }

    fn receiver(user: u32, seqs: &[u32]) -> ReceiverOutcome {
        ReceiverOutcome {
            user,
            receipts: seqs
                .iter()
                .map(|&seq| Receipt {
                    sender: 0,
                    chan: 1,
                    seq,
                    lat_ns: 1,
                    id: u64::from(seq) + 100,
                })
                .collect(),
            ..ReceiverOutcome::default()
        }
    }

    #[test]
    fn in_order_and_complete_is_clean() {
        let sends = [send(0, 0, 10), send(1, 20, 30), send(2, 40, 50)];
        let got = check(
            &sends,
            &[receiver(1, &[0, 1, 2])],
            &Membership::default(),
            2,
        );
        assert!(got.clean(), "{got:?}");
    }

    #[test]
    fn loss_duplicates_and_strangers_are_counted() {
        let sends = [send(0, 0, 10), send(1, 20, 30), send(2, 40, 50)];
        let got = check(
            &sends,
            &[receiver(1, &[0, 0, 2, 7])],
            &Membership::default(),
            2,
        );
        assert_eq!(got.lost, 1);
        assert_eq!(got.duplicated, 1);
        assert_eq!(got.unexpected, 1);
        // A receiver that never reported loses everything.
        let got = check(&sends, &[], &Membership::default(), 2);
        assert_eq!(got.lost, 3);
    }

    #[test]
    fn only_sends_acknowledged_before_the_next_began_are_ordered() {
        // 0 and 1 overlap (1 starts before 0 is acked): either order is fine.
        let sends = [send(0, 0, 30), send(1, 10, 40), send(2, 50, 60)];
        let got = check(
            &sends,
            &[receiver(1, &[1, 0, 2])],
            &Membership::default(),
            2,
        );
        assert_eq!(got.reordered, 0);
        // 2 began after 0 and 1 were acknowledged: arriving first is a violation.
        let got = check(
            &sends,
            &[receiver(1, &[2, 0, 1])],
            &Membership::default(),
            2,
        );
        assert_eq!(got.reordered, 1);
    }

    #[test]
    fn group_members_must_agree_on_order() {
        let mut sends = Vec::new();
        for seq in 0..3 {
            let mut s = send(seq, u64::from(seq) * 10, u64::from(seq) * 10 + 100);
            s.chan = GROUP_BIT;
            s.recipients = Recipients::Group {
                group: 0,
                version: 0,
            };
            sends.push(s);
        }
        let member = |user, seqs: &[u32]| {
            let mut r = receiver(user, seqs);
            for receipt in &mut r.receipts {
                receipt.chan = GROUP_BIT;
            }
            r
        };
        let membership = Membership::fixed(vec![vec![0, 1, 2]]);
        let same = [
            member(0, &[0, 1, 2]),
            member(1, &[0, 1, 2]),
            member(2, &[0, 1, 2]),
        ];
        assert!(check(&sends, &same, &membership, 3).clean());
        let differ = [
            member(0, &[0, 1, 2]),
            member(1, &[1, 0, 2]),
            member(2, &[0, 1, 2]),
        ];
        let got = check(&sends, &differ, &membership, 3);
        assert_eq!(got.order_mismatches, 1);
        assert_eq!(got.lost, 0);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        let l = latency(samples).unwrap();
        assert_eq!((l.p50, l.p90, l.p99, l.max), (50.0, 90.0, 99.0, 100.0));
        assert!(latency(Vec::new()).is_none());
    }
}
