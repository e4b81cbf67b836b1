"""Session resume: `Connected` always carries a resume token and the epoch;
a Connect with `resume{token, after_id}` gets RESUMED and exactly the
messages it missed, GAP when some are no longer kept, or UNKNOWN; a Connect
without `resume` (an old client) gets UNSPECIFIED and works as before.

On a cluster every resume goes through another node than the session it
resumes (`node=1`; on one server it is that server)."""

import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chat.v1 import chat_pb2
from harness import GROUP, USER, WAIT, ChatCluster, Code, rpc_error, wait_until

UNSPECIFIED = chat_pb2.RESUME_STATUS_UNSPECIFIED
RESUMED = chat_pb2.RESUME_STATUS_RESUMED
GAP = chat_pb2.RESUME_STATUS_GAP
UNKNOWN = chat_pb2.RESUME_STATUS_UNKNOWN


@pytest.fixture
def chat(chat_on, server):
    """Streams and clients on every node of a cluster in turn (on one
    server, that server), so that `node=1` is another node than `node=0`."""
    return chat_on(server)


def status_name(status: int) -> str:
    return chat_pb2.ResumeStatus.Name(status)


def assert_status(user, status: int) -> None:
    got = user.connected.resume_status
    assert got == status, f"{user.name}: {status_name(got)}, expected {status_name(status)}"


def assert_nothing_pending(user):
    """`user` has no message waiting: the next one is a marker it sends
    itself now (queued after everything that came before it)."""
    user.send(user.name, "marker")
    assert [m.text for m in user.receive(1)] == ["marker"]


def resume(chat, user, after_id: int, node: int = 1):
    """Cancels `user`'s stream and connects again through `node`, resuming
    it from `after_id`."""
    user.disconnect()
    return chat.reconnect(user.name, user.resume_request(after_id), node=node)


def test_connected_carries_a_fresh_secret_token_and_the_epoch(chat):
    alice = chat.connect("alice")
    bob = chat.connect("bob")
    for user in (alice, bob):
        # At least 128 random bits in any spelling: 16 characters or more.
        assert len(user.connected.resume_token) >= 16
        assert user.connected.epoch != ""
        assert_status(user, UNSPECIFIED)
    assert alice.connected.resume_token != bob.connected.resume_token
    assert alice.connected.epoch == bob.connected.epoch

    alice.disconnect()
    again = chat.reconnect("alice", node=1)
    assert again.connected.resume_token not in (
        alice.connected.resume_token,
        bob.connected.resume_token,
    )
    assert again.connected.epoch == alice.connected.epoch


def test_a_server_started_anew_has_another_epoch(start_server, chat_on):
    first = chat_on(start_server()).connect("alice")
    second = chat_on(start_server()).connect("alice")
    assert first.connected.epoch != second.connected.epoch


def test_a_resume_after_a_cancel_replays_exactly_what_was_not_read(chat):
    alice = chat.connect("alice", node=0)
    bob = chat.connect("bob")
    sent = [bob.send("alice", f"direct {i}").message_id for i in range(5)]
    read = alice.receive(2)
    assert [m.id for m in read] == sent[:2]
    # The rest reached alice's stream, or was on its way, when it ended.

    resumed = resume(chat, alice, after_id=sent[1])
    assert_status(resumed, RESUMED)
    assert resumed.connected.epoch == alice.connected.epoch
    replay = resumed.receive(3)
    assert [m.id for m in replay] == sent[2:]
    assert [(m.sender, m.recipient, m.recipient_type, m.text) for m in replay] == [
        ("bob", "alice", USER, f"direct {i}") for i in range(2, 5)
    ]
    # Then the live stream, with nothing replayed twice.
    later = bob.send("alice", "after the resume").message_id
    assert [m.id for m in resumed.receive(1)] == [later]
    assert_nothing_pending(resumed)


def test_a_message_sent_just_before_the_stream_ends_is_replayed(chat):
    # The sends are answered OK while alice is connected; her stream ends at
    # once, before she could read them: whatever the server had done with
    # them by then, the resume replays them. Many rounds, each resuming the
    # last, through alternate nodes of a cluster.
    alice = chat.connect("alice", node=0)
    bob = chat.connect("bob")
    last = 0
    for turn in range(30):
        sent = [bob.send("alice", f"round {turn}: {i}").message_id for i in range(5)]
        alice.disconnect()
        alice = chat.reconnect("alice", alice.resume_request(last), node=turn + 1)
        assert_status(alice, RESUMED)
        try:
            replay = [m.id for m in alice.receive(len(sent))]
        except AssertionError as error:
            raise AssertionError(f"round {turn}: {sent} not all replayed: {error}") from None
        assert replay == sent, f"round {turn}"
        last = sent[-1]
    assert_nothing_pending(alice)


def test_the_replay_keeps_every_field_and_group_messages_too(chat):
    alice = chat.connect("alice", node=0)
    bob = chat.connect("bob")
    alice.create("room")
    bob.join("room")
    bob.send("alice", "direct")
    bob.send("room", "to the group")
    alice.send("room", "my own")
    delivered = alice.receive(3)
    assert [m.recipient_type for m in delivered] == [USER, GROUP, GROUP]

    # after_id 0: every kept message of the session.
    resumed = resume(chat, alice, after_id=0)
    assert_status(resumed, RESUMED)
    assert resumed.receive(3) == delivered
    assert_nothing_pending(resumed)


def test_a_resume_from_the_last_message_replays_nothing(chat):
    alice = chat.connect("alice", node=0)
    bob = chat.connect("bob")
    sent = [bob.send("alice", f"direct {i}").message_id for i in range(3)]
    assert [m.id for m in alice.receive(3)] == sent

    resumed = resume(chat, alice, after_id=sent[-1])
    assert_status(resumed, RESUMED)
    assert_nothing_pending(resumed)


def test_a_used_token_is_unknown(chat):
    alice = chat.connect("alice", node=0)
    bob = chat.connect("bob")
    [first] = [bob.send("alice", "one").message_id]
    alice.receive(1)

    resumed = resume(chat, alice, after_id=first)
    assert_status(resumed, RESUMED)
    bob.send("alice", "two")
    resumed.disconnect()
    # The first session's token was used up by the resume.
    again = chat.reconnect("alice", alice.resume_request(0), node=0)
    assert_status(again, UNKNOWN)
    assert_nothing_pending(again)


def test_another_users_token_is_unknown(chat):
    alice = chat.connect("alice", node=0)
    bob = chat.connect("bob", node=0)
    carol = chat.connect("carol")
    carol.send("alice", "for alice")
    carol.send("bob", "for bob")
    alice.disconnect()
    bob.disconnect()

    # alice with bob's token: bob's session is not alice's.
    as_alice = chat.reconnect("alice", bob.resume_request(0), node=1)
    assert_status(as_alice, UNKNOWN)
    assert_nothing_pending(as_alice)


@pytest.mark.parametrize("token", ["", "not-a-token", "0" * 32, "f" * 1000])
def test_a_made_up_token_is_unknown(chat, token):
    alice = chat.connect("alice", node=0)
    chat.connect("bob").send("alice", "hello")
    alice.disconnect()
    again = chat.reconnect("alice", chat_pb2.ResumeRequest(token=token, after_id=0), node=1)
    assert_status(again, UNKNOWN)
    assert_nothing_pending(again)


def test_a_token_of_another_epoch_is_unknown(start_server, chat_on):
    old = chat_on(start_server())
    alice = old.connect("alice")
    alice.send("alice", "hello")
    alice.receive(1)
    alice.disconnect()

    # The same name on a server started anew (a new epoch).
    new = chat_on(start_server())
    again = new.connect("alice", resume=alice.resume_request(0))
    assert_status(again, UNKNOWN)
    assert again.connected.epoch != alice.connected.epoch
    assert_nothing_pending(again)


def test_an_old_client_without_resume_gets_unspecified_and_no_replay(chat):
    alice = chat.connect("alice", node=0)
    bob = chat.connect("bob")
    bob.send("alice", "unread")
    alice.disconnect()

    # A ConnectRequest with no resume field at all, as before this field
    # existed: connected, then only what is new.
    again = chat.reconnect("alice", node=1)
    assert_status(again, UNSPECIFIED)
    assert again.connected.resume_token != ""
    assert_nothing_pending(again)
    # The plain Connect ended what the old session left for a resume.
    again.disconnect()
    late = chat.reconnect("alice", alice.resume_request(0), node=0)
    assert_status(late, UNKNOWN)
    assert_nothing_pending(late)


def test_a_refused_connect_changes_nothing(chat):
    alice = chat.connect("alice", node=0)
    bob = chat.connect("bob")
    [missed] = [bob.send("alice", "missed").message_id]
    alice.disconnect()
    wait_until(lambda: "alice" not in bob.names(), what="alice gone")

    # The name taken by a group: a resume is refused, and not used up.
    bob.create("alice")
    assert chat.refused("alice", alice.resume_request(0)).code == Code.ALREADY_EXISTS
    bob.leave("alice")

    resumed = chat.reconnect("alice", alice.resume_request(0), node=1)
    assert_status(resumed, RESUMED)
    assert [m.id for m in resumed.receive(1)] == [missed]
    assert_nothing_pending(resumed)


def test_resume_restores_no_membership_and_history_fills_the_gap(chat):
    alice = chat.connect("alice", node=0)
    bob = chat.connect("bob")
    alice.create("room")
    bob.join("room")
    [seen] = [bob.send("room", "seen").message_id]
    assert [m.id for m in alice.receive(1)] == [seen]
    alice.disconnect()
    wait_until(lambda: ("room", GROUP, 1, True) in bob.rows(), what="alice out of room")

    # While alice is away: the group goes on, a direct message is refused.
    missed = [bob.send("room", f"missed {i}").message_id for i in range(2)]
    rpc_error(Code.NOT_FOUND, bob.send, "alice", "are you there?")

    resumed = chat.reconnect("alice", alice.resume_request(seen), node=1)
    assert_status(resumed, RESUMED)
    assert ("room", GROUP, 1, False) in resumed.rows()
    rpc_error(Code.PERMISSION_DENIED, resumed.history, "room")
    # Nothing was addressed to the session after `seen`.
    assert_nothing_pending(resumed)

    joined = resumed.join("room")
    assert joined.position == missed[-1]
    page = resumed.history("room", after_id=seen)
    assert [m.id for m in page.messages] == missed
    assert not page.more and not page.truncated


def test_a_resume_past_resume_size_is_a_gap(start_server, chat_on):
    chat = chat_on(start_server("--resume-size", "3"))
    alice = chat.connect("alice", node=0)
    bob = chat.connect("bob")
    sent = [bob.send("alice", f"direct {i}").message_id for i in range(6)]
    assert [m.id for m in alice.receive(1)] == sent[:1]

    # Only the newest three are kept: sent[1] and sent[2] are gone.
    resumed = resume(chat, alice, after_id=sent[0])
    assert_status(resumed, GAP)
    assert_nothing_pending(resumed)


def test_a_resume_within_resume_size_is_whole(start_server, chat_on):
    chat = chat_on(start_server("--resume-size", "3"))
    alice = chat.connect("alice", node=0)
    bob = chat.connect("bob")
    sent = [bob.send("alice", f"direct {i}").message_id for i in range(6)]
    alice.receive(6)

    resumed = resume(chat, alice, after_id=sent[2])
    assert_status(resumed, RESUMED)
    assert [m.id for m in resumed.receive(3)] == sent[3:]
    assert_nothing_pending(resumed)


def test_a_resume_past_resume_bytes_is_a_gap(start_server, chat_on):
    chat = chat_on(start_server("--resume-bytes", "100"))
    alice = chat.connect("alice", node=0)
    bob = chat.connect("bob")
    # 40 bytes each: the newest two fit in 100 bytes.
    sent = [bob.send("alice", f"{i}" * 40).message_id for i in range(4)]
    alice.receive(4)
    resumed = resume(chat, alice, after_id=sent[0])
    assert_status(resumed, GAP)
    assert_nothing_pending(resumed)


def test_a_session_past_its_window_is_unknown(start_server, chat_on):
    # The window in bare seconds.
    chat = chat_on(start_server("--resume-window", "1"))
    alice = chat.connect("alice", node=0)
    chat.connect("bob").send("alice", "hello")
    alice.disconnect()
    wait_until(lambda: "alice" not in chat.client("bob").names(), what="alice gone")
    # Waiting out the window is the point of this test, not synchronisation.
    time.sleep(1.5)
    again = chat.reconnect("alice", alice.resume_request(0), node=1)
    assert_status(again, UNKNOWN)
    assert_nothing_pending(again)


def test_with_resume_off_every_resume_is_unknown(start_server, chat_on):
    chat = chat_on(start_server("--resume-window", "0"))
    alice = chat.connect("alice", node=0)
    # The token is still there: a client need not know the server's flags.
    assert alice.connected.resume_token != ""
    chat.connect("bob").send("alice", "hello")
    alice.receive(1)
    again = resume(chat, alice, after_id=0)
    assert_status(again, UNKNOWN)
    assert_nothing_pending(again)


def test_a_session_ended_by_its_nodes_sigterm_resumes_on_another_node(server_bin, chat_on):
    # A 2-node cluster of its own, whichever way the suite runs.
    server = ChatCluster(server_bin, (), 2)
    try:
        chat = chat_on(server)
        alice = chat.connect("alice", node=0)
        bob = chat.connect("bob", node=1)
        alice.create("room")
        bob.join("room")
        sent = [bob.send("alice", "direct").message_id, bob.send("room", "group").message_id]

        # A rolling deploy: alice's node stops, her stream ends UNAVAILABLE.
        server.nodes[0].sigterm()
        assert alice.inbox.end().code == Code.UNAVAILABLE
        resumed = chat.reconnect("alice", alice.resume_request(0), node=1)
        assert_status(resumed, RESUMED)
        assert [m.id for m in resumed.receive(2)] == sent
        assert_nothing_pending(resumed)
    finally:
        server.stop()


def scrape(server) -> dict:
    with urllib.request.urlopen(server.metrics_url(), timeout=WAIT) as response:
        text = response.read().decode("utf-8")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_resume_attempts_and_kept_history_are_counted(start_server, chat_on):
    server = start_server("--metrics-listen", "127.0.0.1:0")
    # Every call on the node scraped: each cluster node counts its own.
    chat = chat_on(server.target)
    alice = chat.connect("alice")
    bob = chat.connect("bob")
    alice.create("room")
    bob.join("room")
    alice.send("room", "12345")
    alice.send("room", "678")
    alice.receive(2)

    def history_kept():
        samples = scrape(server)
        return samples[("chat_history_messages", ())], samples[("chat_history_bytes", ())]

    # (A cluster node reads the history gauges from Redis now and then.)
    wait_until(lambda: history_kept() == (2, 8), what="2 messages, 8 bytes kept")

    resumed = resume(chat, alice, after_id=0)
    assert_status(resumed, RESUMED)
    bob.disconnect()
    made_up = chat_pb2.ResumeRequest(token="made-up", after_id=0)
    assert_status(chat.reconnect("bob", made_up), UNKNOWN)
    # A plain Connect is no resume attempt.
    chat.connect("carol")

    samples = scrape(server)
    for status, count in (("resumed", 1), ("gap", 0), ("unknown", 1)):
        key = ("chat_resume_attempts_total", (("status", status),))
        assert samples[key] == count, status
    # The group went with its last member (alice did not rejoin it).
    wait_until(lambda: history_kept() == (0, 0), what="nothing kept")
