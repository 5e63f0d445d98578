"""RabbitMQ restarted (``stop_app`` / ``start_app``) while a publisher and a durable
subscriber run: every confirmed event arrives, none twice unless redelivered.

The node restarted is a private one (tests.rabbitmq_node), never the machine's shared node.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import anyio
import pytest

from eventkit.brokers import DeliveryPolicy
from eventkit.brokers.rabbitmq import RabbitBroker
from eventkit.wire import ConnectionLost, Message, PublishError
from tests.conformance.util import Recorder, settle, wait_until
from tests.rabbitmq_node import RabbitNode, private_rabbitmq

pytestmark = pytest.mark.anyio


@pytest.fixture
async def node() -> AsyncIterator[RabbitNode]:
    async with private_rabbitmq() as node:
        yield node


async def test_restart_loses_no_confirmed_event(node: RabbitNode) -> None:
    got = Recorder("durable subscriber")
    confirmed: list[str] = []
    unconfirmed = 0
    policy = DeliveryPolicy(max_in_flight=4, max_attempts=50)
    options = {"exchange": "eventkit-restart", "timeout": 20, "drain_timeout": 5.0}
    async with (
        RabbitBroker(node.url, **options) as subscriber,
        RabbitBroker(node.url, **options) as publisher,
    ):
        await subscriber.subscribe("audit.event", got, durable="audit", policy=policy)
        await settle(publisher, subscriber)

        async def publish_stream(stop: anyio.Event) -> None:
            nonlocal unconfirmed
            n = 0
            with anyio.fail_after(60):
                while not stop.is_set() or len(confirmed) < 300:
                    n += 1  # a new id per attempt: an unconfirmed one may or may not arrive
                    try:
                        await publisher.publish(Message("audit.event", b"e", {"x-id": str(n)}))
                    except (ConnectionLost, PublishError):
                        unconfirmed += 1
                        await anyio.sleep(0.05)  # a pause between retries while it is down
                        continue
                    confirmed.append(str(n))
                    await anyio.sleep(0.002)  # paces the stream, so the restart falls inside

        restarted = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(publish_stream, restarted)
            await wait_until(lambda: len(confirmed) >= 100, what="100 events before the restart")
            await node.restart()
            restarted.set()
        await got.wait_ids(confirmed, timeout=30)
    counts = Counter(got.ids())
    twice = [i for i, n in counts.items() if n > 1]
    for i in twice:  # only a delivery whose ack was lost with the connection comes again
        assert max(m.attempt for m in got.messages if m.headers["x-id"] == i) > 1
    assert set(confirmed) <= set(counts)
