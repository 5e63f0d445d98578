"""Publish and subscribe: what arrives, where, and intact."""

from __future__ import annotations

import random

import anyio
import pytest

from eventkit.brokers import Broker, DeliveryPolicy
from eventkit.wire import Message, PayloadTooLarge

from .target import Target
from .util import Recorder, numbered, settle, wait_until

pytestmark = pytest.mark.anyio

ALL_BYTES = bytes(range(256)) * 4


async def test_headers_and_body_arrive_intact(broker: Broker, topic: str) -> None:
    got = Recorder()
    await broker.subscribe(f"{topic}.orders.placed", got)
    await settle(broker, broker)
    many = {f"x-h{i:03d}": f"value {i}" for i in range(40)}
    sent = [
        Message(f"{topic}.orders.placed", ALL_BYTES, {"x-id": "0", "x-kind": "binary"}),
        Message(
            f"{topic}.orders.placed",
            "grüße, 注文, 🛒".encode(),
            {"x-id": "1", "x-text": "grüße 注文 🛒 ünïcödé", "x-spaces": " a  b "},
        ),
        Message(f"{topic}.orders.placed", b"", {"x-id": "2", **many}),
        Message(f"{topic}.orders.placed", b"no headers but the id", {"x-id": "3"}),
    ]
    for message in sent:
        await broker.publish(message)
    await got.wait_ids(["0", "1", "2", "3"])
    by_id = {m.headers["x-id"]: m for m in got.messages}
    for message in sent:
        received = by_id[message.headers["x-id"]]
        assert received.body == message.body
        for key, value in message.headers.items():
            assert received.headers.get(key) == value, key
        assert received.topic == f"{topic}.orders.placed"
        assert received.attempt == 1
    assert got.duplicates() == []


async def test_delivery_carries_the_concrete_topic(broker: Broker, topic: str) -> None:
    got = Recorder()
    await broker.subscribe(f"{topic}.*.placed", got)
    await broker.subscribe(f"{topic}.>", got)
    await settle(broker, broker)
    await broker.publish(Message(f"{topic}.orders.placed", b"x", {"x-id": "1"}))
    await got.wait_for(2)
    assert [m.topic for m in got.messages] == [f"{topic}.orders.placed"] * 2


async def test_delivered_messages_are_copies(broker: Broker, topic: str) -> None:
    """A handler that edits its message, or a publisher reusing its own, changes nothing for
    anyone else: every delivery is the message as it was published."""
    seen: list[dict[str, str]] = []

    async def meddler(message: Message) -> None:
        message.headers["x-meddled"] = "yes"
        message.headers["x-id"] = "changed"

    async def observer(message: Message) -> None:
        seen.append(dict(message.headers))

    await broker.subscribe(f"{topic}.a", meddler)
    await broker.subscribe(f"{topic}.a", observer)
    await settle(broker, broker)
    message = Message(f"{topic}.a", b"x", {"x-id": "1"})
    await broker.publish(message)
    message.headers["x-id"] = "2"  # the publisher reuses its object
    await broker.publish(message)
    await wait_until(lambda: len(seen) == 2, what="two deliveries to the observer")
    assert sorted(h["x-id"] for h in seen) == ["1", "2"]
    assert all("x-meddled" not in h for h in seen)


async def test_topics_never_leak(broker: Broker, topic: str) -> None:
    exact = Recorder("a.b")
    longer = Recorder("a.bc")
    deeper = Recorder("a.b.c")
    await broker.subscribe(f"{topic}.a.b", exact)
    await broker.subscribe(f"{topic}.a.bc", longer)
    await broker.subscribe(f"{topic}.a.b.c", deeper)
    await settle(broker, broker)
    # Each subscriber's own message is published last, so where the broker keeps order a
    # leak would have arrived before it.
    for name in ("a.bc", "a.b.c", "a", "a.b.cd", "ab", "a.b"):
        await broker.publish(Message(f"{topic}.{name}", name.encode(), {"x-id": name}))
    await exact.wait_ids(["a.b"])
    await longer.wait_ids(["a.bc"])
    await deeper.wait_ids(["a.b.c"])
    assert exact.ids() == ["a.b"]
    assert longer.ids() == ["a.bc"]
    assert deeper.ids() == ["a.b.c"]


async def test_fan_out_on_one_broker(broker: Broker, topic: str) -> None:
    first, second = Recorder("first"), Recorder("second")
    await broker.subscribe(f"{topic}.news", first)
    await broker.subscribe(f"{topic}.news", second)
    await settle(broker, broker)
    for message in numbered(f"{topic}.news", 50):
        await broker.publish(message)
    ids = [str(i) for i in range(50)]
    await first.wait_ids(ids)
    await second.wait_ids(ids)
    assert first.duplicates() == second.duplicates() == []


async def test_fan_out_across_brokers(broker: Broker, target: Target, topic: str) -> None:
    async with target.new_broker() as other, target.new_broker() as third:
        here, there, also = Recorder("here"), Recorder("there"), Recorder("also")
        await broker.subscribe(f"{topic}.news", here)
        await other.subscribe(f"{topic}.news", there)
        await third.subscribe(f"{topic}.news", also)
        await settle(broker, broker, other, third)
        for message in numbered(f"{topic}.news", 50):
            await broker.publish(message)
        ids = [str(i) for i in range(50)]
        for recorder in (here, there, also):
            await recorder.wait_ids(ids)
            assert recorder.duplicates() == []


async def test_star_matches_exactly_one_token(broker: Broker, topic: str) -> None:
    got = Recorder()
    await broker.subscribe(f"{topic}.orders.*", got)
    await settle(broker, broker)
    for name in ("orders", "orders.eu.placed", "order.placed", "orders.placed"):
        await broker.publish(Message(f"{topic}.{name}", b"", {"x-id": name}))
    await got.wait_ids(["orders.placed"])
    assert got.ids() == ["orders.placed"]


async def test_star_in_the_middle(broker: Broker, topic: str) -> None:
    got = Recorder()
    await broker.subscribe(f"{topic}.*.placed", got)
    await settle(broker, broker)
    for name in ("placed", "orders.eu.placed", "orders.placed.x", "orders.placed"):
        await broker.publish(Message(f"{topic}.{name}", b"", {"x-id": name}))
    await got.wait_ids(["orders.placed"])
    assert got.ids() == ["orders.placed"]


async def test_gt_matches_one_or_more_tokens_never_zero(broker: Broker, topic: str) -> None:
    got = Recorder()
    await broker.subscribe(f"{topic}.orders.>", got)
    await settle(broker, broker)
    for name in ("orders", "ordersx.a", "orders.placed", "orders.eu.placed.late"):
        await broker.publish(Message(f"{topic}.{name}", b"", {"x-id": name}))
    await got.wait_ids(["orders.placed", "orders.eu.placed.late"])
    assert sorted(got.ids()) == ["orders.eu.placed.late", "orders.placed"]


async def test_order_from_one_publisher(broker: Broker, target: Target, topic: str) -> None:
    got = Recorder()
    async with target.new_broker() as publisher:
        await broker.subscribe(f"{topic}.seq", got)
        await settle(publisher, broker)
        for message in numbered(f"{topic}.seq", 500):
            await publisher.publish(message)
        await got.wait_ids(str(i) for i in range(500))
    if broker.capabilities.ordered:
        assert got.ids() == [str(i) for i in range(500)]
    else:  # no order promised: still every message, once
        assert sorted(got.ids(), key=int) == [str(i) for i in range(500)]


async def test_large_bodies(broker: Broker, topic: str) -> None:
    got = Recorder()
    await broker.subscribe(f"{topic}.blob", got)
    await settle(broker, broker)
    limit = broker.capabilities.max_payload
    big = random.Random(7).randbytes(1024 * 1024)
    if limit is None or limit >= len(big):
        await broker.publish(Message(f"{topic}.blob", big, {"x-id": "big"}))
        await broker.publish(Message(f"{topic}.blob", big[::-1], {"x-id": "big2"}))
        await got.wait_ids(["big", "big2"], timeout=30)
        bodies = {m.headers["x-id"]: m.body for m in got.messages}
        assert bodies == {"big": big, "big2": big[::-1]}
    if limit is not None:
        with pytest.raises(PayloadTooLarge):
            await broker.publish(Message(f"{topic}.blob", bytes(limit + 1), {"x-id": "over"}))
        await broker.publish(Message(f"{topic}.blob", b"after", {"x-id": "after"}))
        await got.wait_ids(["after"])
        assert "over" not in got.ids()


@pytest.mark.timeout(360)
async def test_ten_thousand_messages_from_a_hundred_publishers(
    broker: Broker, target: Target, topic: str
) -> None:
    """The bounds stop a hang; they are no speed claim. RabbitMQ confirms every publish, and
    on a loaded 2-core machine, measured by coverage, 10,000 took over a minute."""
    got = Recorder()
    publishers, per_publisher = 100, 100
    async with target.new_broker() as other:
        await broker.subscribe(f"{topic}.load", got, policy=DeliveryPolicy(max_in_flight=64))
        await settle(broker, broker)
        await settle(other, broker)

        async def publish(n: int) -> None:
            via = broker if n % 2 else other
            for i in range(per_publisher):
                await via.publish(Message(f"{topic}.load", b"x" * 64, {"x-id": f"{n}-{i}"}))

        with anyio.fail_after(240):
            async with anyio.create_task_group() as tg:
                for n in range(publishers):
                    tg.start_soon(publish, n)
        expected = {f"{n}-{i}" for n in range(publishers) for i in range(per_publisher)}
        await got.wait_ids(expected, timeout=90)
    assert len(got.messages) == publishers * per_publisher
    assert got.duplicates() == []
