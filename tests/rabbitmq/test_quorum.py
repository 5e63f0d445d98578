"""Durable subscriptions on quorum queues: the queues' type, RabbitMQ's delivery count and
limit, and classic queues from before quorum queues, kept as they are."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import aio_pika
import anyio
import pytest

from eventkit.brokers import DeliveryPolicy
from eventkit.wire import DEAD_LETTER_REASON, DEAD_LETTER_TOPIC, Message, dead_letter_topic
from tests.conformance.targets.rabbitmq import AMQP_URL
from tests.conformance.util import Recorder, settle
from tests.servers import require_tool

from .conftest import MakeBroker

pytestmark = pytest.mark.anyio

FAST = DeliveryPolicy(max_attempts=3, backoff_initial=0.02, backoff_max=0.1)


async def _queue_types(exchange: str) -> dict[str, str]:
    """The type of every queue of this test's exchange (rabbitmqctl on the shared node)."""
    vhost = urlsplit(AMQP_URL).path[1:] or "/"
    command = [require_tool("rabbitmqctl", "to list queue types"), "-q", "list_queues"]
    done = await anyio.run_process([*command, "-p", vhost, "--no-table-headers", "name", "type"])
    rows = (line.split() for line in done.stdout.decode().splitlines())
    return {row[0]: row[1] for row in rows if len(row) == 2 and row[0].startswith(exchange)}


class Flaky:
    """Fails each message's first delivery."""

    def __init__(self) -> None:
        self.handled = Recorder("handled")

    async def __call__(self, message: Message) -> None:
        if message.attempt == 1:
            raise RuntimeError("first try fails")
        await self.handled(message)


async def test_durable_queues_are_quorum_by_default(make_broker: MakeBroker, exchange: str) -> None:
    flaky = Flaky()
    async with make_broker() as broker:
        sub = await broker.subscribe("q.a", flaky, durable="quorate", policy=FAST)
        await broker.subscribe("q.b", Recorder(), durable="plain", policy=FAST)
        assert sub.queue_type == "quorum"
        await settle(broker, broker)
        await broker.publish(Message("q.a", b"1", {"x-id": "1"}))
        await flaky.handled.wait_for(1)  # retried through a (quorum) retry queue
    async with make_broker(queue_type="classic") as broker:
        sub = await broker.subscribe("q.c", Recorder(), durable="old-style", policy=FAST)
        assert sub.queue_type == "classic"
    assert flaky.handled.messages[0].attempt == 2
    assert await _queue_types(exchange) == {
        f"{exchange}.durable.quorate": "quorum",
        f"{exchange}.durable.quorate.retry.20": "quorum",
        f"{exchange}.deadletter.quorate": "quorum",
        f"{exchange}.durable.plain": "quorum",
        f"{exchange}.deadletter.plain": "quorum",
        f"{exchange}.durable.old-style": "classic",
        f"{exchange}.deadletter.old-style": "classic",
    }


async def test_an_existing_classic_queue_is_kept_with_one_warning(
    make_broker: MakeBroker, exchange: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The queues an earlier eventkit declared for ``legacy``, with a backlog: a quorum
    subscriber keeps them, their messages and their retries, and says how to move."""
    home = f"{exchange}.durable.legacy"
    async with await aio_pika.connect(AMQP_URL) as conn:
        channel = await conn.channel()
        await channel.declare_queue(f"{exchange}.deadletter.legacy", durable=True)
        dead = dead_letter_topic("legacy")
        arguments = {"x-dead-letter-exchange": exchange, "x-dead-letter-routing-key": dead}
        await channel.declare_queue(home, durable=True, arguments=arguments)
        retry = {
            "x-message-ttl": 20,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": home,
        }
        await channel.declare_queue(f"{home}.retry.20", durable=True, arguments=retry)
        message = aio_pika.Message(b"old", headers={"x-id": "backlog"}, delivery_mode=2)
        await channel.default_exchange.publish(message, home)
    flaky = Flaky()
    with caplog.at_level(logging.WARNING, logger="eventkit.broker.rabbitmq"):
        async with make_broker() as broker:
            sub = await broker.subscribe("legacy.topic", flaky, durable="legacy", policy=FAST)
            await settle(broker, broker)
            await broker.publish(Message("legacy.topic", b"new", {"x-id": "new"}))
            await flaky.handled.wait_ids(["backlog", "new"])
    assert sub.queue_type == "classic"
    assert sorted(flaky.handled.ids()) == ["backlog", "new"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "'legacy'" in warnings[0] and "classic" in warnings[0]
    assert "docs/rabbitmq.md#migrating-durable-queues-to-quorum" in warnings[0]
    assert "queue_type='classic'" in warnings[0]
    types = await _queue_types(exchange)
    assert {types[home], types[f"{home}.retry.20"]} == {"classic"}


async def test_rabbitmq_counts_unsettled_deliveries_and_dead_letters_at_its_limit(
    make_broker: MakeBroker, exchange: str
) -> None:
    """Deliveries that were never settled (a consumer that died, here one that gives every
    delivery back) count as attempts, and past the queue's delivery limit RabbitMQ itself
    dead-letters the message, which reaches the dead-letter topic with a reason."""
    policy = DeliveryPolicy(max_attempts=2, backoff_initial=0.02, backoff_max=0.1)
    dead = Recorder("dead letters")
    async with make_broker() as broker:
        await broker.subscribe(dead_letter_topic("crashy"), dead)
        first = await broker.subscribe("crash.x", Recorder(), durable="crashy", policy=policy)
        await first.stop()
        await broker.publish(Message("crash.x", b"poison", {"x-id": "poison"}))
        await broker.publish(Message("crash.x", b"fine", {"x-id": "fine"}))
        deliveries: dict[str, int] = {}
        async with await aio_pika.connect(AMQP_URL) as conn:
            channel = await conn.channel()
            queue = await channel.declare_queue(f"{exchange}.durable.crashy", passive=True)
            with anyio.fail_after(20):
                while deliveries.get("poison", 0) < 3 or deliveries.get("fine", 0) < 2:
                    incoming = await queue.get(fail=False)
                    if incoming is None:
                        await anyio.sleep(0.02)
                        continue
                    key = str(incoming.headers["x-id"])
                    deliveries[key] = deliveries.get(key, 0) + 1
                    await incoming.reject(requeue=True)  # "fine": two returns, attempt 3 next
        got = Recorder("after the crashes")
        await broker.subscribe("crash.x", got, durable="crashy", policy=policy)
        await got.wait_ids(["fine"])
        await dead.wait_for(1)
    assert deliveries["poison"] == 3  # limit max_attempts=2: RabbitMQ delivers 3 times
    assert [(m.headers["x-id"], m.attempt) for m in got.messages] == [("fine", 3)]
    letter = dead.messages[0]
    assert letter.body == b"poison"
    assert "delivery_limit" in letter.headers[DEAD_LETTER_REASON]
    assert letter.headers[DEAD_LETTER_TOPIC] == "crash.x"


async def test_another_max_attempts_keeps_the_queue_and_its_delivery_limit(
    make_broker: MakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    got = Recorder("second policy")
    async with make_broker() as broker:
        first = await broker.subscribe("lim.x", Recorder(), durable="limits", policy=FAST)
        await first.stop()
        await broker.publish(Message("lim.x", b"", {"x-id": "kept"}))
        with caplog.at_level(logging.WARNING, logger="eventkit.broker.rabbitmq"):
            policy = DeliveryPolicy(max_attempts=7)
            sub = await broker.subscribe("lim.x", got, durable="limits", policy=policy)
        await got.wait_ids(["kept"])
    assert sub.queue_type == "quorum"
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "'limits'" in warning and "delivery limit" in warning
