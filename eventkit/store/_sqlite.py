"""``sqlite:///path/to/store.db``: the store in a SQLite file (the standard library's sqlite3).

For services on RabbitMQ or HTTP that run on one machine. The file is in WAL mode with
``synchronous=FULL``: a write returns once its transaction is on disk, so it survives a
crash of the process or of the machine. Several processes may share the file (SQLite locks
it; a writer waits up to ``busy_timeout``). The database calls run in a worker thread, one
at a time per store. A watch reads the change log every 50 ms (at once after a write made
through the same store). See :mod:`._sql` for the tables.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import anyio
import anyio.to_thread

from ..wire import ConfigError, redact
from ._model import BucketOptions, RawChange, Record, RevisionConflict, StoreError
from ._sql import LOG_KEPT, TRIM_EVERY, LogChanges, escape_like

__all__ = ["SqliteBackend", "SqliteBucket"]

R = TypeVar("R")
POLL = 0.05

_SCHEMA = """
CREATE TABLE IF NOT EXISTS eventkit_store_buckets (
    bucket TEXT PRIMARY KEY, revision INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS eventkit_store_keys (
    bucket TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, revision INTEGER NOT NULL,
    expires REAL, PRIMARY KEY (bucket, key));
CREATE TABLE IF NOT EXISTS eventkit_store_changes (
    bucket TEXT NOT NULL, revision INTEGER NOT NULL, key TEXT NOT NULL, op TEXT NOT NULL,
    value BLOB, at REAL NOT NULL, PRIMARY KEY (bucket, revision));
"""


def sqlite_path(url: str) -> str:
    """The file of ``sqlite:///relative.db`` or ``sqlite:////absolute.db``."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc or parts.query or not parts.path.strip("/"):
        raise ConfigError(
            f"SQLite store URL {redact(url)!r} is not valid: use sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db"
        )
    return unquote(parts.path[1:])


class SqliteBackend:
    """One SQLite file, opened on first use."""

    name = "sqlite"

    def __init__(self, url: str, *, busy_timeout: float = 10.0) -> None:
        self.path = sqlite_path(url)
        self._busy = busy_timeout
        self._db: sqlite3.Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)
        self._changed = anyio.Event()
        self._watches: list[LogChanges] = []

    async def run(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        """``fn(connection)`` in the worker thread; sqlite3's errors as StoreError."""
        db = self._db
        if db is None:
            raise StoreError(f"the SQLite store {self.path} is closed")
        try:
            return await anyio.to_thread.run_sync(fn, db, limiter=self._limiter)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: {exc}") from exc

    def notify(self) -> None:
        event, self._changed = self._changed, anyio.Event()
        event.set()

    def wakeup(self) -> anyio.Event:
        return self._changed

    async def bucket(self, name: str, options: BucketOptions) -> SqliteBucket:
        del options  # one file: every revision is in the log, nothing to replicate
        if self._db is None:
            self._db = await anyio.to_thread.run_sync(self._connect)
        await self.run(lambda db: _insert_bucket(db, name))
        return SqliteBucket(self, name)

    def _connect(self) -> sqlite3.Connection:
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, timeout=self._busy, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the SQLite store {self.path}: {exc}") from exc
        return db

    async def close(self) -> None:
        for watch in self._watches:
            watch.closed = True
        self.notify()
        db, self._db = self._db, None
        if db is not None:
            await anyio.to_thread.run_sync(db.close, limiter=self._limiter)


def _insert_bucket(db: sqlite3.Connection, name: str) -> None:
    db.execute("INSERT OR IGNORE INTO eventkit_store_buckets VALUES (?, 0)", (name,))


class SqliteBucket:
    def __init__(self, backend: SqliteBackend, name: str) -> None:
        self._backend = backend
        self.name = name

    async def get(self, key: str) -> Record | None:
        def read(db: sqlite3.Connection) -> Any:
            return db.execute(
                "SELECT value, revision FROM eventkit_store_keys WHERE bucket = ? AND key = ? "
                "AND (expires IS NULL OR expires > ?)",
                (self.name, key, time.time()),
            ).fetchone()

        row = await self._backend.run(read)
        return None if row is None else Record(key, bytes(row[0]), row[1])

    async def put(self, key: str, value: bytes, *, ttl: float | None, expect: int | None) -> int:
        return await self._write(key, value, ttl, expect)

    async def delete(self, key: str, *, expect: int | None) -> int:
        return await self._write(key, None, None, expect)

    async def _write(
        self, key: str, value: bytes | None, ttl: float | None, expect: int | None
    ) -> int:
        name = self.name

        def write(db: sqlite3.Connection) -> int | None:
            now = time.time()
            db.execute("BEGIN IMMEDIATE")  # the write lock first: no upgrade deadlock
            try:
                row = db.execute(
                    "SELECT revision FROM eventkit_store_keys WHERE bucket = ? AND key = ? "
                    "AND (expires IS NULL OR expires > ?)",
                    (name, key, now),
                ).fetchone()
                if expect is not None and (row[0] if row else 0) != expect:
                    db.execute("ROLLBACK")
                    return None
                db.execute(
                    "UPDATE eventkit_store_buckets SET revision = revision + 1 WHERE bucket = ?",
                    (name,),
                )
                (revision,) = db.execute(
                    "SELECT revision FROM eventkit_store_buckets WHERE bucket = ?", (name,)
                ).fetchone()
                if value is None:
                    db.execute(
                        "DELETE FROM eventkit_store_keys WHERE bucket = ? AND key = ?", (name, key)
                    )
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO eventkit_store_keys VALUES (?, ?, ?, ?, ?)",
                        (name, key, value, revision, now + ttl if ttl is not None else None),
                    )
                db.execute(
                    "INSERT INTO eventkit_store_changes VALUES (?, ?, ?, ?, ?, ?)",
                    (name, revision, key, "put" if value is not None else "delete", value, now),
                )
                if revision % TRIM_EVERY == 0:
                    db.execute(
                        "DELETE FROM eventkit_store_changes WHERE bucket = ? AND at < ? "
                        "AND revision < ?",
                        (name, now - LOG_KEPT, revision),
                    )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            result: int = revision
            return result

        revision = await self._backend.run(write)
        if revision is None:
            raise RevisionConflict(name, key, expect or 0)
        self._backend.notify()
        return revision

    async def keys(self, prefix: str) -> list[str]:
        def read(db: sqlite3.Connection) -> list[Any]:
            return db.execute(
                "SELECT key FROM eventkit_store_keys WHERE bucket = ? AND key LIKE ? || '%' "
                "ESCAPE '\\' AND (expires IS NULL OR expires > ?) ORDER BY key",
                (self.name, escape_like(prefix), time.time()),
            ).fetchall()

        return [row[0] for row in await self._backend.run(read)]

    @asynccontextmanager
    async def watch(self, prefix: str, *, initial: bool) -> AsyncIterator[AsyncIterator[RawChange]]:
        name = self.name

        def start(db: sqlite3.Connection) -> tuple[int, list[Any]]:
            db.execute("BEGIN")  # one snapshot: the present values and the revision they are at
            try:
                (after,) = db.execute(
                    "SELECT revision FROM eventkit_store_buckets WHERE bucket = ?", (name,)
                ).fetchone()
                rows = []
                if initial:
                    rows = db.execute(
                        "SELECT revision, key, value FROM eventkit_store_keys WHERE bucket = ? "
                        "AND key LIKE ? || '%' ESCAPE '\\' AND (expires IS NULL OR expires > ?) "
                        "ORDER BY revision",
                        (name, escape_like(prefix), time.time()),
                    ).fetchall()
            finally:
                db.execute("COMMIT")
            return after, rows

        async def fetch(after: int, limit: int) -> list[Any]:
            def read(db: sqlite3.Connection) -> list[Any]:
                return db.execute(
                    "SELECT revision, key, op, value FROM eventkit_store_changes "
                    "WHERE bucket = ? AND revision > ? ORDER BY revision LIMIT ?",
                    (name, after, limit),
                ).fetchall()

            return await self._backend.run(read)

        after, rows = await self._backend.run(start)
        first = [RawChange(key, "put", bytes(value), revision) for revision, key, value in rows]
        changes = LogChanges(name, prefix, after, first, fetch, self._backend.wakeup, POLL)
        self._backend._watches.append(changes)
        try:
            yield changes
        finally:
            changes.closed = True
            self._backend._watches.remove(changes)
