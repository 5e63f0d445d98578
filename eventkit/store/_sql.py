"""What the SQL backends (SQLite, PostgreSQL) share: the tables, and watching by the log.

Three tables, whatever the database::

    eventkit_store_buckets (bucket, revision)          the bucket's latest revision
    eventkit_store_keys    (bucket, key, value, revision, expires)   present values
    eventkit_store_changes (bucket, revision, key, op, value, at)    the change log

A write runs in one transaction that first raises the bucket's revision (which locks the
bucket's row: writers of one bucket take turns, so revisions are given in commit order and
without gaps), checks the compare-and-set, then writes the key and appends to the log. A
watcher reads the log after the last revision it saw, so it sees every change, in order, even
several changes of one key between two reads. The log keeps an hour of changes (older rows
are trimmed as writes go on); a watcher that falls further behind gets a
:class:`StoreError` rather than a silent gap.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from ._model import RawChange, StoreError

__all__ = ["LOG_KEPT", "TRIM_EVERY", "LogChanges", "escape_like"]

LOG_KEPT = 3600.0
"""Seconds of changes the log keeps for watchers that fall behind."""
TRIM_EVERY = 500
"""Revisions between two trims of a bucket's log (a trim is one indexed delete)."""
BATCH = 500


def escape_like(prefix: str) -> str:
    """``prefix`` for ``LIKE ? || '%' ESCAPE '\\'`` (keys may hold ``_``, a LIKE wildcard)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class LogChanges:
    """The changes of one watch: the present values first (if asked), then the log read
    from ``after`` on. ``fetch(after, limit)`` returns log rows in revision order;
    ``wakeup()`` an event that is set at the next change this process hears of (a write here,
    a PostgreSQL notification), and ``poll`` bounds how long a change from elsewhere waits."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        after: int,
        first: list[RawChange],
        fetch: Callable[[int, int], Awaitable[list[tuple[Any, ...]]]],
        wakeup: Callable[[], anyio.Event],
        poll: float,
    ) -> None:
        self._bucket = bucket
        self._prefix = prefix
        self._after = after
        self._ready = list(reversed(first))
        self._fetch = fetch
        self._wakeup = wakeup
        self._poll = poll
        self.closed = False

    def __aiter__(self) -> LogChanges:
        return self

    async def __anext__(self) -> RawChange:
        while not self._ready:
            if self.closed:
                raise StopAsyncIteration
            woken = self._wakeup()  # taken before the read: a change after it sets it
            rows = await self._fetch(self._after, BATCH)
            if rows:
                self._take(rows)
            else:
                with anyio.move_on_after(self._poll):
                    await woken.wait()
        return self._ready.pop()

    def _take(self, rows: list[tuple[Any, ...]]) -> None:
        if rows[0][0] != self._after + 1:
            raise StoreError(
                f"a watch of bucket {self._bucket!r} fell behind: the changes after revision "
                f"{self._after} were trimmed from the log (it keeps {LOG_KEPT:g}s); watch "
                "again with initial=True to read the present values"
            )
        self._after = rows[-1][0]
        batch = [
            RawChange(key, op, bytes(value) if value is not None else b"", revision)
            for revision, key, op, value in rows
            if key.startswith(self._prefix)
        ]
        self._ready = list(reversed(batch))
