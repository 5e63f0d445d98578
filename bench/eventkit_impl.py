"""eventkit's side of every scenario, the same code on every broker.

What a user writes: Services whose subscribers take ``Event[Payload]`` (the CloudEvent, its
data validated by pydantic), a client that publishes ``Payload`` models with ``kit.publish``,
and an endpoint ``Bench.Echo`` taking and returning ``Payload``, called with ``kit.call``.
Subscribers and publisher each have their own broker connection (node), in this process.
Only the broker differs, through a :class:`Target`.
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import anyio

import eventkit
from eventkit import Auth, Broker, Event, Service
from eventkit.observability import Telemetry

from .payload import Payload, Sink, as_model, timed_calls, timed_stream
from .runner import Env, Round

SETTLE_TIMEOUT = 15.0


class Target(ABC):
    """How to make eventkit brokers for one kind of server (one subclass per broker)."""

    @abstractmethod
    def broker(self, env: Env) -> Broker:
        """A new, unconnected broker for one node."""

    async def settle(self, publisher: Broker, topic: str, subscribers: int) -> None:
        """Wait until a publish on ``topic`` reaches all subscribers (gossip, for HTTP).
        On a broker server a subscription is live once ``subscribe`` returned."""
        return None

    async def cleanup(self, env: Env, topic: str, durable: str | None) -> None:
        """Delete the server-side state the scenario left (streams, queues, exchanges).
        The memory broker's state goes with the process."""
        return None


def _handler(sink: Sink) -> Callable[[Event[Payload]], Awaitable[None]]:
    async def on_order(event: Event[Payload]) -> None:
        sink.hit()

    return on_order


@asynccontextmanager
async def stream(
    target: Target,
    env: Env,
    *,
    subscribers: int,
    queue: bool,
    durable: bool = False,
    telemetry: Telemetry | None = None,
) -> AsyncIterator[Round]:
    """Publish + deliver: ``subscribers`` services (a queue group, or each its own copy).
    ``telemetry``: traced and metered (the "eventkit + OTel" rows)."""
    tag = uuid.uuid4().hex[:8]
    topic = f"{env.prefix}.ek{tag}.orders"
    durable_name = f"bench-{tag}" if durable else None
    sink = Sink()
    async with AsyncExitStack() as stack:
        stack.push_async_callback(target.cleanup, env, topic, durable_name)
        for k in range(subscribers):
            svc = Service(f"bench-sub-{tag}-{k}", telemetry=telemetry)
            svc.subscribe(topic, queue="bench" if queue else None, durable=durable_name)(
                _handler(sink)
            )
            await svc.start(broker=target.broker(env))
            stack.push_async_callback(svc.stop)
        kit = await stack.enter_async_context(
            eventkit.Client(target.broker(env), telemetry=telemetry)
        )
        await target.settle(kit.broker, topic, subscribers)
        copies = 1 if queue or durable else subscribers

        async def send(i: int) -> None:
            await kit.publish(topic, as_model(i), type="bench.order")

        async def one(count: int) -> dict[str, float]:
            return await timed_stream(count, count * copies, sink, send)

        yield one


@asynccontextmanager
async def rpc(
    target: Target,
    env: Env,
    *,
    callers: int,
    telemetry: Telemetry | None = None,
    auth: Auth | None = None,
) -> AsyncIterator[Round]:
    """``kit.call`` of an echo endpoint, from ``callers`` concurrent tasks; with ``auth``, the
    endpoint requires a scope and the client sends a token that grants it."""
    name = f"bench-echo-{uuid.uuid4().hex[:8]}"
    svc = Service(name, telemetry=telemetry, auth=auth)
    token = None if auth is None else auth.mint("bench", ["bench:call"], ttl=3600)

    @svc.endpoint("Bench.Echo", scopes=None if auth is None else ["bench:call"])
    async def echo(req: Payload) -> Payload:
        return req

    async with AsyncExitStack() as stack:
        stack.push_async_callback(target.cleanup, env, name, None)
        await svc.start(broker=target.broker(env))
        stack.push_async_callback(svc.stop)
        kit = await stack.enter_async_context(
            eventkit.Client(target.broker(env), telemetry=telemetry, token=token)
        )
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:  # the first call discovers the node through the registry
            try:
                await kit.call(name, "Bench.Echo", as_model(0), response=Payload, timeout=2.0)
                break
            except eventkit.ServiceUnavailable:
                if time.monotonic() > deadline:
                    raise
                await anyio.sleep(0.1)

        async def call(i: int) -> None:
            reply = await kit.call(name, "Bench.Echo", as_model(i), response=Payload, timeout=10)
            assert reply.order_id == f"o-{i:08d}"

        async def one(count: int) -> dict[str, float]:
            return await timed_calls(count, callers, call)

        yield one


@asynccontextmanager
async def items(target: Target, env: Env) -> AsyncIterator[Round]:
    """One stream of ``count`` items from a streaming endpoint (``Bench.Items`` yields a
    ``Payload`` model per item), read by ``async for`` over ``kit.stream``, validated."""
    name = f"bench-items-{uuid.uuid4().hex[:8]}"
    svc = Service(name)

    @svc.endpoint("Bench.Items")
    async def produce(count: int) -> AsyncIterator[Payload]:
        for i in range(count):
            yield as_model(i)

    async with AsyncExitStack() as stack:
        stack.push_async_callback(target.cleanup, env, name, None)
        await svc.start(broker=target.broker(env))
        stack.push_async_callback(svc.stop)
        kit = await stack.enter_async_context(eventkit.Client(target.broker(env)))
        with anyio.fail_after(SETTLE_TIMEOUT):
            while not await kit.describe(name, wait=0.2):
                await anyio.sleep(0.1)

        async def one(count: int) -> dict[str, float]:
            seen = 0
            last = ""
            start = time.perf_counter()
            async for item in kit.stream(name, "Bench.Items", count, response=Payload):
                seen += 1
                last = item.order_id
            elapsed = time.perf_counter() - start
            assert seen == count and last == f"o-{count - 1:08d}"
            return {"rate": count / elapsed}

        yield one
