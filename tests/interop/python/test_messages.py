"""SendMessage: who receives what, the response, text rules, error codes and
ordering."""

import threading
import time

import pytest

from harness import GROUP, USER, WAIT, Code, rpc_error, wait_until
from test_connect import INVALID_NAMES


def seconds(timestamp) -> float:
    return timestamp.seconds + timestamp.nanos / 1e9


def assert_nothing_pending(user):
    """`user` has no message waiting: the next one is a marker it sends
    itself now (one sender's messages to one recipient keep their order,
    and every message sent before the marker is already queued)."""
    user.send(user.name, "marker")
    assert user.texts(1) == ["marker"]


def test_a_direct_message_reaches_the_recipient_only(chat):
    alice = chat.connect("alice")
    bob = chat.connect("bob")
    carol = chat.connect("carol")
    before = time.time()
    sent = alice.send("bob", "hello bob")
    after = time.time()

    [message] = bob.receive(1)
    assert message.sender == "alice"
    assert message.recipient == "bob"
    assert message.recipient_type == USER
    assert message.text == "hello bob"
    assert message.id == sent.message_id
    assert message.sent_at == sent.sent_at
    assert before - 5 <= seconds(sent.sent_at) <= after + 5
    assert_nothing_pending(alice)
    assert_nothing_pending(carol)
    assert_nothing_pending(bob)


def test_a_message_to_oneself_arrives_once(chat):
    alice = chat.connect("alice")
    sent = alice.send("alice", "note to self")
    alice.send("alice", "second")
    messages = alice.receive(2)
    assert [(m.text, m.sender, m.recipient, m.recipient_type) for m in messages] == [
        ("note to self", "alice", "alice", USER),
        ("second", "alice", "alice", USER),
    ]
    assert messages[0].id == sent.message_id


def test_a_group_message_reaches_every_member_including_the_sender(chat):
    alice = chat.connect("alice")
    bob = chat.connect("bob")
    carol = chat.connect("carol")
    outsider = chat.connect("dave")
    alice.create("room")
    bob.join("room")
    carol.join("room")

    sent = bob.send("room", "hi all")
    for member in (alice, bob, carol):
        [message] = member.receive(1)
        assert (message.sender, message.recipient, message.recipient_type, message.text) == (
            "bob",
            "room",
            GROUP,
            "hi all",
        )
        assert message.id == sent.message_id
        assert message.sent_at == sent.sent_at
        assert_nothing_pending(member)
    assert_nothing_pending(outsider)


def test_message_ids_are_unique(chat):
    alice = chat.connect("alice")
    bob = chat.connect("bob")
    alice.create("room")
    ids = [alice.send("bob", f"d{i}").message_id for i in range(20)]
    ids += [alice.send("room", f"g{i}").message_id for i in range(20)]
    ids += [bob.send("bob", f"s{i}").message_id for i in range(20)]
    assert len(set(ids)) == 60
    received = bob.receive(40) + alice.receive(20)
    assert sorted(m.id for m in received) == sorted(ids)


def test_text_comes_through_unchanged(chat):
    alice = chat.connect("alice")
    texts = ["héllo wörld", "👋 emoji", "  padded  ", "line\nbreaks\ttabs", "日本語", "a"]
    for text in texts:
        alice.send("alice", text)
    assert alice.texts(len(texts)) == texts


@pytest.mark.parametrize(
    "text",
    ["", " ", "   \t\n\r ", "\u3000\u2003"],
    ids=["empty", "space", "ascii whitespace", "unicode whitespace"],
)
def test_an_empty_or_blank_text_is_refused(chat, text):
    alice = chat.connect("alice")
    alice.create("room")
    rpc_error(Code.INVALID_ARGUMENT, alice.send, "alice", text)
    rpc_error(Code.INVALID_ARGUMENT, alice.send, "room", text)
    assert_nothing_pending(alice)


def test_the_default_text_limit_is_4096_bytes_of_utf8(chat):
    alice = chat.connect("alice")
    alice.send("alice", "x" * 4096)
    alice.send("alice", "é" * 2048)  # 4096 bytes
    rpc_error(Code.INVALID_ARGUMENT, alice.send, "alice", "x" * 4097)
    rpc_error(Code.INVALID_ARGUMENT, alice.send, "alice", "é" * 2049)  # 4098 bytes
    rpc_error(Code.INVALID_ARGUMENT, alice.send, "alice", "x" * 60_000)
    assert alice.texts(2) == ["x" * 4096, "é" * 2048]
    assert_nothing_pending(alice)


def test_max_text_bytes_sets_the_limit(start_server, chat_on):
    chat = chat_on(start_server("--max-text-bytes", "10"))
    alice = chat.connect("alice")
    alice.send("alice", "x" * 10)
    alice.send("alice", "ééééé")  # 10 bytes
    rpc_error(Code.INVALID_ARGUMENT, alice.send, "alice", "x" * 11)
    rpc_error(Code.INVALID_ARGUMENT, alice.send, "alice", "éééééé")  # 12 bytes
    assert alice.texts(2) == ["x" * 10, "ééééé"]


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_an_invalid_recipient_is_refused(chat, name):
    alice = chat.connect("alice")
    rpc_error(Code.INVALID_ARGUMENT, alice.send, name, "hello")


def test_an_unknown_recipient_fails_with_not_found(chat):
    alice = chat.connect("alice")
    rpc_error(Code.NOT_FOUND, alice.send, "nobody", "hello")
    bob = chat.connect("bob")
    bob.disconnect()
    wait_until(lambda: alice.names() == ["alice"], what="bob gone")
    rpc_error(Code.NOT_FOUND, alice.send, "bob", "are you there?")


def test_a_group_the_caller_is_not_in_fails_with_permission_denied(chat):
    alice = chat.connect("alice")
    bob = chat.connect("bob")
    alice.create("room")
    rpc_error(Code.PERMISSION_DENIED, bob.send, "room", "let me in")
    bob.join("room")
    bob.send("room", "in")
    bob.leave("room")
    rpc_error(Code.PERMISSION_DENIED, bob.send, "room", "out again")
    assert alice.texts(1) == ["in"]
    assert_nothing_pending(alice)


def test_one_senders_200_direct_messages_arrive_in_order(chat):
    alice = chat.connect("alice")
    bob = chat.connect("bob")
    texts = [f"message {i}" for i in range(200)]
    ids = [alice.send("bob", text).message_id for text in texts]
    messages = bob.receive(200)
    assert [m.text for m in messages] == texts
    assert [m.id for m in messages] == ids


def test_one_senders_200_group_messages_arrive_in_order_for_every_member(chat):
    alice = chat.connect("alice")
    bob = chat.connect("bob")
    alice.create("room")
    bob.join("room")
    texts = [f"message {i}" for i in range(200)]
    for text in texts:
        alice.send("room", text)
    assert alice.texts(200) == texts
    assert bob.texts(200) == texts


def test_concurrent_senders_to_a_group_give_every_member_the_same_order(chat):
    senders, per_sender = 4, 50
    members = [chat.connect(f"user{i}", own_channel=True) for i in range(senders)]
    members[0].create("room")
    for member in members[1:]:
        member.join("room")
    start = threading.Barrier(senders, timeout=WAIT)
    sent_ids: dict = {}
    failures: list = []

    def send_all(member):
        try:
            start.wait()
            sent_ids[member.name] = [
                member.send("room", f"{member.name}:{i}").message_id for i in range(per_sender)
            ]
        except Exception as error:  # reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=send_all, args=(m,)) for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=4 * WAIT)
    assert not failures, failures
    assert all(not thread.is_alive() for thread in threads), "a sender hung"

    total = senders * per_sender
    orders = [[(m.id, m.sender, m.text) for m in member.receive(total)] for member in members]
    for order in orders[1:]:
        assert order == orders[0]
    # Each sender's messages keep its send order, with the returned ids.
    for member in members:
        mine = [(id_, text) for id_, sender, text in orders[0] if sender == member.name]
        assert mine == [
            (id_, f"{member.name}:{i}") for i, id_ in enumerate(sent_ids[member.name])
        ]


def test_a_reader_that_falls_behind_gets_everything_in_order(chat):
    alice = chat.connect("alice")
    reader = chat.connect("reader", own_channel=True, pause_after_first=True)
    texts = [f"{i:04d} " + "z" * 1000 for i in range(600)]
    for text in texts:
        alice.send("reader", text)
    reader.inbox.resume()
    # Deliveries of 1 to 256 messages each (checked by the harness).
    assert reader.texts(600, timeout=3 * WAIT) == texts
