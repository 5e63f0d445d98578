"""The one payload every implementation sends, and the helpers that time a round.

About 100 bytes of JSON. The raw clients build a dict and ``json.dumps`` it per message and
``json.loads`` it on arrival; eventkit and FastStream build the pydantic model per message and
validate it on arrival. Same payload, same amount of work per side.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

ROUND_TIMEOUT = 120.0
"""No round waits longer than this for its deliveries (a lost message fails the round)."""


class Payload(BaseModel):
    order_id: str
    total_cents: int
    currency: str
    customer: str
    items: int


def as_dict(i: int) -> dict[str, Any]:
    return {
        "order_id": f"o-{i:08d}",
        "total_cents": 999 + i % 100,
        "currency": "EUR",
        "customer": "c-0012345",
        "items": 3,
    }


def as_bytes(i: int) -> bytes:
    """The raw clients' encode: a dict through ``json.dumps``."""
    return json.dumps(as_dict(i)).encode()


def as_model(i: int) -> Payload:
    """eventkit's and FastStream's: the model, which the library serializes."""
    return Payload(
        order_id=f"o-{i:08d}",
        total_cents=999 + i % 100,
        currency="EUR",
        customer="c-0012345",
        items=3,
    )


SIZE = len(as_bytes(0))


class Sink:
    """Counts deliveries and notes when the expected number arrived."""

    __slots__ = ("at", "event", "seen", "want")

    def __init__(self, want: int = 0) -> None:
        self.want = want
        self.seen = 0
        self.at = 0.0
        self.event = asyncio.Event()

    def reset(self, want: int) -> None:
        self.want, self.seen, self.at = want, 0, 0.0
        self.event = asyncio.Event()

    def hit(self) -> None:
        self.seen += 1
        if self.seen == self.want:
            self.at = time.perf_counter()
            self.event.set()

    async def wait(self) -> float:
        """The time of the last expected delivery."""
        try:
            await asyncio.wait_for(self.event.wait(), ROUND_TIMEOUT)
        except TimeoutError:
            raise RuntimeError(f"only {self.seen} of {self.want} deliveries arrived") from None
        return self.at


async def timed_stream(
    count: int, deliveries: int, sink: Sink, send: Callable[[int], Awaitable[Any]]
) -> dict[str, float]:
    """Publish ``count`` messages one after another; rates to the last delivery.

    ``rate`` is deliveries per second from the first publish to the last delivery (for a
    fan-out, every subscriber's copy counts); ``publish`` is publishes per second until the
    last publish returned.
    """
    sink.reset(deliveries)
    start = time.perf_counter()
    for i in range(count):
        await send(i)
    published = time.perf_counter()
    end = await sink.wait()
    return {"rate": deliveries / (end - start), "publish": count / (published - start)}


async def timed_calls(
    calls: int, callers: int, call: Callable[[int], Awaitable[Any]]
) -> dict[str, float]:
    """``calls`` calls from ``callers`` concurrent tasks (split evenly); calls/s and latency."""
    per = max(calls // callers, 1)
    latencies: list[float] = []

    async def caller(c: int) -> None:
        clock = time.perf_counter
        for i in range(per):
            t = clock()
            await call(c * per + i)
            latencies.append(clock() - t)

    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(caller(c) for c in range(callers))), ROUND_TIMEOUT)
    elapsed = time.perf_counter() - start
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "rate": per * callers / elapsed,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
    }
