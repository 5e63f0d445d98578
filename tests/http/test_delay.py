"""Delayed publishes on the HTTP broker: durable copies wait in the publisher's outbox with
their due time, so they outlive a restart of the publisher and still never arrive early."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from eventkit.brokers.http import HttpBroker
from eventkit.wire import Message
from tests.conformance.util import Recorder, settle

from .conftest import NodeFactory

pytestmark = pytest.mark.anyio

DELAY = 1.5


async def test_a_delayed_durable_message_outlives_a_publisher_restart(
    nodes: NodeFactory, tmp_path: Path
) -> None:
    outbox = str(tmp_path / "outbox.db")
    subscriber = await nodes()
    got = Recorder("durable")
    arrived: list[float] = []

    async def record(message: Message) -> None:
        arrived.append(time.monotonic())
        await got(message)

    await subscriber.subscribe("orders.remind", record, durable="reminders")
    url = f"http://127.0.0.1:0?seeds={subscriber.address}"
    options = {"outbox": outbox, "gossip_interval": 0.2, "dead_after": 2.0}
    async with HttpBroker(url, **options) as publisher:
        await settle(publisher, subscriber)
        started = time.monotonic()
        await publisher.publish_later(Message("orders.remind", b"o-1", {"x-id": "1"}), DELAY)
    assert got.messages == []
    async with HttpBroker(url, **options) as again:  # the publisher's next process
        await got.wait_ids(["1"], timeout=30)
        await settle(again, subscriber)
    assert arrived[0] - started >= DELAY  # the due time came back from the outbox
    assert got.messages[0].body == b"o-1"
    assert "eventkit-deliver-at" not in got.messages[0].headers


async def test_a_plain_copy_waits_in_the_publisher_and_goes_with_it(nodes: NodeFactory) -> None:
    """``delay_kept`` is False: the copy for plain subscribers lives on a timer."""
    subscriber = await nodes()
    got = Recorder("plain")
    await subscriber.subscribe("orders.remind", got)
    publisher = await nodes(seeds=subscriber.address)
    assert not publisher.capabilities.delay_kept
    await settle(publisher, subscriber)
    await publisher.publish_later(Message("orders.remind", b"", {"x-id": "lost"}), 0.5)
    await publisher.close()
    kept = await nodes(seeds=subscriber.address)
    await settle(kept, subscriber)
    await kept.publish_later(Message("orders.remind", b"", {"x-id": "kept"}), 0.5)
    await got.wait_ids(["kept"])
    assert got.ids() == ["kept"]
