"""http:// : peer-to-peer nodes on loopback, port 0; a seed node lives for the session.

Every broker the suite makes joins through the seed, so any two of them find each other.
There is no server to restart (``in_process``): each node is its own broker, in this process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eventkit.brokers.http import HttpBroker

from ..target import Target


@asynccontextmanager
async def target() -> AsyncIterator[Target]:
    async with HttpBroker("http://127.0.0.1:0", gossip_interval=0.5, dead_after=5.0) as seed:
        url = f"http://127.0.0.1:0?seeds={seed.address}"

        def new_broker() -> HttpBroker:
            return HttpBroker(url, drain_timeout=2.0, gossip_interval=0.5, dead_after=5.0)

        # A node cannot listen where the seed already does: its connect fails.
        yield Target(
            name="http",
            new_broker=new_broker,
            in_process=True,
            unreachable=lambda: HttpBroker(f"http://{seed.address}"),
            remote=(url, {"drain_timeout": 2.0, "gossip_interval": 0.5, "dead_after": 5.0}),
        )
