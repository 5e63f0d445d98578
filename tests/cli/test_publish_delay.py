"""``eventkit publish --delay``: the server holds the event after the command has exited."""

from __future__ import annotations

import time
from functools import partial

import anyio.to_thread
import pytest

from eventkit.brokers.nats import NatsBroker
from eventkit.wire import Message
from tests.conformance.util import Recorder, settle
from tests.servers import require_server

from .util import NATS, env_for, eventkit, namespace

pytestmark = pytest.mark.anyio


async def test_a_delayed_publish_outlives_the_command() -> None:
    require_server("127.0.0.1", 4222, "NATS")
    env = env_for(namespace())
    topic = f"demo.{env['EVENTKIT_NAMESPACE']}.later"
    got = Recorder("delayed event")
    arrived: list[float] = []

    async def record(message: Message) -> None:
        arrived.append(time.monotonic())
        await got(message)

    async with NatsBroker(NATS) as subscriber:  # a subscriber's broker releases what is due
        await subscriber.subscribe(topic, record)
        await settle(subscriber, subscriber)
        started = time.monotonic()
        run = partial(eventkit, "publish", topic, '{"n": 1}', "--delay", "1.5", env=env)
        result = await anyio.to_thread.run_sync(run)
        assert result.returncode == 0, result.stderr
        await got.wait_for(1, timeout=30)
    assert arrived[0] - started >= 1.5  # never early; how late is not asserted
    assert got.messages[0].topic == topic


def test_a_broker_that_holds_delays_in_process_is_refused() -> None:
    env = env_for(namespace(), broker="memory://")
    result = eventkit("publish", "demo.later", "{}", "--delay", "1", env=env)
    assert result.returncode == 1
    assert "holds a delayed event in the publishing process" in result.stderr
