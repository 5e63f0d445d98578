"""Reconnect: the broker server restarts in the middle of a stream; nothing durable is lost.

Every target with a server runs this on a server of the test's own (``restartable``); a
missing tool to start one is a failure under CI. Only a target that declares it has no
server (``in_process``: memory, the http mesh) is skipped, with that reason.
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


async def test_restart_loses_nothing_durable(target: Target, topic: str) -> None:
    if target.in_process:
        pytest.skip(f"{target.name} is in-process: there is no server to restart")
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
