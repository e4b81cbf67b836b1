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
    // A batch of direct messages: to alice's connection 7, to another
    // connection, and to 7 again (an operator's).
    add_entry(
        &mut connection,
        10,
        &[
            ("k", "b"),
            ("c", "7,8,7"),
            (
                "m",
                "17,1700000000,6,d,3,5,4;bobalicea;b,\
                 18,1700000000,6,d,3,5,5;bobcarolother\
                 19,1700000000,6,D,3,5,8;bobalicelast ✓",
            ),
        ],
    );
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
    assert!(
        ring.ends_with(
            "17,1700000000,6,d,3,5,4;bobalicea;b,19,1700000000,6,D,3,5,8;bobalicelast ✓"
        ),
        "a batch's records for connection 7, as they were: {ring}"
    );
    assert!(!ring.contains("other"), "{ring}");
}

// The operator actions' and the send limit's scripts, run on state the
// other scripts build (register, connect, create, join, send), with what
// each leaves in Redis and in the nodes' inboxes read back exactly.

/// A script's answer, every field as a string (numbers in decimal).
fn run(name: &str, args: &[&str], connection: &mut redis::Connection) -> Vec<String> {
    let script = script(name);
    let mut invocation = script.key(BASE);
    for arg in args {
        invocation.arg(*arg);
    }
    let answer: Vec<redis::Value> = invocation.invoke(connection).unwrap();
    answer.into_iter().map(text_of).collect()
}

fn text_of(value: redis::Value) -> String {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes).unwrap(),
        redis::Value::Int(number) => number.to_string(),
        redis::Value::SimpleString(text) => text,
        other => panic!("unexpected field {other:?}"),
    }
}

/// `OK`, then the rest of an answer.
#[track_caller]
fn ok(answer: Vec<String>) -> Vec<String> {
    assert_eq!(answer.first().map(String::as_str), Some("OK"), "{answer:?}");
    answer[1..].to_vec()
}

fn redis_query<T: redis::FromRedisValue>(args: &[&str], connection: &mut redis::Connection) -> T {
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command.query(connection).unwrap()
}

/// Node `n`'s inbox entries after sequence number `after`, each as its
/// fields in order.
fn inbox_after(n: &str, after: u64, connection: &mut redis::Connection) -> Vec<Vec<String>> {
    let key = format!("{BASE}:node:{n}:inbox");
    let entries: Vec<(String, Vec<String>)> =
        redis_query(&["XRANGE", &key, &format!("({after}-0"), "+"], connection);
    entries.into_iter().map(|(_, fields)| fields).collect()
}

/// Node `n`'s last inbox sequence number.
fn inbox_seq(n: &str, connection: &mut redis::Connection) -> u64 {
    let seq: Option<u64> = redis_query(&["GET", &format!("{BASE}:node:{n}:iseq")], connection);
    seq.unwrap_or(0)
}

/// An entry's fields without its time (`ts`, `tu`), which is Redis's.
fn timeless(entry: &[String]) -> Vec<String> {
    entry
        .chunks(2)
        .filter(|pair| pair[0] != "ts" && pair[0] != "tu")
        .flatten()
        .cloned()
        .collect()
}

fn fields(pairs: &[&str]) -> Vec<String> {
    pairs.iter().map(|field| field.to_string()).collect()
}

/// Redis's clock, in µs.
fn redis_now(connection: &mut redis::Connection) -> i64 {
    let (seconds, micros): (i64, i64) = redis_query(&["TIME"], connection);
    seconds * 1_000_000 + micros
}

/// A cluster laid out by the scripts themselves: nodes n1 and n2, and
/// users connected on them (`(name, node, connection)`).
fn cluster_of(users: &[(&str, &str, &str)], connection: &mut redis::Connection) {
    for n in ["n1", "n2"] {
        ok(run("register", &[n, "60000", "e"], connection));
    }
    for (name, n, conn) in users {
        let peer = format!("ipv4:10.0.0.{conn}:5000");
        ok(run("connect", &[n, name, conn, "", &peer], connection));
    }
}

fn create(user: &str, group: &str, connection: &mut redis::Connection) {
    let n = node_of(user, connection);
    ok(run(
        "create_group",
        &[&n, user, group, "100", "1000"],
        connection,
    ));
}

fn join(user: &str, group: &str, connection: &mut redis::Connection) {
    let n = node_of(user, connection);
    ok(run(
        "join_group",
        &[&n, user, group, "100", "1000"],
        connection,
    ));
}

fn node_of(user: &str, connection: &mut redis::Connection) -> String {
    let record: String = redis_query(&["HGET", &format!("{BASE}:names"), user], connection);
    record.split(' ').nth(1).unwrap().to_owned()
}

/// A send without a limit: `OK id seconds micros recipients kind`.
fn send(from: &str, to: &str, text: &str, connection: &mut redis::Connection) -> Vec<String> {
    let n = node_of(from, connection);
    run(
        "send",
        &[&n, from, to, text, "100", "262144", "0", "0"],
        connection,
    )
}

/// A send_many run: `node`, no limits, then each `(caller, recipient,
/// text)` with its lengths; every answer field as a string, a nested
/// answer as its fields joined by spaces.
fn send_many(node: &str, sends: &[(&str, &str, &str)], c: &mut redis::Connection) -> Vec<String> {
    let send_many = script("send_many");
    let mut invocation = send_many.key(BASE);
    invocation
        .arg(node)
        .arg("100")
        .arg("262144")
        .arg("0")
        .arg("0");
    for (from, to, text) in sends {
        let lengths = format!("{},{},{}", from.len(), to.len(), text.len());
        invocation.arg(*from).arg(*to).arg(*text).arg(lengths);
    }
    let answer: Vec<redis::Value> = invocation.invoke(c).unwrap();
    answer
        .into_iter()
        .map(|value| match value {
            redis::Value::Array(fields) => fields
                .into_iter()
                .map(text_of)
                .collect::<Vec<_>>()
                .join(" "),
            other => text_of(other),
        })
        .collect()
}

#[test]
fn several_sends_in_one_run_answer_each_and_batch_direct_messages_per_node_in_order() {
    let redis = TestRedis::start();
    let mut c = redis.client();
    cluster_of(
        &[
            ("alice", "n1", "7"),
            ("bob", "n2", "3"),
            ("carol", "n2", "4"),
        ],
        &mut c,
    );
    create("alice", "room", &mut c);
    join("bob", "room", &mut c);
    let (n1, n2) = (inbox_seq("n1", &mut c), inbox_seq("n2", &mut c));
    let answer = send_many(
        "n1",
        &[
            ("alice", "bob", "one"),
            ("alice", "carol", "two; a,b"),
            ("alice", "nobody", "x"),
            ("alice", "room", "to the room"),
            ("ghost", "bob", "x"),
            ("bob", "alice", "three ✓"),
        ],
        &mut c,
    );
    // The run's time, then per send: a direct message's id alone, else
    // the answer SEND gives.
    let (seconds, micros) = (answer[0].clone(), answer[1].clone());
    let ids: Vec<u64> = [2, 3, 7]
        .iter()
        .map(|&i| answer[i].parse().unwrap())
        .collect();
    assert_eq!(answer[4], "NORECIP");
    let group: Vec<&str> = answer[5].split(' ').collect();
    assert_eq!(
        group,
        ["OK", &(ids[1] + 1).to_string(), &seconds, &micros, "2", "g"]
    );
    assert_eq!(answer[6], "UNAUTH");
    assert_eq!(
        ids,
        [ids[0], ids[0] + 1, ids[0] + 3],
        "ids in order, none lost"
    );
    assert_eq!(answer.len(), 8);
    let seq: u64 = redis_query(&["GET", "{t}:seq"], &mut c);
    assert_eq!(seq, ids[2], "the id counter written back");
    let record = |id: u64, from: &str, to: &str, text: &str| {
        format!(
            "{id},{seconds},{micros},d,{},{},{};{from}{to}{text}",
            from.len(),
            to.len(),
            text.len()
        )
    };
    // n2: the two direct messages before the group message, as one entry;
    // then the group message; then the last direct message.
    let group_entry = fields(&[
        "k",
        "g",
        "id",
        group[1],
        "s",
        "alice",
        "r",
        "room",
        "t",
        "to the room",
        "ts",
        &seconds,
        "tu",
        &micros,
    ]);
    assert_eq!(
        inbox_after("n2", n2, &mut c),
        [
            fields(&[
                "k",
                "b",
                "c",
                "3,4",
                "m",
                &(record(ids[0], "alice", "bob", "one")
                    + &record(ids[1], "alice", "carol", "two; a,b")),
            ]),
            group_entry.clone(),
        ]
    );
    assert_eq!(
        inbox_after("n1", n1, &mut c),
        [
            group_entry,
            fields(&[
                "k",
                "b",
                "c",
                "7",
                "m",
                &record(ids[2], "bob", "alice", "three ✓"),
            ]),
        ]
    );
    // A fenced node's run refuses every send.
    assert_eq!(
        send_many(
            "gone",
            &[("alice", "bob", "x"), ("bob", "alice", "y")],
            &mut c
        ),
        ["0", "0", "FENCED", "FENCED"]
    );
}

#[test]
fn connect_refuses_a_banned_name_before_anything_else_and_notes_when_and_from_where() {
    let redis = TestRedis::start();
    let mut connection = redis.client();
    cluster_of(&[], &mut connection);
    let before = redis_now(&mut connection);
    assert_eq!(
        ok(run(
            "connect",
            &["n1", "alice", "7", "", "ipv4:10.0.0.1:5000"],
            &mut connection
        )),
        ["0"]
    );
    let after = redis_now(&mut connection);
    let record: String = redis_query(&["HGET", "{t}:names", "alice"], &mut connection);
    assert_eq!(record, "u n1 7");
    let listed: Vec<String> = redis_query(&["ZRANGE", "{t}:uz", "0", "-1"], &mut connection);
    assert_eq!(listed, ["alice"]);
    let info: String = redis_query(&["HGET", "{t}:ui", "alice"], &mut connection);
    let (at, peer) = info.split_once(' ').unwrap();
    let at: i64 = at.parse().unwrap();
    assert!((before..=after).contains(&at), "{info}");
    assert_eq!(peer, "ipv4:10.0.0.1:5000");

    // A ban refuses the name, with the milliseconds left, changing
    // nothing: before any other refusal, even a node's lost lease.
    let _: () = redis_query(
        &["SET", "{t}:ban:mallory", "1", "PX", "5000"],
        &mut connection,
    );
    for n in ["n1", "gone"] {
        let answer = run("connect", &[n, "mallory", "8", "", "p"], &mut connection);
        assert_eq!(answer[0], "BANNED", "{answer:?}");
        let left: i64 = answer[1].parse().unwrap();
        assert!((4000..=5000).contains(&left), "{left}");
    }
    let answer = run("banned", &["n1", "mallory"], &mut connection);
    assert_eq!(answer[0], "BANNED", "{answer:?}");
    assert_eq!(run("banned", &["n1", "alice"], &mut connection), ["OK"]);
    let taken: bool = redis_query(&["HEXISTS", "{t}:names", "mallory"], &mut connection);
    assert!(!taken);
    assert_eq!(
        run("connect", &["gone", "bob", "9", "", "p"], &mut connection),
        ["FENCED"]
    );
    // Once the ban has run out, the name connects.
    let _: () = redis_query(&["PEXPIRE", "{t}:ban:mallory", "1"], &mut connection);
    std::thread::sleep(std::time::Duration::from_millis(5));
    ok(run(
        "connect",
        &["n1", "mallory", "8", "", "p"],
        &mut connection,
    ));
}

#[test]
fn an_operators_disconnect_ends_the_stream_ahead_of_the_groups_events_and_frees_the_name() {
    let redis = TestRedis::start();
    let mut c = redis.client();
    cluster_of(
        &[
            ("alice", "n1", "7"),
            ("bob", "n2", "3"),
            ("carol", "n1", "8"),
        ],
        &mut c,
    );
    create("alice", "room", &mut c);
    join("bob", "room", &mut c);
    join("carol", "room", &mut c);
    create("alice", "solo", &mut c);
    let (n1, n2) = (inbox_seq("n1", &mut c), inbox_seq("n2", &mut c));

    // From node n2, about alice on n1: her node is told to end her stream
    // first, then the room's members are told she is gone.
    let answer = run(
        "disconnect_user",
        &["n2", "alice", "spamming", "0", "1000"],
        &mut c,
    );
    assert_eq!(ok(answer), ["2", "solo"]);
    let on_n1 = inbox_after("n1", n1, &mut c);
    assert_eq!(on_n1.len(), 2, "{on_n1:?}");
    assert_eq!(on_n1[0], fields(&["k", "x", "c", "7", "why", "spamming"]));
    let gone = fields(&[
        "k", "m", "g", "room", "u", "alice", "mk", "d", "n", "2", "p", "0",
    ]);
    assert_eq!(timeless(&on_n1[1]), gone);
    let on_n2 = inbox_after("n2", n2, &mut c);
    assert_eq!(
        on_n2.iter().map(|e| timeless(e)).collect::<Vec<_>>(),
        [gone]
    );
    // Nothing of her is left, nor kept for a resume; no ban was asked.
    let names: Vec<String> = redis_query(&["HKEYS", "{t}:names"], &mut c);
    assert_eq!(
        names
            .iter()
            .filter(|n| *n == "alice" || *n == "solo")
            .count(),
        0
    );
    for key in ["{t}:u:alice", "{t}:r:alice", "{t}:ban:alice", "{t}:g:solo"] {
        let exists: bool = redis_query(&["EXISTS", key], &mut c);
        assert!(!exists, "{key}");
    }
    let listed: Vec<String> = redis_query(&["ZRANGE", "{t}:uz", "0", "-1"], &mut c);
    assert_eq!(listed, ["bob", "carol"]);
    let info: bool = redis_query(&["HEXISTS", "{t}:ui", "alice"], &mut c);
    assert!(!info);
    let on_node: bool = redis_query(&["SISMEMBER", "{t}:node:n1:users", "alice"], &mut c);
    assert!(!on_node);
    let mut members: Vec<String> = redis_query(&["HKEYS", "{t}:g:room"], &mut c);
    members.sort();
    assert_eq!(members, ["bob", "carol"]);
    let per_node: Vec<String> = redis_query(&["HGETALL", "{t}:gn:room"], &mut c);
    assert_eq!(per_node.len(), 4, "{per_node:?}");
    assert_eq!(
        run("disconnect_user", &["n2", "alice", "", "0", "1000"], &mut c),
        ["NOTFOUND"]
    );
    assert_eq!(
        run("disconnect_user", &["gone", "bob", "", "0", "1000"], &mut c),
        ["FENCED"]
    );
}

#[test]
fn a_ban_holds_whether_or_not_the_user_is_connected_and_drops_a_kept_session() {
    let redis = TestRedis::start();
    let mut c = redis.client();
    cluster_of(&[("bob", "n2", "3")], &mut c);
    // dave is not connected; his last session was kept for a resume.
    let _: () = redis_query(
        &["HSET", "{t}:r:dave", "t", "tok", "d", "0", "m", ""],
        &mut c,
    );
    assert_eq!(
        ok(run(
            "disconnect_user",
            &["n1", "dave", "", "10000", "1000"],
            &mut c
        )),
        ["0"]
    );
    let left: i64 = redis_query(&["PTTL", "{t}:ban:dave"], &mut c);
    assert!((9000..=10000).contains(&left), "{left}");
    let kept: bool = redis_query(&["EXISTS", "{t}:r:dave"], &mut c);
    assert!(!kept);
    // A shorter ban leaves the longer one; a longer one extends it.
    ok(run(
        "disconnect_user",
        &["n1", "dave", "", "1000", "1000"],
        &mut c,
    ));
    let left: i64 = redis_query(&["PTTL", "{t}:ban:dave"], &mut c);
    assert!(left > 8000, "{left}");
    ok(run(
        "disconnect_user",
        &["n1", "dave", "", "60000", "1000"],
        &mut c,
    ));
    let left: i64 = redis_query(&["PTTL", "{t}:ban:dave"], &mut c);
    assert!(left > 50000, "{left}");
    // A connected user is banned and disconnected in the one step.
    let seq = inbox_seq("n2", &mut c);
    assert_eq!(
        ok(run(
            "disconnect_user",
            &["n1", "bob", "bye", "2000", "1000"],
            &mut c
        )),
        ["0"]
    );
    assert_eq!(
        inbox_after("n2", seq, &mut c),
        [fields(&["k", "x", "c", "3", "why", "bye"])]
    );
    let answer = run("connect", &["n1", "bob", "4", "", "p"], &mut c);
    assert_eq!(answer[0], "BANNED", "{answer:?}");
}

#[test]
fn an_operators_removal_tells_the_removed_connection_then_the_members_left() {
    let redis = TestRedis::start();
    let mut c = redis.client();
    cluster_of(&[("alice", "n1", "7"), ("bob", "n2", "3")], &mut c);
    create("alice", "room", &mut c);
    join("bob", "room", &mut c);
    let id = ok(send("alice", "room", "hello", &mut c))[0].clone();
    let (n1, n2) = (inbox_seq("n1", &mut c), inbox_seq("n2", &mut c));
    assert_eq!(
        ok(run("remove_member", &["n1", "room", "bob", "1000"], &mut c)),
        ["0"]
    );
    // bob's node takes him out and tells him (1 member left, at the
    // group's newest message); alice's node tells her.
    let on_n2 = inbox_after("n2", n2, &mut c);
    assert_eq!(
        on_n2.iter().map(|e| timeless(e)).collect::<Vec<_>>(),
        [fields(&[
            "k", "r", "g", "room", "c", "3", "u", "bob", "n", "1", "p", &id
        ])]
    );
    let on_n1 = inbox_after("n1", n1, &mut c);
    assert_eq!(
        on_n1.iter().map(|e| timeless(e)).collect::<Vec<_>>(),
        [fields(&[
            "k", "m", "g", "room", "u", "bob", "mk", "r", "n", "1", "p", &id
        ])]
    );
    let groups: Vec<String> = redis_query(&["SMEMBERS", "{t}:u:bob"], &mut c);
    assert!(groups.is_empty(), "{groups:?}");
    let members: Vec<String> = redis_query(&["ZRANGE", "{t}:gz:room", "0", "-1"], &mut c);
    assert_eq!(members, ["alice"]);
    let per_node: Vec<String> = redis_query(&["HKEYS", "{t}:gn:room"], &mut c);
    assert_eq!(per_node, ["n1"]);
    for (group, user, refused) in [
        ("room", "bob", "NOTMEMBER"),
        ("room", "nobody", "NOTMEMBER"),
        ("nope", "bob", "NOGROUP"),
        ("bob", "alice", "NOGROUP"),
    ] {
        assert_eq!(
            run("remove_member", &["n1", group, user, "1000"], &mut c),
            [refused],
            "{group} {user}"
        );
    }
    // The last member out: the group goes with its history; she is told
    // (0 left), nobody else.
    let n1 = inbox_seq("n1", &mut c);
    assert_eq!(
        ok(run(
            "remove_member",
            &["n2", "room", "alice", "1000"],
            &mut c
        )),
        ["1"]
    );
    assert_eq!(
        inbox_after("n1", n1, &mut c)
            .iter()
            .map(|e| timeless(e))
            .collect::<Vec<_>>(),
        [fields(&[
            "k", "r", "g", "room", "c", "7", "u", "alice", "n", "0", "p", &id
        ])]
    );
    for key in [
        "{t}:g:room",
        "{t}:gz:room",
        "{t}:gn:room",
        "{t}:h:room",
        "{t}:hm:room",
    ] {
        let exists: bool = redis_query(&["EXISTS", key], &mut c);
        assert!(!exists, "{key}");
    }
    let counts: Vec<i64> = redis_query(&["HVALS", "{t}:hist"], &mut c);
    assert!(counts.iter().all(|count| *count == 0), "{counts:?}");
}

#[test]
fn a_removal_past_the_membership_events_threshold_tells_only_the_removed() {
    let redis = TestRedis::start();
    let mut c = redis.client();
    cluster_of(
        &[
            ("alice", "n1", "7"),
            ("bob", "n2", "3"),
            ("carol", "n1", "8"),
        ],
        &mut c,
    );
    create("alice", "room", &mut c);
    join("bob", "room", &mut c);
    join("carol", "room", &mut c);
    let (n1, n2) = (inbox_seq("n1", &mut c), inbox_seq("n2", &mut c));
    // 3 members before: over a threshold of 2.
    ok(run("remove_member", &["n1", "room", "bob", "2"], &mut c));
    assert!(inbox_after("n1", n1, &mut c).is_empty());
    let on_n2 = inbox_after("n2", n2, &mut c);
    assert_eq!(on_n2.len(), 1);
    assert_eq!(on_n2[0][1], "r");
}

#[test]
fn deleting_a_group_removes_every_member_and_the_history_in_one_step() {
    let redis = TestRedis::start();
    let mut c = redis.client();
    cluster_of(
        &[
            ("alice", "n1", "7"),
            ("bob", "n2", "3"),
            ("carol", "n1", "8"),
        ],
        &mut c,
    );
    create("alice", "room", &mut c);
    join("bob", "room", &mut c);
    join("carol", "room", &mut c);
    create("alice", "other", &mut c);
    ok(send("alice", "room", "one", &mut c));
    let id = ok(send("bob", "room", "two", &mut c))[0].clone();
    ok(send("alice", "other", "kept", &mut c));
    let (n1, n2) = (inbox_seq("n1", &mut c), inbox_seq("n2", &mut c));
    assert_eq!(ok(run("delete_group", &["n2", "room"], &mut c)), ["3"]);
    let told = |conn: &str, user: &str| {
        fields(&[
            "k", "r", "g", "room", "c", conn, "u", user, "n", "0", "p", &id,
        ])
    };
    let mut on_n1: Vec<Vec<String>> = inbox_after("n1", n1, &mut c)
        .iter()
        .map(|e| timeless(e))
        .collect();
    on_n1.sort();
    assert_eq!(on_n1, [told("7", "alice"), told("8", "carol")]);
    assert_eq!(
        inbox_after("n2", n2, &mut c)
            .iter()
            .map(|e| timeless(e))
            .collect::<Vec<_>>(),
        [told("3", "bob")]
    );
    for key in [
        "{t}:g:room",
        "{t}:gz:room",
        "{t}:gn:room",
        "{t}:h:room",
        "{t}:hm:room",
    ] {
        let exists: bool = redis_query(&["EXISTS", key], &mut c);
        assert!(!exists, "{key}");
    }
    let named: bool = redis_query(&["HEXISTS", "{t}:names", "room"], &mut c);
    assert!(!named);
    let alices: Vec<String> = redis_query(&["SMEMBERS", "{t}:u:alice"], &mut c);
    assert_eq!(alices, ["other"]);
    let bobs: bool = redis_query(&["EXISTS", "{t}:u:bob"], &mut c);
    assert!(!bobs);
    // Only the other group's message is still counted as kept.
    let kept: (i64, i64) = redis_query(&["HMGET", "{t}:hist", "messages", "bytes"], &mut c);
    assert_eq!(kept, (1, 4));
    assert_eq!(run("delete_group", &["n2", "room"], &mut c), ["NOGROUP"]);
    assert_eq!(run("delete_group", &["n2", "alice"], &mut c), ["NOGROUP"]);
}

#[test]
fn an_operators_message_is_marked_in_the_inboxes_the_history_and_its_pages() {
    let redis = TestRedis::start();
    let mut c = redis.client();
    cluster_of(&[("alice", "n1", "7"), ("bob", "n2", "3")], &mut c);
    create("alice", "room", &mut c);
    join("bob", "room", &mut c);
    let plain = ok(send("alice", "room", "from alice", &mut c))[0].clone();
    let (n1, n2) = (inbox_seq("n1", &mut c), inbox_seq("n2", &mut c));
    // No membership needed, from any node.
    let answer = ok(run(
        "publish",
        &["n2", "Ops team", "room", "maintenance", "100", "262144"],
        &mut c,
    ));
    let (id, seconds, micros) = (answer[0].clone(), answer[1].clone(), answer[2].clone());
    assert_eq!(answer[3..], ["2", "g"]);
    let entry = fields(&[
        "k",
        "g",
        "id",
        &id,
        "s",
        "Ops team",
        "r",
        "room",
        "t",
        "maintenance",
        "ts",
        &seconds,
        "tu",
        &micros,
        "op",
        "1",
    ]);
    assert_eq!(inbox_after("n1", n1, &mut c), std::slice::from_ref(&entry));
    assert_eq!(inbox_after("n2", n2, &mut c), [entry]);
    let kept: Vec<(String, Vec<String>)> = redis_query(&["XRANGE", "{t}:h:room", "-", "+"], &mut c);
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[1].1[8..], ["o", "1"]);
    assert_eq!(kept[0].1.len(), 8, "a user's message has no mark");
    let page = ok(run(
        "history",
        &["n1", "bob", "room", "0", "0", "10"],
        &mut c,
    ));
    assert_eq!(
        page,
        [
            "0",
            "0",
            &id,
            "Ops team",
            "maintenance",
            &seconds,
            &micros,
            "1",
            &plain,
            "alice",
            "from alice",
            &page[11],
            &page[12],
            "0"
        ]
    );
    // Directly, to a connected user.
    let n2 = inbox_seq("n2", &mut c);
    let answer = ok(run(
        "publish",
        &["n1", "server", "bob", "hi bob", "100", "262144"],
        &mut c,
    ));
    assert_eq!(answer[3..], ["1", "d"]);
    let on_n2 = inbox_after("n2", n2, &mut c);
    let record = format!(
        "{},{},{},D,6,3,6;serverbobhi bob",
        answer[0], answer[1], answer[2]
    );
    assert_eq!(on_n2, [fields(&["k", "b", "c", "3", "m", &record])]);
    assert_eq!(
        run(
            "publish",
            &["n1", "server", "nobody", "x", "100", "262144"],
            &mut c
        ),
        ["NORECIP"]
    );
    assert_eq!(
        run(
            "publish",
            &["gone", "server", "bob", "x", "100", "262144"],
            &mut c
        ),
        ["FENCED"]
    );
}

#[test]
fn the_send_budget_is_one_key_per_user_kept_on_redis_time() {
    let redis = TestRedis::start();
    let mut c = redis.client();
    cluster_of(
        &[
            ("alice", "n1", "7"),
            ("bob", "n2", "3"),
            ("carol", "n1", "8"),
        ],
        &mut c,
    );
    // 10 a second, bursts of 3: interval 100 ms, tolerance 200 ms.
    let limited = |node: &str, from: &str, to: &str, c: &mut redis::Connection| {
        run(
            "send",
            &[node, from, to, "hi", "100", "262144", "100000", "200000"],
            c,
        )
    };
    let start = redis_now(&mut c);
    // The budget is the user's, on whichever node it sends through.
    for node in ["n1", "n2", "n1"] {
        ok(limited(node, "alice", "bob", &mut c));
    }
    let moment: i64 = redis_query(&["GET", "{t}:sl:alice"], &mut c);
    let now = redis_now(&mut c);
    assert!(
        (start + 300_000..=now + 300_000).contains(&moment),
        "three intervals from the first send: {moment} {start} {now}"
    );
    let ttl: i64 = redis_query(&["PTTL", "{t}:sl:alice"], &mut c);
    assert!((200..=300).contains(&ttl), "{ttl}");
    let seq = inbox_seq("n2", &mut c);
    let refused = limited("n2", "alice", "bob", &mut c);
    assert_eq!(refused[0], "TOOFAST", "{refused:?}");
    let wait: i64 = refused[1].parse().unwrap();
    assert!((1..=100_000).contains(&wait), "{wait}");
    // Refused: nothing spent, nothing sent.
    let unchanged: i64 = redis_query(&["GET", "{t}:sl:alice"], &mut c);
    assert_eq!(unchanged, moment);
    assert_eq!(inbox_seq("n2", &mut c), seq);
    let spend = run("spend", &["n1", "alice", "100000", "200000"], &mut c);
    assert_eq!(spend[0], "TOOFAST", "{spend:?}");
    // Every send counts, whatever its outcome: carol's to nobody did.
    assert_eq!(limited("n1", "carol", "nobody", &mut c), ["NORECIP"]);
    let spent: bool = redis_query(&["EXISTS", "{t}:sl:carol"], &mut c);
    assert!(spent);
    assert_eq!(
        run("spend", &["n1", "carol", "100000", "200000"], &mut c),
        ["OK"]
    );
    // Off (interval 0), or a caller not connected: no budget is kept.
    ok(send("bob", "alice", "free", &mut c));
    assert_eq!(limited("n1", "dave", "bob", &mut c), ["UNAUTH"]);
    for key in ["{t}:sl:bob", "{t}:sl:dave"] {
        let exists: bool = redis_query(&["EXISTS", key], &mut c);
        assert!(!exists, "{key}");
    }
    // Once the moment has passed, the budget is full again: the key is gone.
    std::thread::sleep(std::time::Duration::from_millis(
        u64::try_from(ttl).unwrap() + 20,
    ));
    let exists: bool = redis_query(&["EXISTS", "{t}:sl:alice"], &mut c);
    assert!(!exists);
    for _ in 0..3 {
        ok(limited("n2", "alice", "bob", &mut c));
    }
}

#[test]
fn the_connected_users_are_listed_in_name_order_a_page_at_a_time() {
    let redis = TestRedis::start();
    let mut c = redis.client();
    cluster_of(
        &[
            ("carol", "n2", "3"),
            ("alice", "n1", "7"),
            ("bob", "n1", "8"),
        ],
        &mut c,
    );
    create("alice", "room", &mut c);
    create("alice", "other", &mut c);
    join("carol", "room", &mut c);
    let page = ok(run("list_users", &["n2", "", "2"], &mut c));
    assert_eq!(page[0], "3");
    let rows: Vec<&[String]> = page[1..].chunks(5).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        [&rows[0][..2], &rows[0][3..]].concat(),
        ["alice", "n1", "2", "ipv4:10.0.0.7:5000"]
    );
    assert_eq!(
        [&rows[1][..2], &rows[1][3..]].concat(),
        ["bob", "n1", "0", "ipv4:10.0.0.8:5000"]
    );
    let at: i64 = rows[0][2].parse().unwrap();
    assert!((redis_now(&mut c) - at) < 10_000_000, "{at}");
    let page = ok(run("list_users", &["n1", "bob", "2"], &mut c));
    assert_eq!(page[0], "3");
    assert_eq!(page[1..3], ["carol", "n2"]);
    assert_eq!(page[4..], ["1", "ipv4:10.0.0.3:5000"]);
    assert_eq!(ok(run("list_users", &["n1", "carol", "2"], &mut c)), ["3"]);
    // Gone from the list when it disconnects.
    ok(run(
        "disconnect",
        &["n1", "bob", "n1", "8", "", "0", "", "", "0", "1000"],
        &mut c,
    ));
    let page = ok(run("list_users", &["n1", "", "10"], &mut c));
    assert_eq!(page[0], "2");
    assert_eq!([&page[1], &page[6]], ["alice", "carol"]);
    let info: bool = redis_query(&["HEXISTS", "{t}:ui", "bob"], &mut c);
    assert!(!info);
    assert_eq!(run("list_users", &["gone", "", "10"], &mut c), ["FENCED"]);
}

#[test]
fn a_kept_session_leaves_a_group_at_an_operators_removal_and_keeps_operators_marks() {
    let redis = TestRedis::start();
    let mut connection = redis.client();
    let cmd = |args: &[&str], connection: &mut redis::Connection| {
        let _: redis::Value = redis_query(args, connection);
    };
    cmd(&["SET", "{t}:node:n1", "e"], &mut connection);
    cmd(
        &["HSET", "{t}:names", "alice", "u n1 7", "room", "g"],
        &mut connection,
    );
    // Nothing applied yet: an operator's message to the room, her removal
    // from it, a message after, and an operator's message to her.
    add_entry(
        &mut connection,
        1,
        &[
            ("k", "g"),
            ("id", "11"),
            ("s", "ops"),
            ("r", "room"),
            ("t", "notice"),
            ("ts", "1700000000"),
            ("tu", "5"),
            ("op", "1"),
        ],
    );
    add_entry(
        &mut connection,
        2,
        &[("k", "r"), ("g", "room"), ("c", "7"), ("u", "alice")],
    );
    message(3, "g", "room", "12", "after removal", &mut connection);
    add_entry(
        &mut connection,
        4,
        &[
            ("k", "d"),
            ("id", "13"),
            ("s", "ops"),
            ("r", "alice"),
            ("c", "7"),
            ("t", "to you"),
            ("ts", "1700000000"),
            ("tu", "6"),
            ("op", "1"),
        ],
    );
    let answer = run(
        "disconnect",
        &[
            "n1", "alice", "n1", "7", "tok", "60000", "0", "", "0", "1000",
        ],
        &mut connection,
    );
    ok(answer);
    let ring: String = redis_query(&["HGET", "{t}:r:alice", "m"], &mut connection);
    assert_eq!(
        ring,
        "11,1700000000,5,G,3,4,6;opsroomnotice13,1700000000,6,D,3,5,6;opsaliceto you"
    );
}
