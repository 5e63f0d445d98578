"""Reconnect: the broker server restarts in the middle of a stream; nothing durable is lost.

Every target with a server runs this on a server of the test's own (``restartable``); a
missing tool to start one is a failure under CI. The targets with no server (memory, the
http mesh) are left out by the ``not_on`` mark, not skipped.
"""

from __future__ import annotations

import anyio
import pytest

from eventkit.brokers import DeliveryPolicy
from eventkit.wire import Message

from .target import Target
from .util import Recorder, name, publish_retrying, settle

pytestmark = pytest.mark.anyio

COUNT = 300
RESTART_AT = 100


@pytest.mark.not_on("memory", "http")  # in-process: there is no server to restart
async def test_restart_loses_nothing_durable(target: Target, topic: str) -> None:
    assert target.restartable is not None  # Target refuses a server without one
    async with target.restartable() as server, server.new_broker() as broker:
        assert broker.capabilities.durable, f"{target.name} serves no durable subscriptions"
        got = Recorder("durable across restart")
        policy = DeliveryPolicy(max_in_flight=8, max_attempts=20, backoff_initial=0.05)
        await broker.subscribe(f"{topic}.r", got, durable=name(topic, "d"), policy=policy)
        async with server.new_broker() as publisher:
            await settle(publisher, broker)
            with anyio.fail_after(90):
                for i in range(COUNT):
                    if i == RESTART_AT:
                        await server.restart()
                    message = Message(f"{topic}.r", str(i).encode(), {"x-id": str(i)})
                    await publish_retrying(publisher, message, timeout=30)
                    await anyio.sleep(0.002)  # paces the stream, so the restart falls inside it
            await got.wait_ids((str(i) for i in range(COUNT)), timeout=60)
    bodies = {m.headers["x-id"]: m.body for m in got.messages}
    assert all(bodies[str(i)] == str(i).encode() for i in range(COUNT))
