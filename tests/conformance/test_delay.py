"""Delayed delivery and stepped backoff, the same on every broker (docs/delivery.md).

Times are measured only as lower bounds (a delayed message never arrives early, a retry
never comes sooner than its step), with a small margin for clock resolution; how late
something may come is never asserted, as a loaded machine makes everything late.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from eventkit import Client
from eventkit.brokers import Broker, DeliveryPolicy
from eventkit.brokers.base import REPLY_TO, DelayedPublisher
from eventkit.wire import (
    DEAD_LETTER_ATTEMPTS,
    ConfigError,
    Message,
    UnsupportedFeature,
    dead_letter_topic,
)

from .target import Target
from .util import Recorder, msg_id, name, settle

pytestmark = pytest.mark.anyio

DELAY = 1.0
LONG_DELAY = 2.5  # room to subscribe during it, on a loaded machine too
MARGIN = 0.02  # timer and clock resolution; never a bound on lateness


class Timed(Recorder):
    """Records each delivery with the monotonic time it arrived."""

    def __init__(self, label: str, fail: bool = False) -> None:
        super().__init__(label)
        self.times: list[float] = []
        self.fail = fail

    async def __call__(self, message: Message) -> None:
        self.times.append(time.monotonic())
        await super().__call__(message)
        if self.fail:
            raise RuntimeError(f"failure {len(self.times)}")


def _delayer(broker: Broker) -> DelayedPublisher:
    assert broker.capabilities.delay, f"{type(broker).__name__} should hold delayed messages"
    assert isinstance(broker, DelayedPublisher)
    return broker


async def test_a_delayed_message_reaches_every_kind_of_subscriber_after_its_delay(
    broker: Broker, target: Target, topic: str
) -> None:
    durable = broker.capabilities.durable
    plain, group = Timed("plain"), Timed("group")
    kept = Timed("durable")
    await broker.subscribe(f"{topic}.later", plain)
    await broker.subscribe(f"{topic}.later", group, queue=name(topic, "q"))
    if durable:
        await broker.subscribe(f"{topic}.later", kept, durable=name(topic, "d"))
    async with target.new_broker() as publisher:
        await settle(publisher, broker)
        started = time.monotonic()
        await _delayer(publisher).publish_later(
            Message(f"{topic}.later", b"body", {"x-id": "1", "x-note": "kept"}), LONG_DELAY
        )
        # A subscription made while the message waits gets it too: it goes to whoever
        # matches when it falls due, as a publish then would.
        late = Timed("subscribed during the delay")
        await broker.subscribe(f"{topic}.later", late)
        await settle(publisher, broker)
        recorders = [plain, group, late] + ([kept] if durable else [])
        for recorder in recorders:
            await recorder.wait_for(1, timeout=LONG_DELAY + 20)
    for recorder in recorders:
        assert recorder.times[0] - started >= LONG_DELAY - MARGIN, recorder.label
        message = recorder.messages[0]
        assert (message.topic, message.body) == (f"{topic}.later", b"body")
        assert message.headers["x-note"] == "kept"
        assert not any(k.startswith(("x-eventkit", "eventkit-deliver")) for k in message.headers)


async def test_zero_delay_is_a_publish_and_a_bad_one_is_refused(broker: Broker, topic: str) -> None:
    delayer = _delayer(broker)
    got = Recorder()
    await broker.subscribe(f"{topic}.now", got)
    await settle(broker, broker)
    await delayer.publish_later(Message(f"{topic}.now", b"", {"x-id": "0"}), 0)
    await got.wait_ids(["0"])
    with pytest.raises(ConfigError):
        await delayer.publish_later(Message(f"{topic}.now", b""), -1)


async def test_a_delayed_request_is_refused(broker: Broker, topic: str) -> None:
    """A caller waits for its reply now: a request held for later would only time out."""
    delayer = _delayer(broker)
    request = Message(f"{topic}.call", b"{}", {REPLY_TO: f"{topic}.inbox"})
    with pytest.raises(UnsupportedFeature, match="request"):
        await delayer.publish_later(request, 1.0)


async def test_the_client_publishes_with_delay(broker: Broker, topic: str) -> None:
    """``Client.publish(..., delay=)`` (seconds or a timedelta) holds the CloudEvent."""
    got = Timed("events")
    await broker.subscribe(f"{topic}.evt", got)
    await settle(broker, broker)
    async with Client(broker, owns_broker=False) as kit:
        started = time.monotonic()
        event_id = await kit.publish(f"{topic}.evt", {"n": 1}, delay=timedelta(seconds=DELAY))
        await got.wait_for(1, timeout=DELAY + 20)
        assert got.times[0] - started >= DELAY - MARGIN
        with pytest.raises(ConfigError):
            await kit.publish(f"{topic}.evt", {"n": 2}, delay=-1)
    assert got.messages[0].headers.get("ce-id", event_id) == event_id


async def test_backoff_steps_space_the_retries_then_dead_letter(broker: Broker, topic: str) -> None:
    if not broker.capabilities.durable:
        return  # test_durable checks that durable= is refused
    durable = name(topic, "d")
    steps = (0.3, 0.6)
    policy = DeliveryPolicy(max_attempts=4, backoff_initial=0.01, backoff_steps=steps)
    dead = Recorder("dead letters")
    failing = Timed("failing", fail=True)
    await broker.subscribe(dead_letter_topic(durable), dead)
    await broker.subscribe(f"{topic}.b", failing, durable=durable, policy=policy)
    await settle(broker, broker)
    await broker.publish(Message(f"{topic}.b", b"x", {"x-id": "1"}))
    await dead.wait_for(1, timeout=30)
    assert [m.attempt for m in failing.messages] == [1, 2, 3, 4]
    assert [msg_id(m) for m in failing.messages] == ["1"] * 4
    gaps = [b - a for a, b in zip(failing.times, failing.times[1:], strict=False)]
    for gap, wanted in zip(gaps, (0.3, 0.6, 0.6), strict=True):  # the last step repeats
        assert gap >= wanted - MARGIN, (gaps, wanted)
    assert dead.messages[0].headers[DEAD_LETTER_ATTEMPTS] == "4"


async def test_delayed_messages_outlive_their_publisher(
    broker: Broker, target: Target, topic: str
) -> None:
    """Where the broker's server holds them (``delay_kept``), a publisher that closes right
    after a delayed publish loses nothing: a durable subscriber elsewhere gets it when due."""
    if not broker.capabilities.delay_kept:
        assert target.in_process, f"{target.name} has a server: it should hold delayed messages"
        return  # held by the publishing process: docs/delivery.md says it is lost with it
    got = Timed("durable")
    await broker.subscribe(f"{topic}.kept", got, durable=name(topic, "d"))
    await settle(broker, broker)
    started = time.monotonic()
    async with target.new_broker() as publisher:
        await _delayer(publisher).publish_later(Message(f"{topic}.kept", b"", {"x-id": "1"}), DELAY)
    await got.wait_ids(["1"], timeout=DELAY + 20)
    assert got.times[0] - started >= DELAY - MARGIN


@pytest.mark.not_on("memory", "http")  # in-process: there is no server to restart
async def test_delayed_messages_survive_a_server_restart(target: Target, topic: str) -> None:
    assert target.restartable is not None
    async with target.restartable() as server, server.new_broker() as broker:
        assert broker.capabilities.delay_kept, f"{target.name} should keep delayed messages"
        got = Timed("durable across restart")
        policy = DeliveryPolicy(max_attempts=20, backoff_initial=0.05)
        await broker.subscribe(f"{topic}.r", got, durable=name(topic, "d"), policy=policy)
        await settle(broker, broker)
        started = time.monotonic()
        await _delayer(broker).publish_later(Message(f"{topic}.r", b"kept", {"x-id": "1"}), 3.0)
        await server.restart()
        await got.wait_ids(["1"], timeout=90)
    assert got.times[0] - started >= 3.0 - MARGIN
    assert got.messages[0].body == b"kept"
