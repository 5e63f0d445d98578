"""Handlers and hooks that misbehave never take the service down or leave it running."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import anyio
import pytest

import eventkit.testing
from eventkit import Context, InternalError, Service, Settings
from eventkit.brokers.base import REPLY_TO
from eventkit.rpc import DEADLINE, ENDPOINT
from eventkit.wire import Message

pytestmark = pytest.mark.anyio


async def _cancelled_task() -> None:
    task = asyncio.get_running_loop().create_task(asyncio.sleep(10))
    task.cancel()
    await task


async def test_a_cancellation_escaping_a_handler_is_a_failure_not_a_stop() -> None:
    svc = Service("robust")
    seen: list[str] = []

    @svc.subscribe("r.cancel")
    async def bad(data: Any) -> None:
        await _cancelled_task()

    @svc.subscribe("r.ok")
    async def good(data: Any) -> None:
        seen.append(data)

    @svc.endpoint("R.Cancel")
    async def cancel(req: Any) -> None:
        await _cancelled_task()

    @svc.endpoint("R.Ok")
    async def ok(req: Any) -> str:
        return "fine"

    async with eventkit.testing.run(svc) as kit:
        await kit.publish("r.cancel", 1)
        await kit.publish("r.ok", "after")
        await kit.join()
        with pytest.raises(InternalError, match="cancelled"):
            await kit.call("robust", "R.Cancel", {}, timeout=5)
        assert await kit.call("robust", "R.Ok", {}, timeout=5) == "fine"
    assert seen == ["after"]
    assert svc.stats.failed == 1


async def test_a_handlers_own_timeout_is_a_500_not_a_408() -> None:
    svc = Service("robust")

    @svc.endpoint("R.Slow")
    async def slow(req: Any) -> None:
        with anyio.fail_after(0.01):
            await anyio.sleep(1)

    async with eventkit.testing.run(svc) as kit:
        with pytest.raises(InternalError, match="TimeoutError"):
            await kit.call("robust", "R.Slow", {}, timeout=5)


async def test_a_bad_deadline_header_gets_a_400() -> None:
    svc = Service("robust")

    @svc.endpoint("R.Ok")
    async def ok(req: Any) -> str:
        return "fine"

    async with eventkit.testing.run(svc) as kit:
        replies: list[Message] = []

        async def on_reply(message: Message) -> None:
            replies.append(message)

        await kit.broker.subscribe("inbox.x", on_reply)
        request = Message(
            f"eventkit.rpc.robust.{svc.node_id}",
            b"{}",
            {ENDPOINT: "R.Ok", DEADLINE: "soon", REPLY_TO: "inbox.x"},
        )
        await kit.broker.publish(request)
        await kit.join()
    (reply,) = replies
    assert reply.headers["eventkit-status"] == "400"
    assert b"soon" in reply.body


async def test_events_published_by_an_endpoint_do_not_carry_its_deadline() -> None:
    svc = Service("robust")

    @svc.endpoint("R.Emit")
    async def emit(req: Any, ctx: Context) -> None:
        await ctx.publish("r.emitted", {"x": 1})

    async with eventkit.testing.run(svc) as kit:
        raw: list[Message] = []

        async def on_emitted(message: Message) -> None:
            raw.append(message)

        await kit.broker.subscribe("r.emitted", on_emitted)
        await kit.call("robust", "R.Emit", {}, timeout=0.5, metadata={"trace": "t"})
        await kit.join()
    (event,) = raw
    assert DEADLINE not in event.headers  # an event outlives the request that caused it
    assert event.headers["eventkit-md-trace"] == "t"  # metadata still propagates


async def test_a_failing_hook_does_not_keep_the_service_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    svc = Service("robust")
    seen: list[Any] = []

    @svc.subscribe("r.x")
    async def on_x(data: Any) -> None:
        seen.append(data)

    @svc.before_stop
    def broken() -> None:
        raise RuntimeError("hook broke")

    url = "memory://robust-hooks"
    await svc.start(broker=url)
    with caplog.at_level(logging.ERROR):
        await svc.stop()
    assert not svc.running
    assert "hook broke" in caplog.text
    async with eventkit.connect(url) as kit:
        await kit.publish("r.x", 1)
        await kit.broker.join()  # type: ignore[attr-defined]
    assert seen == []


async def test_a_failing_after_start_hook_fails_the_start_and_stops() -> None:
    svc = Service("robust")

    @svc.after_start
    def broken() -> None:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError, match="no"):
        await svc.start(broker="memory://robust-start")
    assert not svc.running


async def test_context_reaches_its_parameter_past_a_defaulted_one() -> None:
    svc = Service("robust")
    got: list[tuple[Any, Any, Any]] = []

    @svc.subscribe("r.ctx")
    async def handler(data: int, flag: bool = False, ctx: Context | None = None) -> None:
        got.append((data, flag, ctx))

    async with eventkit.testing.run(svc) as kit:
        await kit.publish("r.ctx", 5)
        await kit.join()
    ((data, flag, ctx),) = got
    assert (data, flag) == (5, False)
    assert isinstance(ctx, Context)


def test_flags_are_not_abbreviated() -> None:
    settings = Settings.load(environ={}, argv=["--name", "shop", "--log", "x"])
    assert settings.namespace == "eventkit"
    assert settings.log_level == "INFO"
