"""A chat.v1 client in Python for a server in token mode over TLS.

The backend that holds the token secret mints a short-lived HS256 token for
the user with PyJWT; the client trusts the server's CA, sends the token on
Connect and on every other call, and chats as the token's user.

    python example_secure.py 127.0.0.1:13111 ca.pem secret-file

The stubs must be on the Python path, as for example.py.
"""

import sys
import time

import grpc
import jwt  # PyJWT

from chat.v1 import chat_pb2, chat_pb2_grpc


def mint_token(secret: bytes, username: str, ttl_seconds: int = 300) -> str:
    """What the backend does: an HS256 token whose `sub` is the username."""
    now = int(time.time())
    claims = {"sub": username, "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, secret, algorithm="HS256")


def run_secure_example(target: str, ca_pem: bytes, token: str, username: str = "alice") -> dict:
    """Connects to `target` over TLS as the token's user and messages itself."""
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    with grpc.secure_channel(target, credentials) as channel:
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        # Connect and every other call carry the token; the username given
        # to Connect must be the token's `sub`.
        auth = [("authorization", f"Bearer {token}")]

        inbox = chat.Connect(
            chat_pb2.ConnectRequest(username=username), metadata=auth, timeout=10
        )
        connected = next(inbox).connected
        sent = chat.SendMessage(
            chat_pb2.SendMessageRequest(recipient=username, text="Hello over TLS"),
            metadata=auth,
            timeout=5,
        )
        received = next(inbox).delivery.messages[0]
        inbox.cancel()

    return {
        "connected_as": connected.username,
        "sent_id": sent.message_id,
        "received": {"id": received.id, "sender": received.sender, "text": received.text},
    }


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(f"usage: {sys.argv[0]} HOST:PORT CA_PEM SECRET_FILE")
    with open(sys.argv[2], "rb") as ca, open(sys.argv[3], "rb") as secret:
        ca_pem = ca.read()
        key = secret.read().splitlines()[0]
    print(run_secure_example(sys.argv[1], ca_pem, mint_token(key, "alice")))
