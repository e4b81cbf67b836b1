"""CreateGroupChat, JoinGroupChat and LeaveGroupChat and their status codes."""

import pytest

from harness import GROUP, USER, Code, rpc_error, wait_until
from test_connect import INVALID_NAMES


@pytest.fixture
def alice(chat):
    return chat.connect("alice")


@pytest.fixture
def bob(chat):
    return chat.connect("bob")


def test_the_creator_is_the_only_member(alice, bob):
    alice.create("room")
    assert alice.rows() == [
        ("alice", USER, 0, False),
        ("bob", USER, 0, False),
        ("room", GROUP, 1, True),
    ]
    assert bob.rows()[2] == ("room", GROUP, 1, False)


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_an_invalid_group_name_is_refused_by_every_group_rpc(alice, name):
    rpc_error(Code.INVALID_ARGUMENT, alice.create, name)
    rpc_error(Code.INVALID_ARGUMENT, alice.join, name)
    rpc_error(Code.INVALID_ARGUMENT, alice.leave, name)
    assert alice.names() == ["alice"]


def test_a_64_character_group_name_is_valid(alice):
    name = "g" * 64
    alice.create(name)
    assert alice.rows()[1] == (name, GROUP, 1, True)


def test_creating_a_taken_name_fails_with_already_exists(alice, bob):
    alice.create("room")
    rpc_error(Code.ALREADY_EXISTS, alice.create, "room")
    rpc_error(Code.ALREADY_EXISTS, bob.create, "room")
    # Users and groups share one namespace.
    rpc_error(Code.ALREADY_EXISTS, alice.create, "bob")
    rpc_error(Code.ALREADY_EXISTS, alice.create, "alice")
    assert alice.rows()[2] == ("room", GROUP, 1, True)


def test_group_names_are_case_sensitive(alice):
    alice.create("room")
    alice.create("Room")
    assert alice.names() == ["alice", "Room", "room"]


def test_joining_adds_the_caller(alice, bob):
    alice.create("room")
    bob.join("room")
    assert bob.rows()[2] == ("room", GROUP, 2, True)
    assert alice.rows()[2] == ("room", GROUP, 2, True)


def test_joining_twice_fails_with_already_exists(alice, bob):
    alice.create("room")
    rpc_error(Code.ALREADY_EXISTS, alice.join, "room")
    bob.join("room")
    rpc_error(Code.ALREADY_EXISTS, bob.join, "room")
    assert alice.rows()[2] == ("room", GROUP, 2, True)


def test_joining_a_missing_group_fails_with_not_found(alice, bob):
    rpc_error(Code.NOT_FOUND, alice.join, "nowhere")
    # A user is not a group.
    rpc_error(Code.NOT_FOUND, alice.join, "bob")
    rpc_error(Code.NOT_FOUND, alice.join, "alice")


def test_leaving_removes_the_caller(alice, bob):
    alice.create("room")
    bob.join("room")
    bob.leave("room")
    assert bob.rows()[2] == ("room", GROUP, 1, False)
    assert alice.rows()[2] == ("room", GROUP, 1, True)


def test_leaving_a_group_one_is_not_in_fails_with_failed_precondition(alice, bob):
    alice.create("room")
    rpc_error(Code.FAILED_PRECONDITION, bob.leave, "room")
    bob.join("room")
    bob.leave("room")
    rpc_error(Code.FAILED_PRECONDITION, bob.leave, "room")
    assert alice.rows()[2] == ("room", GROUP, 1, True)


def test_leaving_a_missing_group_fails_with_not_found(alice, bob):
    rpc_error(Code.NOT_FOUND, alice.leave, "nowhere")
    rpc_error(Code.NOT_FOUND, alice.leave, "bob")


def test_the_last_member_leaving_deletes_the_group(chat, alice, bob):
    alice.create("room")
    bob.join("room")
    alice.leave("room")
    bob.leave("room")
    assert alice.names() == ["alice", "bob"]
    rpc_error(Code.NOT_FOUND, bob.join, "room")
    rpc_error(Code.NOT_FOUND, bob.leave, "room")
    rpc_error(Code.NOT_FOUND, bob.send, "room", "anyone?")
    # The name is free: as a user's name, then as a group's again.
    room = chat.connect("room")
    room.disconnect()
    wait_until(lambda: "room" not in bob.names(), what="the user room gone")
    bob.create("room")
    assert bob.rows()[2] == ("room", GROUP, 1, True)


def test_a_deleted_groups_name_can_be_created_again(alice, bob):
    alice.create("room")
    alice.leave("room")
    bob.create("room")
    assert alice.rows()[2] == ("room", GROUP, 1, False)


def test_a_member_who_left_gets_no_more_group_messages(alice, bob):
    alice.create("room")
    bob.join("room")
    alice.send("room", "both")
    assert bob.texts(1) == ["both"]
    bob.leave("room")
    alice.send("room", "alice only")
    # bob's next message is the marker he sends himself: nothing came before.
    bob.send("bob", "marker")
    assert bob.texts(1) == ["marker"]
    assert alice.texts(2) == ["both", "alice only"]
