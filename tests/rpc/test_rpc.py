"""RPC over broker topics, on every broker: calls, errors, context, registry, selector."""

from __future__ import annotations

import itertools
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

import eventkit
from eventkit import (
    BadRequest,
    Client,
    Context,
    DeadlineExceeded,
    InternalError,
    NotFound,
    RemoteError,
    Service,
    ServiceUnavailable,
)
from eventkit.rpc import Invocation, Next
from tests.conformance.target import Target
from tests.conformance.util import wait_until

pytestmark = pytest.mark.anyio


class HelloRequest(BaseModel):
    name: str


class HelloReply(BaseModel):
    msg: str
    node: str


class Conflict(RemoteError):
    code = 409
    status = "Conflict"


def make_greeter(ns: str, **kwargs: Any) -> Service:
    options: dict[str, Any] = {"registry_ttl": 3.0, "heartbeat": 0.5, **kwargs}
    svc = Service("greeter", version="1.0.0", metadata={"team": "core"}, namespace=ns, **options)

    @svc.endpoint("Greeter.Hello")
    async def hello(req: HelloRequest, ctx: Context) -> HelloReply:
        return HelloReply(msg=f"Hello {req.name}", node=ctx.node_id)

    @svc.endpoint("Greeter.Meta")
    async def meta(req: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return {
            "metadata": ctx.metadata,
            "caller": ctx.caller,
            "left": ctx.time_left(),
            "address": ctx.caller_address,
        }

    @svc.endpoint("Greeter.Fail")
    async def fail(req: dict[str, Any]) -> None:
        raise ValueError("the handler broke")

    @svc.endpoint("Greeter.Conflict")
    async def conflict(req: dict[str, Any]) -> None:
        raise Conflict("already exists", data={"key": req.get("key")})

    @svc.endpoint("Greeter.Slow")
    async def slow(req: dict[str, Any]) -> str:
        try:
            await anyio.sleep(float(req["seconds"]))
        except anyio.get_cancelled_exc_class():
            cancelled.append(req["seconds"])
            raise
        return "done"

    cancelled: list[Any] = []
    svc.cancelled = cancelled  # type: ignore[attr-defined]
    return svc


@asynccontextmanager
async def running(target: Target, *services: Service) -> AsyncIterator[None]:
    started: list[Service] = []
    try:
        for svc in services:
            await svc.start(broker=target.new_broker())
            started.append(svc)
        yield
    finally:
        for svc in reversed(started):
            await svc.stop()


@asynccontextmanager
async def caller(target: Target, ns: str) -> AsyncIterator[Client]:
    settings = eventkit.Settings(namespace=ns, registry_ttl=3.0, heartbeat=0.5)
    async with Client(target.new_broker(), settings=settings) as kit:
        yield kit


@pytest.fixture
def ns() -> str:
    return f"ek{uuid.uuid4().hex[:8]}"


async def test_typed_call_round_trip(target: Target, ns: str) -> None:
    svc = make_greeter(ns)
    async with running(target, svc), caller(target, ns) as kit:
        reply = await kit.call(
            "greeter", "Greeter.Hello", HelloRequest(name="John"), response=HelloReply, timeout=5
        )
        assert reply == HelloReply(msg="Hello John", node=svc.node_id)
        hello = kit.service("greeter").endpoint("Greeter.Hello", HelloRequest, HelloReply)
        assert (await hello(HelloRequest(name="Ann"))).msg == "Hello Ann"


async def test_context_carries_caller_metadata_and_deadline(target: Target, ns: str) -> None:
    async with running(target, make_greeter(ns)), caller(target, ns) as kit:
        out = await kit.call("greeter", "Greeter.Meta", {}, metadata={"user": "ann"}, timeout=4)
    assert out["metadata"] == {"user": "ann"}
    assert out["caller"] == kit.node_id
    assert 0 < out["left"] <= 4
    assert out["address"]


async def test_error_codes_as_the_caller_sees_them(
    target: Target, ns: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(target, make_greeter(ns)), caller(target, ns) as kit:
        with pytest.raises(BadRequest) as bad:
            await kit.call("greeter", "Greeter.Hello", {"nom": 1}, timeout=5)
        assert bad.value.code == 400
        assert any(e["loc"] == ["name"] for e in bad.value.data)
        with pytest.raises(NotFound, match=r"Greeter\.Nope") as nf:
            await kit.call("greeter", "Greeter.Nope", {}, timeout=5)
        assert "Greeter.Hello" in nf.value.detail  # lists what exists
        with caplog.at_level(logging.ERROR), pytest.raises(InternalError) as internal:
            await kit.call("greeter", "Greeter.Fail", {}, timeout=5)
        assert internal.value.code == 500 and "the handler broke" in internal.value.detail
        assert "Traceback" not in internal.value.detail
        assert "ValueError: the handler broke" in caplog.text  # the traceback stays there
        with pytest.raises(Conflict) as conflict:
            await kit.call("greeter", "Greeter.Conflict", {"key": "k"}, timeout=5)
        assert conflict.value.code == 409 and conflict.value.data == {"key": "k"}
        assert conflict.value.id == "greeter"
        with anyio.fail_after(2):  # 503 at once, not after the 30 s timeout
            with pytest.raises(ServiceUnavailable, match="greeter"):
                await kit.call("nobody", "X.Y", {}, timeout=30)


async def test_deadline_expires_and_cancels_the_handler(target: Target, ns: str) -> None:
    svc = make_greeter(ns)
    async with running(target, svc), caller(target, ns) as kit:
        with pytest.raises(DeadlineExceeded) as exc:
            await kit.call("greeter", "Greeter.Slow", {"seconds": 5}, timeout=0.5)
        assert exc.value.code == 408
        cancelled: list[Any] = svc.cancelled  # type: ignore[attr-defined]
        await wait_until(lambda: bool(cancelled), what="the handler to be cancelled")


async def test_a_thousand_concurrent_calls_each_get_their_own_reply(
    target: Target, ns: str
) -> None:
    async with running(target, make_greeter(ns)), caller(target, ns) as kit:
        replies: dict[int, str] = {}

        async def one(i: int) -> None:
            reply = await kit.call(
                "greeter",
                "Greeter.Hello",
                HelloRequest(name=str(i)),
                response=HelloReply,
                timeout=30,
            )
            replies[i] = reply.msg

        async with anyio.create_task_group() as tg:
            for i in range(1000):
                tg.start_soon(one, i)
    assert replies == {i: f"Hello {i}" for i in range(1000)}


async def known_nodes(kit: Client, service: str, count: int) -> set[str]:
    """Query the registry until ``count`` nodes of ``service`` are known; their ids."""
    registry = await kit.get_registry()
    with anyio.fail_after(10):
        while len(registry.view.nodes(service)) < count:
            await registry.query(service, wait=0.2)
    return {n.id for n in registry.view.nodes(service)}


async def test_round_robin_alternates_and_graceful_stop_removes_the_node(
    target: Target, ns: str
) -> None:
    # b's record would expire only after 60 s: leaving within the wait below is its leave.
    a, b = make_greeter(ns), make_greeter(ns, registry_ttl=60.0)
    held: list[str] = []
    release = anyio.Event()

    @b.before_stop
    def let_the_held_calls_finish() -> None:  # while b still serves, before it drains
        release.set()

    for svc in (a, b):

        @svc.endpoint("Greeter.Hold")
        async def hold(req: dict[str, Any], ctx: Context) -> str:
            held.append(ctx.node_id)
            await release.wait()
            return "done"

    async with running(target, a, b), caller(target, ns) as kit:
        assert await known_nodes(kit, "greeter", 2) == {a.node_id, b.node_id}
        nodes = []
        for _ in range(10):
            reply = await kit.call(
                "greeter", "Greeter.Hello", HelloRequest(name="x"), response=HelloReply, timeout=5
            )
            nodes.append(reply.node)
        assert Counter(nodes) == {a.node_id: 5, b.node_id: 5}
        assert all(x != y for x, y in itertools.pairwise(nodes))

        # A graceful stop: the calls in flight on b complete, and b leaves at once.
        held_done = []

        async def held_call() -> None:
            held_done.append(await kit.call("greeter", "Greeter.Hold", {}, timeout=10))

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(held_call)
            await wait_until(lambda: len(held) == 4, what="4 calls in their handlers")
            assert held.count(b.node_id) == 2  # in flight on b as it stops
            await b.stop()
        assert held_done == ["done"] * 4
        registry = await kit.get_registry()
        await wait_until(
            lambda: b.node_id not in {n.id for n in registry.view.nodes("greeter")},
            what="b to leave the registry",
        )
        for _ in range(5):
            reply = await kit.call(
                "greeter", "Greeter.Hello", HelloRequest(name="x"), response=HelloReply, timeout=5
            )
            assert reply.node == a.node_id


async def test_describe_and_services(target: Target, ns: str) -> None:
    async with running(target, make_greeter(ns)), caller(target, ns) as kit:
        services = await kit.services()
        assert [(s.name, s.version) for s in services] == [("greeter", "1.0.0")]
        (info,) = await kit.describe("greeter")
        assert info.metadata == {"team": "core"}
        endpoints = {e.name: e for e in info.endpoints}
        assert endpoints["Greeter.Hello"].request["properties"]["name"]["type"] == "string"
        assert "msg" in endpoints["Greeter.Hello"].response["properties"]
        assert len(info.nodes) == 1
        assert await kit.describe("nobody", wait=0.1) == []


async def test_calls_from_a_handler_inherit_the_deadline_and_metadata(
    target: Target, ns: str
) -> None:
    front = Service("front", namespace=ns, registry_ttl=3.0, heartbeat=0.5)

    @front.endpoint("Front.Relay")
    async def relay(req: dict[str, Any], ctx: Context) -> Any:
        return await ctx.client.call("greeter", "Greeter.Meta", {}, timeout=60)  # type: ignore[union-attr]

    async with running(target, make_greeter(ns), front), caller(target, ns) as kit:
        out = await kit.call("front", "Front.Relay", {}, metadata={"trace": "t1"}, timeout=3)
    assert out["metadata"] == {"trace": "t1"}
    assert out["left"] <= 3  # inherited, not the inner 60 s


async def test_middleware_wraps_endpoints_and_calls(target: Target, ns: str) -> None:
    seen: list[str] = []

    async def server_mw(inv: Invocation, call_next: Next) -> Any:
        seen.append(f"server:{inv.kind}:{inv.name}")
        return await call_next(inv)

    async def client_mw(inv: Invocation, call_next: Next) -> Any:
        seen.append(f"client:{inv.kind}:{inv.name}")
        inv.metadata["via"] = "mw"
        return await call_next(inv)

    svc = make_greeter(ns, middleware=[server_mw])
    async with running(target, svc), caller(target, ns) as kit:
        kit.use(client_mw)
        out = await kit.call("greeter", "Greeter.Meta", {}, timeout=5)
    assert out["metadata"] == {"via": "mw"}
    assert seen == ["client:call:greeter/Greeter.Meta", "server:endpoint:Greeter.Meta"]


class Greeter:
    """A class whose public async methods become endpoints."""

    async def Hello(self, req: HelloRequest, ctx: Context) -> HelloReply:
        return HelloReply(msg=f"Hi {req.name}", node=ctx.node_id)

    async def _private(self) -> None: ...


async def test_register_a_class(target: Target, ns: str) -> None:
    svc = Service("greeter", namespace=ns)
    svc.register(Greeter())
    assert [e.name for e in svc.endpoints] == ["Greeter.Hello"]
    async with running(target, svc), caller(target, ns) as kit:
        reply = await kit.call(
            "greeter", "Greeter.Hello", HelloRequest(name="Bo"), response=HelloReply
        )
    assert reply.msg == "Hi Bo"
