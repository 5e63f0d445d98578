"""A streaming service and a client on one conformance target, in a namespace of their own.

The handlers write what they see into a :class:`Probe` the test reads (the service runs in
the test's process, on a broker connection of its own): how far the handler got ahead of
what the caller took, whether its ``finally`` ran, and how it ended.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.lowlevel
from pydantic import BaseModel

import eventkit
from eventkit import Context, RemoteError, Service, Settings

from .target import Target

HEARTBEAT = 0.2
"""Seconds between frames on idle streams in these tests (the caller asks for it)."""
BOUND = 3.5 * HEARTBEAT
"""The longest a side that went silent goes unnoticed (docs/rpc.md, "Streams")."""


class Count(BaseModel):
    n: int
    fail_after: int | None = None
    """Raise Gone before yielding item number ``fail_after`` (0-based)."""
    pause: float = 0.0
    """Seconds to sleep after each item."""


class Tick(BaseModel):
    n: int


class Gone(RemoteError):
    """A handler's own error type (one code per class across the test session: the caller
    rebuilds the first class registered for a code)."""

    code = 410
    status = "Gone"


class Probe:
    """What the handlers saw (and the namespace the service runs in)."""

    def __init__(self, namespace: str = "") -> None:
        self.namespace = namespace
        self.produced = 0
        self.taken = 0
        """Items the test took from the stream (the test counts them here)."""
        self.max_lead = 0
        """The most items the handler was ahead of what the caller took."""
        self.received = 0
        """Items a client-stream handler took from the caller."""
        self.sent = 0
        """Items the test sent on a client stream."""
        self.max_behind = 0
        """The most items the caller's sends were ahead of what the handler took."""
        self.started = anyio.Event()
        self.finished = anyio.Event()
        self.ended_by = ""
        self.context_deadline: float | None = None


def ticker(ns: str, probe: Probe) -> Service:
    svc = Service("ticker", namespace=ns, registry_ttl=10, heartbeat=1, drain_timeout=2)

    @svc.endpoint("Ticker.Count")
    async def count(req: Count, ctx: Context) -> AsyncIterator[Tick]:
        probe.started.set()
        probe.context_deadline = ctx.deadline
        try:
            for i in range(req.n):
                if req.fail_after == i:
                    raise Gone(f"stopped at {i}")
                probe.produced = i + 1
                probe.max_lead = max(probe.max_lead, probe.produced - probe.taken)
                yield Tick(n=i)
                if req.pause:
                    await anyio.sleep(req.pause)
            probe.ended_by = "end"
        except BaseException as exc:
            probe.ended_by = type(exc).__name__
            raise
        finally:
            probe.finished.set()

    @svc.endpoint("Ticker.Crash")
    async def crash(req: Count) -> AsyncIterator[Tick]:
        for i in range(req.n):
            yield Tick(n=i)
        raise ValueError("the handler broke")

    @svc.endpoint("Adder.Sum", window=4)
    async def add(numbers: AsyncIterator[int], ctx: Context) -> int:
        total = 0
        async for number in numbers:
            probe.received += 1
            probe.max_behind = max(probe.max_behind, probe.sent - probe.received)
            total += number
            await anyio.lowlevel.checkpoint()
        return total

    @svc.endpoint("Echo.Chat")
    async def chat(lines: AsyncIterator[str]) -> AsyncIterator[str]:
        try:
            async for line in lines:
                yield line.upper()
        finally:
            probe.finished.set()

    @svc.endpoint("Plain.Hello")
    async def hello(name: str) -> str:
        return f"hello {name}"

    return svc


@asynccontextmanager
async def streaming(target: Target) -> AsyncIterator[tuple[eventkit.Client, Probe]]:
    """The ticker service and a client on ``target``, the client knowing the service."""
    ns = f"st{uuid.uuid4().hex[:10]}"
    probe = Probe(ns)
    svc = ticker(ns, probe)
    await svc.start(broker=target.new_broker())
    try:
        async with client(target, ns) as kit:
            await known(kit, "ticker")
            yield kit, probe
    finally:
        await svc.stop()


@asynccontextmanager
async def client(target: Target, ns: str) -> AsyncIterator[eventkit.Client]:
    settings = Settings(namespace=ns, registry_ttl=10, heartbeat=1)
    async with eventkit.Client(target.new_broker(), settings=settings) as kit:
        yield kit


async def known(kit: eventkit.Client, service: str, nodes: int = 1) -> None:
    registry = await kit.get_registry()
    with anyio.fail_after(15):
        while len(registry.view.nodes(service)) < nodes:
            await registry.query(service, wait=0.2)
