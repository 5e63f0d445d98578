"""Stopping subscriptions, closing brokers, and how many handlers run at once."""

from __future__ import annotations

import anyio
import pytest

from eventkit.brokers import Broker, DeliveryPolicy
from eventkit.wire import BrokerClosed, Message

from .target import Target
from .util import Recorder, numbered, settle, wait_until

pytestmark = pytest.mark.anyio


async def test_no_deliveries_after_stop(broker: Broker, topic: str) -> None:
    stopped, live = Recorder("stopped"), Recorder("live")
    sub = await broker.subscribe(f"{topic}.s", stopped)
    await broker.subscribe(f"{topic}.s", live)
    await settle(broker, broker)
    for message in numbered(f"{topic}.s", 20):
        await broker.publish(message)
    await stopped.wait_ids(str(i) for i in range(20))
    await sub.stop()
    before = len(stopped.messages)
    for message in numbered(f"{topic}.s", 20, start=20):
        await broker.publish(message)
    await live.wait_ids(str(i) for i in range(40))
    assert len(stopped.messages) == before


async def test_stop_right_after_subscribe(broker: Broker, topic: str) -> None:
    """Messages already on their way when stop() is called may arrive before it returns,
    never after; the broker keeps serving its other subscriptions."""
    live = Recorder("live")
    await broker.subscribe(f"{topic}.s", live)
    await settle(broker, broker)
    got = Recorder("stopped")
    sub = await broker.subscribe(f"{topic}.s", got, policy=DeliveryPolicy(max_in_flight=4))
    for message in numbered(f"{topic}.s", 20):
        await broker.publish(message)
    with anyio.fail_after(10):
        await sub.stop()
    at_stop = len(got.messages)
    for message in numbered(f"{topic}.s", 20, start=20):
        await broker.publish(message)
    await live.wait_ids(str(i) for i in range(40))
    assert len(got.messages) == at_stop
    assert got.duplicates() == []


async def test_stop_while_messages_flow(broker: Broker, target: Target, topic: str) -> None:
    """A stop in the middle of a stream returns, and nothing arrives after it returned."""
    got = Recorder()
    sub = await broker.subscribe(f"{topic}.s", got, policy=DeliveryPolicy(max_in_flight=4))
    async with target.new_broker() as publisher:
        await settle(publisher, broker)
        async with anyio.create_task_group() as tg:

            async def publish() -> None:
                for message in numbered(f"{topic}.s", 2000):
                    await publisher.publish(message)
                    await anyio.lowlevel.checkpoint()

            tg.start_soon(publish)
            await got.wait_for(10)
            with anyio.fail_after(10):
                await sub.stop()
            at_stop = len(got.messages)
        # After the publisher is done, give a would-be late delivery the chance to show up.
        flushed = Recorder("flush")
        await broker.subscribe(f"{topic}.s", flushed)
        await settle(publisher, broker)
        await publisher.publish(Message(f"{topic}.s", b"", {"x-id": "flush"}))
        await flushed.wait_ids(["flush"])
    assert len(got.messages) == at_stop


async def test_stop_is_idempotent(broker: Broker, topic: str) -> None:
    got = Recorder()
    sub = await broker.subscribe(f"{topic}.s", got)
    await settle(broker, broker)
    with anyio.fail_after(10):
        await sub.stop()
        await sub.stop()
        async with anyio.create_task_group() as tg:  # concurrent stops also return
            tg.start_soon(sub.stop)
            tg.start_soon(sub.stop)


async def test_stop_waits_for_in_flight_handlers(broker: Broker, topic: str) -> None:
    started, release = anyio.Event(), anyio.Event()
    finished: list[str] = []

    async def handler(message: Message) -> None:
        started.set()
        await release.wait()
        await anyio.sleep(0.01)  # still busy after the release: stop() must wait for this too
        finished.append(message.headers["x-id"])

    sub = await broker.subscribe(f"{topic}.s", handler)
    await settle(broker, broker)
    await broker.publish(Message(f"{topic}.s", b"", {"x-id": "1"}))
    with anyio.fail_after(10):
        await started.wait()
    returned: list[bool] = []

    async def stop() -> None:
        await sub.stop()
        returned.append(finished == ["1"])

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(stop)
            # Absence of a return cannot be waited for: time passes, stop() must not return.
            await anyio.sleep(0.05)
            assert returned == []
            release.set()
    assert returned == [True]


async def test_close_while_messages_flow(target: Target, topic: str) -> None:
    async with target.new_broker() as publisher:
        receiver = target.new_broker()
        await receiver.connect()
        got = Recorder()
        await receiver.subscribe(f"{topic}.c", got, policy=DeliveryPolicy(max_in_flight=8))
        await receiver.subscribe(f"{topic}.c.>", got)
        await settle(publisher, receiver)
        async with anyio.create_task_group() as tg:

            async def publish() -> None:
                for i in range(5000):
                    await publisher.publish(Message(f"{topic}.c", b"x", {"x-id": str(i)}))
                    await anyio.lowlevel.checkpoint()

            tg.start_soon(publish)
            await got.wait_for(20)
            with anyio.fail_after(15):
                await receiver.close()
                await receiver.close()
            tg.cancel_scope.cancel()
        with pytest.raises(BrokerClosed):
            await receiver.publish(Message(f"{topic}.c", b"x"))
        with pytest.raises(BrokerClosed):
            await receiver.subscribe(f"{topic}.c", got)


async def test_close_with_a_blocked_handler_does_not_hang(target: Target, topic: str) -> None:
    """A handler that never returns is cut off after the broker's drain timeout."""
    blocked = anyio.Event()

    async def stuck(_: Message) -> None:
        blocked.set()
        await anyio.sleep_forever()

    broker = target.new_broker()
    await broker.connect()
    await broker.subscribe(f"{topic}.c", stuck)
    await settle(broker, broker)
    await broker.publish(Message(f"{topic}.c", b"x"))
    with anyio.fail_after(10):
        await blocked.wait()
    with anyio.fail_after(30):
        await broker.close()
        await broker.close()


async def test_publish_after_close(target: Target, topic: str) -> None:
    broker = target.new_broker()
    await broker.connect()
    await broker.close()
    with pytest.raises(BrokerClosed):
        await broker.publish(Message(f"{topic}.x", b"x"))
    await broker.close()


async def test_max_in_flight_lets_handlers_overlap(broker: Broker, topic: str) -> None:
    second_arrived = anyio.Event()
    done: list[str] = []

    async def handler(message: Message) -> None:
        if message.headers["x-id"] == "0":
            with anyio.fail_after(10):  # only returns if the second runs meanwhile
                await second_arrived.wait()
        else:
            second_arrived.set()
        done.append(message.headers["x-id"])

    await broker.subscribe(f"{topic}.o", handler, policy=DeliveryPolicy(max_in_flight=4))
    await settle(broker, broker)
    for message in numbered(f"{topic}.o", 2):
        await broker.publish(message)
    await wait_until(lambda: len(done) == 2, timeout=15, what="both handlers to finish")
    assert done == ["1", "0"]


async def test_max_in_flight_one_does_not_overlap(broker: Broker, topic: str) -> None:
    running = 0
    most = 0
    done: list[str] = []

    async def handler(message: Message) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await anyio.sleep(0.001)  # the handler's work: time in which a second could start
        running -= 1
        done.append(message.headers["x-id"])

    await broker.subscribe(f"{topic}.o", handler, policy=DeliveryPolicy(max_in_flight=1))
    await settle(broker, broker)
    for message in numbered(f"{topic}.o", 30):
        await broker.publish(message)
    await wait_until(lambda: len(done) == 30, what="30 deliveries")
    assert most == 1


async def test_max_in_flight_bounds_concurrency(broker: Broker, topic: str) -> None:
    """With 3 allowed, 3 handlers do run at once (the first three wait for each other), and
    never more: every handler then takes a little time, room for a fourth to overlap."""
    running = 0
    most = 0
    done: list[str] = []
    bound_reached = anyio.Event()

    async def handler(message: Message) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        if running == 3:
            bound_reached.set()
        with anyio.fail_after(10):  # only returns if three run at once
            await bound_reached.wait()
        await anyio.sleep(0.005)  # the handler's work: time in which a fourth could start
        running -= 1
        done.append(message.headers["x-id"])

    await broker.subscribe(f"{topic}.o", handler, policy=DeliveryPolicy(max_in_flight=3))
    await settle(broker, broker)
    for message in numbered(f"{topic}.o", 60):
        await broker.publish(message)
    await wait_until(bound_reached.is_set, what="3 handlers running at once")
    await wait_until(lambda: len(done) == 60, what="60 deliveries")
    assert most == 3


async def test_a_cancellation_escaping_a_handler_does_not_end_the_subscription(
    broker: Broker, topic: str
) -> None:
    import asyncio

    seen: list[bytes] = []

    async def handler(message: Message) -> None:
        if message.body == b"cancel":
            task = asyncio.get_running_loop().create_task(asyncio.sleep(10))
            task.cancel()
            await task  # raises CancelledError out of the handler
        seen.append(message.body)

    await broker.subscribe(f"{topic}.c", handler)
    await settle(broker, broker)
    await broker.publish(Message(f"{topic}.c", b"cancel"))
    await broker.publish(Message(f"{topic}.c", b"after"))
    await wait_until(lambda: seen == [b"after"], what="the delivery after the cancelled one")
