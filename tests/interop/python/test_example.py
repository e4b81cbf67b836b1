"""The client example the README quotes runs against the real server."""

from example import run_example
from harness import wait_until


def test_the_readme_example_runs_and_gets_what_it_sent(target, chat):
    result = run_example(target)

    assert result["connected_as"] == "ada"
    assert result["received"] == {
        "id": result["sent_id"],
        "sender": "ada",
        "recipient": "lab",
        "text": "Hello, lab!",
    }
    assert result["channels"] == [
        ("ada", "CHANNEL_TYPE_USER", 0, False),
        ("lab", "CHANNEL_TYPE_GROUP", 1, True),
    ]

    # The example disconnected: both names are free again.
    bob = chat.connect("bob")
    wait_until(lambda: bob.names() == ["bob"], what="ada and lab gone")
    chat.connect("ada")
    bob.create("lab")
