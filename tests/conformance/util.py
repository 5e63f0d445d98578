"""Helpers for the conformance suite: bounded waits, a recording handler, settling.

Every wait here is bounded in time and fails with what it was waiting for, so a broker that
loses a message fails the test instead of hanging it. Nothing here sleeps to assume timing:
``settle`` proves that subscriptions are live by getting a probe through.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable

import anyio

from eventkit.brokers import Broker, Subscription
from eventkit.wire import ConnectionLost, Message, PublishError

TIMEOUT = 10.0
"""Default bound of a wait: generous for network brokers, never reached when all is well."""

_POLL = 0.005


async def wait_until(
    predicate: Callable[[], bool], *, timeout: float = TIMEOUT, what: str = "a condition"
) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    with anyio.move_on_after(timeout):
        while True:
            if predicate():
                return
            await anyio.sleep(_POLL)
    if not predicate():
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def name(topic: str, kind: str) -> str:
    """A queue group or durable name unique to this test (servers are shared across runs)."""
    return f"{kind}-{topic.rsplit('.', 1)[-1]}"


def msg_id(message: Message) -> str:
    return message.headers["x-id"]


def numbered(topic: str, count: int, *, start: int = 0) -> list[Message]:
    """``count`` messages whose ``x-id`` header and body say their number."""
    return [Message(topic, str(i).encode(), {"x-id": str(i)}) for i in range(start, start + count)]


class Recorder:
    """A handler that records every delivery (a copy, as the handler saw it)."""

    def __init__(self, label: str = "recorder") -> None:
        self.label = label
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(
            Message(message.topic, message.body, dict(message.headers), message.attempt)
        )

    def ids(self) -> list[str]:
        return [msg_id(m) for m in self.messages]

    def duplicates(self) -> list[str]:
        return [i for i, n in Counter(self.ids()).items() if n > 1]

    async def wait_for(self, count: int, *, timeout: float = TIMEOUT) -> None:
        """Wait until at least ``count`` deliveries were recorded."""
        await wait_until(
            lambda: len(self.messages) >= count,
            timeout=timeout,
            what=f"{count} deliveries to {self.label} (got {len(self.messages)})",
        )

    async def wait_ids(self, ids: Iterable[str], *, timeout: float = TIMEOUT) -> None:
        """Wait until every id in ``ids`` was delivered at least once."""
        wanted = set(ids)

        def missing() -> set[str]:
            return wanted - {msg_id(m) for m in self.messages if "x-id" in m.headers}

        await wait_until(
            lambda: not missing(),
            timeout=timeout,
            what=f"ids at {self.label} (missing {sorted(missing(), key=_natural)[:10]}...)",
        )


def delivered_at_least(recorders: Iterable[Recorder], count: int) -> bool:
    """Whether ``recorders`` together recorded ``count`` deliveries (for ``wait_until``)."""
    return sum(len(r.messages) for r in recorders) >= count


def _natural(s: str) -> tuple[int, str]:
    return (int(s), "") if s.isdigit() else (-1, s)


async def settle(publisher: Broker, *subscribers: Broker, timeout: float = TIMEOUT) -> None:
    """Return once subscriptions already made on ``subscribers`` are live for ``publisher``.

    Network brokers register a subscription asynchronously (a NATS SUB, gossip of an HTTP
    node's table). For each subscriber broker this subscribes a fresh probe topic *after* the
    test's own subscriptions and publishes probes from ``publisher`` until one arrives: a
    broker registers one connection's subscriptions in order, so the test's are live too.
    Probe topics live outside the test's prefix, so no wildcard of the test sees them.
    """
    for subscriber in subscribers:
        probe_topic = f"probe.{uuid.uuid4().hex}"
        arrived = anyio.Event()

        async def on_probe(_: Message, arrived: anyio.Event = arrived) -> None:
            arrived.set()

        sub = await subscriber.subscribe(probe_topic, on_probe)
        try:
            with anyio.fail_after(timeout):
                while not arrived.is_set():
                    await publisher.publish(Message(probe_topic, b"probe"))
                    with anyio.move_on_after(0.05):
                        await arrived.wait()
        finally:
            await sub.stop()


async def publish_all(broker: Broker, messages: Iterable[Message]) -> None:
    for message in messages:
        await broker.publish(message)


async def publish_retrying(broker: Broker, message: Message, *, timeout: float = 30.0) -> int:
    """Publish, retrying while the broker reports a lost connection or an unconfirmed
    publish (a restart in progress). Returns the number of failed attempts."""
    failures = 0
    with anyio.fail_after(timeout):
        while True:
            try:
                await broker.publish(message)
                return failures
            except (ConnectionLost, PublishError):
                failures += 1
                await anyio.sleep(0.05)


async def stop_all(subs: Iterable[Subscription]) -> None:
    for sub in subs:
        await sub.stop()
