"""SIGTERM: open streams end with UNAVAILABLE and the server exits 0 within
5 seconds."""

import time

from harness import STOP_WAIT, Code, rpc_error


def test_sigterm_ends_every_stream_with_unavailable_and_exits_zero(start_server, chat_on):
    server = start_server()
    chat = chat_on(server)
    alice = chat.connect("alice")
    bob = chat.connect("bob")
    alice.create("room")
    bob.join("room")
    alice.send("room", "before the signal")
    assert alice.texts(1) == bob.texts(1) == ["before the signal"]

    started = time.monotonic()
    server.sigterm()
    assert alice.inbox.end(STOP_WAIT).code == Code.UNAVAILABLE
    assert bob.inbox.end(STOP_WAIT).code == Code.UNAVAILABLE
    assert server.wait_exit(STOP_WAIT) == 0
    assert time.monotonic() - started < STOP_WAIT
    # Nothing answers any more.
    rpc_error(Code.UNAVAILABLE, alice.channels)


def test_sigterm_exits_promptly_even_with_a_client_that_stopped_reading(start_server, chat_on):
    server = start_server()
    chat = chat_on(server)
    alice = chat.connect("alice")
    stuck = chat.connect("stuck", own_channel=True, pause_after_first=True)
    for _ in range(200):
        alice.send("stuck", "y" * 4000)

    started = time.monotonic()
    server.sigterm()
    assert alice.inbox.end(STOP_WAIT).code == Code.UNAVAILABLE
    assert server.wait_exit(STOP_WAIT) == 0
    assert time.monotonic() - started < STOP_WAIT
    stuck.inbox.cancel()
