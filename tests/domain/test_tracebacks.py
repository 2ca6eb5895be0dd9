"""Each distinct error once, with a count: the digest of a crash-looping app's output."""

from __future__ import annotations

from controlplane.domain.tracebacks import ErrorDigest

TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "/srv/releases/6-abc/main.py", line 9, in <module>',
    "    main()",
    '  File "/srv/releases/6-abc/main.py", line 3, in main',
    '    raise ValueError("boom")',
    "ValueError: boom",
]


def test_a_repeated_traceback_is_shown_once_and_counted() -> None:
    digest = ErrorDigest()
    first = digest.feed(["running commit 6", *TRACEBACK])
    assert first == ["running commit 6", *TRACEBACK]
    for _ in range(40):  # the app crashes again and again: only its banner shows
        assert digest.feed(["running commit 6", *TRACEBACK]) == ["running commit 6"]
    [seen] = digest.errors()
    assert (seen.error, seen.where, seen.count) == ("ValueError: boom", "main.py:3", 41)


def test_a_different_error_or_place_is_a_new_one() -> None:
    digest = ErrorDigest()
    digest.feed(TRACEBACK)
    other_place = [*TRACEBACK[:3], '  File "/x/lib.py", line 7, in f', "    g()", TRACEBACK[-1]]
    assert digest.feed(other_place) == other_place
    other_error = [*TRACEBACK[:-1], "KeyError: 'API_KEY'"]
    assert digest.feed(other_error) == other_error
    assert [(e.error, e.where, e.count) for e in digest.errors()] == [
        ("ValueError: boom", "main.py:3", 1),
        ("ValueError: boom", "lib.py:7", 1),
        ("KeyError: 'API_KEY'", "main.py:3", 1),
    ]


def test_a_chained_traceback_is_one_error() -> None:
    chained = [
        *TRACEBACK,
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        '  File "/srv/main.py", line 12, in <module>',
        "    sys.exit(run())",
        "RuntimeError: cannot start",
    ]
    digest = ErrorDigest()
    assert digest.feed([*chained, "bye"]) == [*chained, "bye"]
    assert digest.feed(chained) == []
    [seen] = digest.errors()
    assert (seen.error, seen.where, seen.count) == ("RuntimeError: cannot start", "main.py:12", 2)


def test_a_traceback_split_between_reads_waits_for_its_end() -> None:
    digest = ErrorDigest()
    assert digest.feed(TRACEBACK[:3]) == []
    assert digest.feed(TRACEBACK[3:]) == TRACEBACK
    assert digest.feed(TRACEBACK[:2]) == []
    assert digest.flush() == TRACEBACK[:2]  # the app died mid-print: what there is of it
    assert digest.flush() == []


def test_error_lines_repeat_once_and_ordinary_lines_always_show() -> None:
    digest = ErrorDigest()
    assert digest.feed(["ERROR: no network", "tick", "ERROR: no network", "tick"]) == [
        "ERROR: no network",
        "tick",
        "tick",
    ]
    [seen] = digest.errors()
    assert (seen.error, seen.where, seen.count) == ("ERROR: no network", "", 2)
