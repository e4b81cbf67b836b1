"""Fixtures for the interop tests.

- `start_server(*flags)`: starts a chat-server binary on 127.0.0.1:0 with
  extra flags and returns its `ChatServer` (`.target` is `host:port`); every
  server started is stopped (SIGTERM, then SIGKILL) when the test ends.
- `server` / `target`: a server with the default flags, one per test, so no
  test sees another's users or groups.
- `chat` / `chat_on(server)`: open Connect streams (each read on a
  background thread into a queue) and unary clients against a server; every
  stream is cancelled and every channel closed when the test ends.
- `start_admin_server(*flags)`: `start_server` with an admin listener on
  127.0.0.1:0 taking `admin_secret` (a fresh secret in a file of the test's
  temporary folder); `admin_on(server, node)`: an `Admin` client of that
  listener (of node `node` of a cluster) presenting the secret.

The generated stubs are imported from $CHAT_INTEROP_GEN (run.sh sets it),
else from the .gen folder beside this file.
"""

import os
import signal
import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, os.environ.get("CHAT_INTEROP_GEN") or str(_HERE / ".gen"))

from harness import (  # noqa: E402
    CLUSTER_NODES,
    Admin,
    AdminSecret,
    Chat,
    ChatCluster,
    ChatServer,
    admin_flags,
    new_channel,
    server_binary,
    write_admin_secret,
)

# `admin_on`'s default authorization: the test's admin secret.
_THE_SECRET = object()


def _interrupt(signum, frame):
    # A run stopped with SIGTERM (run.sh's overall time limit) still runs
    # the fixtures' teardown, which stops the servers it started.
    raise KeyboardInterrupt(f"signal {signum}")


signal.signal(signal.SIGTERM, _interrupt)


def pytest_sessionfinish(session, exitstatus):
    for server in list(ChatServer.running):
        server.stop()


@pytest.fixture(scope="session")
def server_bin() -> Path:
    path = server_binary()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"no chat-server binary at {path}: build it with `cargo build --bin chat-server`, "
            "or set CHAT_SERVER_BIN (or CARGO_TARGET_DIR)",
            pytrace=False,
        )
    return path


@pytest.fixture
def start_server(server_bin):
    """Starts chat-server with extra flags; stops all of them at teardown."""
    started = []

    def start(*flags: str) -> ChatServer:
        if CLUSTER_NODES:
            server = ChatCluster(server_bin, tuple(flags), CLUSTER_NODES)
        else:
            server = ChatServer(server_bin, tuple(flags))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
        # Shown by pytest only when the test failed.
        print(f"--- log of {' '.join(server.args)} (pid {server.pid})")
        print(server.log_text())


@pytest.fixture
def server(start_server) -> ChatServer:
    """A chat-server with the default flags."""
    return start_server()


@pytest.fixture
def target(server) -> str:
    """The default server's `host:port`."""
    return server.target


@pytest.fixture
def chat_on(start_server):
    """Makes a `Chat` for a given server (or target); closed at teardown,
    before any server stops (hence the dependency on start_server)."""
    chats = []

    def make(server_or_target) -> Chat:
        target = getattr(server_or_target, "target", server_or_target)
        chat = Chat(target, getattr(server_or_target, "targets", None))
        chats.append(chat)
        return chat

    yield make
    for chat in chats:
        chat.close()


@pytest.fixture
def chat(chat_on, target) -> Chat:
    """Streams and clients against the default server."""
    return chat_on(target)


@pytest.fixture
def admin_secret(tmp_path) -> AdminSecret:
    """A fresh admin secret, in a file of the test's temporary folder."""
    return write_admin_secret(tmp_path)


@pytest.fixture
def start_admin_server(start_server, admin_secret):
    """Starts chat-server (every node of a cluster) with an admin listener
    taking `admin_secret`, plus extra flags."""

    def start(*flags: str) -> ChatServer:
        return start_server(*admin_flags(admin_secret), *flags)

    return start


@pytest.fixture
def admin_on(start_server, admin_secret):
    """Makes an `Admin` client of a server's admin listener (node `node` of
    a cluster) sending `authorization`: by default `Bearer <admin_secret>`,
    None for no header. Its channel is closed at teardown, before any server
    stops."""
    channels = []

    def make(server, node: int = 0, authorization=_THE_SECRET) -> Admin:
        if authorization is _THE_SECRET:
            authorization = admin_secret.authorization
        channel = new_channel(server.admin_target(node))
        channels.append(channel)
        return Admin(channel, authorization)

    yield make
    for channel in channels:
        channel.close()
