"""The publisher's durable outbox: undelivered durable messages and known durables, in sqlite.

With no broker server, the publisher is where a durable message waits: it is written here
before ``publish`` returns, and deleted only when a subscriber of the durable name answered
2xx (or after it was dead-lettered). The durable names seen in the mesh are kept too, so a
restarted publisher still knows which topics to keep messages for. ``path=":memory:"`` keeps
the same semantics for the life of the broker object only.

sqlite3 is blocking, so every call runs in a worker thread (``anyio.to_thread``), one at a
time behind a lock; the connection is opened with ``check_same_thread=False`` for that.
WAL journal and ``synchronous=NORMAL``: a crash of the process loses nothing committed.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from ...wire import Message
from ._gossip import DurableSpec

__all__ = ["Outbox", "Pending"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    durable TEXT NOT NULL,
    topic TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS pending_durable ON pending (durable, seq);
CREATE TABLE IF NOT EXISTS durables (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL
);
"""


@dataclass(slots=True)
class Pending:
    """One durable message waiting for a subscriber; ``due`` is a monotonic time."""

    seq: int
    durable: str
    message: Message
    due: float = 0.0
    sending: bool = False


class Outbox:
    """A small sqlite store; every method is async and runs the query in a thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = anyio.Lock()

    async def open(self) -> None:
        def _open() -> sqlite3.Connection:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            return db

        self._db = await anyio.to_thread.run_sync(_open)

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            async with self._lock:
                await anyio.to_thread.run_sync(db.close)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the outbox is closed")
        return self._db

    async def add(self, durables: list[str], message: Message) -> list[int]:
        """Keep ``message`` once per durable name; returns the row numbers, in order."""
        headers = json.dumps(message.headers, ensure_ascii=False)
        rows = [(name, message.topic, headers, message.body) for name in durables]

        def _add() -> list[int]:
            db = self._conn()
            seqs = []
            with db:
                db.execute("BEGIN")
                for row in rows:
                    cursor = db.execute(
                        "INSERT INTO pending (durable, topic, headers, body) VALUES (?,?,?,?)",
                        row,
                    )
                    seqs.append(int(cursor.lastrowid or 0))
            return seqs

        async with self._lock:
            return await anyio.to_thread.run_sync(_add)

    async def done(self, seq: int) -> None:
        async with self._lock:
            await anyio.to_thread.run_sync(self._exec, "DELETE FROM pending WHERE seq=?", (seq,))

    async def set_attempt(self, seq: int, attempt: int) -> None:
        async with self._lock:
            await anyio.to_thread.run_sync(
                self._exec, "UPDATE pending SET attempt=? WHERE seq=?", (attempt, seq)
            )

    def _exec(self, sql: str, args: tuple[object, ...]) -> None:
        self._conn().execute(sql, args)

    async def load(self) -> list[Pending]:
        """Every waiting message, oldest first (after a restart)."""

        def _load() -> list[Pending]:
            cursor = self._conn().execute(
                "SELECT seq, durable, topic, headers, body, attempt FROM pending ORDER BY seq"
            )
            return [
                Pending(seq, durable, Message(topic, bytes(body), json.loads(headers), attempt))
                for seq, durable, topic, headers, body, attempt in cursor
            ]

        async with self._lock:
            return await anyio.to_thread.run_sync(_load)

    async def save_durable(self, spec: DurableSpec) -> None:
        async with self._lock:
            await anyio.to_thread.run_sync(
                self._exec,
                "INSERT OR REPLACE INTO durables (name, spec) VALUES (?, ?)",
                (spec.name, json.dumps(spec.to_json())),
            )

    async def load_durables(self) -> list[DurableSpec]:
        def _load() -> list[DurableSpec]:
            cursor = self._conn().execute("SELECT spec FROM durables")
            return [DurableSpec.from_json(json.loads(spec)) for (spec,) in cursor]

        async with self._lock:
            return await anyio.to_thread.run_sync(_load)
