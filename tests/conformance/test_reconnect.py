"""Reconnect: the broker server restarts in the middle of a stream; nothing durable is lost."""

from __future__ import annotations

import anyio
import pytest

from eventkit.brokers import Broker, DeliveryPolicy
from eventkit.wire import Message

from .target import Target
from .util import Recorder, name, publish_retrying, settle

pytestmark = pytest.mark.anyio

COUNT = 300
RESTART_AT = 100


async def test_restart_loses_nothing_durable(broker: Broker, target: Target, topic: str) -> None:
    if target.restart is None:
        # The target has no server to restart (memory lives in this process): nothing to test,
        # and the declaration itself is what this checks.
        assert target.restart is None
        return
    if not broker.capabilities.durable:
        return  # test_durable checks that durable= is refused; plain delivery has no promise
    got = Recorder("durable across restart")
    policy = DeliveryPolicy(max_in_flight=8, max_attempts=20, backoff_initial=0.05)
    await broker.subscribe(f"{topic}.r", got, durable=name(topic, "d"), policy=policy)
    async with target.new_broker() as publisher:
        await settle(publisher, broker)
        failures = 0
        with anyio.fail_after(90):
            for i in range(COUNT):
                if i == RESTART_AT:
                    await target.restart()
                message = Message(f"{topic}.r", str(i).encode(), {"x-id": str(i)})
                failures += await publish_retrying(publisher, message, timeout=30)
                await anyio.sleep(0.002)
        await got.wait_ids((str(i) for i in range(COUNT)), timeout=60)
    bodies = {m.headers["x-id"]: m.body for m in got.messages}
    assert all(bodies[str(i)] == str(i).encode() for i in range(COUNT))
