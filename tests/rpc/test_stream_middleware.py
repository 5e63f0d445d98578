"""Middleware around streams: a served stream is ``kind="stream"`` (a check that raises
refuses it), a stream being opened is ``kind="stream_call"`` (it may add metadata)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from eventkit import Client, Context, Forbidden, Invocation, Next, Service
from eventkit.brokers.memory import MemoryBroker
from eventkit.testing import run

pytestmark = pytest.mark.anyio


async def test_middleware_sees_streams_on_both_sides() -> None:
    seen: list[tuple[str, str]] = []
    svc = Service("guarded")

    @svc.use
    async def require_token(invocation: Invocation, call_next: Next) -> Any:
        seen.append((invocation.kind, invocation.name))
        if invocation.kind == "stream":
            assert invocation.context is not None
            if invocation.context.metadata.get("token") != "s3cret":
                raise Forbidden("no token")
        return await call_next(invocation)

    @svc.endpoint("Numbers.Count")
    async def count(n: int, ctx: Context) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    async def add_token(invocation: Invocation, call_next: Next) -> Any:
        seen.append((invocation.kind, invocation.name))
        invocation.metadata["token"] = "s3cret"
        return await call_next(invocation)

    async with run(svc) as kit:
        async with Client(MemoryBroker(kit.broker.url)) as plain:
            with pytest.raises(Forbidden, match="no token"):
                await anext(plain.stream("guarded", "Numbers.Count", 3))
        kit.use(add_token)
        assert [i async for i in kit.stream("guarded", "Numbers.Count", 3)] == [0, 1, 2]
    assert seen == [
        ("stream", "Numbers.Count"),
        ("stream_call", "guarded/Numbers.Count"),
        ("stream", "Numbers.Count"),
    ]
