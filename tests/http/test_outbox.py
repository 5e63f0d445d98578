"""The durable outbox on disk: messages outlive the publisher that kept them."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from eventkit.brokers import DeliveryPolicy
from eventkit.brokers.http import HttpBroker
from eventkit.wire import Message
from tests.conformance.util import Recorder, numbered, settle

from .conftest import NodeFactory

pytestmark = pytest.mark.anyio

FAST = DeliveryPolicy(max_attempts=3, backoff_initial=0.01, backoff_max=0.05)


async def test_kept_messages_survive_a_publisher_restart(
    nodes: NodeFactory, tmp_path: Path
) -> None:
    outbox = str(tmp_path / "outbox.db")
    subscriber = await nodes()
    got = Recorder("durable")
    sub = await subscriber.subscribe("orders.placed", got, durable="billing", policy=FAST)
    url = f"http://127.0.0.1:0?seeds={subscriber.address}"
    async with HttpBroker(url, outbox=outbox, gossip_interval=0.2, dead_after=2.0) as publisher:
        await settle(publisher, subscriber)
        await sub.stop()  # the only subscriber is away: the publisher must keep messages
        for message in numbered("orders.placed", 20):
            await publisher.publish(message)
        assert got.messages == []
    # A new process of the publisher: it never saw the subscription, the outbox remembers.
    async with HttpBroker(url, outbox=outbox, gossip_interval=0.2, dead_after=2.0) as again:
        await subscriber.subscribe("orders.placed", got, durable="billing", policy=FAST)
        await got.wait_ids(str(i) for i in range(20))
        await settle(again, subscriber)
    assert sorted(got.ids(), key=int) == [str(i) for i in range(20)]
    assert all(m.attempt == 1 for m in got.messages)


async def test_an_outside_producer_reaches_a_durable_subscriber(nodes: NodeFactory) -> None:
    """A node is a gateway: what an outside producer POSTs is published from that node,
    so a durable subscriber elsewhere gets it at least once, retried on failure."""
    gateway = await nodes()
    subscriber = await nodes(seeds=gateway.address)
    failures: list[int] = []
    got = Recorder()

    async def flaky(message: Message) -> None:
        if message.attempt == 1:
            failures.append(1)
            raise RuntimeError("first attempt fails")
        await got(message)

    await subscriber.subscribe("gw.orders", flaky, durable="gw", policy=FAST)
    await settle(gateway, subscriber)
    headers = {
        "ce-id": "1",
        "ce-source": "/outside",
        "ce-type": "gw.order",
        "ce-specversion": "1.0",
        "content-type": "application/json",
        "x-id": "ignored: not a CloudEvents header",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://{gateway.address}/topics/gw.orders", data=b'{"n": 1}', headers=headers
        ) as resp,
    ):
        assert resp.status == 202
    await got.wait_for(1)
    assert failures == [1]
    assert got.messages[0].attempt == 2
    assert got.messages[0].headers["ce-id"] == "1"
    assert "x-id" not in got.messages[0].headers
