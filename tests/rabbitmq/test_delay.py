"""Delayed publishes on RabbitMQ: the per-delay TTL queues, and what happens when one is gone."""

from __future__ import annotations

import aio_pika
import pytest

from eventkit.wire import Message, PublishError, UnsupportedFeature
from tests.conformance.targets.rabbitmq import AMQP_URL
from tests.conformance.util import Recorder, settle

from .conftest import MakeBroker

pytestmark = pytest.mark.anyio


async def _queue(name: str, *, delete: bool = False) -> int:
    """Messages ready in queue ``name`` (a passive declare); deletes it if ``delete``."""
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        channel = await conn.channel()
        if delete:
            await channel.queue_delete(name)
            return 0
        queue = await channel.declare_queue(name, passive=True)
        return int(queue.declaration_result.message_count)


async def test_a_delayed_message_waits_in_its_delay_queue(
    make_broker: MakeBroker, exchange: str
) -> None:
    async with make_broker() as broker:
        got = Recorder()
        await broker.subscribe("shop.remind", got)
        await settle(broker, broker)
        await broker.publish_later(Message("shop.remind", b"", {"x-id": "1"}), 3.21)
        assert await _queue(f"{exchange}.delayed.3300") == 1  # rounded up: never early
        await got.wait_ids(["1"])
        assert await _queue(f"{exchange}.delayed.3300") == 0


async def test_a_delay_queue_that_went_away_is_an_error_then_comes_back(
    make_broker: MakeBroker, exchange: str
) -> None:
    async with make_broker() as broker:
        got = Recorder()
        await broker.subscribe("shop.remind", got)
        await settle(broker, broker)
        await broker.publish_later(Message("shop.remind", b"", {"x-id": "1"}), 0.2)
        await got.wait_ids(["1"])
        await _queue(f"{exchange}.delayed.200", delete=True)  # an operator deleted it
        with pytest.raises(PublishError, match="not kept"):
            await broker.publish_later(Message("shop.remind", b"", {"x-id": "2"}), 0.2)
        await broker.publish_later(Message("shop.remind", b"", {"x-id": "3"}), 0.2)
        await got.wait_ids(["3"])
    assert "2" not in got.ids()


async def test_a_delay_longer_than_a_ttl_holds_is_refused(make_broker: MakeBroker) -> None:
    async with make_broker() as broker:
        with pytest.raises(UnsupportedFeature, match="days"):
            await broker.publish_later(Message("shop.remind", b""), 60 * 86400)
