"""A restart of what holds the store loses nothing it acknowledged.

A writer process puts keys as fast as it can and prints each acknowledged put; it is killed
(SIGKILL) in the middle of the stream, then the backing server is crashed and started again
(NATS: SIGKILL; PostgreSQL: an immediate shutdown, which skips the checkpoint as a crash
does; SQLite has no server: the killed process is the crash). Every acknowledged key must
then read back with its value. The memory store holds nothing across processes, by design.
PostgreSQL runs here on a private server the test starts (``initdb``/``pg_ctl``): the shared
one is never restarted.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from eventkit import EventKitError
from eventkit.brokers.memory import MemoryBroker
from eventkit.brokers.nats import EmbeddedNats, NatsBroker
from eventkit.store import Store
from tests.servers import skip_or_fail

from .conftest import CHOSEN
from .postgres import PrivatePostgres

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
ACKED = 200


@dataclass
class Backing:
    broker_url: str
    store_url: str | None
    restart: Callable[[], Awaitable[None]]


@asynccontextmanager
async def backing(name: str, tmp_path: Path) -> AsyncIterator[Backing]:
    if name == "nats":
        async with EmbeddedNats() as server:

            async def crash() -> None:
                await anyio.to_thread.run_sync(lambda: server.stop_node(0, kill=True))
                await anyio.to_thread.run_sync(server.start_node, 0)

            yield Backing(server.url, None, crash)
    elif name == "sqlite":

        async def nothing() -> None:
            """The writer's crash is the restart: SQLite has no server."""

        yield Backing("memory://", f"sqlite:///{tmp_path}/store.db", nothing)
    elif name == "postgresql":
        missing = PrivatePostgres.available()
        if missing is not None:
            skip_or_fail(f"a private PostgreSQL cannot start: {missing}")
        server = await anyio.to_thread.run_sync(PrivatePostgres.create)
        try:
            yield Backing("memory://", server.url, lambda: anyio.to_thread.run_sync(server.restart))
        finally:
            await anyio.to_thread.run_sync(server.remove)
    else:
        raise AssertionError(name)


@pytest.mark.parametrize("name", [n for n in ("nats", "sqlite", "postgresql") if n in CHOSEN])
async def test_restart_loses_nothing_acknowledged(name: str, tmp_path: Path) -> None:
    async with backing(name, tmp_path) as where:
        acked: dict[int, int] = {}
        writer = await anyio.open_process(
            [
                sys.executable,
                "-m",
                "tests.store.writer",
                where.broker_url,
                where.store_url or "-",
                "durable",
            ],
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        try:
            assert writer.stdout is not None
            buffer = b""
            with anyio.fail_after(60):
                async for chunk in writer.stdout:
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        index, revision = map(int, line.split())
                        acked[index] = revision
                    if len(acked) >= ACKED:
                        break
        finally:
            writer.kill()  # in the middle of a put: the next one was on its way
            await writer.wait()
        await where.restart()

        if where.store_url is None:
            broker: NatsBroker | MemoryBroker = NatsBroker(where.broker_url)
        else:
            broker = MemoryBroker("memory://")
        async with broker:
            store = Store(lambda: broker, lambda: where.store_url)
            try:
                values = store("durable", int)
                with anyio.fail_after(30):
                    while True:  # a restarted NATS may take a moment to serve the bucket
                        try:
                            keys = set(await values.keys())
                            break
                        except EventKitError:
                            await anyio.sleep(0.2)
                missing = [i for i in acked if f"k{i}" not in keys]
                assert missing == [], f"{len(missing)} acknowledged puts lost: {missing[:10]}"
                for index, revision in acked.items():
                    entry = await values.get(f"k{index}")
                    assert entry is not None
                    assert (entry.value, entry.revision) == (index, revision)
            finally:
                await store.close()
