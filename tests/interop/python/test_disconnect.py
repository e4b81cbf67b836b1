"""Disconnect: a Connect stream that ends takes its user out of every group
promptly, deletes groups left empty and frees the name."""

from harness import GROUP, USER, Code, rpc_error, wait_until

# How soon a disconnect must show.
PROMPT = 1.0


def test_cancelling_the_stream_removes_the_user_everywhere(chat):
    alice = chat.connect("alice")
    bob = chat.connect("bob")
    alice.create("shared")
    bob.join("shared")
    alice.create("alone")

    alice.disconnect()
    wait_until(
        lambda: bob.rows() == [("bob", USER, 0, False), ("shared", GROUP, 1, True)],
        timeout=PROMPT,
        what="alice out of shared, alone deleted",
    )
    rpc_error(Code.UNAUTHENTICATED, alice.channels)
    rpc_error(Code.NOT_FOUND, bob.send, "alice", "gone?")
    rpc_error(Code.NOT_FOUND, bob.join, "alone")

    # Both names are free again.
    again = chat.connect("alice")
    again.create("alone")
    again.join("shared")
    assert again.rows() == [
        ("alice", USER, 0, False),
        ("bob", USER, 0, False),
        ("alone", GROUP, 1, True),
        ("shared", GROUP, 2, True),
    ]


def test_the_old_session_is_not_carried_over(chat):
    alice = chat.connect("alice")
    bob = chat.connect("bob")
    alice.create("room")
    bob.join("room")
    alice.disconnect()
    wait_until(lambda: bob.names() == ["bob", "room"], timeout=PROMPT, what="alice gone")
    again = chat.connect("alice")
    # A new connection is in no group.
    assert again.rows()[2] == ("room", GROUP, 1, False)
    rpc_error(Code.PERMISSION_DENIED, again.send, "room", "still a member?")


def test_closing_the_connection_disconnects_too(chat):
    alice = chat.connect("alice", own_channel=True)
    bob = chat.connect("bob")
    alice.create("room")
    bob.join("room")
    # Close alice's whole HTTP/2 connection, as a client process that exits.
    alice.channel.close()
    assert alice.inbox.end().code == Code.CANCELLED
    wait_until(
        lambda: bob.rows() == [("bob", USER, 0, False), ("room", GROUP, 1, True)],
        timeout=PROMPT,
        what="alice gone",
    )


def test_the_others_carry_on(chat):
    alice = chat.connect("alice")
    bob = chat.connect("bob")
    carol = chat.connect("carol")
    alice.create("room")
    bob.join("room")
    carol.join("room")
    carol.disconnect()
    wait_until(lambda: alice.rows()[-1] == ("room", GROUP, 2, True), timeout=PROMPT)
    sent = bob.send("room", "after carol left")
    assert [m.id for m in alice.receive(1)] == [sent.message_id]
    assert [m.id for m in bob.receive(1)] == [sent.message_id]
