"""Logging what came off the wire: escaped, bounded, and not one line per message in a flood.

A value taken from a message (an id, a topic, a path, a header, an exception text that quotes
one) is written through :func:`loggable`: control characters (newlines, ANSI escapes, line
and paragraph separators, bidi overrides) are escaped and the value is cut to a bounded
length, so a sender can neither forge a line in the log nor fill it. :class:`LogLimiter`
writes the first few lines of one kind of bad input per interval and then only a count, so
a flood of bad messages costs the log a line every interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

__all__ = ["LogLimiter", "loggable"]

LIMIT = 200
"""Characters of one value that reach a log line (the rest is counted, not written)."""


def loggable(value: Any, *, limit: int = LIMIT, quote: bool = True) -> str:
    """``value`` as it may appear in a log line or an error text: quoted (``quote=False`` for
    an exception text or a reason), every character that is not printable escaped as in a
    Python literal, and at most ``limit`` characters of it, followed by how many were cut."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        text = raw[:limit].decode("utf-8", "backslashreplace")
        cut = len(raw) - min(len(raw), limit)
    else:
        full = value if isinstance(value, str) else str(value)
        text = full[:limit]
        cut = len(full) - len(text)
    if not text.isprintable() or (quote and ("'" in text or "\\" in text)):
        pieces: list[str] = []
        size = 0
        for i, ch in enumerate(text):
            piece = _escape(ch) if not ch.isprintable() or (quote and ch in "'\\") else ch
            size += len(piece)
            if size > limit:
                cut += len(text) - i
                break
            pieces.append(piece)
        text = "".join(pieces)
    if quote:
        text = f"'{text}'"
    return f"{text}...(+{cut} chars)" if cut else text


def _escape(ch: str) -> str:
    special = _SPECIAL.get(ch)
    if special is not None:
        return special
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


_SPECIAL = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "'": "\\'", "\\": "\\\\"}


class LogLimiter:
    """At most ``burst`` lines per ``interval`` seconds for one kind of bad input.

    Lines past the burst are counted; when the interval ends, one line says how many were
    left out (``what`` names them). The count is written by a timer on the running event
    loop (or, without one, by the next line after the interval), so a flood that stops is
    still accounted for.
    """

    __slots__ = (
        "_logged",
        "_suppressed",
        "_timer",
        "_window_end",
        "burst",
        "interval",
        "logger",
        "what",
    )

    def __init__(
        self, logger: logging.Logger, what: str, *, burst: int = 10, interval: float = 10.0
    ) -> None:
        self.logger = logger
        self.what = what
        self.burst = burst
        self.interval = interval
        self._window_end = 0.0
        self._logged = 0
        self._suppressed = 0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def suppressed(self) -> int:
        """Lines left out in the current interval, not yet accounted for."""
        return self._suppressed

    def warning(self, msg: str, *args: Any) -> None:
        self.log(logging.WARNING, msg, *args)

    def log(self, level: int, msg: str, *args: Any) -> None:
        if not self.logger.isEnabledFor(level):
            return
        now = time.monotonic()
        if now >= self._window_end:
            self.flush()
            self._window_end = now + self.interval
            self._logged = 0
        if self._logged < self.burst:
            self._logged += 1
            self.logger.log(level, msg, *args)
            return
        self._suppressed += 1
        if self._suppressed == 1:
            self._schedule(self._window_end - now)

    def flush(self) -> None:
        """Write the count of the lines left out, if any."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._suppressed:
            count, self._suppressed = self._suppressed, 0
            self.logger.warning(
                "%d more %s in the last %.0fs (not logged one by one)",
                count,
                self.what,
                self.interval,
            )

    def _schedule(self, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next line after the interval writes the count
        self._timer = loop.call_later(max(0.0, delay), self.flush)
