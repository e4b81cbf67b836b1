//! The `pingpong` scenario: two users with one message in flight. A sends
//! to B; B's receiver, on receipt, sends the same round back to A; A's
//! receiver, on receipt, starts the next round; R round trips in all. The
//! sends start from the receivers' futures, so nothing but the server and
//! the network sits between a receipt and the next send. Reports one-way
//! send-to-receipt latency (overall and per leg) and server CPU per message.
//! Against several nodes, A is on the first and B on the second.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};
use serde_json::{Map, Value};

use super::closed_loop::stop_reason;
use super::{summarize, Measured};
use crate::check::{self, Membership, Recipients, SendRec};
use crate::net::{connect_users, Bench, ErrorCounts, FlowMap, Hook, RecvShared, User};
use crate::payload::Payload;
use crate::report::Report;
use crate::util::{error_code, now_ns, Deadline};

/// State the two receivers share.
struct Game {
    users: OnceLock<Vec<Arc<User>>>,
    rounds: u32,
    sends: Mutex<Vec<SendRec>>,
    errors: Mutex<ErrorCounts>,
    /// Signalled with true after the last round, false on a failed send.
    done: Sender<bool>,
}

impl Game {
    /// Sends round `seq` from user `from` to the other user.
    fn send(self: &Arc<Self>, from: u32, seq: u32) {
        let Some(users) = self.users.get() else {
            return;
        };
        let to = 1 - from;
        let start_ns = now_ns();
        let text = Payload {
            sender: from,
            chan: to,
            seq,
            idx: seq,
            sent_ns: start_ns,
        }
        .encode();
        let user = &users[from as usize];
        let record = move |game: &Game, ack_ns, result: Result<u64, String>| {
            let (ok, id) = match result {
                Ok(id) => (true, id),
                Err(code) => {
                    *game
                        .errors
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .entry(code)
                        .or_default() += 1;
                    let _ = game.done.send(false);
                    (false, 0)
                }
            };
            game.sends
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(SendRec {
                    sender: from,
                    chan: to,
                    seq,
                    start_ns,
                    ack_ns,
                    id,
                    ok,
                    recipients: Recipients::User(to),
                });
        };
        match user.send(&users[to as usize].name, text) {
            Ok(call) => {
                let game = Arc::clone(self);
                user.client.spawn(async move {
                    let result = call.await;
                    let ack_ns = now_ns();
                    record(
                        &game,
                        ack_ns,
                        result.map(|r| r.message_id).map_err(|e| error_code(&e)),
                    );
                });
            }
            Err(error) => record(self, now_ns(), Err(error_code(&error))),
        }
    }
}

/// Runs `rounds` round trips and reports.
pub fn run(bench: &Bench, rounds: u32) -> Report {
    let deadline = Deadline::after(bench.timeout);
    let mut report = Report::new("pingpong", "msgs/s");
    let rounds = rounds.max(1);
    let mut params = Map::new();
    params.insert("round_trips".into(), rounds.into());
    params.insert("text_bytes".into(), crate::payload::TEXT_LEN.into());
    report.params = params;
    let prefix = bench.run_prefix("pingpong");
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    let game = Arc::new(Game {
        users: OnceLock::new(),
        rounds,
        sends: Mutex::new(Vec::with_capacity(2 * rounds as usize)),
        errors: Mutex::new(ErrorCounts::new()),
        done: done_tx,
    });
    let hook: Hook = {
        let game = Arc::clone(&game);
        Arc::new(move |receiver: u32, payload: &Payload| {
            if receiver == 1 {
                game.send(1, payload.seq);
            } else if payload.seq + 1 < game.rounds {
                game.send(0, payload.seq + 1);
            } else {
                let _ = game.done.send(true);
            }
        })
    };
    let shared = RecvShared::new(FlowMap::None, Some(hook));
    let names = vec![format!("{prefix}a"), format!("{prefix}b")];
    let online = match connect_users(bench, names, |idx| idx as usize, &shared, deadline) {
        Ok(online) => online,
        Err(error) => {
            report.failures.push(error);
            return report;
        }
    };
    let _ = game.users.set(online.users.clone());

    let before = bench.sample();
    let start_ns = now_ns();
    game.send(0, 0);
    loop {
        match done_rx.recv_timeout(Duration::from_millis(10)) {
            Ok(true) => break,
            Ok(false) => {
                report.failures.push("a send failed".to_owned());
                break;
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Some(reason) = stop_reason(&shared, deadline) {
                    report.failures.push(reason);
                    break;
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let end_ns = now_ns();
    let after = bench.sample();
    // The last answer may still be on its way.
    let settle = Deadline::after(Duration::from_secs(5));
    while game
        .sends
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len()
        < 2 * rounds as usize
        && report.failures.is_empty()
        && !settle.passed()
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    let receivers = online.close(Deadline::after(Duration::from_secs(10)));
    let sends = std::mem::take(&mut *game.sends.lock().unwrap_or_else(PoisonError::into_inner));
    let errors = std::mem::take(&mut *game.errors.lock().unwrap_or_else(PoisonError::into_inner));
    // Per-leg latency: what B received went A to B, and the other way.
    for (user, key) in [(1u32, "latency_us_a_to_b"), (0, "latency_us_b_to_a")] {
        let samples: Vec<u64> = receivers
            .iter()
            .filter(|r| r.user == user)
            .flat_map(|r| r.receipts.iter().map(|x| x.lat_ns))
            .collect();
        if let Some(l) = check::latency(samples) {
            let round = |x: f64| (x * 1000.0).round() / 1000.0;
            let mut leg = Map::new();
            leg.insert("p50".into(), Value::from(round(l.p50)));
            leg.insert("p90".into(), Value::from(round(l.p90)));
            leg.insert("p99".into(), Value::from(round(l.p99)));
            leg.insert("max".into(), Value::from(round(l.max)));
            report.put(key, Value::Object(leg));
        }
    }
    summarize(
        &mut report,
        Measured {
            sends: &sends,
            receivers: &receivers,
            membership: &Membership::default(),
            users: 2,
            start_ns,
            end_ns,
            before,
            after,
            errors,
        },
    );
    if report.elapsed_s > 0.0 {
        report.put(
            "round_trips_per_s",
            (f64::from(rounds) / report.elapsed_s).round(),
        );
    }
    report
}
