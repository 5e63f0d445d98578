"""Durable subscriptions on RabbitMQ: attempts, backoff, dead letters, offline backlog."""

from __future__ import annotations

import aio_pika
import pytest

from eventkit.brokers import DeliveryPolicy
from eventkit.wire import (
    DEAD_LETTER_ATTEMPTS,
    DEAD_LETTER_REASON,
    DEAD_LETTER_TOPIC,
    DeadLetter,
    Message,
    dead_letter_topic,
)
from tests.conformance.targets.rabbitmq import AMQP_URL
from tests.conformance.util import Recorder, numbered, settle

from .conftest import MakeBroker

pytestmark = pytest.mark.anyio

FAST = DeliveryPolicy(max_attempts=3, backoff_initial=0.02, backoff_max=0.1)


async def _ready_count(queue_name: str) -> int:
    """Messages ready in a queue, from a passive declare."""
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        channel = await conn.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        return int(queue.declaration_result.message_count)


async def test_failures_are_retried_counted_and_dead_lettered(
    make_broker: MakeBroker, exchange: str
) -> None:
    attempts: list[int] = []
    dead = Recorder("dead letters")

    async def failing(message: Message) -> None:
        attempts.append(message.attempt)
        raise RuntimeError("card declined")

    async with make_broker() as broker:
        await broker.subscribe(dead_letter_topic("billing"), dead)
        await broker.subscribe("pay.charge", failing, durable="billing", policy=FAST)
        await settle(broker, broker)
        await broker.publish(Message("pay.charge", b"42", {"ce-id": "c-1", "x-id": "1"}))
        await dead.wait_for(1)
    assert attempts == [1, 2, 3]
    letter = dead.messages[0]
    assert letter.topic == "eventkit.deadletter.billing"
    assert letter.body == b"42"
    assert letter.headers["ce-id"] == "c-1"
    assert letter.headers[DEAD_LETTER_REASON] == "RuntimeError: card declined"
    assert letter.headers[DEAD_LETTER_TOPIC] == "pay.charge"
    assert letter.headers[DEAD_LETTER_ATTEMPTS] == "3"
    # ... and RabbitMQ keeps it in the dead-letter queue for whoever inspects it later.
    assert await _ready_count(f"{exchange}.deadletter.billing") == 1


async def test_dead_letter_exception_skips_the_remaining_attempts(make_broker: MakeBroker) -> None:
    attempts: list[int] = []
    dead = Recorder("dead letters")

    async def refusing(message: Message) -> None:
        attempts.append(message.attempt)
        raise DeadLetter("not a valid order")

    async with make_broker() as broker:
        await broker.subscribe(dead_letter_topic("orders"), dead)
        await broker.subscribe("shop.order", refusing, durable="orders", policy=FAST)
        await settle(broker, broker)
        await broker.publish(Message("shop.order", b"{}", {"x-id": "1"}))
        await dead.wait_for(1)
    assert attempts == [1]
    assert dead.messages[0].headers[DEAD_LETTER_REASON] == "not a valid order"
    assert dead.messages[0].headers[DEAD_LETTER_ATTEMPTS] == "1"


async def test_a_retry_that_succeeds_is_not_dead_lettered(
    make_broker: MakeBroker, exchange: str
) -> None:
    seen = Recorder("handled")

    async def flaky(message: Message) -> None:
        if message.attempt < 2:
            raise RuntimeError("try again")
        await seen(message)

    async with make_broker() as broker:
        await broker.subscribe("inv.x", flaky, durable="inv", policy=FAST)
        await broker.publish(Message("inv.x", b"1", {"x-id": "1"}))
        await seen.wait_for(1)
    assert [(m.topic, m.attempt, m.headers) for m in seen.messages] == [("inv.x", 2, {"x-id": "1"})]
    # The failed attempt was retried, not also dead-lettered: the dead-letter queue is empty.
    assert await _ready_count(f"{exchange}.deadletter.inv") == 0


async def test_an_offline_durable_subscriber_gets_the_whole_backlog(
    make_broker: MakeBroker,
) -> None:
    count = 1000
    async with make_broker() as publisher:
        async with make_broker() as first:
            sub = await first.subscribe("ledger.entry", Recorder(), durable="ledger")
            await sub.stop()
        for message in numbered("ledger.entry", count):
            await publisher.publish(message)
        got = Recorder("restarted subscriber")
        async with make_broker() as second:
            policy = DeliveryPolicy(max_in_flight=16)
            await second.subscribe("ledger.entry", got, durable="ledger", policy=policy)
            await got.wait_ids([str(i) for i in range(count)], timeout=30)
    assert len(got.messages) == count
    assert got.duplicates() == []
    assert {m.attempt for m in got.messages} == {1}
