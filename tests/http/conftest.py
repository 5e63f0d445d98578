"""Fixtures for the HTTP broker's own tests: nodes on loopback, port 0."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from eventkit.brokers.http import HttpBroker

NodeFactory = Callable[..., Any]


@pytest.fixture
async def nodes() -> AsyncIterator[NodeFactory]:
    """``await nodes(seeds=..., **options)`` starts a node that is closed after the test."""
    async with AsyncExitStack() as stack:

        async def start(*, seeds: str = "", **options: Any) -> HttpBroker:
            url = "http://127.0.0.1:0" + (f"?seeds={seeds}" if seeds else "")
            options.setdefault("gossip_interval", 0.2)
            options.setdefault("dead_after", 2.0)
            options.setdefault("drain_timeout", 2.0)
            return await stack.enter_async_context(HttpBroker(url, **options))

        yield start
