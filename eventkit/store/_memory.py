"""The store of the ``memory://`` broker: buckets inside one process.

Stores on the same memory URL share their buckets, as brokers on it share one bus: a service
and a client made from ``memory://`` in one process see the same keys, ``memory://other``
has buckets of its own. For users' unit tests and single-process apps: nothing survives the
process, which is what the memory broker promises too.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ._model import BucketOptions, RawChange, Record, RevisionConflict

__all__ = ["MemoryBackend", "MemoryBucket"]


class MemoryBucket:
    """Keys, revisions and watchers of one bucket; every operation is atomic (no await
    between its read and its write)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.revision = 0
        self._data: dict[str, tuple[bytes, int, float | None]] = {}
        self._watchers: list[tuple[str, MemoryObjectSendStream[RawChange]]] = []

    def _live(self, key: str) -> tuple[bytes, int, float | None] | None:
        item = self._data.get(key)
        if item is not None and item[2] is not None and item[2] <= time.monotonic():
            del self._data[key]
            return None
        return item

    def _check(self, key: str, expect: int | None) -> None:
        if expect is None:
            return
        item = self._live(key)
        if (item[1] if item is not None else 0) != expect:
            raise RevisionConflict(self.name, key, expect)

    def _changed(self, change: RawChange) -> None:
        for prefix, stream in self._watchers:
            if change.key.startswith(prefix):
                stream.send_nowait(change)  # unbounded: a watcher never blocks a writer

    async def get(self, key: str) -> Record | None:
        item = self._live(key)
        return None if item is None else Record(key, item[0], item[1])

    async def put(self, key: str, value: bytes, *, ttl: float | None, expect: int | None) -> int:
        self._check(key, expect)
        self.revision += 1
        expires = time.monotonic() + ttl if ttl is not None else None
        self._data[key] = (value, self.revision, expires)
        self._changed(RawChange(key, "put", value, self.revision))
        return self.revision

    async def delete(self, key: str, *, expect: int | None) -> int:
        self._check(key, expect)
        self._data.pop(key, None)
        self.revision += 1
        self._changed(RawChange(key, "delete", b"", self.revision))
        return self.revision

    async def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in list(self._data) if k.startswith(prefix) and self._live(k))

    @asynccontextmanager
    async def watch(self, prefix: str, *, initial: bool) -> AsyncIterator[AsyncIterator[RawChange]]:
        send, receive = anyio.create_memory_object_stream[RawChange](math.inf)
        if initial:
            present = [(k, self._live(k)) for k in list(self._data) if k.startswith(prefix)]
            for key, item in sorted(
                ((k, i) for k, i in present if i is not None), key=lambda p: p[1][1]
            ):
                send.send_nowait(RawChange(key, "put", item[0], item[1]))
        watcher = (prefix, send)
        self._watchers.append(watcher)
        try:
            with receive:
                yield receive
        finally:
            self._watchers.remove(watcher)
            send.close()


_spaces: dict[str, dict[str, MemoryBucket]] = {}


class MemoryBackend:
    """Buckets of one memory URL (``memory://`` and ``memory://name`` are separate)."""

    name = "memory"

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._buckets = _spaces.setdefault(parts.netloc + parts.path, {})

    async def bucket(self, name: str, options: BucketOptions) -> MemoryBucket:
        del options  # one process: nothing to replicate, every revision kept in order
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = MemoryBucket(name)
        return bucket

    async def close(self) -> None:
        """Nothing to release: the buckets belong to the memory URL, not to this store."""
