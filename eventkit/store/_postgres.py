"""``postgresql://user:password@host:5432/db``: the store in PostgreSQL (asyncpg).

For services on RabbitMQ or HTTP spread over machines. A write returns once PostgreSQL
committed it (``synchronous_commit`` as the server sets it: on by default, so the commit is
on disk). Watches wake on ``LISTEN/NOTIFY`` (one listening connection per store), and read
the change log every second besides, so a notification lost with a connection delays a
change, never drops it. See :mod:`._sql` for the tables. Installed with
``pip install "eventkit-micro[postgres]"``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio
import asyncpg

from ..wire import ConnectionLost
from ._model import BucketOptions, RawChange, Record, RevisionConflict, StoreError
from ._sql import LOG_KEPT, TRIM_EVERY, LogChanges, escape_like

__all__ = ["PostgresBackend", "PostgresBucket"]

CHANNEL = "eventkit_store"
POLL = 1.0
_NOW = "extract(epoch from clock_timestamp())"  # the server's clock: one clock for all writers

_SCHEMA = """
CREATE TABLE IF NOT EXISTS eventkit_store_buckets (
    bucket TEXT PRIMARY KEY, revision BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS eventkit_store_keys (
    bucket TEXT NOT NULL, key TEXT NOT NULL, value BYTEA NOT NULL, revision BIGINT NOT NULL,
    expires DOUBLE PRECISION, PRIMARY KEY (bucket, key));
CREATE TABLE IF NOT EXISTS eventkit_store_changes (
    bucket TEXT NOT NULL, revision BIGINT NOT NULL, key TEXT NOT NULL, op TEXT NOT NULL,
    value BYTEA, at DOUBLE PRECISION NOT NULL, PRIMARY KEY (bucket, revision));
"""
_LIVE = f"(expires IS NULL OR expires > {_NOW})"
_SCHEMA_LOCK = 0x6576656E746B6974  # pg_advisory_xact_lock key: tables made by one at a time


def _display(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


class PostgresBackend:
    """A connection pool on one database, opened on first use."""

    name = "postgresql"

    def __init__(self, url: str, *, max_connections: int = 10) -> None:
        self._url = url
        self.where = _display(url)
        self._max = max_connections
        self._pool: Any = None
        self._listener: Any = None
        self._lock = anyio.Lock()
        self._changed = anyio.Event()
        self._watches: list[LogChanges] = []

    def _error(self, exc: BaseException, doing: str) -> Exception:
        if isinstance(exc, OSError | asyncpg.exceptions.ConnectionDoesNotExistError):
            return ConnectionLost(f"lost PostgreSQL at {self.where} while {doing} ({exc})")
        return StoreError(f"PostgreSQL at {self.where} failed while {doing}: {exc}")

    async def pool(self) -> Any:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await self._connect()
        return self._pool

    async def _connect(self) -> Any:
        try:
            pool = await asyncpg.create_pool(self._url, min_size=1, max_size=self._max)
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
                await conn.execute(_SCHEMA)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise ConnectionLost(
                f"cannot use the PostgreSQL store at {self.where}: {type(exc).__name__}: {exc}"
            ) from exc
        return pool

    async def listen(self) -> None:
        """Hear the notifications of writes (made once, at the first watch)."""
        if self._listener is not None:
            return
        pool = await self.pool()
        async with self._lock:
            if self._listener is None:
                conn = await pool.acquire()
                await conn.add_listener(CHANNEL, self._on_notify)
                self._listener = conn

    def _on_notify(self, *_: Any) -> None:
        event, self._changed = self._changed, anyio.Event()
        event.set()

    def wakeup(self) -> anyio.Event:
        return self._changed

    async def bucket(self, name: str, options: BucketOptions) -> PostgresBucket:
        del options  # replication is PostgreSQL's own (streaming replicas), not per bucket
        pool = await self.pool()
        try:
            await pool.execute(
                "INSERT INTO eventkit_store_buckets VALUES ($1, 0) ON CONFLICT DO NOTHING", name
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise self._error(exc, f"opening bucket {name!r}") from exc
        return PostgresBucket(self, pool, name)

    async def close(self) -> None:
        for watch in self._watches:
            watch.closed = True
        self._on_notify()
        listener, self._listener = self._listener, None
        pool, self._pool = self._pool, None
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            if listener is not None and pool is not None:
                try:
                    await listener.remove_listener(CHANNEL, self._on_notify)
                    await pool.release(listener)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    pass  # the connection is gone already
            if pool is not None:
                await pool.close()


_DRIVER = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


class PostgresBucket:
    def __init__(self, backend: PostgresBackend, pool: Any, name: str) -> None:
        self._backend = backend
        self._pool = pool
        self.name = name

    async def get(self, key: str) -> Record | None:
        try:
            row = await self._pool.fetchrow(
                "SELECT value, revision FROM eventkit_store_keys WHERE bucket = $1 AND key = $2 "
                f"AND {_LIVE}",
                self.name,
                key,
            )
        except _DRIVER as exc:
            raise self._backend._error(exc, f"reading {self.name}/{key}") from exc
        return None if row is None else Record(key, bytes(row[0]), row[1])

    async def put(self, key: str, value: bytes, *, ttl: float | None, expect: int | None) -> int:
        return await self._write(key, value, ttl, expect)

    async def delete(self, key: str, *, expect: int | None) -> int:
        return await self._write(key, None, None, expect)

    async def _write(
        self, key: str, value: bytes | None, ttl: float | None, expect: int | None
    ) -> int:
        name = self.name
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                # The bucket's row first: it orders this bucket's writers, so revisions are
                # committed in order and the log has no gaps.
                revision = await conn.fetchval(
                    "UPDATE eventkit_store_buckets SET revision = revision + 1 WHERE bucket = $1 "
                    "RETURNING revision",
                    name,
                )
                if expect is not None:
                    current = await conn.fetchval(
                        "SELECT revision FROM eventkit_store_keys WHERE bucket = $1 "
                        f"AND key = $2 AND {_LIVE}",
                        name,
                        key,
                    )
                    if (current or 0) != expect:
                        raise RevisionConflict(name, key, expect)  # rolls the revision back
                if value is None:
                    await conn.execute(
                        "DELETE FROM eventkit_store_keys WHERE bucket = $1 AND key = $2", name, key
                    )
                else:
                    await conn.execute(
                        "INSERT INTO eventkit_store_keys VALUES ($1, $2, $3, $4, "
                        f"CASE WHEN $5::float8 IS NULL THEN NULL ELSE {_NOW} + $5::float8 END) "
                        "ON CONFLICT (bucket, key) DO UPDATE SET value = EXCLUDED.value, "
                        "revision = EXCLUDED.revision, expires = EXCLUDED.expires",
                        name,
                        key,
                        value,
                        revision,
                        ttl,
                    )
                await conn.execute(
                    f"INSERT INTO eventkit_store_changes VALUES ($1, $2, $3, $4, $5, {_NOW})",
                    name,
                    revision,
                    key,
                    "put" if value is not None else "delete",
                    value,
                )
                if revision % TRIM_EVERY == 0:
                    await conn.execute(
                        "DELETE FROM eventkit_store_changes WHERE bucket = $1 AND revision < $2 "
                        f"AND at < {_NOW} - $3::float8",
                        name,
                        revision,
                        LOG_KEPT,
                    )
                await conn.execute(f"NOTIFY {CHANNEL}")  # sent on commit
        except _DRIVER as exc:
            raise self._backend._error(exc, f"writing {name}/{key}") from exc
        result: int = revision
        return result

    async def keys(self, prefix: str) -> list[str]:
        try:
            rows = await self._pool.fetch(
                "SELECT key FROM eventkit_store_keys WHERE bucket = $1 AND key LIKE $2 || '%' "
                f"ESCAPE '\\' AND {_LIVE} ORDER BY key COLLATE \"C\"",
                self.name,
                escape_like(prefix),
            )
        except _DRIVER as exc:
            raise self._backend._error(exc, f"listing the keys of {self.name}") from exc
        return [row[0] for row in rows]

    @asynccontextmanager
    async def watch(self, prefix: str, *, initial: bool) -> AsyncIterator[AsyncIterator[RawChange]]:
        backend, name = self._backend, self.name
        try:
            await backend.listen()
            async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                after = await conn.fetchval(
                    "SELECT revision FROM eventkit_store_buckets WHERE bucket = $1", name
                )
                rows = []
                if initial:
                    rows = await conn.fetch(
                        "SELECT revision, key, value FROM eventkit_store_keys WHERE bucket = $1 "
                        f"AND key LIKE $2 || '%' ESCAPE '\\' AND {_LIVE} ORDER BY revision",
                        name,
                        escape_like(prefix),
                    )
        except _DRIVER as exc:
            raise backend._error(exc, f"watching {name}") from exc

        async def fetch(after: int, limit: int) -> list[Any]:
            try:
                rows: list[Any] = await self._pool.fetch(
                    "SELECT revision, key, op, value FROM eventkit_store_changes "
                    "WHERE bucket = $1 AND revision > $2 ORDER BY revision LIMIT $3",
                    name,
                    after,
                    limit,
                )
            except _DRIVER as exc:
                raise backend._error(exc, f"watching {name}") from exc
            return [tuple(row) for row in rows]

        first = [RawChange(r["key"], "put", bytes(r["value"]), r["revision"]) for r in rows]
        changes = LogChanges(name, prefix, after, first, fetch, backend.wakeup, POLL)
        backend._watches.append(changes)
        try:
            yield changes
        finally:
            changes.closed = True
            backend._watches.remove(changes)
