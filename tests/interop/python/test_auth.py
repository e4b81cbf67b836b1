"""Identity: every RPC but Connect needs the `authorization` header naming a
connected user, bare or as `Bearer <name>`."""

import pytest

from harness import GROUP, USER, Code, rpc_error, wait_until

# Each unary RPC, called so that only the caller's identity can fail it:
# "room" is a group alice created and bob is a connected user.
CALLS = {
    "CreateGroupChat": lambda client: client.create("new-room"),
    "JoinGroupChat": lambda client: client.join("room"),
    "LeaveGroupChat": lambda client: client.leave("room"),
    "SendMessage": lambda client: client.send("bob", "hello"),
    "ListChannels": lambda client: client.channels(),
    "GetHistory": lambda client: client.history("room"),
}

# Header values that name no connected user (None: no header at all).
BAD_HEADERS = {
    "missing": None,
    "empty": "",
    "blank": "   ",
    "unknown user": "mallory",
    "bearer without name": "Bearer ",
    "bearer unknown user": "Bearer mallory",
    "wrong case": "ALICE",
    "invalid name": "al ice",
}


@pytest.fixture
def room(chat):
    alice = chat.connect("alice")
    chat.connect("bob")
    alice.create("room")
    return alice


@pytest.mark.parametrize("header", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
@pytest.mark.parametrize("rpc", CALLS.keys())
def test_an_unauthenticated_call_is_refused(chat, room, rpc, header):
    rpc_error(Code.UNAUTHENTICATED, CALLS[rpc], chat.client(header))
    # Nothing changed.
    assert room.rows() == [
        ("alice", USER, 0, False),
        ("bob", USER, 0, False),
        ("room", GROUP, 1, True),
    ]


@pytest.mark.parametrize("rpc", CALLS.keys())
def test_a_disconnected_user_is_unauthenticated(chat, room, rpc):
    carol = chat.connect("carol")
    carol.disconnect()
    wait_until(lambda: "carol" not in room.names(), what="carol gone")
    rpc_error(Code.UNAUTHENTICATED, CALLS[rpc], carol)


def test_every_rpc_accepts_the_bearer_form(chat):
    alice = chat.connect("alice")
    bob = chat.connect("bob")
    as_alice = chat.client("Bearer alice")
    as_bob = chat.client("Bearer bob")

    as_alice.create("room")
    as_bob.join("room")
    sent = as_bob.send("room", "via bearer")
    assert [(m.id, m.sender) for m in alice.receive(1)] == [(sent.message_id, "bob")]
    assert [m.sender for m in bob.receive(1)] == ["bob"]
    as_alice.send("bob", "direct via bearer")
    assert [(m.sender, m.text) for m in bob.receive(1)] == [("alice", "direct via bearer")]
    assert as_bob.rows() == [
        ("alice", USER, 0, False),
        ("bob", USER, 0, False),
        ("room", GROUP, 2, True),
    ]
    assert [m.id for m in as_bob.history("room").messages] == [sent.message_id]
    as_bob.leave("room")
    assert as_alice.rows()[2] == ("room", GROUP, 1, True)
