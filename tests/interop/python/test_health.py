"""The standard grpc.health.v1.Health service."""

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness import STOP_WAIT, WAIT, Code, End, rpc_error

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICES = ["", "chat.v1.ChatService"]


def check(chat, service):
    stub = health_pb2_grpc.HealthStub(chat.channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=WAIT)


@pytest.mark.parametrize("service", SERVICES, ids=["server", "ChatService"])
def test_check_reports_serving(chat, service):
    assert check(chat, service).status == SERVING


def test_check_of_an_unknown_service_fails_with_not_found(chat):
    rpc_error(Code.NOT_FOUND, check, chat, "no.such.Service")


def test_check_needs_no_authorization(chat):
    # No user is connected and no header is sent.
    assert check(chat, "chat.v1.ChatService").status == SERVING


def test_watch_reports_serving_then_not_serving_on_sigterm_then_ends(start_server, chat_on):
    server = start_server()
    chat = chat_on(server)
    stub = health_pb2_grpc.HealthStub(chat.channel)
    watches = {
        service: chat.stream(
            stub.Watch(health_pb2.HealthCheckRequest(service=service)), f"Watch({service!r})"
        )
        for service in SERVICES
    }
    for watch in watches.values():
        first = watch.next_event()
        assert not isinstance(first, End), f"{watch.name} ended: {first}"
        assert first.status == SERVING

    server.sigterm()
    for watch in watches.values():
        event = watch.next_event(STOP_WAIT)
        # A repeated SERVING is harmless; NOT_SERVING must follow.
        while not isinstance(event, End) and event.status == SERVING:
            event = watch.next_event(STOP_WAIT)
        assert not isinstance(event, End), f"{watch.name} ended before NOT_SERVING: {event}"
        assert event.status == NOT_SERVING
        watch.end(STOP_WAIT)
    assert server.wait_exit(STOP_WAIT) == 0


def test_watch_of_an_unknown_service_reports_service_unknown(chat):
    # The standard: Watch does not fail for an unknown service, it streams
    # SERVICE_UNKNOWN (and would follow the service if it appeared).
    stub = health_pb2_grpc.HealthStub(chat.channel)
    watch = chat.stream(
        stub.Watch(health_pb2.HealthCheckRequest(service="no.such.Service")), "Watch(unknown)"
    )
    event = watch.next_event()
    assert not isinstance(event, End), f"Watch ended: {event}"
    assert event.status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
