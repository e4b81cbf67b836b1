"""Token mode over TLS from Python: the README's secure example, tokens
minted by PyJWT refused with their own UNAUTHENTICATED message, another
user's token at Connect, and mutual TLS. Certificates are made at test time
with the openssl command; no key is committed."""

import subprocess
import time

import grpc
import jwt
import pytest

from chat.v1 import chat_pb2, chat_pb2_grpc
from example_secure import mint_token, run_secure_example
from harness import Code

SECRET = b"python-interop-secret-of-32-bytes!!"


def _openssl(cwd, *args):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _issue(cwd, name, cn, ca=None):
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-keyout", f"{name}.key"]
    if ca is None:
        _openssl(cwd, "req", "-x509", "-days", "2", "-subj", f"/CN={cn}",
                 "-out", f"{name}.pem", *key)
        return
    _openssl(cwd, "req", "-subj", f"/CN={cn}", "-out", f"{name}.csr", *key)
    (cwd / f"{name}.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    _openssl(cwd, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem",
             "-CAkey", f"{ca}.key", "-CAcreateserial", "-days", "2",
             "-extfile", f"{name}.ext", "-out", f"{name}.pem")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate."""
    cwd = tmp_path_factory.mktemp("certs")
    _issue(cwd, "ca", "python test CA")
    _issue(cwd, "server", "localhost", ca="ca")
    _issue(cwd, "client", "python test client", ca="ca")
    return cwd


@pytest.fixture
def secure_server(start_server, certs, tmp_path):
    """A server in token mode over TLS (no client certificates asked)."""
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(SECRET + b"\n")
    return start_server(
        "--auth-token-secret-file", str(secret_file),
        "--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"),
    )


def _stub(server, certs, client_cert=False):
    ca = (certs / "ca.pem").read_bytes()
    if client_cert:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca,
            private_key=(certs / "client.key").read_bytes(),
            certificate_chain=(certs / "client.pem").read_bytes(),
        )
    else:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca)
    channel = grpc.secure_channel(server.target, credentials)
    return channel, chat_pb2_grpc.ChatServiceStub(channel)


def test_the_readme_secure_example_runs_over_tls_in_token_mode(secure_server, certs):
    token = mint_token(SECRET, "alice")
    result = run_secure_example(secure_server.target, (certs / "ca.pem").read_bytes(), token)
    assert result["connected_as"] == "alice"
    assert result["received"] == {
        "id": result["sent_id"], "sender": "alice", "text": "Hello over TLS",
    }


def _refusal(stub, token):
    metadata = [("authorization", f"Bearer {token}")]
    with pytest.raises(grpc.RpcError) as error:
        stub.ListChannels(chat_pb2.ListChannelsRequest(), metadata=metadata, timeout=5)
    return error.value.code(), error.value.details()


# The HS512 token is short-keyed on purpose: it is refused for its alg.
@pytest.mark.filterwarnings("ignore:The HMAC key")
def test_tokens_minted_by_pyjwt_are_refused_with_their_own_message(secure_server, certs):
    channel, stub = _stub(secure_server, certs)
    now = int(time.time())
    cases = [
        (jwt.encode({"sub": "alice", "exp": now - 120}, SECRET, algorithm="HS256"),
         "token expired"),
        (jwt.encode({"sub": "alice", "exp": str(now + 60)}, SECRET, algorithm="HS256"),
         "token claim exp must be a number"),
        (jwt.encode({"sub": "alice", "exp": now + 60}, SECRET, algorithm="HS512"),
         "token algorithm must be HS256"),
        (jwt.encode({"sub": "alice", "exp": now + 60}, None, algorithm="none"),
         "token algorithm must be HS256"),
        (jwt.encode({"sub": "alice", "exp": now + 60}, b"x" * 32, algorithm="HS256"),
         "token signature does not verify"),
        (jwt.encode({"sub": "alice", "exp": now + 60, "nbf": now + 600}, SECRET,
                    algorithm="HS256"),
         "token not yet valid"),
        (jwt.encode({"exp": now + 60}, SECRET, algorithm="HS256"), "token has no sub claim"),
    ]
    try:
        for token, message in cases:
            assert _refusal(stub, token) == (Code.UNAUTHENTICATED, message)
        # A valid token for a user who is not connected: the usual refusal.
        code, _ = _refusal(stub, mint_token(SECRET, "ghost"))
        assert code == Code.UNAUTHENTICATED
    finally:
        channel.close()


def test_connect_with_another_users_token_is_permission_denied(secure_server, certs):
    channel, stub = _stub(secure_server, certs)
    try:
        metadata = [("authorization", f"Bearer {mint_token(SECRET, 'bob')}")]
        call = stub.Connect(chat_pb2.ConnectRequest(username="alice"), metadata=metadata,
                            timeout=5)
        with pytest.raises(grpc.RpcError) as error:
            next(call)
        assert error.value.code() == Code.PERMISSION_DENIED
    finally:
        channel.close()


def test_a_resume_in_token_mode_needs_the_users_token_too(secure_server, certs):
    channel, stub = _stub(secure_server, certs)
    as_alice = [("authorization", f"Bearer {mint_token(SECRET, 'alice')}")]
    as_bob = [("authorization", f"Bearer {mint_token(SECRET, 'bob')}")]

    def connect(metadata, resume=None):
        request = chat_pb2.ConnectRequest(username="alice", resume=resume)
        call = stub.Connect(request, metadata=metadata, timeout=10)
        return call, next(call).connected

    try:
        call, first = connect(as_alice)
        sent = stub.SendMessage(
            chat_pb2.SendMessageRequest(recipient="alice", text="to myself"),
            metadata=as_alice,
            timeout=5,
        )
        call.cancel()
        resume = chat_pb2.ResumeRequest(token=first.resume_token, after_id=0)

        # The resume token is no credential: bob's JWT is refused, which
        # leaves alice's session resumable.
        with pytest.raises(grpc.RpcError) as error:
            connect(as_bob, resume)
        assert error.value.code() == Code.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as error:
            connect([], resume)
        assert error.value.code() == Code.UNAUTHENTICATED

        deadline = time.monotonic() + 5
        while True:
            try:
                call, resumed = connect(as_alice, resume)
                break
            except grpc.RpcError as error:
                # The server has not seen the first stream end yet.
                if error.code() != Code.ALREADY_EXISTS or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        assert resumed.resume_status == chat_pb2.RESUME_STATUS_RESUMED
        assert [m.id for m in next(call).delivery.messages] == [sent.message_id]
        call.cancel()
    finally:
        channel.close()


def _plain_list_status(server, certs, client_cert):
    """The status of a ListChannels without a token over TLS."""
    channel, stub = _stub(server, certs, client_cert)
    try:
        with pytest.raises(grpc.RpcError) as error:
            stub.ListChannels(chat_pb2.ListChannelsRequest(), timeout=5)
        return error.value.code()
    finally:
        channel.close()


def test_mutual_tls_needs_a_client_certificate(start_server, certs):
    server = start_server(
        "--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"),
        "--tls-client-ca", str(certs / "ca.pem"),
    )
    # Plain mode: a call without a header is refused by the server, which
    # proves it got through TLS; without a certificate it never arrives.
    assert _plain_list_status(server, certs, client_cert=True) == Code.UNAUTHENTICATED
    assert _plain_list_status(server, certs, client_cert=False) == Code.UNAVAILABLE
