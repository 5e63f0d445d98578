"""Failures speak eventkit: a failing connect, publish or subscribe raises an EventKitError.

Driver exceptions (nats-py, aio-pika/aiormq, aiohttp, OSError, timeouts) are translated at
each adapter's boundary, so users catch one exception tree. Each case below makes an
operation fail for a different reason and checks the type of what comes out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from eventkit import (
    BrokerClosed,
    ConnectionLost,
    EventKitError,
    InvalidTopic,
    PayloadTooLarge,
)
from eventkit.brokers import Broker, DeliveryPolicy
from eventkit.wire import Message

from .target import Target
from .util import name

pytestmark = pytest.mark.anyio


async def nothing(message: Message) -> None:
    return None


async def raises_only_eventkit_errors(
    operation: Callable[[], Awaitable[Any]], *, timeout: float = 60.0
) -> EventKitError | None:
    """Run ``operation``; it may succeed, or fail with an EventKitError, and nothing else."""
    with anyio.fail_after(timeout):
        try:
            await operation()
        except EventKitError as exc:
            return exc
    return None


@pytest.mark.not_on("memory")  # in-process: there is no server to miss
async def test_connect_to_a_server_that_does_not_answer(target: Target) -> None:
    assert target.unreachable is not None, f"{target.name} must declare an unreachable broker"
    broker = target.unreachable()
    with anyio.fail_after(60), pytest.raises(ConnectionLost):
        await broker.connect()
    await broker.close()


async def test_use_before_connect_and_after_close(target: Target, topic: str) -> None:
    broker = target.new_broker()
    with pytest.raises(BrokerClosed):
        await broker.publish(Message(f"{topic}.x", b"1"))
    with pytest.raises(BrokerClosed):
        await broker.subscribe(f"{topic}.x", nothing)
    await broker.connect()
    await broker.close()
    with pytest.raises(BrokerClosed):
        await broker.publish(Message(f"{topic}.x", b"1"))
    with pytest.raises(BrokerClosed):
        await broker.subscribe(f"{topic}.x", nothing)
    with pytest.raises(BrokerClosed):
        await broker.connect()
    await broker.close()  # idempotent


async def test_bad_input_is_refused_with_eventkit_errors(broker: Broker, topic: str) -> None:
    for bad in ("", "a..b", "a.*", "a.>", "a b", "a.\n"):
        with pytest.raises(InvalidTopic):
            await broker.publish(Message(bad, b"1"))
    for bad_pattern in ("", "a..b", "a.>.b", "a b"):
        with pytest.raises(InvalidTopic):
            await broker.subscribe(bad_pattern, nothing)
    limit = broker.capabilities.max_payload
    if limit is not None:
        with pytest.raises(PayloadTooLarge):
            await broker.publish(Message(f"{topic}.big", b"x" * (limit + 1)))


@pytest.mark.not_on("memory", "http")  # in-process: there is no server to stop
async def test_a_server_outage_raises_only_eventkit_errors(
    target: Target, topic: str, request: pytest.FixtureRequest
) -> None:
    """On a server of the test's own (no shared server is stopped)."""
    assert target.restartable is not None  # Target refuses a server without one
    async with target.restartable() as server, server.new_broker() as broker:
        async with server.outage():
            durable = name(topic, "d")
            policy = DeliveryPolicy(max_attempts=2)
            outcomes = [
                await raises_only_eventkit_errors(
                    lambda: broker.publish(Message(f"{topic}.plain", b"1"))
                ),
                await raises_only_eventkit_errors(
                    lambda: broker.subscribe(f"{topic}.d", nothing, durable=durable, policy=policy)
                ),
                await raises_only_eventkit_errors(lambda: broker.subscribe(f"{topic}.p", nothing)),
            ]
        failed = [type(o).__name__ for o in outcomes if o is not None]
        # Whatever failed did so as an eventkit error (checked above); at least the durable
        # subscribe, which needs the server's answer, cannot succeed without a server.
        assert outcomes[1] is not None, f"durable subscribe succeeded with no server ({failed})"
