"""Plain clients that know nothing of CloudEvents: nats-py and aio-pika, both directions.

In: a subscriber that opts in (``accept="any"``) takes whatever a plain producer sends, the
body as the data of an Event whose attributes come from the transport; one that does not
(the default) rejects it with an error that says how to opt in. A whole CloudEvent sent as a
body under ``content-type: application/json`` is recognised by its attributes either way.

Out: eventkit events in binary mode (the default on RabbitMQ; ``content_mode=binary`` or
``structured=False`` on NATS) are the bare data to a plain consumer, attributes in headers.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import anyio
import nats
import pytest
from nats.aio.msg import Msg
from pydantic import BaseModel

from eventkit import Client, Event, Service
from eventkit.brokers import Broker
from eventkit.brokers.nats import NatsBroker
from eventkit.brokers.rabbitmq import RabbitBroker
from tests.conformance.util import settle, wait_until

from .conftest import AMQP_URL

pytestmark = pytest.mark.anyio


class Order(BaseModel):
    order_id: str
    total_cents: int


ORDER = {"order_id": "o-1", "total_cents": 999}


@asynccontextmanager
async def running(svc: Service, broker: Broker, probe: Broker) -> AsyncIterator[Service]:
    """``svc`` started on ``broker``, its subscriptions live on the server."""
    await svc.start(broker=broker)
    try:
        async with probe:
            await settle(probe, svc.broker)
        yield svc
    finally:
        await svc.stop()


def topic() -> str:
    return f"raw{uuid.uuid4().hex[:10]}.orders"


class Seen:
    def __init__(self) -> None:
        self.items: list[Any] = []

    async def wait_for(self, count: int) -> list[Any]:
        await wait_until(lambda: len(self.items) >= count, what=f"{count} deliveries")
        return self.items


def plain_service(subject: str) -> tuple[Service, dict[str, Seen]]:
    """Subscribers of every shape on ``subject``, all with ``accept="any"``."""
    svc = Service("plain", namespace=f"n{uuid.uuid4().hex[:8]}")
    seen = {name: Seen() for name in ("event", "model", "raw", "text", "any")}

    @svc.subscribe(subject, accept="any")
    async def as_event(event: Event[Order]) -> None:
        seen["event"].items.append(event)

    @svc.subscribe(subject, accept="any")
    async def as_model(order: Order) -> None:
        seen["model"].items.append(order)

    @svc.subscribe(f"{subject}.bytes", accept="any")
    async def as_bytes(body: bytes) -> None:
        seen["raw"].items.append(body)

    @svc.subscribe(f"{subject}.text", accept="any")
    async def as_text(text: str) -> None:
        seen["text"].items.append(text)

    @svc.subscribe(f"{subject}.any", accept="any")
    async def as_any(event: Event[Any]) -> None:
        seen["any"].items.append(event)

    return svc, seen


# -- in: plain producers -------------------------------------------------------------------


async def test_plain_nats_messages_feed_typed_handlers_that_accept_any(nats_url: str) -> None:
    subject = topic()
    svc, seen = plain_service(subject)
    async with running(svc, NatsBroker(nats_url), NatsBroker(nats_url)):
        nc = await nats.connect(nats_url)
        try:
            await nc.publish(subject, json.dumps(ORDER).encode())  # no headers at all
            await nc.publish(f"{subject}.bytes", b"\x00\x01 not JSON")
            await nc.publish(f"{subject}.text", b"hello", headers={"content-type": "text/plain"})
            await nc.publish(f"{subject}.any", b"[1, 2]")
            await nc.publish(f"{subject}.any", b"plain words")
            await nc.flush()
        finally:
            await nc.close()
        (event,) = await seen["event"].wait_for(1)
        assert await seen["model"].wait_for(1) == [Order(**ORDER)]
        assert await seen["raw"].wait_for(1) == [b"\x00\x01 not JSON"]
        assert await seen["text"].wait_for(1) == ["hello"]
        json_any, words_any = await seen["any"].wait_for(2)
    assert isinstance(event, Event) and event.data == Order(**ORDER)
    assert event.type == subject  # the topic
    assert event.source == nats_url  # the broker, without credentials
    assert event.specversion == "1.0" and event.id
    assert event.datacontenttype == "application/json"  # the body was JSON
    assert json_any.data == [1, 2]
    assert words_any.data == b"plain words" and words_any.datacontenttype is None
    assert svc.stats.invalid == 0


async def test_plain_amqp_messages_feed_typed_handlers_that_accept_any(exchange: str) -> None:
    subject = topic()
    svc, seen = plain_service(subject)
    broker = RabbitBroker(AMQP_URL, exchange=exchange, drain_timeout=5.0)
    probe = RabbitBroker(AMQP_URL, exchange=exchange)
    async with running(svc, broker, probe):
        conn = await aio_pika.connect(AMQP_URL)
        async with conn:
            channel = await conn.channel()
            target = await channel.get_exchange(exchange)
            body = json.dumps(ORDER).encode()
            await target.publish(
                aio_pika.Message(body, content_type="application/json"), routing_key=subject
            )
            await target.publish(aio_pika.Message(b"\xff\xfe"), routing_key=f"{subject}.bytes")
            await target.publish(
                aio_pika.Message(b"hi", content_type="text/plain"), routing_key=f"{subject}.text"
            )
        (event,) = await seen["event"].wait_for(1)
        assert await seen["model"].wait_for(1) == [Order(**ORDER)]
        assert await seen["raw"].wait_for(1) == [b"\xff\xfe"]
        assert await seen["text"].wait_for(1) == ["hi"]
    assert event.data == Order(**ORDER) and event.type == subject
    assert event.source.startswith("amqp://") and "guest" not in event.source
    assert event.datacontenttype == "application/json"


async def test_the_default_rejects_plain_messages_and_says_how_to_opt_in(
    nats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    subject = topic()
    svc = Service("strict", namespace=f"n{uuid.uuid4().hex[:8]}")
    seen: list[Any] = []

    @svc.subscribe(subject)
    async def on_order(order: Order) -> None:
        seen.append(order)

    caplog.set_level(logging.WARNING, "eventkit.service")
    async with running(svc, NatsBroker(nats_url), NatsBroker(nats_url)):
        nc = await nats.connect(nats_url)
        try:
            await nc.publish(subject, json.dumps(ORDER).encode())
            await nc.publish(subject, json.dumps(ORDER).encode(), headers={"x": "y"})
            await nc.flush()
        finally:
            await nc.close()
        await wait_until(lambda: svc.stats.invalid == 2, what="two rejected messages")
    assert seen == []
    assert 'subscribe with accept="any"' in caplog.text
    assert "no ce-* headers" in caplog.text


@pytest.mark.parametrize("transport", ["nats", "rabbitmq"])
async def test_an_event_sent_as_plain_json_is_recognised_by_its_attributes(
    transport: str, nats_url: str, request: pytest.FixtureRequest
) -> None:
    """The whole envelope as the body, labelled ``application/json``, is an event in
    structured mode whatever the label: strict and lenient subscribers both read it."""
    subject = topic()
    envelope = {"specversion": "1.0", "id": "env-1", "source": "/elsewhere", "type": "placed"}
    body = json.dumps({**envelope, "data": ORDER}).encode()
    svc = Service("envelopes", namespace=f"n{uuid.uuid4().hex[:8]}")
    strict: list[Event[Order]] = []
    lenient: list[Event[Order]] = []

    @svc.subscribe(subject)
    async def on_strict(event: Event[Order]) -> None:
        strict.append(event)

    @svc.subscribe(subject, accept="any")
    async def on_lenient(event: Event[Order]) -> None:
        lenient.append(event)

    if transport == "nats":
        async with running(svc, NatsBroker(nats_url), NatsBroker(nats_url)):
            nc = await nats.connect(nats_url)
            await nc.publish(subject, body, headers={"content-type": "application/json"})
            await nc.close()
            await wait_until(lambda: strict and lenient, what="the event at both")
    else:
        exchange = request.getfixturevalue("amqp_exchange")
        broker = RabbitBroker(AMQP_URL, exchange=exchange)
        async with running(svc, broker, RabbitBroker(AMQP_URL, exchange=exchange)):
            conn = await aio_pika.connect(AMQP_URL)
            async with conn:
                target = await (await conn.channel()).get_exchange(exchange)
                message = aio_pika.Message(body, content_type="application/json")
                await target.publish(message, routing_key=subject)
            await wait_until(lambda: strict and lenient, what="the event at both")
    for event in (*strict, *lenient):
        assert (event.id, event.source, event.type) == ("env-1", "/elsewhere", "placed")
        assert event.data == Order(**ORDER)


# -- out: plain consumers read eventkit events as data -------------------------------------


async def test_a_plain_nats_consumer_reads_binary_events_as_the_data(nats_url: str) -> None:
    subject = topic()
    got: list[Msg] = []

    async def on_msg(msg: Msg) -> None:
        got.append(msg)

    nc = await nats.connect(nats_url)
    try:
        await nc.subscribe(subject, cb=on_msg)
        await nc.flush()
        async with Client(NatsBroker(nats_url, content_mode="binary")) as binary_kit:
            await binary_kit.publish(subject, Order(**ORDER))
        async with Client(NatsBroker(nats_url)) as kit:
            await kit.publish(subject, Order(**ORDER), structured=False)  # one publish only
        await wait_until(lambda: len(got) == 2, what="two events at nats-py")
    finally:
        await nc.close()
    for msg in got:
        assert json.loads(msg.data) == ORDER  # the data, nothing around it
        assert msg.headers is not None and msg.headers["ce-type"] == subject


async def test_a_plain_amqp_consumer_reads_events_as_the_data(exchange: str) -> None:
    subject = topic()
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        channel = await conn.channel()
        queue = await channel.declare_queue(exclusive=True)
        async with Client(RabbitBroker(AMQP_URL, exchange=exchange)) as kit:
            await queue.bind(exchange, subject)
            await kit.publish(subject, Order(**ORDER))
        with anyio.fail_after(10):
            while (incoming := await queue.get(fail=False)) is None:
                await anyio.sleep(0.02)
        await incoming.ack()
    assert json.loads(incoming.body) == ORDER
    assert incoming.content_type == "application/json"
    assert incoming.headers["ce-type"] == subject
