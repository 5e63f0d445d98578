"""FastStream, both directions, on NATS and RabbitMQ.

In: FastStream publishers send a pydantic model as JSON with their own headers; an eventkit
subscriber with ``accept="any"`` takes it as ``Event[Order]`` (or ``Order``).

Out: FastStream's typed subscribers read eventkit events in binary mode, where the body is
the data (RabbitMQ's default; ``content_mode=binary`` on NATS). eventkit's default on NATS,
the structured envelope, is read by a FastStream subscriber given the decoder of
:func:`cloudevent_data` (the recipe in docs/interop.md).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from faststream.nats import NatsBroker as FsNats
from faststream.rabbit import ExchangeType, RabbitExchange, RabbitQueue
from faststream.rabbit import RabbitBroker as FsRabbit
from pydantic import BaseModel

from eventkit import Client, Event, Service
from eventkit.brokers.nats import NatsBroker
from eventkit.brokers.rabbitmq import RabbitBroker
from tests.conformance.util import settle, wait_until

from .conftest import AMQP_URL

pytestmark = pytest.mark.anyio


class Order(BaseModel):
    order_id: str
    total_cents: int


ORDER = Order(order_id="o-7", total_cents=700)


def topic() -> str:
    return f"fs{uuid.uuid4().hex[:10]}.orders"


def exchange_of(name: str) -> RabbitExchange:
    """eventkit's exchange as FastStream declares it (a durable topic exchange)."""
    return RabbitExchange(name, type=ExchangeType.TOPIC, durable=True)


@asynccontextmanager
async def started(*brokers: Any) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for broker in brokers:
            await broker.start()
            stack.push_async_callback(broker.stop)
        yield


async def cloudevent_data(msg: Any) -> Any:
    """A FastStream decoder for eventkit's structured events: the event's ``data``."""
    envelope = json.loads(msg.body)
    return (
        envelope["data"] if isinstance(envelope, dict) and "specversion" in envelope else envelope
    )


# -- in ------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["nats", "rabbitmq"])
async def test_a_faststream_publisher_feeds_an_eventkit_subscriber(
    transport: str, nats_url: str, exchange: str
) -> None:
    subject = topic()
    svc = Service("fs-in", namespace=f"n{uuid.uuid4().hex[:8]}")
    events: list[Event[Order]] = []
    orders: list[Order] = []

    @svc.subscribe(subject, accept="any")
    async def on_event(event: Event[Order]) -> None:
        events.append(event)

    @svc.subscribe(subject, accept="any")
    async def on_order(order: Order) -> None:
        orders.append(order)

    if transport == "nats":
        broker, probe = NatsBroker(nats_url), NatsBroker(nats_url)
        publisher: Any = FsNats(nats_url, logger=None)
    else:
        broker = RabbitBroker(AMQP_URL, exchange=exchange)
        probe = RabbitBroker(AMQP_URL, exchange=exchange)
        publisher = FsRabbit(AMQP_URL, logger=None)
    await svc.start(broker=broker)
    try:
        async with probe:
            await settle(probe, svc.broker)
        async with started(publisher):
            if transport == "nats":
                await publisher.publish(ORDER, subject)
            else:
                await publisher.publish(ORDER, routing_key=subject, exchange=exchange_of(exchange))
        await wait_until(lambda: events and orders, what="the order at both subscribers")
    finally:
        await svc.stop()
    (event,) = events
    assert event.data == ORDER and orders == [ORDER]
    assert event.type == subject
    assert event.datacontenttype == "application/json"


# -- out -----------------------------------------------------------------------------------


async def test_faststream_typed_subscribers_read_eventkit_events_on_nats(nats_url: str) -> None:
    subject = topic()
    binary: list[Order] = []
    structured: list[Order] = []
    consumer = FsNats(nats_url, logger=None)

    @consumer.subscriber(f"{subject}.binary")
    async def on_binary(order: Order) -> None:
        binary.append(order)

    @consumer.subscriber(f"{subject}.structured", decoder=cloudevent_data)
    async def on_structured(order: Order) -> None:
        structured.append(order)

    async with started(consumer):
        async with Client(NatsBroker(nats_url, content_mode="binary")) as kit:
            await kit.publish(f"{subject}.binary", ORDER)
        async with Client(NatsBroker(nats_url)) as kit:
            await kit.publish(f"{subject}.binary", ORDER, structured=False)
            await kit.publish(f"{subject}.structured", ORDER)  # the default: structured
        await wait_until(
            lambda: len(binary) == 2 and len(structured) == 1, what="three orders at FastStream"
        )
    assert binary == [ORDER, ORDER] and structured == [ORDER]


async def test_a_faststream_typed_subscriber_reads_eventkit_events_on_rabbitmq(
    exchange: str,
) -> None:
    subject = topic()
    orders: list[Order] = []
    consumer = FsRabbit(AMQP_URL, logger=None)
    queue = RabbitQueue(f"{exchange}-fs", auto_delete=True, routing_key=subject)

    @consumer.subscriber(queue, exchange_of(exchange))
    async def on_order(order: Order) -> None:
        orders.append(order)

    async with started(consumer), Client(RabbitBroker(AMQP_URL, exchange=exchange)) as kit:
        await kit.publish(subject, ORDER)  # binary mode: RabbitMQ's default
        await wait_until(lambda: orders, what="the order at FastStream")
    assert orders == [ORDER]
