"""Fixtures for the RabbitMQ adapter's own tests: a fresh exchange per test, deleted after."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anyio
import pytest

from eventkit.brokers.rabbitmq import RabbitBroker
from tests.conformance.targets.rabbitmq import (
    AMQP_URL,
    delete_exchange,
    new_exchange,
    require_rabbitmq,
)

MakeBroker = Callable[..., RabbitBroker]


@pytest.fixture
async def exchange() -> AsyncIterator[str]:
    require_rabbitmq()
    name = new_exchange()
    yield name
    with anyio.CancelScope(shield=True), anyio.move_on_after(30):
        await delete_exchange(name)


@pytest.fixture
def make_broker(exchange: str) -> MakeBroker:
    """A factory of unconnected brokers on this test's exchange."""

    def make(**options: object) -> RabbitBroker:
        options.setdefault("drain_timeout", 5.0)
        return RabbitBroker(AMQP_URL, exchange=exchange, **options)  # type: ignore[arg-type]

    return make
