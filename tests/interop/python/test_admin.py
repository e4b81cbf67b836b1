"""The operator's API, chat.admin.v1.AdminService, on its own listener
(`--admin-listen`, `--admin-token-file`): the bearer secret every call
needs; DisconnectUser and its bans; Publish to a user and to a group
(`Message.from_operator`); ListUsers; RemoveGroupMember and DeleteGroup
with their REMOVED membership events.

Every call goes to the admin listener of node 0 and the users it acts on
are connected through node 1: on one server both are that server, on a
cluster (CHAT_INTEROP_CLUSTER=2) every action crosses nodes.
"""

from __future__ import annotations

import re
import time

import pytest

from chat.v1 import chat_pb2, chat_pb2_grpc
from harness import CLUSTER_NODES, GROUP, USER, WAIT, Admin, Code, End, rpc_error, wait_until
from test_presence import MEMBERSHIP, Presence, change, list_members

REMOVED = chat_pb2.MEMBERSHIP_CHANGE_KIND_REMOVED
# The node the admin calls go to, and the node the users connect through.
ADMIN_NODE = 0
USERS_NODE = 1
# How soon an operator's action must show.
PROMPT = 1.0


@pytest.fixture
def server(start_admin_server):
    """A chat-server (or cluster) with an admin listener."""
    return start_admin_server()


@pytest.fixture
def chat(chat_on, server):
    return chat_on(server)


@pytest.fixture
def admin(admin_on, server) -> Admin:
    """An operator presenting the secret to node 0's admin listener."""
    return admin_on(server, ADMIN_NODE)


@pytest.fixture
def presence(chat):
    """Users whose streams ask for membership events."""
    presence = Presence(chat)
    yield presence
    presence.close()


def connect(chat, name: str):
    """`name` connected through the users' node."""
    return chat.connect(name, node=USERS_NODE)


def member(presence, name: str):
    """`name` connected through the users' node, asking for membership
    events."""
    return presence.connect(name, events=(MEMBERSHIP,), node=USERS_NODE)


def recent(timestamp) -> bool:
    return abs(timestamp.seconds + timestamp.nanos / 1e9 - time.time()) < 60


# ---------------------------------------------------------------------------
# The secret
# ---------------------------------------------------------------------------

# Every RPC, called with arguments that would succeed with the secret.
ADMIN_CALLS = {
    "DisconnectUser": lambda admin: admin.disconnect("alice", "no secret", ban_secs=60),
    "RemoveGroupMember": lambda admin: admin.remove("room", "alice"),
    "DeleteGroup": lambda admin: admin.delete("room"),
    "Publish": lambda admin: admin.publish("alice", "no secret"),
    "ListUsers": lambda admin: admin.users(),
}

WRONG_AUTHORIZATIONS = {
    "none": lambda secret: None,
    "wrong secret": lambda secret: "Bearer " + "0" * len(secret),
    "secret with a byte more": lambda secret: f"Bearer {secret}0",
    "secret without Bearer": lambda secret: secret,
    "another scheme": lambda secret: f"Basic {secret}",
}


@pytest.mark.parametrize("wrong", WRONG_AUTHORIZATIONS.keys())
def test_every_admin_call_without_the_secret_is_refused(
    chat, admin, admin_on, server, admin_secret, wrong
):
    alice = connect(chat, "alice")
    alice.create("room")
    intruder = admin_on(server, ADMIN_NODE, WRONG_AUTHORIZATIONS[wrong](admin_secret.secret))
    for rpc, call in ADMIN_CALLS.items():
        error = rpc_error(Code.UNAUTHENTICATED, call, intruder)
        assert admin_secret.secret not in (error.details() or ""), f"{rpc} echoes the secret"
    # Nothing happened: alice is connected, in her group, with no message.
    assert [u.username for u in admin.users().users] == ["alice"]
    assert alice.rows() == [("alice", USER, 0, False), ("room", GROUP, 1, True)]
    marker = alice.send("alice", "marker").message_id
    assert [m.id for m in alice.receive(1)] == [marker]


def test_the_token_file_s_trailing_newline_is_not_part_of_the_secret(admin, admin_secret):
    assert admin_secret.path.read_text().endswith("\n")
    assert admin.users().user_count == 0


def test_each_listener_serves_only_its_own_service(chat, admin, server, admin_secret):
    alice = connect(chat, "alice")
    # The chat listener has no AdminService, even with the secret...
    on_chat = Admin(chat.node_channel(ADMIN_NODE), admin_secret.authorization)
    for call in ADMIN_CALLS.values():
        rpc_error(Code.UNIMPLEMENTED, call, on_chat)
    # ...and the admin listener no ChatService.
    stub = chat_pb2_grpc.ChatServiceStub(chat.new_channel(server.admin_target(ADMIN_NODE)))
    rpc_error(
        Code.UNIMPLEMENTED,
        stub.ListChannels,
        chat_pb2.ListChannelsRequest(),
        metadata=alice.metadata,
        timeout=WAIT,
    )


# ---------------------------------------------------------------------------
# DisconnectUser and bans
# ---------------------------------------------------------------------------

_BANNED = re.compile(r"banned for (\d+) more seconds")


def banned_secs(end: End) -> int:
    """The seconds a Connect refused for a ban says are left."""
    assert end.code == Code.PERMISSION_DENIED, end
    found = _BANNED.fullmatch(end.details or "")
    assert found, f"not a ban: {end.details!r}"
    return int(found.group(1))


def refused(chat, name: str) -> End:
    """The status a Connect for `name` through the users' node ends with."""
    return chat.open(name, chat.node_channel(USERS_NODE)).refused()


def test_a_disconnected_user_is_told_why_and_leaves_every_group(chat, admin):
    alice = connect(chat, "alice")
    bob = connect(chat, "bob")
    alice.create("room")
    bob.join("room")
    alice.create("solo")
    sent = bob.send("room", "before").message_id
    assert [m.id for m in alice.receive(1)] == [sent]

    admin.disconnect("alice", "spamming the lobby")
    assert alice.inbox.end() == End(
        Code.PERMISSION_DENIED, "disconnected by an operator: spamming the lobby"
    )
    wait_until(
        lambda: bob.rows() == [("bob", USER, 0, False), ("room", GROUP, 1, True)],
        timeout=PROMPT,
        what="alice out of room, solo deleted",
    )
    assert admin.usernames() == ["bob"]
    assert list(list_members(bob, "room").members) == ["bob"]
    # Not connected any more, and no ban asked: nothing to do.
    rpc_error(Code.NOT_FOUND, admin.disconnect, "alice", "again")

    # The name is free again, for a new session in no group; the old
    # session cannot be resumed.
    again = chat.reconnect("alice", resume=alice.resume_request(0), node=USERS_NODE)
    assert again.connected.resume_status == chat_pb2.RESUME_STATUS_UNKNOWN
    assert again.rows() == [
        ("alice", USER, 0, False),
        ("bob", USER, 0, False),
        ("room", GROUP, 1, False),
    ]


def test_an_empty_reason_still_ends_the_stream(chat, admin):
    alice = connect(chat, "alice")
    admin.disconnect("alice")
    assert alice.inbox.end() == End(Code.PERMISSION_DENIED, "disconnected by an operator: ")


@pytest.mark.parametrize("name", ["", "a b", "x" * 65])
def test_disconnecting_an_invalid_name_is_refused(chat, admin, name):
    connect(chat, "alice")
    rpc_error(Code.INVALID_ARGUMENT, admin.disconnect, name, "why")
    rpc_error(Code.INVALID_ARGUMENT, admin.disconnect, name, "why", ban_secs=1)
    assert admin.usernames() == ["alice"]


def test_a_ban_refuses_connect_until_it_runs_out(chat, admin):
    alice = connect(chat, "alice")
    bob = connect(chat, "bob")
    start = time.monotonic()
    admin.disconnect("alice", "flooding", ban_secs=1)
    # A name not connected may be banned too.
    admin.disconnect("mallory", "", ban_secs=2)
    assert alice.inbox.end() == End(Code.PERMISSION_DENIED, "disconnected by an operator: flooding")

    # Whole seconds, rounded up.
    assert banned_secs(refused(chat, "alice")) == 1
    assert banned_secs(refused(chat, "mallory")) == 2
    # Nobody else is banned: bob is still here, carol may connect.
    connect(chat, "carol")
    assert admin.usernames() == ["bob", "carol"]
    bob.send("bob", "still here")
    bob.receive(1)

    # Tried again until it connects: never before the ban ran out, and
    # soon after.
    deadline = start + 1 + WAIT
    while True:
        inbox = chat.open("alice", chat.node_channel(USERS_NODE))
        event = inbox.next_event()
        if not isinstance(event, End):
            break
        assert banned_secs(event) == 1
        assert time.monotonic() < deadline, "alice's ban never ran out"
        time.sleep(0.05)
    assert event.WhichOneof("event") == "connected", event
    assert time.monotonic() - start >= 1.0, "alice connected before her ban ran out"
    assert admin.usernames() == ["alice", "bob", "carol"]


# ---------------------------------------------------------------------------
# Publish
# ---------------------------------------------------------------------------


def test_publish_to_a_user_arrives_from_the_operator(chat, admin):
    alice = connect(chat, "alice")
    bob = connect(chat, "bob")
    published = admin.publish("alice", "maintenance at noon", sender="Ops team")
    assert published.message_id > 0
    assert recent(published.sent_at)
    (message,) = alice.receive(1)
    assert (message.id, message.sender, message.recipient, message.recipient_type) == (
        published.message_id,
        "Ops team",
        "alice",
        USER,
    )
    assert (message.text, message.from_operator) == ("maintenance at noon", True)
    assert message.sent_at == published.sent_at

    # No sender: "server". A sender may be a username: from_operator tells
    # the operator's message from the user's.
    admin.publish("alice", "from the server")
    admin.publish("alice", "not really bob", sender="bob")
    bob.send("alice", "really bob")
    got = [(m.sender, m.text, m.from_operator) for m in alice.receive(3)]
    assert got == [
        ("server", "from the server", True),
        ("bob", "not really bob", True),
        ("bob", "really bob", False),
    ]


def test_publish_to_a_group_reaches_every_member_and_its_history(chat, admin):
    alice = connect(chat, "alice")
    bob = connect(chat, "bob")
    carol = connect(chat, "carol")
    alice.create("room")
    bob.join("room")
    before = alice.send("room", "before").message_id
    # The operator need not be a member; carol, who is not, gets nothing.
    published = admin.publish("room", "the room closes at six", sender="moderator")
    after = bob.send("room", "after").message_id
    assert before < published.message_id < after

    for user in (alice, bob):
        got = [
            (m.id, m.sender, m.recipient, m.recipient_type, m.from_operator)
            for m in user.receive(3)
        ]
        assert got == [
            (before, "alice", "room", GROUP, False),
            (published.message_id, "moderator", "room", GROUP, True),
            (after, "bob", "room", GROUP, False),
        ]
    history = [(m.id, m.sender, m.text, m.from_operator) for m in bob.history("room").messages]
    assert history == [
        (before, "alice", "before", False),
        (published.message_id, "moderator", "the room closes at six", True),
        (after, "bob", "after", False),
    ]
    marker = carol.send("carol", "marker").message_id
    assert [m.id for m in carol.receive(1)] == [marker]


def test_publish_refuses_unknown_recipients_bad_senders_and_bad_texts(chat, admin):
    alice = connect(chat, "alice")
    rpc_error(Code.NOT_FOUND, admin.publish, "nobody", "hello")
    for sender in (" ops", "ops ", "x" * 65, "tab\there", "café"):
        rpc_error(Code.INVALID_ARGUMENT, admin.publish, "alice", "hello", sender=sender)
    rpc_error(Code.INVALID_ARGUMENT, admin.publish, "alice", "")
    rpc_error(Code.INVALID_ARGUMENT, admin.publish, "alice", "x" * 5000)
    # None of them arrived.
    marker = alice.send("alice", "marker").message_id
    assert [m.id for m in alice.receive(1)] == [marker]


# ---------------------------------------------------------------------------
# ListUsers
# ---------------------------------------------------------------------------


def test_list_users_pages_every_connected_user_by_name(chat, admin):
    # Connected out of order, through the nodes in turn.
    users = {}
    for i, name in enumerate(["dave", "alice", "erin", "carol", "bob"]):
        users[name] = chat.connect(name, node=i)
    users["alice"].create("room")
    users["alice"].create("lobby")
    users["bob"].join("room")

    pages = admin.all_users(2)
    assert [[u.username for u in page.users] for page in pages] == [
        ["alice", "bob"],
        ["carol", "dave"],
        ["erin"],
    ]
    assert [page.user_count for page in pages] == [5, 5, 5]
    assert [page.next_page_token == "" for page in pages] == [False, False, True]
    listed = {u.username: u for page in pages for u in page.users}
    assert {name: u.group_count for name, u in listed.items()} == {
        "alice": 2,
        "bob": 1,
        "carol": 0,
        "dave": 0,
        "erin": 0,
    }
    for user in listed.values():
        assert recent(user.connected_at), user
        assert "127.0.0.1" in user.peer, user

    nodes = {name: u.node for name, u in listed.items()}
    if CLUSTER_NODES:
        # Each user on the node its stream went to: the users connected
        # through one node share its name, and no two nodes share one.
        by_node = {}
        for i, name in enumerate(["dave", "alice", "erin", "carol", "bob"]):
            by_node.setdefault(i % CLUSTER_NODES, set()).add(nodes[name])
        assert all(len(names) == 1 and "" not in names for names in by_node.values()), nodes
        assert len(set(nodes.values())) == min(CLUSTER_NODES, 5), nodes
    else:
        assert set(nodes.values()) == {""}, nodes

    # 0 means 100; the whole list fits.
    whole = admin.users()
    assert [u.username for u in whole.users] == ["alice", "bob", "carol", "dave", "erin"]
    assert (whole.user_count, whole.next_page_token) == (5, "")
    # A page token is where the previous page ended.
    assert [u.username for u in admin.users(2, "bob").users] == ["carol", "dave"]
    rpc_error(Code.INVALID_ARGUMENT, admin.users, 1001)

    users["carol"].disconnect()
    wait_until(
        lambda: admin.usernames() == ["alice", "bob", "dave", "erin"],
        timeout=PROMPT,
        what="carol gone from ListUsers",
    )
    assert admin.users().user_count == 4


def test_list_users_with_nobody_connected(admin):
    page = admin.users()
    assert (list(page.users), page.next_page_token, page.user_count) == ([], "", 0)


# ---------------------------------------------------------------------------
# RemoveGroupMember and DeleteGroup
# ---------------------------------------------------------------------------


def joined_room(presence) -> tuple:
    """alice, bob and carol, asking for membership events, in group "room"
    with one message; every event up to that message read. The message's
    id."""
    alice = member(presence, "alice")
    bob = member(presence, "bob")
    carol = member(presence, "carol")
    alice.create("room")
    bob.join("room")
    carol.join("room")
    sent = alice.send("room", "hello").message_id
    for user, joins in ((alice, 3), (bob, 2), (carol, 1)):
        kinds = [kind for kind, _ in user.items(joins + 1)]
        assert kinds == ["membership"] * joins + ["message"], f"{user.name}: {kinds}"
    return alice, bob, carol, sent


def test_a_removed_member_and_the_rest_of_the_group_are_told(presence, admin):
    alice, bob, carol, sent = joined_room(presence)

    admin.remove("room", "bob")
    for user in (alice, bob, carol):
        event = user.membership()
        assert change(event) == ("room", "bob", REMOVED, 2, sent), user.name
        assert recent(event.at)
    assert list(list_members(alice, "room").members) == ["alice", "carol"]
    # bob is still connected, but no member any more.
    assert admin.usernames() == ["alice", "bob", "carol"]
    rpc_error(Code.PERMISSION_DENIED, bob.send, "room", "still a member?")
    rpc_error(Code.FAILED_PRECONDITION, admin.remove, "room", "bob")
    rpc_error(Code.FAILED_PRECONDITION, admin.remove, "room", "nobody")
    rpc_error(Code.NOT_FOUND, admin.remove, "nosuch", "alice")
    rpc_error(Code.INVALID_ARGUMENT, admin.remove, "room", "bad name")
    for user in (alice, bob, carol):
        user.nothing_pending()


def test_removing_the_last_member_deletes_the_group(presence, admin):
    alice, bob, carol, sent = joined_room(presence)
    admin.remove("room", "carol")
    admin.remove("room", "bob")
    # The removed user is told, and who was still a member then.
    for user in (alice, bob, carol):
        assert change(user.membership()) == ("room", "carol", REMOVED, 2, sent), user.name
    for user in (alice, bob):
        assert change(user.membership()) == ("room", "bob", REMOVED, 1, sent), user.name

    admin.remove("room", "alice")
    assert change(alice.membership()) == ("room", "alice", REMOVED, 0, sent)
    rpc_error(Code.NOT_FOUND, admin.remove, "room", "alice")
    rpc_error(Code.NOT_FOUND, bob.join, "room")
    for user in (alice, bob, carol):
        user.nothing_pending()


def test_deleting_a_group_removes_every_member_and_its_history(presence, admin):
    alice, bob, carol, sent = joined_room(presence)
    dave = member(presence, "dave")
    dave.create("other")
    dave.membership()

    assert admin.delete("room") == 3
    # Each member is told once, about itself, with no one left.
    for user in (alice, bob, carol):
        assert change(user.membership()) == ("room", user.name, REMOVED, 0, sent), user.name
    for user in (alice, bob, carol, dave):
        user.nothing_pending()
    assert "room" not in alice.names()
    rpc_error(Code.NOT_FOUND, bob.join, "room")
    rpc_error(Code.NOT_FOUND, carol.send, "room", "anyone?")
    rpc_error(Code.NOT_FOUND, admin.delete, "room")
    rpc_error(Code.NOT_FOUND, admin.publish, "room", "anyone?")
    # The users are still connected, in no group; a new "room" starts
    # with no history.
    assert {u.username: u.group_count for u in admin.users().users} == {
        "alice": 0,
        "bob": 0,
        "carol": 0,
        "dave": 1,
    }
    carol.create("room")
    assert list(carol.history("room").messages) == []
    assert dave.rows()[-2:] == [("other", GROUP, 1, True), ("room", GROUP, 1, False)]
