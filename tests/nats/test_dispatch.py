"""Core NATS deliveries from the read loop: the Dispatcher, and the direct route in use."""

from __future__ import annotations

import asyncio
import logging

import anyio
import pytest
from nats.aio.client import Client

import eventkit.brokers.nats._broker as nats_module
import eventkit.brokers.nats._dispatch as dispatch_module
from eventkit.brokers.base import NO_RESPONDERS, REPLY_TO, inline
from eventkit.brokers.nats import NatsBroker
from eventkit.brokers.nats._dispatch import Dispatcher
from eventkit.brokers.nats._embedded import EmbeddedNats
from eventkit.wire import DeadLetter, Message
from tests.conformance.util import Recorder, settle, wait_until

pytestmark = pytest.mark.anyio


def _msg(i: int) -> Message:
    return Message("d.t", str(i).encode(), {"x-id": str(i)})


class Gated:
    """A handler that holds every message until the gate opens; notes the most at once."""

    def __init__(self) -> None:
        self.gate = anyio.Event()
        self.running = 0
        self.most = 0
        self.seen: list[int] = []

    async def __call__(self, message: Message) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.gate.wait()
            self.seen.append(int(message.body))
        finally:
            self.running -= 1


async def test_at_most_max_in_flight_handlers_run_and_every_message_is_handled() -> None:
    handler = Gated()
    dispatcher = Dispatcher("d.t", handler, max_in_flight=3)
    for i in range(20):
        dispatcher.deliver(_msg(i))
    await anyio.wait_all_tasks_blocked()
    assert handler.running == 3
    handler.gate.set()
    with anyio.fail_after(5):
        await dispatcher.wait_idle()
    assert sorted(handler.seen) == list(range(20))
    assert handler.most == 3


async def test_one_in_flight_keeps_the_order_of_arrival() -> None:
    seen: list[int] = []

    async def handler(message: Message) -> None:
        for _ in range(int(message.body) % 3):  # uneven work, suspending in between
            await anyio.lowlevel.checkpoint()
        seen.append(int(message.body))

    dispatcher = Dispatcher("d.t", handler, max_in_flight=1)
    for i in range(50):
        dispatcher.deliver(_msg(i))
        if i % 7 == 0:
            await anyio.lowlevel.checkpoint()  # some arrive while the handler runs
    with anyio.fail_after(5):
        await dispatcher.wait_idle()
    assert seen == list(range(50))


async def test_a_failing_handler_loses_only_its_own_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[int] = []

    async def handler(message: Message) -> None:
        i = int(message.body)
        if i == 1:
            raise ValueError("boom")
        if i == 2:
            raise DeadLetter("not for me")
        seen.append(i)

    dispatcher = Dispatcher("d.t", handler, max_in_flight=1)
    for i in range(4):
        dispatcher.deliver(_msg(i))
    with anyio.fail_after(5):
        await dispatcher.wait_idle()
    assert seen == [0, 3]
    assert "ValueError: boom" in caplog.text
    assert "not for me" in caplog.text


async def test_an_inline_handler_runs_before_deliver_returns() -> None:
    seen: list[int] = []

    async def handler(message: Message) -> None:
        seen.append(int(message.body))

    dispatcher = Dispatcher("d.t", inline(handler), max_in_flight=1)
    dispatcher.deliver(_msg(7))
    assert seen == [7]


async def test_an_inline_handler_that_suspends_or_raises_is_logged_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def suspends(message: Message) -> None:
        await anyio.sleep(1)

    async def raises(message: Message) -> None:
        raise RuntimeError("inline bug")

    with caplog.at_level(logging.ERROR, "eventkit.broker"):
        Dispatcher("d.t", inline(suspends), 1).deliver(_msg(1))
        Dispatcher("d.t", inline(raises), 1).deliver(_msg(2))
    assert "suspended; message dropped" in caplog.text
    assert "inline bug" in caplog.text


async def test_a_slow_consumer_drops_the_excess_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(dispatch_module, "DEFAULT_SUB_PENDING_MSGS_LIMIT", 3)
    handler = Gated()
    dispatcher = Dispatcher("d.t", handler, max_in_flight=1)
    for i in range(10):
        dispatcher.deliver(_msg(i))
    handler.gate.set()
    with anyio.fail_after(5):
        await dispatcher.wait_idle()
    assert handler.seen == [0, 1, 2, 3]  # one running, three waiting
    assert "slow consumer" in caplog.text


async def test_cancel_stops_running_handlers_and_drops_the_waiting() -> None:
    handler = Gated()
    dispatcher = Dispatcher("d.t", handler, max_in_flight=2)
    for i in range(5):
        dispatcher.deliver(_msg(i))
    await anyio.wait_all_tasks_blocked()
    dispatcher.cancel()
    with anyio.fail_after(5):
        await dispatcher.wait_idle()
    assert handler.seen == []
    assert handler.running == 0


async def test_subscriptions_are_routed_from_the_read_loop(nats_server: EmbeddedNats) -> None:
    async with NatsBroker(nats_server.url) as broker:
        got = Recorder()
        sub = await broker.subscribe("direct.t", got)
        nc = broker._nc
        assert nc is not None
        assert len(nc._direct) == 1  # type: ignore[attr-defined]
        await settle(broker, broker)
        await broker.publish(Message("direct.t", b"{}", {"x-id": "a", REPLY_TO: "direct.r"}))
        await got.wait_ids(["a"])
        assert got.messages[0].headers == {"x-id": "a", REPLY_TO: "direct.r"}
        await sub.stop()
        assert nc._direct == {}  # type: ignore[attr-defined]


async def test_stop_handles_what_already_arrived(nats_server: EmbeddedNats) -> None:
    async with NatsBroker(nats_server.url) as broker:
        handler = Gated()
        sub = await broker.subscribe("direct.drain", handler)
        await settle(broker, broker)
        for i in range(5):
            await broker.publish(Message("direct.drain", str(i).encode(), {}))
        await wait_until(lambda: handler.running == 1, what="the first message in its handler")
        nc = broker._nc
        assert nc is not None
        async with anyio.create_task_group() as tg:
            tg.start_soon(sub.stop)
            # stop() has drained the server's side (UNSUB round trip) and unrouted the
            # subscription; what arrived waits behind the held handler.
            await wait_until(lambda: nc._direct == {}, what="stop() to unroute")  # type: ignore[attr-defined]
            assert handler.seen == []
            handler.gate.set()
        assert handler.seen == list(range(5))


async def test_the_plain_nats_py_client_delivers_the_same(
    nats_server: EmbeddedNats, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where nats-py does not allow the direct route, its callback carries the messages."""
    monkeypatch.setattr(nats_module, "make_client", Client)
    async with NatsBroker(nats_server.url) as broker:
        assert type(broker._nc) is Client
        got, replies = Recorder(), Recorder()
        await broker.subscribe("plain.t", got)
        await broker.subscribe("plain.reply", replies)
        await settle(broker, broker)
        await broker.publish(Message("plain.t", b"{}", {"x-id": "p", REPLY_TO: "plain.r"}))
        await broker.publish(Message("plain.nobody", b"", {REPLY_TO: "plain.reply"}))
        await got.wait_ids(["p"])
        assert got.messages[0].headers == {"x-id": "p", REPLY_TO: "plain.r"}
        await replies.wait_for(1)
        assert replies.messages[0].headers == {NO_RESPONDERS: "1"}


async def test_an_inline_handler_runs_in_the_connections_read_loop(
    nats_server: EmbeddedNats,
) -> None:
    """The RPC reply inbox's route: no task between the socket and the waiting call."""
    tasks: list[asyncio.Task[object] | None] = []

    async def on_reply(message: Message) -> None:
        tasks.append(asyncio.current_task())

    async with NatsBroker(nats_server.url) as broker:
        await broker.subscribe("direct.inline", inline(on_reply))
        await settle(broker, broker)
        await broker.publish(Message("direct.inline", b"{}", {}))
        await wait_until(lambda: len(tasks) == 1, what="the reply")
        assert broker._nc is not None
        assert tasks == [broker._nc._reading_task]
