"""The metrics endpoint (`--metrics-listen`) as Prometheus tooling reads it:
a scrape parses with prometheus_client's text parser into the documented
families with the expected samples, and `promtool check metrics` (from
Debian's prometheus package, which scripts/install-deps.sh installs)
accepts it."""

import collections
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import WAIT, Code, rpc_error

SERVICE = "chat.v1.ChatService"


def scrape(server) -> str:
    with urllib.request.urlopen(server.metrics_url(), timeout=WAIT) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return response.read().decode("utf-8")


@pytest.fixture
def monitored(start_server, chat_on):
    """A server with metrics on, after a good send and a refused one."""
    server = start_server("--metrics-listen", "127.0.0.1:0")
    # Every call on the one node scraped: each cluster node counts its own.
    chat = chat_on(server.target)
    alice = chat.connect("alice")
    bob = chat.connect("bob")
    alice.send("bob", "hello")
    assert [m.text for m in bob.receive(1)] == ["hello"]
    rpc_error(Code.NOT_FOUND, alice.send, "nobody", "hello?")
    return server


def test_a_scrape_parses_with_prometheus_clients_parser(monitored):
    families = {family.name: family for family in text_string_to_metric_families(scrape(monitored))}
    kinds = {
        # The parser names a counter's family without its _total suffix.
        "grpc_server_started": "counter",
        "grpc_server_handled": "counter",
        "grpc_server_msg_received": "counter",
        "grpc_server_msg_sent": "counter",
        "grpc_server_handling_seconds": "histogram",
        "chat_connected_users": "gauge",
        "chat_groups": "gauge",
        "chat_group_memberships": "gauge",
        "chat_queued_messages": "gauge",
        "chat_queued_bytes": "gauge",
        "chat_history_messages": "gauge",
        "chat_history_bytes": "gauge",
        "chat_resume_attempts": "counter",
        "chat_connections": "counter",
        "chat_disconnects": "counter",
        "chat_messages": "counter",
        "chat_deliveries": "counter",
        "chat_delivery_writes": "counter",
        "chat_refusals": "counter",
        "chat_build_info": "gauge",
        "process_cpu_seconds": "counter",
        "process_resident_memory_bytes": "gauge",
        "process_open_fds": "gauge",
        "process_max_fds": "gauge",
        "process_start_time_seconds": "gauge",
    }
    assert {name: families[name].type for name in kinds if name in families} == kinds

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families.values()
        for sample in family.samples
    }

    def value(name, **labels):
        return samples[(name, tuple(sorted(labels.items())))]

    def send_handled(code):
        return value(
            "grpc_server_handled_total",
            grpc_type="unary",
            grpc_service=SERVICE,
            grpc_method="SendMessage",
            grpc_code=code,
        )

    assert send_handled("OK") == 1
    assert send_handled("NotFound") == 1
    assert send_handled("Unauthenticated") == 0
    # Every method by seventeen codes, from the first scrape: nine of the
    # chat service (GetHistory, ListGroupMembers and SendTyping included)
    # and five of the admin service, whether or not it is served.
    handled = collections.Counter(
        sample.labels["grpc_service"] for sample in families["grpc_server_handled"].samples
    )
    assert handled == {SERVICE: 9 * 17, "chat.admin.v1.AdminService": 5 * 17}
    assert value("chat_connected_users") == 2
    assert value("chat_connections_total") == 2
    assert value("chat_messages_total", kind="direct") == 1
    assert value("chat_messages_total", kind="group") == 0
    assert value("chat_deliveries_total") == 1
    assert value("chat_delivery_writes_total") == 1
    assert value("chat_refusals_total", code="NotFound") == 1
    # No group yet, and no Connect asked to resume.
    assert value("chat_history_messages") == 0
    assert value("chat_history_bytes") == 0
    for status in ("resumed", "gap", "unknown"):
        assert value("chat_resume_attempts_total", status=status) == 0
    count = value(
        "grpc_server_handling_seconds_count",
        grpc_type="unary",
        grpc_service=SERVICE,
        grpc_method="SendMessage",
    )
    assert count == 2
    assert value("process_resident_memory_bytes") > 0


def test_promtool_check_metrics_passes_on_a_scrape(monitored):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool is not installed: scripts/install-deps.sh promtool installs it "
            "(Debian package prometheus)",
            pytrace=False,
        )
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input=scrape(monitored),
        capture_output=True,
        text=True,
        timeout=4 * WAIT,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Lint findings are printed even when they do not fail the check.
    assert checked.stdout.strip() == "" and checked.stderr.strip() == "", (
        checked.stdout + checked.stderr
    )


def test_other_paths_are_not_found_and_other_methods_not_allowed(monitored):
    url = monitored.metrics_url()
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(url.replace("/metrics", "/other"), timeout=WAIT)
    assert missing.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as posted:
        urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=WAIT)
    assert posted.value.code == 405
    assert posted.value.headers["Allow"] == "GET"
