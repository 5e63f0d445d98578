"""Testing helpers: run a real service on ``memory://`` and drive it like a caller would.

Nothing is patched: the service starts exactly as in production, on a memory bus of its own,
and the test talks to it through a real client on the same bus. ``join()`` waits until every
event (and every event the handlers published in turn) has been handled, so a test can
publish, join, and assert without sleeping::

    async with eventkit.testing.run(svc) as kit:
        await kit.publish("shop.orders.placed", OrderPlaced(order_id="o-1", total_cents=5))
        await kit.join()
        assert ...
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from .brokers.memory import MemoryBroker
from .service import Client, Service
from .wire import DataCodec, Decoder, Event, Message

__all__ = ["Recorder", "TestKit", "run"]


class TestKit(Client):
    """A client on the test bus, with ``join()`` and ``record()``."""

    __test__ = False  # not a pytest test class
    broker: MemoryBroker

    async def join(self, timeout: float = 10.0) -> None:
        """Wait until the bus is idle: every published event handled, retries included."""
        await self.broker.join(timeout)

    async def record(self, topic: str, data_type: Any = Any) -> Recorder:
        """Subscribe to ``topic`` and keep every event seen there (data as ``data_type``)."""
        recorder = Recorder(data_type)
        await self.broker.subscribe(topic, recorder._on_message)
        return recorder


class Recorder:
    """The events seen on a topic, in arrival order (``events``) with their data (``data``)."""

    def __init__(self, data_type: Any) -> None:
        self._decode = Decoder(DataCodec(data_type), event=True)
        self.events: list[Event[Any]] = []

    @property
    def data(self) -> list[Any]:
        return [event.data for event in self.events]

    async def _on_message(self, message: Message) -> None:
        self.events.append(self._decode(message))


@asynccontextmanager
async def run(
    *services: Service, url: str | None = None, token: str | None = None
) -> AsyncIterator[TestKit]:
    """Start ``services`` on a fresh memory bus; yield a :class:`TestKit` on the same bus.

    ``token``: what the kit sends with its calls and events, to test a service's scopes
    (``auth.mint("tester", ["orders:write"])``; docs/security.md)."""
    url = url or f"memory://test-{uuid.uuid4().hex[:12]}"
    started: list[Service] = []
    kit = TestKit(MemoryBroker(url), token=token)
    try:
        for service in services:
            await service.start(broker=MemoryBroker(url))
            started.append(service)
        async with kit:
            yield kit
    finally:
        for service in reversed(started):
            await service.stop()
