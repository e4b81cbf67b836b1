"""Reconnecting without losing messages, in Python.

`Session` is the README's recipe: it keeps the resume token, the epoch, the
id of the last message its stream delivered and, per group, the last id it
showed; when a stream ends it connects again with `resume`, rejoins its
groups, fills each from GetHistory, and says "some messages may be missing"
wherever the server says something may be. `run_example` plays it out: lin's
stream is cut while max goes on talking, and lin comes back with every
message. (Its own names, so it runs beside the README's other examples.)

From the repository root, with the stubs made into .gen/python as the README
shows:

    PYTHONPATH=.gen/python python tests/interop/python/example_reconnect.py 127.0.0.1:13111

The stubs `chat.v1.chat_pb2` and `chat.v1.chat_pb2_grpc` must be on the
Python path (tests/interop/python/run.sh makes them in its own .gen/).
"""

import random
import sys
import time

import grpc

from chat.v1 import chat_pb2 as pb, chat_pb2_grpc

MISSING = "some messages may be missing"
# A refused Connect changes nothing, so after these it is tried again:
# ALREADY_EXISTS (the server has not seen the old stream end yet) and
# UNAVAILABLE (the server is shutting down or not up yet).
RETRY = (grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.UNAVAILABLE)


class Session:
    """One user's conversations, kept across Connect streams."""

    def __init__(self, channel: grpc.Channel, username: str):
        self.chat = chat_pb2_grpc.ChatServiceStub(channel)
        self.username = username
        self.auth = [("authorization", username)]
        self.stream = None
        self.token = ""  # Connected.resume_token of the last stream
        self.epoch = ""  # Connected.epoch: ids of another epoch mean nothing
        self.last_id = 0  # the last message id a stream delivered
        self.groups = {}  # group -> the last id shown in it (0: none)
        self.shown = {}  # message id -> message, all conversations
        self.notices = []  # (conversation, text)

    def call(self, method, request):
        return getattr(self.chat, method)(request, metadata=self.auth, timeout=5)

    def connect(self) -> str:
        """Opens a stream, resuming the last one if there was one."""
        request = pb.ConnectRequest(username=self.username)
        if self.token:
            request.resume.token = self.token
            request.resume.after_id = self.last_id
        for attempt in range(10):
            self.stream = self.chat.Connect(request, timeout=60)  # (bounds the example)
            try:
                connected = next(self.stream).connected
                break
            except grpc.RpcError as error:
                if error.code() not in RETRY or attempt == 9:
                    raise
                # Exponential backoff with jitter, at most 30 s.
                time.sleep(min(0.05 * 2**attempt, 30) * random.uniform(0.5, 1.5))
        status = connected.resume_status
        if connected.epoch != self.epoch:
            if self.epoch:
                # The server lost its state: read every group afresh.
                self.notices.append(("*", MISSING))
                self.groups = dict.fromkeys(self.groups, 0)
            self.last_id = 0
        elif self.token and status != pb.RESUME_STATUS_RESUMED:
            self.notices.append(("*", MISSING))  # GAP or UNKNOWN
        # RESUMED: the old stream's undelivered messages come first on this
        # one. Whatever the status, this stream has its own token.
        self.token, self.epoch = connected.resume_token, connected.epoch
        # Groups are not resumed: rejoin each, and fill what it said.
        for group in list(self.groups):
            self.rejoin(group)
        return pb.ResumeStatus.Name(status)

    def rejoin(self, group):
        """Joins `group`; its messages up to the join position come from
        its history, the later ones from the stream."""
        try:
            position = self.call("JoinGroupChat", pb.JoinGroupChatRequest(name=group)).position
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            # Everyone left while we were away: the group and its history
            # are gone.
            self.notices.append((group, "the group is gone"))
            del self.groups[group]
            return
        after = self.groups[group]
        if after == 0 and position > 0:
            # New here: the latest of what came before the join.
            page = self.call("GetHistory", pb.GetHistoryRequest(group=group, before_id=position + 1))
            for message in page.messages:
                self.show(message)
        while 0 < after < position:
            # Back: what the group said after the last message shown.
            request = pb.GetHistoryRequest(group=group, after_id=after, before_id=position + 1)
            page = self.call("GetHistory", request)
            if page.truncated:
                self.notices.append((group, MISSING))
            for message in page.messages:
                self.show(message)
            if not page.more:
                break
            after = page.messages[-1].id

    def create(self, group):
        self.call("CreateGroupChat", pb.CreateGroupChatRequest(name=group))
        self.groups[group] = 0

    def join(self, group):
        self.groups[group] = 0
        self.rejoin(group)

    def send(self, recipient, text):
        return self.call("SendMessage", pb.SendMessageRequest(recipient=recipient, text=text))

    def receive(self):
        """Shows the next delivery; when the stream ends with UNAVAILABLE
        (the server went away, or the connection dropped), connects again."""
        try:
            event = next(self.stream)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            self.connect()
            return
        for message in event.delivery.messages:
            self.last_id = message.id
            self.show(message)

    def show(self, message):
        if message.id in self.shown:
            return  # the replay and history may overlap
        self.shown[message.id] = message
        if message.recipient in self.groups:
            self.groups[message.recipient] = max(self.groups[message.recipient], message.id)

    def conversation(self, name):
        """The texts shown of a group, or from a user to us, in id order."""
        return [
            m.text
            for _, m in sorted(self.shown.items())
            if m.recipient == name or (m.sender == name and m.recipient == self.username)
        ]


def run_example(target: str) -> dict:
    """Runs the example against the server at `target` (host:port)."""
    with grpc.insecure_channel(target) as channel:
        lin, max_ = Session(channel, "lin"), Session(channel, "max")
        lin.connect()
        lin.create("den")
        max_.connect()
        max_.join("den")

        max_.send("den", "one")
        while "one" not in lin.conversation("den"):
            lin.receive()
        # These reach lin's stream, but lin never reads them from it: the
        # stream is cut (here by the client; to the server it is what a
        # dropped connection is).
        max_.send("lin", "psst")
        max_.send("den", "two")
        lin.stream.cancel()

        # While lin is away (max waits until the server has seen lin go, so
        # that every run shows the same): the group goes on without lin,
        # and a direct message to lin is refused.
        users = pb.ListChannelsRequest()
        while any(c.name == "lin" for c in max_.call("ListChannels", users).channels):
            time.sleep(0.01)
        max_.send("den", "three")
        try:
            max_.send("lin", "are you there?")
            refused = "OK"
        except grpc.RpcError as error:
            refused = error.code().name

        resume_status = lin.connect()
        max_.send("den", "four")
        while "four" not in lin.conversation("den"):
            lin.receive()
        lin.stream.cancel()
        max_.stream.cancel()

    return {
        "resume_status": resume_status,
        "den": lin.conversation("den"),
        "from_max": lin.conversation("max"),
        "refused_while_away": refused,
        "notices": lin.notices,
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} HOST:PORT")
    print(run_example(sys.argv[1]))
