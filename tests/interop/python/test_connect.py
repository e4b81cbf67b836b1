"""Connect: the `connected` event, name rules and the shared namespace."""

import pytest

from harness import GROUP, USER, Code, rpc_error

INVALID_NAMES = [
    "",
    "x" * 65,
    "a b",
    " alice",
    "alice\n",
    "a/b",
    "a@b",
    "a:b",
    "é",
    "ä-user",
]
VALID_EDGE_NAMES = ["x" * 64, "A", "0", "A_b-1.2", "._-"]


def test_the_first_event_is_connected_with_the_username(chat):
    inbox = chat.open("alice")
    assert inbox.connected().username == "alice"


def test_the_user_is_registered_when_connected_arrives(chat):
    alice = chat.connect("alice")
    # No polling: `connected` promises the registration is done.
    assert alice.rows() == [("alice", USER, 0, False)]
    alice.create("room")
    alice.send("alice", "hi me")
    assert alice.texts(1) == ["hi me"]


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_an_invalid_username_is_refused(chat, name):
    assert chat.refused(name).code == Code.INVALID_ARGUMENT


@pytest.mark.parametrize("name", VALID_EDGE_NAMES)
def test_edge_valid_usernames_connect(chat, name):
    user = chat.connect(name)
    assert user.names() == [name]


def test_a_connected_name_cannot_connect_again(chat):
    alice = chat.connect("alice")
    assert chat.refused("alice").code == Code.ALREADY_EXISTS
    # The first connection is untouched.
    alice.send("alice", "still here")
    assert alice.texts(1) == ["still here"]
    assert alice.names() == ["alice"]


def test_a_group_name_cannot_be_used_to_connect(chat):
    alice = chat.connect("alice")
    alice.create("room")
    assert chat.refused("room").code == Code.ALREADY_EXISTS
    assert alice.rows() == [("alice", USER, 0, False), ("room", GROUP, 1, True)]


def test_names_are_case_sensitive(chat):
    lower = chat.connect("alice")
    upper = chat.connect("Alice")
    assert lower.names() == ["Alice", "alice"]
    lower.send("Alice", "to the other one")
    assert [(m.sender, m.text) for m in upper.receive(1)] == [("alice", "to the other one")]
    rpc_error(Code.NOT_FOUND, lower.send, "ALICE", "nobody")
