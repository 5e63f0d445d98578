"""Topic names and patterns: validation and matching, in NATS syntax.

A topic is dot-separated tokens. In a subscription pattern ``*`` matches exactly one token and
``>`` (last token only) matches one or more. Adapters translate (``#`` on AMQP). Validation
happens when a topic is written (decorator, subscribe, publish), so a bad name fails early.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ._errors import InvalidTopic

__all__ = [
    "dead_letter_topic",
    "is_pattern",
    "matches",
    "validate_name",
    "validate_pattern",
    "validate_topic",
]

_TOKEN = re.compile(r"^[A-Za-z0-9_\-:$@]+$")
_ALLOWED = "letters, digits and _ - : $ @"


_VALID_TOPIC = re.compile(r"[A-Za-z0-9_\-:$@]+(?:\.[A-Za-z0-9_\-:$@]+)*")


def validate_topic(topic: str) -> str:
    """Check a concrete topic (no wildcards) and return it unchanged.

    One regular-expression match for a valid topic (this runs on every publish, and RPC
    replies each have a topic of their own, so a cache would not help); the token-by-token
    walk only runs to explain what is wrong."""
    if isinstance(topic, str) and _VALID_TOPIC.fullmatch(topic):
        return topic
    return _validate(topic, wildcards=False)


def validate_pattern(pattern: str) -> str:
    """Check a subscription pattern (``*`` and a final ``>`` allowed) and return it unchanged."""
    return _validate(pattern, wildcards=True)


@lru_cache(maxsize=4096)
def _validate(topic: str, *, wildcards: bool) -> str:
    if not isinstance(topic, str) or not topic:
        raise InvalidTopic(f"a topic must be a non-empty string, got {topic!r}")
    tokens = topic.split(".")
    last = len(tokens) - 1
    for i, token in enumerate(tokens):
        if token in ("*", ">"):
            if not wildcards:
                raise InvalidTopic(
                    f"topic {topic!r}: wildcards ({token!r}) are only allowed in subscriptions"
                )
            if token == ">" and i != last:
                raise InvalidTopic(f"topic {topic!r}: '>' may only be the last token")
            continue
        if not token:
            raise InvalidTopic(
                f"topic {topic!r} has an empty token: use dot-separated names like 'shop.orders'"
            )
        if not _TOKEN.match(token):
            raise InvalidTopic(f"topic {topic!r}: token {token!r} may only contain {_ALLOWED}")
    return topic


def is_pattern(topic: str) -> bool:
    """True when the topic has a wildcard token."""
    return any(t in ("*", ">") for t in topic.split("."))


@lru_cache(maxsize=16384)
def matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` (concrete) is matched by ``pattern``."""
    if pattern == topic:
        return True
    p = pattern.split(".")
    t = topic.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(t) > i
        if i >= len(t):
            return False
        if token != "*" and token != t[i]:
            return False
    return len(p) == len(t)


def dead_letter_topic(durable: str) -> str:
    """Where a durable subscription's dead letters go, on every broker."""
    return f"eventkit.deadletter.{durable}"


def validate_name(kind: str, name: str) -> str:
    """Check a queue group, durable or service name: one token, no dots or wildcards."""
    if not isinstance(name, str) or not _TOKEN.match(name):
        raise InvalidTopic(f"{kind} name {name!r} must be one token of {_ALLOWED} (no dots)")
    return name
