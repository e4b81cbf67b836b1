//! The cluster's disconnect script against a real Redis, with the node's
//! inbox laid out by hand: what an ended session keeps for a resume when
//! messages for it were still on their way through its node's inbox (the
//! node had applied them only up to some entry). The race that leaves them
//! there is timing-dependent end to end; here it is set up exactly.

mod common;

use chat_server::cluster::scripts;
use common::redis::TestRedis;

const BASE: &str = "{t}";

fn script(name: &str) -> redis::Script {
    let (_, source) = scripts::all()
        .into_iter()
        .find(|(script, _)| *script == name)
        .expect("the script exists");
    redis::Script::new(&source)
}

fn add_entry(connection: &mut redis::Connection, seq: u64, fields: &[(&str, &str)]) {
    let mut command = redis::cmd("XADD");
    command
        .arg(format!("{BASE}:node:n1:inbox"))
        .arg(format!("{seq}-0"));
    for (key, value) in fields {
        command.arg(*key).arg(*value);
    }
    let _: String = command.query(connection).unwrap();
}

fn message(
    seq: u64,
    kind: &str,
    to: &str,
    id: &str,
    text: &str,
    connection: &mut redis::Connection,
) {
    let target = if kind == "d" { "c" } else { "r" };
    let mut fields = vec![("k", kind), ("id", id), ("s", "bob"), ("t", text)];
    fields.extend([("ts", "1700000000"), ("tu", "5")]);
    if kind == "d" {
        fields.push(("r", "alice"));
    }
    fields.push((target, to));
    add_entry(connection, seq, &fields);
}

#[test]
fn messages_still_in_the_inbox_when_a_session_ends_are_kept_for_its_resume() {
    let redis = TestRedis::start();
    let mut connection = redis.client();
    let cmd = |args: &[&str], connection: &mut redis::Connection| {
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        let _: redis::Value = command.query(connection).unwrap();
    };
    // alice holds connection 7 on node n1, and is in group "room" (and,
    // by the time the session ends, "later", joined after entry 1).
    cmd(&["SET", "{t}:node:n1", "e"], &mut connection);
    cmd(
        &[
            "HSET",
            "{t}:names",
            "alice",
            "u n1 7",
            "room",
            "g",
            "later",
            "g",
            "gone",
            "g",
        ],
        &mut connection,
    );
    cmd(&["SADD", "{t}:u:alice", "room", "later"], &mut connection);
    for group in ["room", "later"] {
        cmd(
            &[
                "HSET",
                &format!("{{t}}:g:{group}"),
                "alice",
                "n1",
                "bob",
                "n2",
            ],
            &mut connection,
        );
        cmd(
            &["HSET", &format!("{{t}}:gn:{group}"), "n1", "1", "n2", "1"],
            &mut connection,
        );
    }
    // Entry 1 was applied to the connection before it ended.
    message(1, "d", "7", "10", "applied already", &mut connection);
    // Entries 2 to 9 were not.
    message(2, "g", "room", "11", "to room", &mut connection);
    message(3, "g", "gone", "12", "before leaving", &mut connection);
    add_entry(&mut connection, 4, &[("k", "l"), ("g", "gone"), ("c", "7")]);
    message(5, "g", "gone", "13", "after leaving", &mut connection);
    add_entry(
        &mut connection,
        6,
        &[("k", "j"), ("g", "later"), ("c", "7")],
    );
    message(7, "g", "later", "14", "to a group joined", &mut connection);
    message(8, "d", "8", "15", "to someone else", &mut connection);
    message(9, "d", "7", "16", "naïve ✓; a,b", &mut connection);
    let answer: Vec<redis::Value> = script("disconnect")
        .key(BASE)
        .arg("n1")
        .arg("alice")
        .arg("n1")
        .arg("7")
        .arg("tok")
        .arg("60000")
        .arg("3")
        .arg("")
        .arg("1")
        .arg("1000")
        .invoke(&mut connection)
        .unwrap();
    assert_eq!(
        answer[0],
        redis::Value::BulkString(b"OK".to_vec()),
        "{answer:?}"
    );
    let (token, dropped, ring): (String, String, String) = redis::cmd("HMGET")
        .arg("{t}:r:alice")
        .arg("t")
        .arg("d")
        .arg("m")
        .query(&mut connection)
        .unwrap();
    assert_eq!((token.as_str(), dropped.as_str()), ("tok", "3"));
    // alice was in "gone" until entry 4 and in "later" from entry 6.
    assert!(ring.contains("to room"), "{ring}");
    assert!(ring.contains("before leaving"), "{ring}");
    assert!(!ring.contains("after leaving"), "{ring}");
    assert!(ring.contains("to a group joined"), "{ring}");
    assert!(ring.contains("naïve ✓; a,b"), "{ring}");
    assert!(!ring.contains("applied already"), "{ring}");
    assert!(!ring.contains("someone else"), "{ring}");
    assert!(
        ring.starts_with("11,1700000000,5,g,3,4,7;bobroomto room"),
        "the node's own form, oldest first: {ring}"
    );
}
