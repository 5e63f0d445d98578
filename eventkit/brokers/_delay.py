"""Delayed delivery and stepped backoff: the values every adapter reads the same way.

A delayed publish (``publish_later``) hands a message to the broker now and has it reach
subscribers no earlier than ``delay`` seconds later: the subscriptions that match when it
falls due, as if it were published then. How long it is kept meanwhile is each broker's
(``Capabilities.delay_kept``). Re-exported by :mod:`eventkit.brokers.base`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Protocol, runtime_checkable

from ..wire import ConfigError, Message

__all__ = ["DelayedPublisher", "Timers", "backoff_steps", "delay_seconds"]


MAX_STEPS = 100
"""Backoff steps at most (they travel in the HTTP broker's gossip)."""


def backoff_steps(steps: Iterable[float]) -> tuple[float, ...]:
    """``steps`` as a tuple of seconds, checked: 1 to 100 of them, each finite and >= 0."""
    if isinstance(steps, str | bytes):
        raise ConfigError(f"backoff must be a list of seconds, such as [0.1, 1, 5], got {steps!r}")
    out = tuple(float(step) for step in steps)
    if not 0 < len(out) <= MAX_STEPS:
        raise ConfigError(
            f"backoff must list 1 to {MAX_STEPS} delays in seconds, such as [0.1, 1, 5] "
            f"(the last one repeats), got {len(out)}"
        )
    for step in out:
        if not math.isfinite(step) or step < 0:
            raise ConfigError(f"backoff delays must be finite seconds >= 0, got {step!r}")
    return out


def delay_seconds(delay: float | timedelta) -> float:
    """``delay`` in seconds, checked: finite and >= 0 (a timedelta is taken as it says)."""
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"delay must be finite seconds >= 0, got {delay!r}")
    return seconds


@runtime_checkable
class DelayedPublisher(Protocol):
    """A broker that holds a message and delivers it later (``Capabilities.delay``)."""

    async def publish_later(self, message: Message, delay: float) -> None:
        """Send ``message`` so that it reaches subscribers no earlier than ``delay`` seconds
        from now: every subscription that matches ``message.topic`` when it falls due, as
        a publish at that moment would. Returns once the broker holds it (for brokers with
        confirms, once confirmed); where it is held, and whether it outlives the
        publishing process, is the broker's ``Capabilities.delay_kept``. A ``delay`` of 0
        is a plain publish. Raises what ``publish`` raises, and
        :class:`UnsupportedFeature` for a message the broker cannot hold (a request).
        """
        ...


class Timers:
    """Messages one process holds for later on its event loop's timers (memory, and the
    HTTP broker's plain subscribers): nothing to stop or drain, and lost when the process
    exits. A timer whose loop has closed (a test's loop ended) no longer counts."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: set[tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle]] = set()

    def call_later(self, delay: float, callback: Callable[[], object]) -> None:
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._held.discard(entry)
            callback()

        entry = (loop, loop.call_later(delay, fire))
        self._held.add(entry)

    def pending(self) -> int:
        """Timers still to fire on a live loop."""
        self._held = {(loop, h) for loop, h in self._held if not loop.is_closed()}
        return len(self._held)
