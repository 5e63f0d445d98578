"""RabbitMQ restarted (``rabbitmqctl stop_app`` / ``start_app``) while a publisher and a
durable subscriber run: every confirmed event arrives, none twice unless redelivered."""

from __future__ import annotations

from collections import Counter

import anyio
import pytest

from eventkit.brokers import DeliveryPolicy
from eventkit.wire import ConnectionLost, Message, PublishError
from tests.conformance.targets.rabbitmq import can_restart, restart_rabbitmq
from tests.conformance.util import Recorder, settle, wait_until

from .conftest import MakeBroker

pytestmark = pytest.mark.anyio


async def test_restart_loses_no_confirmed_event(make_broker: MakeBroker) -> None:
    why_not = await can_restart()
    if why_not is not None:
        pytest.skip(f"cannot restart RabbitMQ from this test: {why_not}")
    got = Recorder("durable subscriber")
    confirmed: list[str] = []
    unconfirmed = 0
    policy = DeliveryPolicy(max_in_flight=4, max_attempts=50)
    async with make_broker(timeout=20) as subscriber, make_broker(timeout=20) as publisher:
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
                        await anyio.sleep(0.05)
                        continue
                    confirmed.append(str(n))
                    await anyio.sleep(0.002)

        restarted = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(publish_stream, restarted)
            await wait_until(lambda: len(confirmed) >= 100, what="100 events before the restart")
            await restart_rabbitmq()
            restarted.set()
        await got.wait_ids(confirmed, timeout=30)
    counts = Counter(got.ids())
    twice = [i for i, n in counts.items() if n > 1]
    for i in twice:  # only a delivery whose ack was lost with the connection comes again
        assert max(m.attempt for m in got.messages if m.headers["x-id"] == i) > 1
    assert set(confirmed) <= set(counts)
