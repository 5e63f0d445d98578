"""memory:// : one in-process bus per test session (no server: ``in_process``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eventkit.brokers.memory import MemoryBroker

from ..target import Target


@asynccontextmanager
async def target() -> AsyncIterator[Target]:
    url = f"memory://conformance-{uuid.uuid4().hex[:8]}"
    yield Target(
        name="memory",
        new_broker=lambda: MemoryBroker(url, drain_timeout=5.0),
        in_process=True,
    )
