"""Topic validation and wildcard matching."""

from __future__ import annotations

import pytest

from eventkit import InvalidTopic
from eventkit.wire import matches, validate_pattern, validate_topic


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("a.b", "a.b", True),
        ("a.b", "a.bc", False),
        ("a.*", "a.b", True),
        ("a.*", "a.b.c", False),
        ("a.*.c", "a.b.c", True),
        ("a.>", "a.b", True),
        ("a.>", "a.b.c", True),
        ("a.>", "a", False),
        (">", "a", True),
        ("*", "a.b", False),
    ],
)
def test_matches(pattern: str, topic: str, expected: bool) -> None:
    assert matches(pattern, topic) is expected


@pytest.mark.parametrize("bad", ["", "a..b", ".a", "a.", "a b", "a.*", "a.>"])
def test_bad_topics(bad: str) -> None:
    with pytest.raises(InvalidTopic):
        validate_topic(bad)


@pytest.mark.parametrize("bad", ["a.>.b", "a..b", "a.b c", "a.#"])
def test_bad_patterns(bad: str) -> None:
    with pytest.raises(InvalidTopic):
        validate_pattern(bad)
