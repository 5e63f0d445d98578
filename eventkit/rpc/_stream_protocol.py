"""Streams' flow control, numbering and liveness, as pure state: no I/O, no event loop.

Both ends of a stream use the same three pieces, whichever way items flow:

- :class:`Outbound`, on the side that sends items: the peer's credit (the highest item number
  it allows), what was produced and what was sent. Nothing is produced past the credit, so a
  sender never holds more than the window its receiver granted.
- :class:`Inbound`, on the side that takes items: batches in order of their numbers (a batch
  that comes early waits for the ones before it; a repeat is dropped; one beyond the credit is
  refused), what was handed to the application, and when to grant more credit (once half the
  window has been taken, so a grant costs one frame per half window).
- :class:`Liveness`: when to send a heartbeat on an idle stream, and when the other side's
  silence means it is gone.

The caller (:mod:`._stream_caller`) and the server (:mod:`._stream_server`) put I/O around
them; the header names are in :mod:`._protocol`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pydantic_core

__all__ = [
    "DEFAULT_HEARTBEAT",
    "DEFAULT_WINDOW",
    "MAX_BATCH",
    "MAX_HEARTBEAT",
    "MAX_WINDOW",
    "MIN_HEARTBEAT",
    "SILENT_BEATS",
    "Inbound",
    "Liveness",
    "Outbound",
    "StreamKind",
    "encode_batches",
    "header_int",
]

StreamKind = Literal["server", "client", "bidi"]
"""Which way items flow: ``server`` to the caller, ``client`` to the server (one reply), or
``bidi`` both."""

DEFAULT_WINDOW = 256
"""Items a receiver takes in before the sender must wait for more credit."""
MAX_WINDOW = 65_536
DEFAULT_HEARTBEAT = 1.0
"""Seconds: an idle stream sends a heartbeat at least this often."""
MIN_HEARTBEAT = 0.05
MAX_HEARTBEAT = 300.0
SILENT_BEATS = 3
"""A side that hears nothing for this many heartbeat intervals takes the other for dead."""
MAX_BATCH = 512
"""Most items one frame carries (the body's size may cut a batch shorter)."""
BATCH_BYTES = 512 * 1024
"""A batch whose body would exceed this many bytes is split (unless it is one item)."""


def header_int(headers: Mapping[str, str], name: str) -> int | None:
    """An integer header (None when absent or not a number)."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


class Outbound:
    """Items on their way out: what the peer allows, what was produced, what was sent.

    ``granted`` is the highest item number (from 1) the peer allows; ``produced`` the number
    of the last item handed in; ``sent`` of the last item taken out for the wire. The
    producer waits while :meth:`room` is false: ``produced <= granted`` always holds, and
    since a receiver grants at most what it took plus its window, the sender never holds more
    than one window of items the receiver has not taken.
    """

    __slots__ = ("error", "finished", "granted", "pending", "produced", "sent")

    def __init__(self, granted: int = 0) -> None:
        self.granted = granted
        self.produced = 0
        self.sent = 0
        self.pending: deque[Any] = deque()
        self.finished = False
        """No more items will be produced (an end or an error follows the pending ones)."""
        self.error: Any = None
        """What ended the stream, when it failed (the server's RemoteError)."""

    def room(self) -> bool:
        return self.produced < self.granted

    def push(self, item: Any) -> None:
        self.produced += 1
        self.pending.append(item)

    def grant(self, credit: int) -> bool:
        """Take a grant (cumulative); True when it allows more than before."""
        if credit > self.granted:
            self.granted = credit
            return True
        return False

    def take(self, limit: int) -> tuple[int, list[Any]]:
        """Up to ``limit`` pending items, with the number of the first."""
        pending = self.pending
        first = self.sent + 1
        if len(pending) <= limit:
            items = list(pending)
            pending.clear()
        else:
            items = [pending.popleft() for _ in range(limit)]
        self.sent += len(items)
        return first, items


class Inbound:
    """Items on their way in: reordered by number, bounded by the credit granted.

    Batches are kept as bodies until the application reaches them (decoding is the taker's
    work, not the network loop's). ``taken`` counts items handed to the application, and the
    credit follows it: :meth:`credit_due` grants ``taken + window`` once half a window was
    taken since the last grant.
    """

    __slots__ = (
        "batches",
        "end",
        "grant_at",
        "granted",
        "held",
        "peer_sent",
        "received",
        "refused",
        "taken",
        "threshold",
        "window",
    )

    def __init__(self, window: int) -> None:
        self.window = window
        self.threshold = max(1, window // 2)
        self.granted = window
        self.grant_at = self.threshold
        """Once ``taken`` reaches this, :meth:`credit_due` has a grant (readers check it
        before calling, which saves a call per item)."""
        self.taken = 0
        self.received = 0
        """Every item up to this number has arrived."""
        self.batches: deque[tuple[int, bytes]] = deque()
        """(count, body) of batches in order, not yet handed on."""
        self.held: dict[int, tuple[int, bytes]] = {}
        """Batches that came before an earlier one, by their first number."""
        self.peer_sent = 0
        """The last item number the sender said it sent (end, error, heartbeat)."""
        self.end: int | None = None
        """The number of the last item, once the sender said there are no more."""
        self.refused = 0
        """Batches dropped because they went beyond the credit (a broken sender)."""

    def add(self, first: int, count: int, body: bytes) -> bool:
        """A batch of ``count`` items numbered from ``first``; True when items became ready."""
        last = first + count - 1
        if count < 1 or first <= self.received:
            return False  # empty, or a repeat
        if last > self.granted:
            self.refused += 1
            return False
        if first != self.received + 1:
            self.held[first] = (count, body)
            return False
        self.batches.append((count, body))
        self.received = last
        held = self.held
        while held:
            following = held.pop(self.received + 1, None)
            if following is None:
                break
            self.batches.append(following)
            self.received += following[0]
        return True

    def sender_at(self, last: int) -> None:
        """The sender said it sent items up to ``last``."""
        if last > self.peer_sent:
            self.peer_sent = last

    def finish(self, last: int) -> None:
        """The sender said ``last`` is the last item."""
        self.end = last
        self.sender_at(last)

    @property
    def complete(self) -> bool:
        """Every item arrived, and the sender said there are no more."""
        return self.end is not None and self.received >= self.end

    def gap(self) -> bool:
        """Items the sender sent have not all arrived (late, or lost on the way)."""
        return bool(self.held) or self.peer_sent > self.received

    def credit_due(self) -> int | None:
        """The new grant, when half a window was taken since the last one."""
        grant = self.taken + self.window
        if grant - self.granted >= self.threshold:
            self.granted = grant
            self.grant_at = grant - self.window + self.threshold
            return grant
        return None


class Liveness:
    """When to say something on an idle stream, and when the other side is gone.

    Each side sends a frame at least every ``interval`` seconds (a heartbeat when it has
    nothing else to say; the keeper looks every half interval), and takes the other side for
    dead after :data:`SILENT_BEATS` intervals without a frame. Times are
    ``time.monotonic()``.
    """

    __slots__ = ("gap_since", "interval", "last_heard", "last_sent")

    def __init__(self, interval: float, now: float) -> None:
        self.interval = interval
        self.last_sent = now
        self.last_heard = now
        self.gap_since: float | None = None

    def beat_due(self, now: float) -> bool:
        return now - self.last_sent >= self.interval / 2

    def silent(self, now: float) -> bool:
        return now - self.last_heard > SILENT_BEATS * self.interval

    def lost(self, inbound: Inbound | None, now: float) -> bool:
        """Whether items the other side sent have been missing for too long to be late."""
        if inbound is None or not inbound.gap():
            self.gap_since = None
            return False
        if self.gap_since is None:
            self.gap_since = now
        return now - self.gap_since > SILENT_BEATS * self.interval

    @property
    def bound(self) -> float:
        """The longest a dead peer can go unnoticed after its last frame (seconds)."""
        return (SILENT_BEATS + 0.5) * self.interval


def encode_batches(items: Sequence[Any], limit: int) -> list[tuple[int, bytes]]:
    """``items`` as (count, JSON array body) batches, each body at most ``limit`` bytes
    unless it is a single item (whose size the broker then judges)."""
    body = pydantic_core.to_json(items)
    if len(body) <= limit or len(items) == 1:
        return [(len(items), body)]
    half = len(items) // 2
    return encode_batches(items[:half], limit) + encode_batches(items[half:], limit)
