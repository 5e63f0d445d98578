"""CloudEvents interop: the cloudevents SDK's RabbitMQ binding reads eventkit's events, and
eventkit reads the SDK's, with every attribute, through a real RabbitMQ."""

from __future__ import annotations

import aio_pika
import anyio
import pytest
from cloudevents.core.bindings import rabbitmq as ce_rabbitmq
from cloudevents.core.v1.event import CloudEvent

from eventkit.wire import Message, decode_attributes, to_message
from tests.conformance.targets.rabbitmq import AMQP_URL

from .conftest import MakeBroker

pytestmark = pytest.mark.anyio


async def test_the_sdk_reads_an_event_eventkit_published(
    make_broker: MakeBroker, exchange: str
) -> None:
    conn = await aio_pika.connect(AMQP_URL)
    async with conn, make_broker() as broker:
        channel = await conn.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, "shop.orders.placed")
        message = to_message(
            "shop.orders.placed",
            {"order_id": "o-1", "total_cents": 999},
            id="e-1",
            source="/services/shop/n1",
            type="shop.order.placed",
            time="2024-05-06T07:08:09Z",
            subject="o-1",
            extensions={"tenant": "acme"},
            headers={"eventkit-trace": "t1"},
        )
        await broker.publish(message)
        with anyio.fail_after(10):
            incoming = await _get(queue)
    assert incoming.content_type == "application/json"
    assert incoming.headers["eventkit-trace"] == "t1"
    event = ce_rabbitmq.from_binary_event(
        ce_rabbitmq.RabbitMQMessage(
            headers={k: str(v) for k, v in incoming.headers.items()},
            content_type=incoming.content_type,
            body=incoming.body,
        )
    )
    assert event.get_id() == "e-1"
    assert event.get_source() == "/services/shop/n1"
    assert event.get_type() == "shop.order.placed"
    assert event.get_subject() == "o-1"
    assert event.get_time() is not None
    assert event.get_time().isoformat() == "2024-05-06T07:08:09+00:00"
    assert event.get_datacontenttype() == "application/json"
    assert event.get_extension("tenant") == "acme"
    assert event.get_data() == {"order_id": "o-1", "total_cents": 999}


async def test_eventkit_reads_an_event_the_sdk_published(
    make_broker: MakeBroker, exchange: str
) -> None:
    event = CloudEvent(
        attributes={
            "id": "e-2",
            "source": "/legacy",
            "type": "shop.order.placed",
            "subject": "o-2",
            "datacontenttype": "application/json",
            "tenant": "acme",
        },
        data={"order_id": "o-2", "total_cents": 5},
    )
    wire = ce_rabbitmq.to_binary_event(event)
    got: list[Message] = []
    arrived = anyio.Event()

    async def handler(message: Message) -> None:
        got.append(message)
        arrived.set()

    conn = await aio_pika.connect(AMQP_URL)
    async with conn, make_broker() as broker:
        await broker.subscribe("shop.orders.*", handler)
        channel = await conn.channel()
        target = await channel.get_exchange(exchange)
        await target.publish(
            aio_pika.Message(wire.body, headers=wire.headers, content_type=wire.content_type),
            "shop.orders.placed",
            mandatory=False,
        )
        with anyio.fail_after(10):
            await arrived.wait()
    attrs, data, is_json = decode_attributes(got[0])
    assert attrs["id"] == "e-2"
    assert attrs["source"] == "/legacy"
    assert attrs["type"] == "shop.order.placed"
    assert attrs["subject"] == "o-2"
    assert attrs["tenant"] == "acme"
    assert attrs["datacontenttype"] == "application/json"
    assert "time" in attrs
    assert is_json
    assert data == b'{"order_id": "o-2", "total_cents": 5}'


async def _get(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    while True:
        incoming = await queue.get(fail=False, no_ack=True)
        if incoming is not None:
            return incoming
        await anyio.sleep(0.02)
