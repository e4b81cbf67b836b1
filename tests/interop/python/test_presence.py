"""Who is here: ListGroupMembers, and the `membership` and `typing` events
of ConnectResponse (oneof cases 3 and 4) on streams that ask for them with
ConnectRequest.events. Every event is read through the generated code's
`WhichOneof("event")`.

- membership: JOINED (to every member, the joiner included), LEFT and
  DISCONNECTED (to the members that remain), with member_count and
  position, ordered with the group's messages; none past
  --membership-events-max-members.
- typing: direct and group, one per sender and conversation per 2 s, never
  stored nor replayed.
- a Connect that asks for nothing (an old client) gets only `connected` and
  `delivery`.

On a cluster the users' streams and calls take the nodes in turn (or the
node a test names), so events cross nodes.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from typing import Any, Optional

import grpc
import pytest

from chat.v1 import chat_pb2, chat_pb2_grpc
from harness import (
    GROUP,
    USER,
    WAIT,
    Code,
    End,
    Inbox,
    StreamReader,
    User,
    rpc_error,
)
from test_connect import INVALID_NAMES

MEMBERSHIP = chat_pb2.EVENT_TYPE_MEMBERSHIP
TYPING = chat_pb2.EVENT_TYPE_TYPING
BOTH = (MEMBERSHIP, TYPING)
JOINED = chat_pb2.MEMBERSHIP_CHANGE_KIND_JOINED
LEFT = chat_pb2.MEMBERSHIP_CHANGE_KIND_LEFT
DISCONNECTED = chat_pb2.MEMBERSHIP_CHANGE_KIND_DISCONNECTED
# The typing throttle: one notice per sender and conversation per this long.
THROTTLE = 2.0


class EventInbox(Inbox):
    """A Connect stream that asks for `events`; reads messages and events
    one at a time, in the order the stream brought them."""

    def __init__(
        self,
        channel: grpc.Channel,
        username: str,
        events: tuple = BOTH,
        resume: Optional[chat_pb2.ResumeRequest] = None,
    ):
        self.username = username
        # Messages of a delivery (and events) not read yet.
        self.pending: collections.deque = collections.deque()
        request = chat_pb2.ConnectRequest(username=username, events=events)
        if resume is not None:
            request.resume.CopyFrom(resume)
        call = chat_pb2_grpc.ChatServiceStub(channel).Connect(request)
        StreamReader.__init__(self, call, username)

    def item(self, timeout: float = WAIT) -> tuple[str, Any]:
        """The next thing the stream brought: ("message", Message),
        ("membership", MembershipChange) or ("typing", TypingStarted)."""
        if not self.pending:
            event = self.next_event(timeout)
            if isinstance(event, End):
                raise AssertionError(
                    f"{self.username}: stream ended ({event.code.name} {event.details})"
                )
            kind = event.WhichOneof("event")
            if kind == "delivery":
                self.pending.extend(("message", m) for m in event.delivery.messages)
            elif kind in ("membership", "typing"):
                self.pending.append((kind, getattr(event, kind)))
            else:
                raise AssertionError(f"{self.username}: unexpected {kind} event: {event}")
        return self.pending.popleft()


class Member(User):
    """A connected user whose stream asked for events."""

    inbox: EventInbox

    def item(self, timeout: float = WAIT) -> tuple[str, Any]:
        return self.inbox.item(timeout)

    def items(self, count: int, timeout: float = WAIT) -> list:
        deadline = time.monotonic() + timeout
        return [self.item(max(deadline - time.monotonic(), 0.01)) for _ in range(count)]

    def membership(self, timeout: float = WAIT) -> chat_pb2.MembershipChange:
        kind, event = self.item(timeout)
        assert kind == "membership", f"{self.name}: expected a membership event, got {kind}: {event}"
        return event

    def typing_event(self, timeout: float = WAIT) -> chat_pb2.TypingStarted:
        kind, event = self.item(timeout)
        assert kind == "typing", f"{self.name}: expected a typing event, got {kind}: {event}"
        return event

    def nothing_pending(self) -> None:
        """Nothing is waiting on the stream: the next thing is a marker
        this user sends itself now (queued after all that came before)."""
        marker = self.send(self.name, "marker")
        kind, event = self.item()
        assert (kind, getattr(event, "id", None)) == ("message", marker.message_id), (
            f"{self.name}: expected nothing before the marker, got {kind}: {event}"
        )

    def typing(self, recipient: str) -> chat_pb2.SendTypingResponse:
        return send_typing(self, recipient)


def send_typing(client, recipient: str) -> chat_pb2.SendTypingResponse:
    """SendTyping as `client` (a harness Client or User)."""
    request = chat_pb2.SendTypingRequest(recipient=recipient)
    return client.stub.SendTyping(request, metadata=client.metadata, timeout=WAIT)


def list_members(
    client, group: str, limit: int = 0, page_token: str = ""
) -> chat_pb2.ListGroupMembersResponse:
    """ListGroupMembers as `client` (a harness Client or User)."""
    request = chat_pb2.ListGroupMembersRequest(group=group, limit=limit, page_token=page_token)
    return client.stub.ListGroupMembers(request, metadata=client.metadata, timeout=WAIT)


def all_members(client, group: str, limit: int) -> list:
    """Every page of `group`'s members, `limit` at a time."""
    pages, token = [], ""
    while True:
        page = list_members(client, group, limit, token)
        pages.append(list(page.members))
        token = page.next_page_token
        if not token:
            return pages


class Presence:
    """Connects users whose streams ask for events, on the nodes in turn;
    cancels their streams at teardown."""

    def __init__(self, chat):
        self.chat = chat
        self._turn = itertools.count()
        self._inboxes: list = []

    def connect(
        self,
        username: str,
        events: tuple = BOTH,
        node: Optional[int] = None,
        resume: Optional[chat_pb2.ResumeRequest] = None,
    ) -> Member:
        """Connects `username` asking for `events` and waits for
        `connected`. A Connect refused with ALREADY_EXISTS (the server has
        not seen this name's last stream end yet) is tried again."""
        node = next(self._turn) if node is None else node
        channel = self.chat.node_channel(node)
        deadline = time.monotonic() + WAIT
        while True:
            inbox = EventInbox(channel, username, events, resume)
            self._inboxes.append(inbox)
            event = inbox.next_event()
            if isinstance(event, End) and event.code == Code.ALREADY_EXISTS:
                assert time.monotonic() < deadline, f"{username}'s old stream never ended"
                time.sleep(0.01)
                continue
            assert not isinstance(event, End), f"Connect {username!r}: {event}"
            assert event.WhichOneof("event") == "connected", f"first event: {event}"
            assert event.connected.username == username
            return Member(channel, inbox, event.connected)

    def close(self) -> None:
        for inbox in self._inboxes:
            inbox.cancel()


@pytest.fixture
def chat(chat_on, server):
    """Streams and clients on every node of a cluster in turn."""
    return chat_on(server)


@pytest.fixture
def presence(chat):
    presence = Presence(chat)
    yield presence
    presence.close()


def change(event: chat_pb2.MembershipChange) -> tuple:
    """What a membership event says, but its time."""
    return (event.group, event.user, event.kind, event.member_count, event.position)


def assert_recent(event: chat_pb2.MembershipChange) -> None:
    at = event.at.seconds + event.at.nanos / 1e9
    assert abs(at - time.time()) < 60, f"`at` is not now: {event}"


# ---------------------------------------------------------------------------
# Membership events
# ---------------------------------------------------------------------------


def test_joined_reaches_every_member_the_joiner_included(presence):
    alice = presence.connect("alice")
    bob = presence.connect("bob")
    alice.create("room")
    created = alice.membership()
    assert change(created) == ("room", "alice", JOINED, 1, 0)
    assert_recent(created)

    assert bob.join("room").position == 0
    for member in (alice, bob):
        event = member.membership()
        assert change(event) == ("room", "bob", JOINED, 2, 0)
        assert_recent(event)

    # Once the group has messages, `position` is the newest one's id, as
    # JoinGroupChat answers it.
    sent = alice.send("room", "hi").message_id
    for member in (alice, bob):
        kind, message = member.item()
        assert (kind, message.id, message.text) == ("message", sent, "hi")
    carol = presence.connect("carol")
    assert carol.join("room").position == sent
    for member in (alice, bob, carol):
        assert change(member.membership()) == ("room", "carol", JOINED, 3, sent)
    for member in (alice, bob, carol):
        member.nothing_pending()


def test_left_and_disconnected_reach_the_members_that_remain(presence):
    alice = presence.connect("alice")
    bob = presence.connect("bob")
    carol = presence.connect("carol")
    alice.create("room")
    bob.join("room")
    carol.join("room")
    sent = carol.send("room", "bye").message_id
    alice.items(4)  # JOINED alice, bob, carol; "bye"
    bob.items(3)  # JOINED bob, carol; "bye"
    carol.items(2)  # JOINED carol; "bye"

    bob.leave("room")
    for member in (alice, carol):
        event = member.membership()
        assert change(event) == ("room", "bob", LEFT, 2, sent)
        assert_recent(event)
    # The one who left hears nothing more of the group.
    bob.nothing_pending()

    carol.disconnect()
    event = alice.membership()
    assert change(event) == ("room", "carol", DISCONNECTED, 1, sent)
    assert_recent(event)
    alice.nothing_pending()

    # The last member leaving deletes the group: nobody is told.
    bob.join("room")
    assert [change(alice.membership()), change(bob.membership())] == [
        ("room", "bob", JOINED, 2, sent)
    ] * 2
    bob.leave("room")
    assert change(alice.membership()) == ("room", "bob", LEFT, 1, sent)
    alice.leave("room")
    alice.nothing_pending()
    bob.nothing_pending()


def test_membership_events_are_ordered_with_the_groups_messages(presence, chat):
    """Every member sees bob's JOINED before his first message and his LEFT
    or DISCONNECTED after his last, and all members see one order, while
    dave keeps talking from another node."""
    alice = presence.connect("alice", node=0)
    carol = presence.connect("carol", node=1)
    dave = presence.connect("dave", events=(), node=1)
    alice.create("room")
    carol.join("room")
    dave.join("room")
    alice.items(3)
    carol.items(2)

    talk = 60
    talked: list = []
    chatter = threading.Thread(
        target=lambda: talked.extend(dave.send("room", f"dave {i}").message_id for i in range(talk))
    )
    chatter.start()
    rounds = 4
    bobs: list = []
    try:
        for round_ in range(rounds):
            bob = presence.connect("bob", events=(), node=round_ + 1)
            bob.join("room")
            bobs.append([bob.send("room", f"bob {round_}.{i}").message_id for i in range(3)])
            if round_ % 2:
                bob.leave("room")
            bob.disconnect()
    finally:
        chatter.join(timeout=2 * WAIT)
    assert len(talked) == talk

    # Per round: JOINED, 3 messages, LEFT or DISCONNECTED (a stream that
    # ended after a leave has no more groups to tell).
    count = talk + rounds * 5
    seen = {}
    for member in (alice, carol):
        seen[member.name] = member.items(count, timeout=3 * WAIT)
    assert seen["alice"] == seen["carol"], "the members saw different orders"

    order = seen["alice"]
    messages = [event.id for kind, event in order if kind == "message"]
    assert messages == sorted(messages), "messages out of id order"
    assert [i for i in messages if i in set(talked)] == talked
    bob_items = [
        (kind, event.kind if kind == "membership" else event.id)
        for kind, event in order
        if (kind == "membership" and event.user == "bob")
        or (kind == "message" and event.sender == "bob")
    ]
    expected = []
    for round_, ids in enumerate(bobs):
        expected += [("membership", JOINED)] + [("message", i) for i in ids]
        expected.append(("membership", LEFT if round_ % 2 else DISCONNECTED))
    assert bob_items == expected

    # Each event's position is the newest message the group had at the
    # change: every message before it is at most that, and the next is newer.
    newest = 0
    for kind, event in order:
        if kind == "message":
            newest = event.id
        else:
            assert event.position == newest, f"{event} after message {newest}"


def test_no_membership_event_past_the_threshold(start_server, chat_on):
    presence = Presence(chat_on(start_server("--membership-events-max-members", "2")))
    try:
        alice = presence.connect("alice")
        bob = presence.connect("bob", events=())
        carol = presence.connect("carol")
        alice.create("room")
        assert change(alice.membership()) == ("room", "alice", JOINED, 1, 0)
        bob.join("room")  # 1 -> 2: told
        assert change(alice.membership()) == ("room", "bob", JOINED, 2, 0)
        carol.join("room")  # 2 -> 3: more than 2 after, silent
        carol.leave("room")  # 3 -> 2: more than 2 before, silent
        alice.nothing_pending()
        carol.nothing_pending()
        # The group's members are still there to list.
        assert list(list_members(alice, "room").members) == ["alice", "bob"]
        bob.leave("room")  # 2 -> 1: told
        assert change(alice.membership()) == ("room", "bob", LEFT, 1, 0)
        alice.nothing_pending()
    finally:
        presence.close()


# ---------------------------------------------------------------------------
# Typing
# ---------------------------------------------------------------------------


def test_typing_to_a_user_reaches_that_user_once_per_two_seconds(presence):
    alice = presence.connect("alice")
    bob = presence.connect("bob")
    start = time.monotonic()
    assert bob.typing("alice") == chat_pb2.SendTypingResponse()
    event = alice.typing_event()
    assert (event.conversation, event.conversation_type, event.user) == ("bob", USER, "bob")
    # A second call within 2 s answers OK and is dropped.
    bob.typing("alice")
    alice.nothing_pending()
    bob.nothing_pending()

    # After the throttle's 2 s the next one goes through.
    while True:
        bob.typing("alice")
        try:
            event = alice.typing_event(timeout=0.05)
            break
        except AssertionError:
            assert time.monotonic() - start < THROTTLE + WAIT, "the throttle never let one through"
    assert time.monotonic() - start >= THROTTLE * 0.75
    assert (event.conversation, event.user) == ("bob", "bob")
    alice.nothing_pending()


def test_typing_in_a_group_reaches_the_other_members_that_asked(presence, chat):
    alice = presence.connect("alice")
    bob = presence.connect("bob")
    carol = presence.connect("carol", events=(MEMBERSHIP,))
    dave = chat.connect("dave")  # asks for nothing
    alice.create("room")
    for user in (bob, carol, dave):
        user.join("room")
    alice.items(4)
    bob.items(3)
    carol.items(2)

    bob.typing("room")
    event = alice.typing_event()
    assert (event.conversation, event.conversation_type, event.user) == ("room", GROUP, "bob")
    # Throttled per sender and conversation: bob again in the room is
    # dropped; bob to alice directly, and alice in the room, are not.
    bob.typing("room")
    bob.typing("alice")
    event = alice.typing_event()
    assert (event.conversation, event.conversation_type, event.user) == ("bob", USER, "bob")
    alice.typing("room")
    event = bob.typing_event()
    assert (event.conversation, event.conversation_type, event.user) == ("room", GROUP, "alice")
    for user in (alice, bob, carol):
        user.nothing_pending()
    dave.send("dave", "marker")
    assert dave.texts(1) == ["marker"]

    # Never stored, never counted as a message.
    assert list(alice.history("room").messages) == []


def test_typing_has_send_messages_errors(presence, chat):
    alice = presence.connect("alice")
    bob = presence.connect("bob")
    bob.create("room")
    rpc_error(Code.NOT_FOUND, alice.typing, "nobody")
    rpc_error(Code.PERMISSION_DENIED, alice.typing, "room")
    for name in INVALID_NAMES:
        rpc_error(Code.INVALID_ARGUMENT, alice.typing, name)
    rpc_error(Code.UNAUTHENTICATED, send_typing, chat.client("nobody"), "bob")
    rpc_error(Code.UNAUTHENTICATED, send_typing, chat.client(None), "bob")
    bob.items(1)
    bob.nothing_pending()


def test_typing_is_not_replayed_on_resume(presence):
    alice = presence.connect("alice", events=(TYPING,))
    bob = presence.connect("bob")
    bob.typing("alice")
    psst = bob.send("alice", "psst").message_id
    assert alice.typing_event().user == "bob"
    kind, message = alice.item()
    assert (kind, message.id) == ("message", psst)

    alice.disconnect()
    back = presence.connect(
        "alice", events=(TYPING,), resume=alice.resume_request(after_id=0)
    )
    assert back.connected.resume_status == chat_pb2.RESUME_STATUS_RESUMED
    # The message is replayed; the typing notice is not.
    kind, message = back.item()
    assert (kind, message.id) == ("message", psst)
    back.nothing_pending()


# ---------------------------------------------------------------------------
# ListGroupMembers
# ---------------------------------------------------------------------------


def test_members_come_sorted_a_page_at_a_time(presence, chat):
    names = ["erin", "carol", "alice", "dave", "bob"]
    users = [presence.connect(name, events=()) for name in names]
    users[0].create("room")
    for user in users[1:]:
        user.join("room")
    outsider = chat.connect("zed")

    # Any connected user may list any group.
    for reader in (users[0], outsider):
        page = list_members(reader, "room")
        assert (list(page.members), page.next_page_token, page.member_count) == (
            sorted(names), "", 5
        )
    first = list_members(outsider, "room", limit=2)
    assert (list(first.members), first.member_count) == (["alice", "bob"], 5)
    assert first.next_page_token
    assert all_members(outsider, "room", 2) == [["alice", "bob"], ["carol", "dave"], ["erin"]]
    assert all_members(outsider, "room", 5) == [sorted(names)]
    assert all_members(outsider, "room", 1000) == [sorted(names)]


def test_pages_are_stable_under_joins_and_leaves(presence):
    users = {name: presence.connect(name, events=()) for name in ["bob", "carol", "dave", "erin", "fay"]}
    users["bob"].create("room")
    for name in ["carol", "dave", "erin", "fay"]:
        users[name].join("room")
    first = list_members(users["bob"], "room", limit=2)
    assert list(first.members) == ["bob", "carol"]

    # Meanwhile one before the token and one after it leave; one sorted
    # before the token joins.
    users["carol"].leave("room")
    users["erin"].leave("room")
    presence.connect("aaron", events=()).join("room")
    rest = list_members(users["bob"], "room", limit=2, page_token=first.next_page_token)
    assert (list(rest.members), rest.next_page_token, rest.member_count) == (["dave", "fay"], "", 4)


def test_list_group_members_errors(presence, chat):
    alice = presence.connect("alice", events=())
    alice.create("room")
    rpc_error(Code.NOT_FOUND, list_members, alice, "nowhere")
    # A user is not a group.
    rpc_error(Code.NOT_FOUND, list_members, alice, "alice")
    for name in INVALID_NAMES:
        rpc_error(Code.INVALID_ARGUMENT, list_members, alice, name)
    rpc_error(Code.INVALID_ARGUMENT, list_members, alice, "room", limit=1001)
    rpc_error(Code.INVALID_ARGUMENT, list_members, alice, "room", page_token="not a name!")
    rpc_error(Code.UNAUTHENTICATED, list_members, chat.client(None), "room")
    rpc_error(Code.UNAUTHENTICATED, list_members, chat.client("nobody"), "room")


# ---------------------------------------------------------------------------
# Who asked for what
# ---------------------------------------------------------------------------


def test_a_connect_that_asks_for_nothing_gets_only_connected_and_deliveries(presence, chat):
    old = chat.connect("old")  # the harness's Connect: no `events` field
    new = presence.connect("new")
    old.create("room")
    new.join("room")
    new.typing("old")
    new.typing("room")
    new.leave("room")
    new.join("room")
    sent = new.send("room", "hi").message_id
    new.disconnect()
    # Inbox.receive reads deliveries only: any other event fails it.
    assert [m.id for m in old.receive(1)] == [sent]
    old.send("old", "marker")
    assert old.texts(1) == ["marker"]
    # The same with EVENT_TYPE_UNSPECIFIED, which asks for nothing either.
    quiet = presence.connect("quiet", events=(chat_pb2.EVENT_TYPE_UNSPECIFIED,))
    other = presence.connect("other", events=())
    quiet.create("den")
    other.join("den")
    other.typing("den")
    other.typing("quiet")
    other.leave("den")
    quiet.nothing_pending()


def test_each_kind_comes_only_to_streams_that_asked_for_it(presence):
    joins = presence.connect("joins", events=(MEMBERSHIP,))
    types = presence.connect("types", events=(TYPING,))
    bob = presence.connect("bob", events=())
    joins.create("room")
    types.join("room")
    bob.join("room")
    assert [change(joins.membership()) for _ in range(3)] == [
        ("room", "joins", JOINED, 1, 0),
        ("room", "types", JOINED, 2, 0),
        ("room", "bob", JOINED, 3, 0),
    ]
    bob.typing("room")
    bob.typing("joins")
    bob.typing("types")
    group, direct = types.typing_event(), types.typing_event()
    assert {(e.conversation, e.conversation_type) for e in (group, direct)} == {
        ("room", GROUP),
        ("bob", USER),
    }
    bob.leave("room")
    assert change(joins.membership()) == ("room", "bob", LEFT, 2, 0)
    joins.nothing_pending()
    types.nothing_pending()
