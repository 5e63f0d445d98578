"""The cloudevents SDK (2.x) as a producer on every broker: an event with no datacontenttype
reaches a typed subscriber (one test per broker, both content modes).

What the SDK sends for a ``dict`` by default has no ``datacontenttype``; the JSON event
format reads an absent one as JSON, so a typed subscriber takes it in either mode on NATS
(raw nats-py carrying the SDK's headers and bodies), RabbitMQ (the SDK's own RabbitMQ
binding over aio-pika), HTTP (the SDK's HTTP binding over aiohttp, which labels an untyped
body ``application/octet-stream``) and memory. The SDK reading eventkit's events is checked
per adapter: tests/nats/test_binding.py, tests/rabbitmq/test_interop.py,
tests/http/test_interop.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import aiohttp
import nats
import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.bindings import rabbitmq as ce_rabbitmq
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel

from eventkit import Event, Service
from eventkit.brokers import Broker
from eventkit.brokers.http import HttpBroker
from eventkit.brokers.memory import MemoryBroker
from eventkit.brokers.nats import NatsBroker
from eventkit.brokers.rabbitmq import RabbitBroker
from eventkit.wire import Message
from tests.conformance.util import settle, wait_until

from .conftest import AMQP_URL

pytestmark = pytest.mark.anyio


class Order(BaseModel):
    order_id: str


def untyped_event() -> CloudEvent:
    """An SDK event with dict data and no datacontenttype (the SDK's default)."""
    event = CloudEvent(
        attributes={"id": f"sdk-{uuid.uuid4().hex[:6]}", "source": "/sdk", "type": "t"},
        data={"order_id": "o-1"},
    )
    assert event.get_datacontenttype() is None
    return event


Send = Callable[[str, Broker, CloudEvent, str], Awaitable[None]]


async def via_nats(url: str, broker: Broker, event: CloudEvent, mode: str) -> None:
    nc = await nats.connect(url)
    try:
        if mode == "binary":
            wire = ce_http.to_binary(event, JSONFormat())  # the same ce-* headers as NATS
            assert "content-type" not in wire.headers
            await nc.publish("sdk.orders", wire.body, headers=wire.headers)
        else:
            body = JSONFormat().write(event)
            await nc.publish("sdk.orders", body, headers={"content-type": JSONFormat.CONTENT_TYPE})
        await nc.flush()
    finally:
        await nc.close()


async def via_rabbitmq(url: str, broker: Broker, event: CloudEvent, mode: str) -> None:
    wire = (
        ce_rabbitmq.to_binary_event(event)
        if mode == "binary"
        else ce_rabbitmq.to_structured_event(event)
    )
    conn = await aio_pika.connect(url)
    async with conn:
        assert isinstance(broker, RabbitBroker)
        target = await (await conn.channel()).get_exchange(broker.exchange)
        message = aio_pika.Message(
            wire.body, headers=dict(wire.headers), content_type=wire.content_type
        )
        await target.publish(message, routing_key="sdk.orders")


def sdk_http(event: CloudEvent, mode: str) -> Any:
    return (
        ce_http.to_binary_event(event) if mode == "binary" else ce_http.to_structured_event(event)
    )


async def via_http(url: str, broker: Broker, event: CloudEvent, mode: str) -> None:
    wire = (
        ce_http.to_binary_event(event) if mode == "binary" else ce_http.to_structured_event(event)
    )
    assert isinstance(broker, HttpBroker)
    async with aiohttp.ClientSession() as session:
        target = f"http://{broker.address}/topics/sdk.orders"
        async with session.post(target, data=wire.body, headers=wire.headers) as resp:
            assert resp.status == 202, await resp.text()


async def via_memory(url: str, broker: Broker, event: CloudEvent, mode: str) -> None:
    wire = (
        ce_http.to_binary_event(event) if mode == "binary" else ce_http.to_structured_event(event)
    )
    await broker.publish(Message("sdk.orders", wire.body, dict(wire.headers)))


async def delivered(broker: Broker, probe: Broker | None, send: Send, url: str, mode: str) -> None:
    """Send an untyped SDK event with ``send`` and check what a typed subscriber gets."""
    svc = Service("sdk-in", namespace=f"n{uuid.uuid4().hex[:8]}")
    seen: list[Event[Order]] = []

    @svc.subscribe("sdk.orders")
    async def on_order(event: Event[Order]) -> None:
        seen.append(event)

    event = untyped_event()
    await svc.start(broker=broker)
    try:
        if probe is not None:
            async with probe:
                await settle(probe, svc.broker)
        await send(url, svc.broker, event, mode)
        await wait_until(lambda: seen, what=f"the SDK's event ({mode})")
    finally:
        await svc.stop()
    (got,) = seen
    assert got.id == event.get_id() and got.source == "/sdk"
    assert got.data == Order(order_id="o-1")
    assert got.datacontenttype is None
    assert svc.stats.invalid == 0


MODES = pytest.mark.parametrize("mode", ["binary", "structured"])


@MODES
async def test_nats(mode: str, nats_url: str) -> None:
    await delivered(NatsBroker(nats_url), NatsBroker(nats_url), via_nats, nats_url, mode)


@MODES
async def test_rabbitmq(mode: str, exchange: str) -> None:
    broker = RabbitBroker(AMQP_URL, exchange=exchange)
    probe = RabbitBroker(AMQP_URL, exchange=exchange)
    await delivered(broker, probe, via_rabbitmq, AMQP_URL, mode)


@MODES
async def test_http(mode: str) -> None:
    await delivered(HttpBroker("http://127.0.0.1:0"), None, via_http, "", mode)


@MODES
async def test_memory(mode: str) -> None:
    broker = MemoryBroker(f"memory://sdk-{uuid.uuid4().hex}")
    await delivered(broker, None, via_memory, "", mode)
