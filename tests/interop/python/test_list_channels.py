"""ListChannels: users first, then groups, each sorted by name."""

from harness import GROUP, USER


def test_users_come_first_then_groups_each_sorted_by_name(chat):
    users = ["zed", "alice", "Bob", "_under", "0zero", "carol.c", "dave-d"]
    connected = {name: chat.connect(name) for name in users}
    zed, alice = connected["zed"], connected["alice"]
    # Group names that sort before every user name still come after them.
    zed.create("AAA")
    alice.create("mid")
    connected["Bob"].join("mid")
    alice.create("000")

    expected_users = [(name, USER, 0, False) for name in sorted(users)]
    assert alice.rows() == expected_users + [
        ("000", GROUP, 1, True),
        ("AAA", GROUP, 1, False),
        ("mid", GROUP, 2, True),
    ]
    assert zed.rows() == expected_users + [
        ("000", GROUP, 1, False),
        ("AAA", GROUP, 1, True),
        ("mid", GROUP, 2, False),
    ]
    assert connected["Bob"].rows()[-1] == ("mid", GROUP, 2, True)


def test_a_lone_user_sees_only_itself(chat):
    alice = chat.connect("alice")
    [channel] = alice.channels()
    assert (channel.name, channel.type, channel.member_count, channel.joined) == (
        "alice",
        USER,
        0,
        False,
    )
