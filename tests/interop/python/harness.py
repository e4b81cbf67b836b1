"""Helpers for the interop tests: the real chat-server process, Connect
streams read on a background thread into a queue, clients that call the
unary RPCs as one user, and an operator's client of the admin listener.

Every wait here is bounded: a helper that waits takes a timeout (WAIT by
default) and raises AssertionError when it runs out. Nothing sleeps to
synchronise; `wait_until` polls a condition up to a deadline.

The generated stubs (`chat.v1.chat_pb2`, `chat.v1.chat_pb2_grpc`,
`chat.admin.v1.admin_pb2`, `chat.admin.v1.admin_pb2_grpc`) must be
importable; conftest.py puts run.sh's output folder on sys.path.
"""

from __future__ import annotations

import collections
import itertools
import os
import queue
import re
import secrets
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

import grpc

from chat.admin.v1 import admin_pb2, admin_pb2_grpc
from chat.v1 import chat_pb2, chat_pb2_grpc

# How long a test waits for something that should happen at once.
WAIT = 5.0
# How long the server may take to stop after SIGTERM (the contract's limit).
STOP_WAIT = 5.0

Code = grpc.StatusCode
USER = chat_pb2.CHANNEL_TYPE_USER
GROUP = chat_pb2.CHANNEL_TYPE_GROUP

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]

_PORT = re.compile(r"\bport: (\d+)")
# The other listeners' ports, as the server logs them after `listening`.
_LOGGED_PORTS = {
    "metrics": re.compile(r"\bmetrics_port: (\d+)"),
    "admin": re.compile(r"\badmin_port: (\d+)"),
}


def server_binary() -> Path:
    """$CHAT_SERVER_BIN, else ${CARGO_TARGET_DIR:-<repo>/target}/debug/chat-server."""
    explicit = os.environ.get("CHAT_SERVER_BIN")
    if explicit:
        return Path(explicit)
    target_dir = os.environ.get("CARGO_TARGET_DIR") or str(REPO / "target")
    return Path(target_dir) / "debug" / "chat-server"


# ---------------------------------------------------------------------------
# The server process
# ---------------------------------------------------------------------------


class ChatServer:
    """A chat-server process listening on an ephemeral 127.0.0.1 port.

    Started with `--listen 127.0.0.1:0 --threads 2` plus `flags`; the port is
    read from the `listening` line the server logs to stderr, and those of
    the metrics and admin listeners from the lines that follow. The log is
    kept (its last lines) for failure messages.
    """

    # Every server still running, so that a run that is interrupted can
    # stop them (see conftest.py).
    running: "set[ChatServer]" = set()

    def __init__(self, binary: Path, flags: tuple[str, ...] = ()):
        self.args = [str(binary), "--listen", "127.0.0.1:0", "--threads", "2", *flags]
        self.log: collections.deque[str] = collections.deque(maxlen=2000)
        self._port: "queue.Queue[Optional[int]]" = queue.Queue()
        # The ports of _LOGGED_PORTS seen so far; `_log_ended` once stderr
        # is closed (no more will come).
        self._logged_ports: dict[str, int] = {}
        self._log_changed = threading.Condition()
        self._log_ended = False
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        ChatServer.running.add(self)
        self._reader = threading.Thread(
            target=self._read_log, name=f"server-log-{self.proc.pid}", daemon=True
        )
        self._reader.start()
        try:
            port = self._port.get(timeout=2 * WAIT)
        except queue.Empty:
            self.stop()
            raise RuntimeError(f"{self.args} logged no port in {2 * WAIT}s:\n{self.log_text()}")
        if port is None:
            self.stop()
            raise RuntimeError(f"{self.args} exited before listening:\n{self.log_text()}")
        self.port = port
        self.target = f"127.0.0.1:{port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_log(self) -> None:
        announced = False
        assert self.proc.stderr is not None
        # Read to the end even after the port is known, so the server never
        # blocks on a full pipe.
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.log.append(line)
            if not announced and "listening" in line:
                match = _PORT.search(line)
                if match:
                    announced = True
                    self._port.put(int(match.group(1)))
            for listener, pattern in _LOGGED_PORTS.items():
                found = pattern.search(line)
                if found and listener not in self._logged_ports:
                    with self._log_changed:
                        self._logged_ports[listener] = int(found.group(1))
                        self._log_changed.notify_all()
        self._port.put(None)
        with self._log_changed:
            self._log_ended = True
            self._log_changed.notify_all()

    def _logged_port(self, listener: str, timeout: float) -> int:
        """The port the server logged for `listener` (a _LOGGED_PORTS key)."""
        with self._log_changed:
            self._log_changed.wait_for(
                lambda: listener in self._logged_ports or self._log_ended, timeout
            )
            port = self._logged_ports.get(listener)
        if port is None:
            raise AssertionError(f"{self.args} logged no {listener}_port:\n{self.log_text()}")
        return port

    def metrics_url(self, timeout: float = WAIT) -> str:
        """`http://127.0.0.1:<port>/metrics` of a server started with
        `--metrics-listen 127.0.0.1:0`, from the port it logged."""
        return f"http://127.0.0.1:{self._logged_port('metrics', timeout)}/metrics"

    def admin_target(self, node: int = 0, timeout: float = WAIT) -> str:
        """`127.0.0.1:<port>` of the admin listener of a server started with
        `admin_flags(...)`, from the port it logged. (`node` is for a
        cluster's sake: one server is every node.)"""
        return f"127.0.0.1:{self._logged_port('admin', timeout)}"

    def log_text(self) -> str:
        return "\n".join(self.log)

    def sigterm(self) -> None:
        """Asks the server to shut down (SIGTERM to the PID this started)."""
        if self.proc.poll() is None:
            self.proc.terminate()

    def wait_exit(self, timeout: float = STOP_WAIT) -> Optional[int]:
        """The exit code, or None if it is still running after `timeout`."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> Optional[int]:
        """SIGTERM, then SIGKILL if it is still running after STOP_WAIT.

        Returns the exit code of a clean exit, None if it had to be killed.
        """
        code: Optional[int] = None
        if self.proc.poll() is None:
            self.sigterm()
            code = self.wait_exit(STOP_WAIT)
            if code is None:
                self.proc.kill()
                self.proc.wait(timeout=STOP_WAIT)
        else:
            code = self.proc.returncode
        self._reader.join(timeout=WAIT)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        ChatServer.running.discard(self)
        return code


# ---------------------------------------------------------------------------
# A cluster: nodes on one Redis the test started (CHAT_INTEROP_CLUSTER=N)
# ---------------------------------------------------------------------------

# How many nodes each test's server is (0: one embedded server).
CLUSTER_NODES = int(os.environ.get("CHAT_INTEROP_CLUSTER") or 0)
_PREFIXES = itertools.count()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server on a free loopback port, without persistence; stopped
    (by the PID this started) with `stop()`."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--logfile", ""],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._pongs, what=f"redis-server on port {self.port} answering PING")

    def _pongs(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(7) == b"+PONG\r\n"
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=STOP_WAIT)


class ChatCluster:
    """`nodes` chat-server processes joined into one cluster on a Redis this
    starts. Looks like a ChatServer to the tests: `.target` is the first
    node's, `.targets` every node's; signals and waits apply to every node."""

    def __init__(self, binary: Path, flags: tuple[str, ...], nodes: int):
        self.redis = RedisServer()
        prefix = f"py{os.getpid()}-{next(_PREFIXES)}"
        cluster = ("--redis", self.redis.url, "--redis-prefix", prefix)
        self.nodes: list[ChatServer] = []
        try:
            for _ in range(nodes):
                self.nodes.append(ChatServer(binary, (*flags, *cluster)))
        except Exception:
            self.stop()
            raise
        self.args = self.nodes[0].args
        self.target = self.nodes[0].target
        self.targets = [node.target for node in self.nodes]

    @property
    def pid(self) -> int:
        return self.nodes[0].pid

    def metrics_url(self, timeout: float = WAIT) -> str:
        """The first node's metrics endpoint (each node serves its own)."""
        return self.nodes[0].metrics_url(timeout)

    def admin_target(self, node: int = 0, timeout: float = WAIT) -> str:
        """The admin listener of node `node` (modulo the number of nodes);
        each node serves its own, and every action on one reaches users
        and groups on every node."""
        return self.nodes[node % len(self.nodes)].admin_target(timeout=timeout)

    def log_text(self) -> str:
        return "\n".join(f"[node {i}] {node.log_text()}" for i, node in enumerate(self.nodes))

    def sigterm(self) -> None:
        for node in self.nodes:
            node.sigterm()

    def wait_exit(self, timeout: float = STOP_WAIT) -> Optional[int]:
        codes = {node.wait_exit(timeout) for node in self.nodes}
        return codes.pop() if len(codes) == 1 else None

    def stop(self) -> Optional[int]:
        codes = {node.stop() for node in self.nodes}
        self.redis.stop()
        return codes.pop() if len(codes) == 1 else None


# ---------------------------------------------------------------------------
# Channels and waiting
# ---------------------------------------------------------------------------


def new_channel(target: str) -> grpc.Channel:
    """A channel with its own HTTP/2 connection (made on the first call).

    (No channel_ready_future: its connectivity polling makes close() take
    200 ms.)
    """
    return grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])


def wait_until(condition: Callable[[], Any], timeout: float = WAIT, what: str = "condition") -> Any:
    """Polls `condition` until it returns a true value, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not true within {timeout}s (last: {value!r})")
        time.sleep(0.01)


def rpc_error(code: grpc.StatusCode, call: Callable[..., Any], *args: Any, **kwargs: Any) -> grpc.RpcError:
    """Calls `call` and asserts that it fails with `code`; returns the error."""
    try:
        result = call(*args, **kwargs)
    except grpc.RpcError as error:
        assert error.code() == code, (
            f"expected {code.name}, got {error.code().name}: {error.details()}"
        )
        return error
    raise AssertionError(f"expected {code.name}, got OK: {result!r}")


# ---------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------


class End(NamedTuple):
    """How a stream ended: its status."""

    code: grpc.StatusCode
    details: Optional[str]


class StreamReader:
    """A server-streaming call, read on a background thread.

    Every response is put on a queue as it arrives, and finally an `End`
    with the call's status, so a test can wait for the next event with a
    timeout. With `pause_after_first`, the thread reads the first response
    and then stops reading until `resume()`: a client that reads too slowly.
    """

    def __init__(self, call: Any, name: str, pause_after_first: bool = False):
        self.name = name
        self._call = call
        self._events: "queue.Queue[Any]" = queue.Queue()
        self._resume = threading.Event()
        if not pause_after_first:
            self._resume.set()
        self._thread = threading.Thread(target=self._read, name=f"stream-{name}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            first = True
            for response in self._call:
                self._events.put(response)
                if first:
                    first = False
                    self._resume.wait()
            self._events.put(End(self._call.code(), self._call.details()))
        except grpc.RpcError as error:
            self._events.put(End(error.code(), error.details()))

    def resume(self) -> None:
        """Starts reading again after `pause_after_first`."""
        self._resume.set()

    def cancel(self) -> None:
        """Cancels the call and stops the reader."""
        self._resume.set()
        self._call.cancel()
        self._thread.join(timeout=WAIT)

    def next_event(self, timeout: float = WAIT) -> Any:
        """The next response, or the End of the stream."""
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.name}: nothing arrived within {timeout}s") from None

    def end(self, timeout: float = WAIT) -> End:
        """Waits for the stream to end, skipping responses; its status."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name}: stream still open after {timeout}s")
            event = self.next_event(left)
            if isinstance(event, End):
                return event


class Inbox(StreamReader):
    """One Connect stream (see StreamReader), with helpers for its events."""

    def __init__(
        self,
        channel: grpc.Channel,
        username: str,
        pause_after_first: bool = False,
        resume: Optional[chat_pb2.ResumeRequest] = None,
    ):
        self.username = username
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        # Without `resume` the request is the old one: the field is unset.
        request = chat_pb2.ConnectRequest(username=username)
        if resume is not None:
            request.resume.CopyFrom(resume)
        call = stub.Connect(request)
        super().__init__(call, username, pause_after_first)

    def connected(self, timeout: float = WAIT) -> chat_pb2.Connected:
        """Waits for the first event, which must be `connected`."""
        event = self.next_event(timeout)
        if isinstance(event, End):
            raise AssertionError(f"Connect {self.username!r} ended: {event.code.name} {event.details}")
        assert event.WhichOneof("event") == "connected", f"first event is not connected: {event}"
        return event.connected

    def refused(self, timeout: float = WAIT) -> End:
        """Waits for a Connect that fails before `connected`; its status."""
        event = self.next_event(timeout)
        assert isinstance(event, End), f"Connect {self.username!r} was not refused: {event}"
        return event

    def delivery(self, timeout: float = WAIT) -> list:
        """The messages of the next event, which must be a delivery."""
        event = self.next_event(timeout)
        if isinstance(event, End):
            raise AssertionError(
                f"{self.username}: stream ended ({event.code.name} {event.details}) "
                "while a delivery was expected"
            )
        assert event.WhichOneof("event") == "delivery", f"expected a delivery: {event}"
        messages = list(event.delivery.messages)
        assert 1 <= len(messages) <= 256, f"a delivery of {len(messages)} messages"
        return messages

    def receive(self, count: int, timeout: float = WAIT) -> list:
        """Exactly `count` messages, across as many deliveries as it takes."""
        deadline = time.monotonic() + timeout
        messages: list = []
        while len(messages) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"{self.username}: {len(messages)} of {count} messages within {timeout}s"
                )
            messages.extend(self.delivery(left))
        assert len(messages) == count, (
            f"{self.username}: expected {count} messages, got {len(messages)}: "
            f"{[m.text[:20] for m in messages]}"
        )
        return messages


# ---------------------------------------------------------------------------
# Unary calls
# ---------------------------------------------------------------------------


class Client:
    """Calls the unary RPCs with one `authorization` header value (None: no
    header at all). Failures raise grpc.RpcError."""

    def __init__(self, channel: grpc.Channel, authorization: Optional[str]):
        self.stub = chat_pb2_grpc.ChatServiceStub(channel)
        self.metadata = () if authorization is None else (("authorization", authorization),)

    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        return method(request, metadata=self.metadata, timeout=WAIT)

    def create(self, name: str) -> chat_pb2.CreateGroupChatResponse:
        return self._call(self.stub.CreateGroupChat, chat_pb2.CreateGroupChatRequest(name=name))

    def join(self, name: str) -> chat_pb2.JoinGroupChatResponse:
        return self._call(self.stub.JoinGroupChat, chat_pb2.JoinGroupChatRequest(name=name))

    def leave(self, name: str) -> chat_pb2.LeaveGroupChatResponse:
        return self._call(self.stub.LeaveGroupChat, chat_pb2.LeaveGroupChatRequest(name=name))

    def send(self, recipient: str, text: str) -> chat_pb2.SendMessageResponse:
        return self._call(
            self.stub.SendMessage, chat_pb2.SendMessageRequest(recipient=recipient, text=text)
        )

    def history(
        self, group: str, after_id: int = 0, before_id: int = 0, limit: int = 0
    ) -> chat_pb2.GetHistoryResponse:
        return self._call(
            self.stub.GetHistory,
            chat_pb2.GetHistoryRequest(
                group=group, after_id=after_id, before_id=before_id, limit=limit
            ),
        )

    def channels(self) -> list:
        """ListChannels: the Channel messages."""
        return list(self._call(self.stub.ListChannels, chat_pb2.ListChannelsRequest()).channels)

    def rows(self) -> list:
        """ListChannels as (name, type, member_count, joined) tuples."""
        return [(c.name, c.type, c.member_count, c.joined) for c in self.channels()]

    def names(self) -> list:
        return [c.name for c in self.channels()]


class User(Client):
    """A connected user: its Connect stream plus a client that calls as it.
    `connected` is the stream's first event (resume token, epoch, resume
    status)."""

    def __init__(self, channel: grpc.Channel, inbox: Inbox, connected: chat_pb2.Connected):
        super().__init__(channel, inbox.username)
        self.channel = channel
        self.name = inbox.username
        self.inbox = inbox
        self.connected = connected

    def resume_request(self, after_id: int) -> chat_pb2.ResumeRequest:
        """A request to resume this user's session, having received every
        message up to `after_id`."""
        return chat_pb2.ResumeRequest(token=self.connected.resume_token, after_id=after_id)

    def receive(self, count: int, timeout: float = WAIT) -> list:
        return self.inbox.receive(count, timeout)

    def texts(self, count: int, timeout: float = WAIT) -> list:
        return [m.text for m in self.inbox.receive(count, timeout)]

    def disconnect(self) -> None:
        self.inbox.cancel()


class Chat:
    """Everything one test opened against one server, closed by `close()`.

    Users share one channel (one HTTP/2 connection) unless asked for their
    own.
    """

    def __init__(self, target: str, targets: Optional[list[str]] = None):
        self.target = target
        # A cluster's nodes: consecutive streams and clients take them in
        # turn, so users and their calls land on different nodes.
        self.targets = targets or [target]
        self._turn = itertools.count()
        self._channels: list = []
        self._streams: list = []
        self.channel = self.new_channel(target)
        self._shared = [self.channel] + [self.new_channel(t) for t in self.targets[1:]]

    def new_channel(self, target: Optional[str] = None) -> grpc.Channel:
        channel = new_channel(target or self._next_target())
        self._channels.append(channel)
        return channel

    def _next(self) -> int:
        return next(self._turn) % len(self.targets)

    def _next_target(self) -> str:
        return self.targets[self._next()]

    def _next_shared(self) -> grpc.Channel:
        return self._shared[self._next()]

    def node_channel(self, node: int) -> grpc.Channel:
        """The shared channel to node `node` of a cluster (modulo the number
        of nodes: on one server, always its channel)."""
        return self._shared[node % len(self._shared)]

    def open(
        self,
        username: str,
        channel: Optional[grpc.Channel] = None,
        pause_after_first: bool = False,
        resume: Optional[chat_pb2.ResumeRequest] = None,
    ) -> Inbox:
        """Opens a Connect stream without waiting for anything."""
        inbox = Inbox(channel or self._next_shared(), username, pause_after_first, resume)
        self._streams.append(inbox)
        return inbox

    def connect(
        self,
        username: str,
        own_channel: bool = False,
        pause_after_first: bool = False,
        resume: Optional[chat_pb2.ResumeRequest] = None,
        node: Optional[int] = None,
    ) -> User:
        """Connects `username` and waits for `connected` (through cluster
        node `node` when given)."""
        if own_channel:
            channel = self.new_channel()
        elif node is not None:
            channel = self.node_channel(node)
        else:
            channel = self._next_shared()
        inbox = self.open(username, channel, pause_after_first, resume)
        connected = inbox.connected()
        assert connected.username == username
        if resume is None:
            # An old client's request: nothing asked, nothing resumed.
            assert connected.resume_status == chat_pb2.RESUME_STATUS_UNSPECIFIED, connected
        return User(channel, inbox, connected)

    def reconnect(
        self,
        username: str,
        resume: Optional[chat_pb2.ResumeRequest] = None,
        node: Optional[int] = None,
        timeout: float = WAIT,
    ) -> User:
        """Connects `username` again once the server has seen its last
        stream end: a Connect refused with ALREADY_EXISTS (the old stream
        not ended yet) changes nothing, so it is tried again until
        `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            channel = self.node_channel(node) if node is not None else self._next_shared()
            inbox = self.open(username, channel, resume=resume)
            event = inbox.next_event(timeout)
            if isinstance(event, End):
                if event.code == Code.ALREADY_EXISTS and time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
                raise AssertionError(
                    f"Connect {username!r} ended: {event.code.name} {event.details}"
                )
            assert event.WhichOneof("event") == "connected", f"first event: {event}"
            assert event.connected.username == username
            return User(channel, inbox, event.connected)

    def refused(self, username: str, resume: Optional[chat_pb2.ResumeRequest] = None) -> End:
        """The status a Connect for `username` is refused with."""
        inbox = self.open(username, resume=resume)
        return inbox.refused()

    def stream(self, call: Any, name: str) -> StreamReader:
        """Reads any server-streaming `call` in the background."""
        reader = StreamReader(call, name)
        self._streams.append(reader)
        return reader

    def client(self, authorization: Optional[str]) -> Client:
        """A client sending this `authorization` header (None: none)."""
        return Client(self._next_shared(), authorization)

    def close(self) -> None:
        for inbox in self._streams:
            inbox.cancel()
        for channel in self._channels:
            channel.close()


# ---------------------------------------------------------------------------
# The operator's API (chat.admin.v1.AdminService)
# ---------------------------------------------------------------------------


class AdminSecret(NamedTuple):
    """The admin listener's secret and the file the server reads it from."""

    secret: str
    path: Path

    @property
    def authorization(self) -> str:
        """The `authorization` header value every admin call carries."""
        return f"Bearer {self.secret}"


def write_admin_secret(directory: Path) -> AdminSecret:
    """A fresh random secret (64 hex characters, over the 32 bytes the
    server asks for) in `directory`/admin-token, readable by its owner
    only, with one trailing newline as an editor leaves it (which the
    server ignores)."""
    secret = secrets.token_hex(32)
    path = directory / "admin-token"
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return AdminSecret(secret, path)


def admin_flags(secret: AdminSecret) -> tuple[str, ...]:
    """The flags of an admin listener on an ephemeral 127.0.0.1 port taking
    `secret` (`ChatServer.admin_target` reads its port from the log)."""
    return ("--admin-listen", "127.0.0.1:0", "--admin-token-file", str(secret.path))


class Admin:
    """Calls chat.admin.v1.AdminService on one admin listener with one
    `authorization` header value (None: no header at all). Failures raise
    grpc.RpcError."""

    def __init__(self, channel: grpc.Channel, authorization: Optional[str]):
        self.stub = admin_pb2_grpc.AdminServiceStub(channel)
        self.metadata = () if authorization is None else (("authorization", authorization),)

    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        return method(request, metadata=self.metadata, timeout=WAIT)

    def disconnect(
        self, username: str, reason: str = "", ban_secs: int = 0
    ) -> admin_pb2.DisconnectUserResponse:
        return self._call(
            self.stub.DisconnectUser,
            admin_pb2.DisconnectUserRequest(username=username, reason=reason, ban_secs=ban_secs),
        )

    def remove(self, group: str, username: str) -> admin_pb2.RemoveGroupMemberResponse:
        return self._call(
            self.stub.RemoveGroupMember,
            admin_pb2.RemoveGroupMemberRequest(group=group, username=username),
        )

    def delete(self, group: str) -> int:
        """DeleteGroup: how many members were removed."""
        return self._call(self.stub.DeleteGroup, admin_pb2.DeleteGroupRequest(group=group)).removed

    def publish(self, recipient: str, text: str, sender: str = "") -> admin_pb2.PublishResponse:
        return self._call(
            self.stub.Publish,
            admin_pb2.PublishRequest(recipient=recipient, text=text, sender=sender),
        )

    def users(self, limit: int = 0, page_token: str = "") -> admin_pb2.ListUsersResponse:
        return self._call(
            self.stub.ListUsers, admin_pb2.ListUsersRequest(limit=limit, page_token=page_token)
        )

    def all_users(self, limit: int) -> list:
        """Every page of ListUsers, `limit` at a time (the responses)."""
        pages, token = [], ""
        while True:
            page = self.users(limit, token)
            pages.append(page)
            token = page.next_page_token
            if not token:
                return pages

    def usernames(self) -> list:
        """The connected users' names (one page of up to 1000)."""
        return [user.username for user in self.users(1000).users]
