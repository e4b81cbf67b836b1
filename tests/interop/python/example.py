"""A minimal chat.v1 client in Python.

Connects as ada, creates the group "lab", sends it a message, reads that
message back from ada's inbox and lists the channels. (Its own names, so it
runs beside the README's `buf curl` lines and `chat-client chat --user alice`.)

From the repository root, with the stubs made into .gen/python as the README
shows:

    PYTHONPATH=.gen/python python tests/interop/python/example.py 127.0.0.1:13111

The stubs `chat.v1.chat_pb2` and `chat.v1.chat_pb2_grpc` must be on the
Python path (tests/interop/python/run.sh makes them in its own .gen/).
"""

import sys

import grpc

from chat.v1 import chat_pb2, chat_pb2_grpc


def run_example(target: str) -> dict:
    """Runs the example against the server at `target` (host:port)."""
    with grpc.insecure_channel(target) as channel:
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        # Every RPC but Connect names its caller in the authorization header.
        as_ada = [("authorization", "ada")]

        # Open ada's inbox. Its first event says she is registered; the
        # timeout bounds the whole stream.
        inbox = chat.Connect(chat_pb2.ConnectRequest(username="ada"), timeout=10)
        connected = next(inbox).connected

        chat.CreateGroupChat(
            chat_pb2.CreateGroupChatRequest(name="lab"), metadata=as_ada, timeout=5
        )
        sent = chat.SendMessage(
            chat_pb2.SendMessageRequest(recipient="lab", text="Hello, lab!"),
            metadata=as_ada,
            timeout=5,
        )

        # A group message reaches every member, the sender included.
        received = next(inbox).delivery.messages[0]

        channels = chat.ListChannels(
            chat_pb2.ListChannelsRequest(), metadata=as_ada, timeout=5
        ).channels

        # Disconnect: ada leaves every group; "lab", now empty, is deleted.
        inbox.cancel()

    return {
        "connected_as": connected.username,
        "sent_id": sent.message_id,
        "received": {
            "id": received.id,
            "sender": received.sender,
            "recipient": received.recipient,
            "text": received.text,
        },
        "channels": [
            (c.name, chat_pb2.ChannelType.Name(c.type), c.member_count, c.joined)
            for c in channels
        ],
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} HOST:PORT")
    print(run_example(sys.argv[1]))
