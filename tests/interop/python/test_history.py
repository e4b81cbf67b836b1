"""GetHistory and JoinGroupChatResponse.position: a group's kept messages,
read forward, backward or between two ids, equal to what its members
received; `more` and `truncated`; the limit; who may read; history gone
with its group."""

import pytest

from harness import GROUP, Code, rpc_error
from test_connect import INVALID_NAMES


@pytest.fixture
def chat(chat_on, server):
    """Streams and clients on every node of a cluster in turn (on one
    server, that server), so history is read through other nodes than the
    sender's."""
    return chat_on(server)


@pytest.fixture
def alice(chat):
    return chat.connect("alice")


@pytest.fixture
def bob(chat):
    return chat.connect("bob")


def fill(sender, group: str, count: int, text: str = "message") -> list:
    """Sends `count` messages to `group` and returns their ids."""
    return [sender.send(group, f"{text} {i}").message_id for i in range(count)]


def ids(page) -> list:
    return [m.id for m in page.messages]


def flags(page) -> tuple:
    return (page.more, page.truncated)


def test_history_is_what_every_member_received_in_the_same_order(alice, bob):
    alice.create("room")
    bob.join("room")
    alice.send("room", "hi")
    bob.send("room", "hello")
    alice.send("room", "how are you?")
    received = alice.receive(3)
    assert bob.receive(3) == received

    for reader in (alice, bob):
        page = reader.history("room")
        # Every field equal to the delivered message: id, sender,
        # recipient, recipient_type, text and sent_at.
        assert list(page.messages) == received
        assert flags(page) == (False, False)
    assert [(m.sender, m.recipient, m.recipient_type, m.text) for m in received] == [
        ("alice", "room", GROUP, "hi"),
        ("bob", "room", GROUP, "hello"),
        ("alice", "room", GROUP, "how are you?"),
    ]


def test_a_new_group_has_an_empty_history_and_a_joiner_gets_position_0(alice, bob):
    alice.create("room")
    page = alice.history("room")
    assert ids(page) == [] and flags(page) == (False, False)
    assert bob.join("room").position == 0


def test_the_join_position_splits_history_from_the_live_stream(alice, bob):
    alice.create("room")
    before = fill(alice, "room", 3, "before")
    alice.receive(3)

    joined = bob.join("room")
    assert joined.position == before[-1]
    after = fill(alice, "room", 2, "after")
    # The stream delivers only what came after the join...
    live = bob.receive(2)
    assert [m.id for m in live] == after
    assert all(m.id > joined.position for m in live)
    # ...and history up to the position is exactly what came before, which
    # the joiner may read although it was not a member then.
    page = bob.history("room", before_id=joined.position + 1)
    assert ids(page) == before
    assert [m.text for m in page.messages] == ["before 0", "before 1", "before 2"]
    assert flags(page) == (False, False)


def test_the_position_counts_only_the_groups_own_messages(alice, bob):
    alice.create("room")
    alice.create("other")
    [in_room] = fill(alice, "room", 1)
    fill(alice, "other", 2)
    alice.send("bob", "a direct message")
    assert bob.join("room").position == in_room


def test_a_backward_read_gives_the_newest_below_before_id_oldest_first(alice):
    alice.create("room")
    sent = fill(alice, "room", 10)

    page = alice.history("room", limit=3)
    assert ids(page) == sent[7:]
    assert flags(page) == (True, False)

    page = alice.history("room", before_id=sent[7], limit=3)
    assert ids(page) == sent[4:7]
    assert flags(page) == (True, False)

    page = alice.history("room", before_id=sent[3], limit=5)
    assert ids(page) == sent[:3]
    assert flags(page) == (False, False)

    page = alice.history("room", before_id=sent[0])
    assert ids(page) == [] and flags(page) == (False, False)


def test_a_forward_read_gives_the_oldest_after_after_id(alice):
    alice.create("room")
    sent = fill(alice, "room", 10)

    page = alice.history("room", after_id=sent[2], limit=3)
    assert ids(page) == sent[3:6]
    assert flags(page) == (True, False)

    # Catching up page by page: each page starts after the last one read.
    read, after = [], sent[0]
    while True:
        page = alice.history("room", after_id=after, limit=4)
        read += ids(page)
        if not page.more:
            break
        after = page.messages[-1].id
    assert read == sent[1:]

    page = alice.history("room", after_id=sent[-1])
    assert ids(page) == [] and flags(page) == (False, False)


def test_both_bounds_read_the_oldest_strictly_between(alice):
    alice.create("room")
    sent = fill(alice, "room", 10)

    page = alice.history("room", after_id=sent[1], before_id=sent[6], limit=10)
    assert ids(page) == sent[2:6]
    assert flags(page) == (False, False)

    page = alice.history("room", after_id=sent[1], before_id=sent[6], limit=2)
    assert ids(page) == sent[2:4]
    assert flags(page) == (True, False)

    page = alice.history("room", after_id=sent[4], before_id=sent[5])
    assert ids(page) == [] and flags(page) == (False, False)


def test_a_limit_of_0_means_50_and_at_most_500_may_be_asked(alice):
    alice.create("room")
    sent = fill(alice, "room", 55)

    page = alice.history("room")
    assert ids(page) == sent[5:]
    assert flags(page) == (True, False)
    page = alice.history("room", after_id=sent[0])
    assert ids(page) == sent[1:51]
    assert page.more

    page = alice.history("room", limit=500)
    assert ids(page) == sent
    assert flags(page) == (False, False)
    error = rpc_error(Code.INVALID_ARGUMENT, alice.history, "room", limit=501)
    assert "500" in error.details()
    rpc_error(Code.INVALID_ARGUMENT, alice.history, "room", limit=2**32 - 1)


def test_a_history_evicted_by_count_is_truncated(start_server, chat_on):
    chat = chat_on(start_server("--history-size", "5"))
    alice = chat.connect("alice")
    alice.create("room")
    sent = fill(alice, "room", 8)

    # Only the newest five are kept; the oldest kept is the end of the page.
    page = alice.history("room")
    assert ids(page) == sent[3:]
    assert flags(page) == (False, True)
    # A page that does not reach the oldest kept is not truncated: it has
    # more instead.
    page = alice.history("room", limit=3)
    assert ids(page) == sent[5:]
    assert flags(page) == (True, False)
    page = alice.history("room", before_id=sent[5], limit=2)
    assert ids(page) == sent[3:5]
    assert flags(page) == (False, True)
    page = alice.history("room", before_id=sent[3])
    assert ids(page) == [] and flags(page) == (False, True)

    # Forward: a hole between after_id and the first message returned.
    page = alice.history("room", after_id=sent[0])
    assert ids(page) == sent[3:]
    assert flags(page) == (False, True)
    page = alice.history("room", after_id=sent[2])
    assert ids(page) == sent[3:]
    assert flags(page) == (False, False)
    page = alice.history("room", after_id=sent[0], before_id=sent[3])
    assert ids(page) == [] and flags(page) == (False, True)

    # A joiner's scrollback says the same.
    bob = chat.connect("bob")
    joined = bob.join("room")
    assert joined.position == sent[-1]
    page = bob.history("room", before_id=joined.position + 1)
    assert ids(page) == sent[3:]
    assert flags(page) == (False, True)


def test_a_history_evicted_by_bytes_is_truncated(start_server, chat_on):
    chat = chat_on(start_server("--history-bytes", "100"))
    alice = chat.connect("alice")
    alice.create("room")
    # 40 bytes each: two fit in 100 bytes, three do not.
    sent = [alice.send("room", f"{i}" * 40).message_id for i in range(5)]

    page = alice.history("room")
    assert ids(page) == sent[3:]
    assert flags(page) == (False, True)
    page = alice.history("room", after_id=sent[2])
    assert ids(page) == sent[3:]
    assert flags(page) == (False, False)


def test_with_history_off_nothing_is_kept_but_positions_still_count(start_server, chat_on):
    chat = chat_on(start_server("--history-size", "0"))
    alice = chat.connect("alice")
    bob = chat.connect("bob")
    alice.create("room")
    page = alice.history("room")
    assert ids(page) == [] and flags(page) == (False, False)

    sent = fill(alice, "room", 2)
    assert bob.join("room").position == sent[-1]
    page = bob.history("room", before_id=sent[-1] + 1)
    assert ids(page) == [] and flags(page) == (False, True)
    page = bob.history("room", after_id=sent[-1])
    assert ids(page) == [] and flags(page) == (False, False)


def test_only_members_may_read_a_history(alice, bob):
    alice.create("room")
    fill(alice, "room", 2)
    rpc_error(Code.PERMISSION_DENIED, bob.history, "room")
    rpc_error(Code.PERMISSION_DENIED, bob.history, "room", after_id=1)
    bob.join("room")
    assert len(bob.history("room").messages) == 2
    bob.leave("room")
    rpc_error(Code.PERMISSION_DENIED, bob.history, "room")


def test_a_missing_group_is_not_found_and_a_user_is_no_group(alice, bob):
    rpc_error(Code.NOT_FOUND, alice.history, "nowhere")
    # Users and groups share names; a user's name is no group.
    alice.send("bob", "hello")
    rpc_error(Code.NOT_FOUND, alice.history, "bob")


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_an_invalid_group_name_is_invalid_argument(alice, name):
    rpc_error(Code.INVALID_ARGUMENT, alice.history, name)


@pytest.mark.parametrize("header", [None, "", "mallory", "Bearer mallory"])
def test_an_unauthenticated_read_is_refused(chat, alice, header):
    alice.create("room")
    fill(alice, "room", 1)
    stranger = chat.client(header)
    rpc_error(Code.UNAUTHENTICATED, stranger.history, "room")
    rpc_error(Code.UNAUTHENTICATED, stranger.history, "nowhere")


def test_a_disconnected_member_can_no_longer_read(alice, bob):
    alice.create("room")
    bob.join("room")
    fill(alice, "room", 1)
    bob.disconnect()
    rpc_error(Code.UNAUTHENTICATED, bob.history, "room")


def test_history_is_gone_with_its_group(alice, bob):
    alice.create("room")
    fill(alice, "room", 3)
    alice.leave("room")
    rpc_error(Code.NOT_FOUND, alice.history, "room")

    # A new group of the same name starts empty, with nothing missing.
    bob.create("room")
    page = bob.history("room")
    assert ids(page) == [] and flags(page) == (False, False)
    assert alice.join("room").position == 0
    [fresh] = fill(bob, "room", 1)
    assert ids(alice.history("room")) == [fresh]


def test_a_rejoiner_catches_up_from_the_last_id_it_saw(alice, bob):
    alice.create("room")
    bob.join("room")
    [seen] = fill(alice, "room", 1, "seen")
    assert [m.id for m in bob.receive(1)] == [seen]
    bob.leave("room")
    missed = fill(alice, "room", 3, "missed")

    joined = bob.join("room")
    assert joined.position == missed[-1]
    page = bob.history("room", after_id=seen, before_id=joined.position + 1)
    assert ids(page) == missed
    assert [m.text for m in page.messages] == ["missed 0", "missed 1", "missed 2"]
    assert flags(page) == (False, False)
