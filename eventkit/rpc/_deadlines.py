"""Many deadlines, one timer.

Every RPC call has a deadline on the caller (stop waiting) and on the serving node (cancel
the handler). A timer per call (``loop.call_at``, or ``asyncio.timeout`` on top of it) costs
5-11 us on a small machine, a tenth of a whole call on loopback, and nearly every call ends
long before its deadline. Here the deadlines of one caller (or one server) share a single
event-loop timer, set for the earliest; a new deadline later than that (the usual case: same
timeout, later start) costs one dict insert, and a call that ends costs one dict delete.
When the timer fires, what has expired is expired and the timer is set for the next one.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Deadlines"]

K = TypeVar("K", bound=Hashable)


class Deadlines(Generic[K]):
    """Deadlines keyed by ``K`` (a future, a task), in event-loop time; ``on_expired(key)``
    is called, in a loop callback, for each key whose deadline passes before it is
    discarded."""

    __slots__ = ("_at", "_loop", "_on_expired", "_timer", "_when")

    def __init__(self, on_expired: Callable[[K], object]) -> None:
        self._on_expired = on_expired
        self._when: dict[K, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._at = math.inf  # when the timer fires (inf: no timer)
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._when)

    def add(self, key: K, when: float) -> None:
        """Expire ``key`` at loop time ``when`` unless discarded first."""
        self._when[key] = when
        if when < self._at:
            self._schedule(when)

    def discard(self, key: K) -> None:
        """Forget ``key`` (its call ended). The timer stays: firing early is harmless, and
        re-arming it for every call would cost what this module saves."""
        self._when.pop(key, None)

    def close(self) -> None:
        """Drop every deadline and the timer."""
        self._when.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._at = math.inf

    def _schedule(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = self._loop = asyncio.get_running_loop()
        self._timer = loop.call_at(when, self._fire)
        self._at = when

    def _fire(self) -> None:
        self._timer, self._at = None, math.inf
        loop = self._loop
        assert loop is not None
        now = loop.time()
        expired = [key for key, when in self._when.items() if when <= now]
        for key in expired:
            del self._when[key]
        if self._when:
            self._schedule(min(self._when.values()))
        for key in expired:
            self._on_expired(key)
