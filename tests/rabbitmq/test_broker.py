"""The RabbitMQ adapter's own behaviour: errors, flow control, groups, confirms."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import aio_pika
import anyio
import pytest

from eventkit.brokers import DeliveryPolicy
from eventkit.brokers.base import inline
from eventkit.brokers.rabbitmq import RabbitBroker
from eventkit.wire import ConnectionLost, Message, PayloadTooLarge, PublishError
from tests.conformance.targets.rabbitmq import AMQP_URL
from tests.conformance.util import Recorder, numbered, settle, wait_until
from tests.servers import free_port

from .conftest import MakeBroker

pytestmark = pytest.mark.anyio


async def test_unreachable_server_says_how_to_start_rabbitmq() -> None:
    broker = RabbitBroker(f"amqp://guest:secret@127.0.0.1:{free_port()}/", timeout=5)
    with pytest.raises(ConnectionLost, match="start RabbitMQ") as info:
        await broker.connect()
    assert "secret" not in str(info.value)
    await broker.close()
    await broker.close()


async def test_wrong_password_is_a_clear_connection_error(exchange: str) -> None:
    url = AMQP_URL.replace("guest:guest@", "guest:wrong@")
    broker = RabbitBroker(url, exchange=exchange, timeout=5)
    with pytest.raises(ConnectionLost, match="refused the login"):
        await broker.connect()


async def test_a_missing_vhost_is_named(exchange: str) -> None:
    broker = RabbitBroker(AMQP_URL.rstrip("/") + "/no-such-vhost", exchange=exchange, timeout=5)
    with pytest.raises(ConnectionLost, match="vhost"):
        await broker.connect()


async def test_too_large_a_body_is_refused_before_sending(make_broker: MakeBroker) -> None:
    async with make_broker(max_payload=16) as broker:
        with pytest.raises(PayloadTooLarge, match="16 bytes"):
            await broker.publish(Message("big.one", b"x" * 17))
        await broker.publish(Message("big.one", b"x" * 16))


async def test_a_refused_publish_raises_publish_error(
    make_broker: MakeBroker, exchange: str
) -> None:
    conn = await aio_pika.connect(AMQP_URL)
    async with conn, make_broker() as broker:
        channel = await conn.channel()
        full = await channel.declare_queue(
            exclusive=True, arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
        )
        await full.bind(exchange, "full.topic")
        with pytest.raises(PublishError, match="refused"):
            await broker.publish(Message("full.topic", b"1"))
        await broker.publish(Message("other.topic", b"still works"))


async def test_prefetch_bounds_what_a_slow_subscription_takes(
    make_broker: MakeBroker, exchange: str
) -> None:
    release = anyio.Event()
    running = 0
    peak = 0
    done = Recorder("done")

    async def slow(message: Message) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        await done(message)

    policy = DeliveryPolicy(max_in_flight=3)
    async with make_broker() as broker:
        sub = await broker.subscribe("slow.work", slow, queue="w", policy=policy)
        for message in numbered("slow.work", 50):
            await broker.publish(message)
        await wait_until(lambda: running == 3, what="three handlers running")
        queue_name = sub.queue_name  # type: ignore[attr-defined]
        conn = await aio_pika.connect(AMQP_URL)
        async with conn:
            channel = await conn.channel()
            queue = await channel.declare_queue(queue_name, passive=True)
            assert queue.declaration_result.message_count == 47  # RabbitMQ keeps the rest
        release.set()
        await done.wait_ids([str(i) for i in range(50)])
    assert peak == 3


async def test_one_in_flight_keeps_order_and_many_overlap(make_broker: MakeBroker) -> None:
    ordered = Recorder("ordered")
    overlapping = 0
    peak = 0
    enough = anyio.Event()

    async def concurrent(message: Message) -> None:
        nonlocal overlapping, peak
        overlapping += 1
        peak = max(peak, overlapping)
        if peak >= 8:
            enough.set()
        with anyio.move_on_after(5):
            await enough.wait()
        overlapping -= 1

    async with make_broker() as broker:
        await broker.subscribe("seq.x", ordered)
        await broker.subscribe("seq.x", concurrent, policy=DeliveryPolicy(max_in_flight=8))
        await settle(broker, broker)
        for message in numbered("seq.x", 200):
            await broker.publish(message)
        await ordered.wait_for(200)
        await wait_until(enough.is_set, what="eight handlers at once")
    assert ordered.ids() == [str(i) for i in range(200)]


async def test_one_group_name_on_two_topics_is_two_groups(make_broker: MakeBroker) -> None:
    on_a, on_b = Recorder("a"), Recorder("b")
    async with make_broker() as broker:
        await broker.subscribe("grp.a", on_a, queue="workers")
        await broker.subscribe("grp.b", on_b, queue="workers")
        await broker.subscribe("grp.>", Recorder(), queue="workers")
        await settle(broker, broker)
        await broker.publish(Message("grp.a", b"a", {"x-id": "a"}))
        await broker.publish(Message("grp.b", b"b", {"x-id": "b"}))
        await on_a.wait_for(1)
        await on_b.wait_for(1)
    assert on_a.ids() == ["a"]
    assert on_b.ids() == ["b"]


async def test_publishing_without_confirms_still_delivers(make_broker: MakeBroker) -> None:
    got = Recorder()
    async with make_broker(confirm=False) as broker:
        await broker.subscribe("fast.x", got)
        await settle(broker, broker)
        for message in numbered("fast.x", 100):
            await broker.publish(message)
        await got.wait_ids([str(i) for i in range(100)])


async def test_an_inline_handler_is_called_as_deliveries_arrive_without_acks(
    make_broker: MakeBroker,
) -> None:
    """The RPC reply inbox's shape: no workers, handled in order as they arrive."""
    seen: list[str] = []

    async def on_reply(message: Message) -> None:
        seen.append(message.headers["x-id"])

    async with make_broker() as broker:
        sub = await broker.subscribe("inline.replies", inline(on_reply))
        assert sub.inline
        await settle(broker, broker)
        for message in numbered("inline.replies", 50):
            await broker.publish(message)
        await wait_until(lambda: len(seen) == 50, what="50 replies")
        assert seen == [str(i) for i in range(50)]
        with anyio.fail_after(5):
            await sub.stop()
        # A shared or durable subscription keeps its workers and acks, inline or not.
        group = await broker.subscribe("inline.replies", inline(on_reply), queue="g")
        assert not group.inline
        await group.stop()


async def test_a_url_with_several_hosts_uses_the_first_that_answers(exchange: str) -> None:
    """A dead host first in the list: the broker connects to the next, and works there."""
    parts = urlsplit(AMQP_URL)
    hosts = f"127.0.0.1:{free_port()},{parts.hostname}:{parts.port or 5672}"
    url = urlunsplit(parts._replace(netloc=f"{parts.username}:{parts.password}@{hosts}"))
    got = Recorder("via the second host")
    async with RabbitBroker(url, exchange=exchange, timeout=10) as broker:
        await broker.subscribe("hosts.x", got, durable="hosts")
        await settle(broker, broker)
        await broker.publish(Message("hosts.x", b"1", {"x-id": "1"}))
        await got.wait_ids(["1"])
        assert broker.link_up
