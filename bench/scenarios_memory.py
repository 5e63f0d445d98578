"""memory://: eventkit's in-process broker, against plain asyncio queues.

There is no "raw client" for an in-process bus, so the baseline is what one would write by
hand: ``asyncio.Queue`` per subscriber (one shared by a queue group's workers) carrying
``json.dumps`` bytes to a task that ``json.loads`` them, and for RPC a queue of
(request bytes, future) served by one task. FastStream has no in-process broker (only a test
double), so it has no rows here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eventkit import Broker, from_url

from . import eventkit_impl as ek
from .payload import Sink, as_bytes, timed_calls, timed_stream
from .runner import Env, Impl, Round, Scenario

LABEL = "asyncio.Queue"


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@asynccontextmanager
async def raw_stream(env: Env, *, subscribers: int, queue: bool) -> AsyncIterator[Round]:
    sink = Sink()
    queues: list[asyncio.Queue[bytes]] = [
        asyncio.Queue() for _ in range(1 if queue else subscribers)
    ]

    async def worker(q: asyncio.Queue[bytes]) -> None:
        while True:
            json.loads(await q.get())
            sink.hit()

    tasks = [asyncio.create_task(worker(queues[k % len(queues)])) for k in range(subscribers)]
    try:

        async def send(i: int) -> None:
            body = as_bytes(i)
            for q in queues:
                q.put_nowait(body)

        async def one(count: int) -> dict[str, float]:
            return await timed_stream(count, count * len(queues), sink, send)

        yield one
    finally:
        await _cancel(tasks)


@asynccontextmanager
async def raw_rpc(env: Env, *, callers: int) -> AsyncIterator[Round]:
    requests: asyncio.Queue[tuple[bytes, asyncio.Future[bytes]]] = asyncio.Queue()

    async def server() -> None:
        while True:
            body, future = await requests.get()
            if not future.done():
                future.set_result(json.dumps(json.loads(body)).encode())

    tasks = [asyncio.create_task(server())]
    loop = asyncio.get_running_loop()
    try:

        async def call(i: int) -> None:
            future: asyncio.Future[bytes] = loop.create_future()
            requests.put_nowait((as_bytes(i), future))
            reply = await asyncio.wait_for(future, 10)
            assert json.loads(reply)["order_id"] == f"o-{i:08d}"

        async def one(count: int) -> dict[str, float]:
            return await timed_calls(count, callers, call)

        yield one
    finally:
        await _cancel(tasks)


class MemoryTarget(ek.Target):
    def broker(self, env: Env) -> Broker:
        return from_url(f"memory://{env.prefix}")


def scenarios() -> list[Scenario]:
    t = MemoryTarget()

    def both(raw: object, eventkit: object) -> list[Impl]:
        return [Impl("raw", LABEL, raw), Impl("eventkit", "eventkit", eventkit)]  # type: ignore[arg-type]

    return [
        Scenario(
            "memory",
            "pubsub",
            "publish + deliver, 1 subscriber",
            100_000,
            "msg/s",
            both(
                lambda e: raw_stream(e, subscribers=1, queue=False),
                lambda e: ek.stream(t, e, subscribers=1, queue=False),
            ),
        ),
        Scenario(
            "memory",
            "fanout",
            "fan-out to 4 subscribers",
            25_000,
            "msg/s",
            both(
                lambda e: raw_stream(e, subscribers=4, queue=False),
                lambda e: ek.stream(t, e, subscribers=4, queue=False),
            ),
            note="4 copies of each event; the rate counts deliveries",
        ),
        Scenario(
            "memory",
            "queue",
            "queue group of 4",
            100_000,
            "msg/s",
            both(
                lambda e: raw_stream(e, subscribers=4, queue=True),
                lambda e: ek.stream(t, e, subscribers=4, queue=True),
            ),
        ),
        Scenario(
            "memory",
            "durable",
            "durable publish + deliver",
            50_000,
            "msg/s",
            [
                Impl(
                    "eventkit",
                    "eventkit",
                    lambda e: ek.stream(t, e, subscribers=1, queue=False, durable=True),
                )
            ],
            note="durable: no hand-written equivalent, eventkit alone",
        ),
        Scenario(
            "memory",
            "rpc-seq",
            "sequential RPC",
            5_000,
            "calls/s",
            both(lambda e: raw_rpc(e, callers=1), lambda e: ek.rpc(t, e, callers=1)),
        ),
        Scenario(
            "memory",
            "rpc-conc",
            "concurrent RPC, 64 callers",
            20_000,
            "calls/s",
            both(lambda e: raw_rpc(e, callers=64), lambda e: ek.rpc(t, e, callers=64)),
        ),
    ]
