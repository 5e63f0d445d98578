"""Durable subscriptions: at-least-once, redelivery with attempts, dead letters, offline."""

from __future__ import annotations

from functools import partial

import anyio
import pytest

from eventkit.brokers import Broker, DeliveryPolicy
from eventkit.wire import (
    DEAD_LETTER_ATTEMPTS,
    DEAD_LETTER_REASON,
    DEAD_LETTER_TOPIC,
    DeadLetter,
    Message,
    UnsupportedFeature,
    dead_letter_topic,
)

from .target import Target
from .util import Recorder, msg_id, name, numbered, settle, wait_until

pytestmark = pytest.mark.anyio

FAST = DeliveryPolicy(max_attempts=3, backoff_initial=0.01, backoff_max=0.05)
BODY = bytes(range(256))


async def _unsupported(broker: Broker, topic: str) -> bool:
    """Where durable subscriptions are not supported, asking for one must say so."""
    if broker.capabilities.durable:
        return False
    with pytest.raises(UnsupportedFeature):
        await broker.subscribe(f"{topic}.d", Recorder(), durable=name(topic, "d"))
    return True


class Flaky:
    """Fails the first ``failures`` deliveries of each message, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: dict[str, list[int]] = {}
        self.handled: list[str] = []

    async def __call__(self, message: Message) -> None:
        seen = self.attempts.setdefault(msg_id(message), [])
        seen.append(message.attempt)
        if len(seen) <= self.failures:
            raise RuntimeError(f"flaky failure {len(seen)} of {msg_id(message)}")
        self.handled.append(msg_id(message))


async def test_failing_handler_gets_the_message_again(broker: Broker, topic: str) -> None:
    if await _unsupported(broker, topic):
        return
    policy = DeliveryPolicy(max_attempts=5, backoff_initial=0.01, backoff_max=0.05)
    flaky = Flaky(failures=2)
    await broker.subscribe(f"{topic}.d", flaky, durable=name(topic, "d"), policy=policy)
    await settle(broker, broker)
    await broker.publish(Message(f"{topic}.d", BODY, {"x-id": "1", "x-note": "keep"}))
    await wait_until(lambda: flaky.handled == ["1"], what="the third attempt to succeed")
    assert flaky.attempts["1"] == [1, 2, 3]


async def test_dead_letter_after_max_attempts(broker: Broker, topic: str) -> None:
    if await _unsupported(broker, topic):
        return
    durable = name(topic, "d")
    dead = Recorder("dead letters")
    await broker.subscribe(dead_letter_topic(durable), dead)
    flaky = Flaky(failures=100)
    await broker.subscribe(f"{topic}.orders.placed", flaky, durable=durable, policy=FAST)
    await settle(broker, broker)
    headers = {"x-id": "1", "x-text": "grüße"}
    await broker.publish(Message(f"{topic}.orders.placed", BODY, headers))
    await dead.wait_for(1)
    letter = dead.messages[0]
    assert flaky.attempts["1"] == [1, 2, 3]
    assert letter.topic == dead_letter_topic(durable)
    assert letter.body == BODY
    assert letter.headers["x-id"] == "1"
    assert letter.headers["x-text"] == "grüße"
    assert "flaky failure 3 of 1" in letter.headers[DEAD_LETTER_REASON]
    assert letter.headers[DEAD_LETTER_TOPIC] == f"{topic}.orders.placed"
    assert letter.headers[DEAD_LETTER_ATTEMPTS] == "3"
    await broker.publish(Message(f"{topic}.orders.placed", b"", {"x-id": "2"}))
    await dead.wait_for(2)  # the subscription lives on after a dead letter
    assert flaky.attempts["1"] == [1, 2, 3]


async def test_dead_letter_exception_skips_the_retries(broker: Broker, topic: str) -> None:
    if await _unsupported(broker, topic):
        return
    durable = name(topic, "d")
    dead = Recorder("dead letters")
    attempts: list[int] = []

    async def reject(message: Message) -> None:
        attempts.append(message.attempt)
        raise DeadLetter("why: the order has no items")

    await broker.subscribe(dead_letter_topic(durable), dead)
    await broker.subscribe(f"{topic}.d", reject, durable=durable, policy=FAST)
    await settle(broker, broker)
    await broker.publish(Message(f"{topic}.d", BODY, {"x-id": "1"}))
    await dead.wait_for(1)
    letter = dead.messages[0]
    assert attempts == [1]
    assert "why: the order has no items" in letter.headers[DEAD_LETTER_REASON]
    assert letter.headers[DEAD_LETTER_ATTEMPTS] == "1"
    assert letter.headers[DEAD_LETTER_TOPIC] == f"{topic}.d"
    assert letter.body == BODY


async def test_messages_wait_for_the_next_subscriber(
    broker: Broker, target: Target, topic: str
) -> None:
    if await _unsupported(broker, topic):
        return
    durable = name(topic, "d")
    first = Recorder("first run")
    sub = await broker.subscribe(f"{topic}.d", first, durable=durable, policy=FAST)
    await settle(broker, broker)
    await broker.publish(Message(f"{topic}.d", b"", {"x-id": "before"}))
    await first.wait_ids(["before"])
    await sub.stop()
    for message in numbered(f"{topic}.d", 50):
        await broker.publish(message)
    async with target.new_broker() as later:
        second = Recorder("second run")
        await later.subscribe(f"{topic}.d", second, durable=durable, policy=FAST)
        await second.wait_ids(str(i) for i in range(50))
    assert first.ids() == ["before"]


async def test_subscribers_of_one_durable_share_the_work(
    broker: Broker, target: Target, topic: str
) -> None:
    if await _unsupported(broker, topic):
        return
    durable = name(topic, "d")
    async with target.new_broker() as other:
        a, b = Recorder("a"), Recorder("b")
        await broker.subscribe(f"{topic}.d", a, durable=durable, policy=FAST)
        await other.subscribe(f"{topic}.d", b, durable=durable, policy=FAST)
        await settle(broker, broker, other)
        for message in numbered(f"{topic}.d", 100):
            await broker.publish(message)
        await wait_until(
            lambda: {*a.ids(), *b.ids()} >= {str(i) for i in range(100)},
            what="all 100 handled by one of the two",
        )
        assert a.messages and b.messages, (len(a.messages), len(b.messages))  # both worked


def _progressed(recorder: Recorder, seen: int, published: anyio.Event) -> bool:
    return len(recorder.messages) > seen or published.is_set()


async def test_subscribe_stop_cycles_lose_nothing(
    broker: Broker, target: Target, topic: str
) -> None:
    if await _unsupported(broker, topic):
        return
    durable = name(topic, "d")
    count = 300
    got = Recorder("cycles")
    policy = DeliveryPolicy(max_in_flight=4, max_attempts=5, backoff_initial=0.01)

    async def slow(message: Message) -> None:
        await anyio.sleep(0.001)  # handlers in flight when a stop comes are the point
        await got(message)

    sub = await broker.subscribe(f"{topic}.d", slow, durable=durable, policy=policy)
    await settle(broker, broker)
    async with target.new_broker() as publisher:
        await settle(publisher, broker)
        published = anyio.Event()

        async def publish() -> None:
            for message in numbered(f"{topic}.d", count):
                await publisher.publish(message)
                await anyio.sleep(0.001)  # paces the stream over several subscribe/stop cycles
            published.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(publish)
            cycles = 0
            while not published.is_set() or cycles < 5:
                await wait_until(
                    partial(_progressed, got, len(got.messages), published),
                    what="progress between subscribe and stop",
                )
                await sub.stop()
                sub = await broker.subscribe(f"{topic}.d", slow, durable=durable, policy=policy)
                cycles += 1
                assert cycles < 1000
        await got.wait_ids((str(i) for i in range(count)), timeout=30)
        await sub.stop()
