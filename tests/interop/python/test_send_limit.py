"""Per-user send limits (`--send-rate`, `--send-burst`): a SendMessage over
the limit is refused RESOURCE_EXHAUSTED with the wait three ways, as a
client library reads them: in the message ("sending too fast: retry in N
ms"), in the response headers (`retry-after-ms: N`) and as the rich error
model's `google.rpc.RetryInfo` in `grpc-status-details-bin`, decoded here
by grpcio-status. A refused message goes nowhere; other users keep their
own budgets.

On a cluster the users' calls take the nodes in turn; the budget is the
user's wherever it sends from.
"""

from __future__ import annotations

import re
import time
import urllib.request

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status
from prometheus_client.parser import text_string_to_metric_families

from harness import WAIT, Code, rpc_error

RATE = 5
BURST = 5
# The longest wait a refusal may announce: one message's share of a second.
MOST_WAIT_MS = 1000 // RATE
_TOO_FAST = re.compile(r"sending too fast: retry in (\d+) ms")


@pytest.fixture
def server(start_server):
    return start_server(
        "--send-rate", str(RATE), "--send-burst", str(BURST), "--metrics-listen", "127.0.0.1:0"
    )


def rate_limited_total(server) -> float:
    """chat_send_rate_limited_total, summed over a cluster's nodes."""
    total = 0.0
    for node in getattr(server, "nodes", [server]):
        with urllib.request.urlopen(node.metrics_url(), timeout=WAIT) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            if family.name == "chat_send_rate_limited":
                total += sum(sample.value for sample in family.samples)
    return total


@pytest.fixture
def chat(chat_on, server):
    return chat_on(server)


def retry_after_ms(error: grpc.RpcError) -> int:
    """Checks that a refusal is a send over the limit, the same wait in
    its message, its `retry-after-ms` header and its RetryInfo; the wait."""
    assert error.code() == Code.RESOURCE_EXHAUSTED, error
    found = _TOO_FAST.fullmatch(error.details() or "")
    assert found, f"not a send-limit refusal: {error.details()!r}"
    millis = int(found.group(1))
    assert 0 < millis <= MOST_WAIT_MS, millis

    headers = dict(error.initial_metadata())
    assert headers.get("retry-after-ms") == str(millis), headers
    # Trailing metadata is the status's only (grpcio's server sends no
    # custom trailers).
    assert "retry-after-ms" not in dict(error.trailing_metadata())

    status = rpc_status.from_call(error)
    assert status is not None, "no grpc-status-details-bin"
    assert (status.code, status.message) == (code_pb2.RESOURCE_EXHAUSTED, error.details())
    assert len(status.details) == 1, status
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry), f"not a RetryInfo: {status.details[0].type_url}"
    # The same wait, within a millisecond of rounding.
    assert abs(retry.retry_delay.ToMilliseconds() - millis) <= 1, (retry, millis)
    return millis


def test_a_burst_is_accepted_and_the_next_send_refused_with_its_wait(chat, server):
    alice = chat.connect("alice")
    bob = chat.connect("bob")
    sent = [alice.send("bob", f"quick {i}").message_id for i in range(BURST)]
    first = retry_after_ms(rpc_error(Code.RESOURCE_EXHAUSTED, alice.send, "bob", "one too many"))
    # Refused again at once, with no longer a wait: a refusal spends
    # nothing.
    again = retry_after_ms(rpc_error(Code.RESOURCE_EXHAUSTED, alice.send, "bob", "and another"))
    assert again <= first

    # The refused messages went nowhere: bob gets the burst, then the marker
    # he sends himself.
    marker = bob.send("bob", "marker").message_id
    assert [m.id for m in bob.receive(BURST + 1)] == sent + [marker]
    assert rate_limited_total(server) == 2


def test_after_the_announced_wait_a_send_is_accepted(chat):
    alice = chat.connect("alice")
    bob = chat.connect("bob")
    for i in range(BURST):
        alice.send("bob", f"quick {i}")
    wait = retry_after_ms(rpc_error(Code.RESOURCE_EXHAUSTED, alice.send, "bob", "too fast"))
    # Honouring the wait the server announced is what a client does with
    # it: no synchronisation in this sleep.
    time.sleep(wait / 1000)
    later = alice.send("bob", "later").message_id
    assert [m.text for m in bob.receive(BURST + 1)][-1] == "later"
    assert later > 0


def test_another_user_keeps_its_own_budget(chat):
    alice = chat.connect("alice")
    bob = chat.connect("bob")
    carol = chat.connect("carol")
    alice.create("room")
    bob.join("room")
    carol.join("room")
    for i in range(BURST):
        alice.send("room", f"alice {i}")
    retry_after_ms(rpc_error(Code.RESOURCE_EXHAUSTED, alice.send, "room", "too fast"))
    # bob spends his whole burst while alice is refused, to a group and
    # directly.
    bob_sent = [bob.send("room", f"bob {i}").message_id for i in range(BURST - 1)]
    bob_sent.append(bob.send("carol", "bob direct").message_id)
    retry_after_ms(rpc_error(Code.RESOURCE_EXHAUSTED, bob.send, "carol", "bob too fast"))
    texts = [m.text for m in carol.receive(2 * BURST)]
    assert texts == [f"alice {i}" for i in range(BURST)] + [
        f"bob {i}" for i in range(BURST - 1)
    ] + ["bob direct"]
    assert "too fast" not in " ".join(texts)
    assert [m.text for m in carol.history("room").messages][-1] == f"bob {BURST - 2}"
