"""Durable deliveries are prefetched: a bounded buffer, handlers bounded by max_in_flight,
order kept with one in flight, and nothing redelivered while it waits in the buffer."""

from __future__ import annotations

import json
import uuid

import anyio
import anyio.lowlevel
import pytest

from eventkit.brokers import DeliveryPolicy
from eventkit.brokers.nats import EmbeddedNats, NatsBroker
from eventkit.brokers.nats._jetstream import DurableSubscription
from eventkit.wire import Message
from tests.conformance.util import Recorder, wait_until

pytestmark = pytest.mark.anyio


def _prefix() -> str:
    return f"pf{uuid.uuid4().hex[:8]}"


async def _publish(broker: NatsBroker, topic: str, count: int) -> list[str]:
    ids = [str(i) for i in range(count)]
    for i in ids:
        await broker.publish(Message(topic, b"{}", {"x-id": i, "ce-id": f"{topic}-{i}"}))
    return ids


async def test_one_in_flight_keeps_the_order_with_a_full_buffer(nats_server: EmbeddedNats) -> None:
    p = _prefix()
    async with NatsBroker(nats_server.url, prefetch=64) as broker:
        sub = await broker.subscribe(f"{p}.ev", Recorder(), durable=f"{p}-d")
        await sub.stop()  # the durable now holds what is published next
        ids = await _publish(broker, f"{p}.ev", 500)
        got = Recorder("in order")
        running = 0
        most = 0

        async def one_at_a_time(message: Message) -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await anyio.lowlevel.checkpoint()  # lets a second handler start, if one could
            await got(message)
            running -= 1

        policy = DeliveryPolicy(max_in_flight=1)
        await broker.subscribe(f"{p}.ev", one_at_a_time, durable=f"{p}-d", policy=policy)
        await got.wait_ids(ids, timeout=30)
        assert got.ids() == ids
        assert most == 1


async def test_handlers_are_bounded_by_max_in_flight_and_the_buffer_by_prefetch(
    nats_server: EmbeddedNats,
) -> None:
    p = _prefix()
    async with NatsBroker(nats_server.url, prefetch=20) as broker:
        sub = await broker.subscribe(f"{p}.ev", Recorder(), durable=f"{p}-d")
        await sub.stop()
        ids = await _publish(broker, f"{p}.ev", 100)
        release = anyio.Event()
        running = 0
        got = Recorder()

        async def held(message: Message) -> None:
            nonlocal running
            running += 1
            await release.wait()
            await got(message)
            running -= 1

        policy = DeliveryPolicy(max_in_flight=4)
        durable = await broker.subscribe(f"{p}.ev", held, durable=f"{p}-d", policy=policy)
        assert isinstance(durable, DurableSubscription)
        await wait_until(lambda: len(durable._backlog) == 16, what="the buffer to fill")
        await anyio.sleep(0.3)  # a pull past the bound would show up here
        assert running == 4 and len(durable._backlog) == 16
        nc = broker._client()
        info = json.loads((await nc.request(f"$JS.API.CONSUMER.INFO.eventkit-{p}.{p}-d", b"")).data)
        assert info["num_ack_pending"] == 20  # held here, not elsewhere
        release.set()
        await got.wait_ids(ids, timeout=30)
        assert not got.duplicates()


async def test_a_message_waiting_in_the_buffer_past_ack_wait_is_not_redelivered(
    nats_server: EmbeddedNats,
) -> None:
    """Waiting messages are marked in progress: a slow handler with a full buffer sees each
    message once, though the last waits longer than ack_wait (5 s)."""
    p = _prefix()
    async with NatsBroker(nats_server.url, prefetch=24) as broker:
        sub = await broker.subscribe(f"{p}.ev", Recorder(), durable=f"{p}-d")
        await sub.stop()
        ids = await _publish(broker, f"{p}.ev", 24)
        got = Recorder()

        async def slow(message: Message) -> None:
            await anyio.sleep(0.3)
            await got(message)

        durable = await broker.subscribe(f"{p}.ev", slow, durable=f"{p}-d")
        assert isinstance(durable, DurableSubscription)
        await got.wait_ids(ids, timeout=30)
        # A copy redelivered after ack_wait would be here by now (the last original waited
        # ~7 s): let whatever is buffered run.
        await wait_until(
            lambda: not durable._backlog and not durable._running, what="an idle subscriber"
        )
        assert not got.duplicates()
        assert {m.attempt for m in got.messages} == {1}


async def test_stopping_with_a_full_buffer_hands_it_to_the_next_subscriber(
    nats_server: EmbeddedNats,
) -> None:
    p = _prefix()
    async with (
        NatsBroker(nats_server.url, prefetch=50) as first,
        NatsBroker(nats_server.url) as second,
    ):
        sub = await first.subscribe(f"{p}.ev", Recorder(), durable=f"{p}-d")
        await sub.stop()
        ids = await _publish(first, f"{p}.ev", 200)
        release = anyio.Event()
        early = Recorder("first")

        async def stuck(message: Message) -> None:
            await release.wait()
            await early(message)

        held = await first.subscribe(f"{p}.ev", stuck, durable=f"{p}-d")
        assert isinstance(held, DurableSubscription)
        await wait_until(lambda: len(held._backlog) >= 40, what="a full buffer")
        release.set()
        await held.stop()  # the buffer is nak'ed, for the next subscriber
        rest = Recorder("second")
        await second.subscribe(f"{p}.ev", rest, durable=f"{p}-d")
        await rest.wait_ids(set(ids) - set(early.ids()), timeout=30)
        assert early.ids() == ids[: len(early.ids())]
