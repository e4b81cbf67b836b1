"""The reconnecting example the README quotes runs against the real server
(one node, or the first node of a cluster), as a function and as the script
the README runs, and loses nothing; the README quotes it exactly."""

import os
import subprocess
import sys

from harness import REPO, wait_until
from example_reconnect import run_example

EXAMPLE = REPO / "tests" / "interop" / "python" / "example_reconnect.py"


def test_the_reconnect_example_resumes_and_misses_nothing(target, chat):
    result = run_example(target)

    assert result["resume_status"] == "RESUME_STATUS_RESUMED"
    # "two" and "psst" were on lin's stream when it was cut (the replay,
    # or history for "two"); "three" was said while lin was away (history);
    # "four" came after lin was back (the stream). Each shown once, in order.
    assert result["den"] == ["one", "two", "three", "four"]
    assert result["from_max"] == ["psst"]
    assert result["refused_while_away"] == "NOT_FOUND"
    assert result["notices"] == []

    # The example disconnected both users; den went with its last member.
    bob = chat.connect("bob")
    wait_until(lambda: bob.names() == ["bob"], what="lin, max and den gone")


def test_the_readme_quotes_the_reconnect_example_as_the_tests_run_it():
    text = EXAMPLE.read_text()
    start = text.index("import random")
    end = text.index('if __name__ == "__main__":')
    snippet = text[start:end].rstrip() + "\n"
    readme = (REPO / "README.md").read_text()
    assert f"```python\n{snippet}```" in readme, (
        "README.md's reconnect example differs from tests/interop/python/example_reconnect.py"
    )


def test_the_reconnect_example_runs_as_a_script(target):
    env = {**os.environ, "PYTHONPATH": os.environ.get("CHAT_INTEROP_GEN", "")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), target],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "'resume_status': 'RESUME_STATUS_RESUMED'" in done.stdout, done.stdout
