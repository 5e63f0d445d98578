"""The caller's reply cache: successful replies kept for a while, opt-in per call or endpoint.

A call is cached when the caller asks (``kit.call(..., cache=seconds)``) or, when it says
nothing, when the endpoint's record carries a hint (``@svc.endpoint(..., cache=seconds)``,
the endpoint metadata key ``cache``); ``cache=0`` turns a hint off. The key is the service,
the endpoint, the request's encoded bytes and the caller's token, so a caller never gets a
reply that was made for another identity, and a token the server would now refuse is not
served from the cache either (an expired or revoked token's entry is gone with it: the
TTL). Only successful replies are kept (an error is never cached); the cache is bounded
(least recently used out first) and an entry expires after its TTL. A hit returns a fresh
value decoded from the kept bytes, so callers never share a mutable reply.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

from ..discovery import NodeInfo
from ..wire import ConfigError, Message

__all__ = [
    "CACHE_HINT",
    "DEFAULT_CACHE_SIZE",
    "CacheCounter",
    "CacheKey",
    "ReplyCache",
    "check_ttl",
    "endpoint_hints",
]

CACHE_HINT = "cache"
"""The endpoint metadata key of a cache hint: seconds a caller may keep a reply."""
DEFAULT_CACHE_SIZE = 1024

CacheKey = tuple[str, str, bytes, str]
"""(service, endpoint, request bytes, token or "")."""

CacheCounter = Callable[[str, str, bool], None]
"""Told of each lookup: service, endpoint, and whether it was a hit (telemetry's counter)."""


class ReplyCache:
    """Successful replies by call, least recently used out first past ``max_entries``."""

    __slots__ = ("_entries", "counter", "hits", "max_entries", "misses")

    def __init__(self, max_entries: int = DEFAULT_CACHE_SIZE) -> None:
        if max_entries < 1:
            raise ConfigError(f"the reply cache needs room for 1 entry at least, not {max_entries}")
        self.max_entries = max_entries
        self._entries: OrderedDict[CacheKey, tuple[float, Message]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.counter: CacheCounter | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey, now: float) -> Message | None:
        """The kept reply of ``key`` if it has not expired (counted as a hit or a miss)."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            self._entries.move_to_end(key)
            self.hits += 1
            if self.counter is not None:
                self.counter(key[0], key[1], True)
            return entry[1]
        if entry is not None:
            del self._entries[key]
        self.misses += 1
        if self.counter is not None:
            self.counter(key[0], key[1], False)
        return None

    def put(self, key: CacheKey, reply: Message, ttl: float, now: float) -> None:
        """Keep ``reply`` (a success) for ``ttl`` seconds."""
        entries = self._entries
        entries[key] = (now + ttl, reply)
        entries.move_to_end(key)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


def check_ttl(ttl: float | None, what: str) -> float | None:
    """``ttl`` if it is a usable number of seconds (0: no caching), else a ConfigError."""
    if ttl is not None and (not math.isfinite(ttl) or ttl < 0):
        raise ConfigError(f"{what} must be a number of seconds, 0 or more, got {ttl}")
    return ttl


def endpoint_hints(node: NodeInfo, endpoint: str) -> tuple[bool, float]:
    """What the node's record says of ``endpoint``: idempotent, and its cache hint (0 none)."""
    for info in node.endpoints:
        if info.name == endpoint:
            metadata = info.metadata
            hint = metadata.get(CACHE_HINT)
            ttl = 0.0
            if hint:
                try:
                    ttl = float(hint)
                except ValueError:
                    ttl = 0.0  # a hint this caller cannot read: no caching
                if not math.isfinite(ttl) or ttl < 0:
                    ttl = 0.0
            return metadata.get("idempotent") == "true", ttl
    return False, 0.0
