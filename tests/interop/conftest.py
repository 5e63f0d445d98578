"""Fixtures for the interop tests: a NATS server of their own, a RabbitMQ exchange per test.

Each test pairs eventkit with a client nobody here wrote (nats-py, aio-pika, FastStream, the
cloudevents SDK, a Dapr-shaped HTTP request) on real servers: an embedded ``nats-server``
for the session (so no other test's messages or services are seen) and a fresh exchange on
the machine's RabbitMQ for each test (a failure under CI when RabbitMQ does not answer).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio
import pytest

from eventkit.brokers.nats._embedded import EmbeddedNats
from tests.conformance.targets.rabbitmq import (
    AMQP_URL,
    delete_exchange,
    new_exchange,
    require_rabbitmq,
)

__all__ = ["AMQP_URL"]


@pytest.fixture(scope="session")
async def nats_url() -> AsyncIterator[str]:
    async with EmbeddedNats() as server:
        yield server.url


@pytest.fixture
async def exchange() -> AsyncIterator[str]:
    require_rabbitmq()
    name = new_exchange()
    yield name
    with anyio.CancelScope(shield=True), anyio.move_on_after(30):
        await delete_exchange(name)


@pytest.fixture
def amqp_exchange() -> Iterator[str]:
    """:func:`exchange` for tests that ask for it by name (``request.getfixturevalue``,
    which cannot start an async fixture): deleted in a loop of its own afterwards."""
    require_rabbitmq()
    name = new_exchange()
    yield name
    anyio.run(delete_exchange, name)
