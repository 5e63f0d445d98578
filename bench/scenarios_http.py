"""http://: eventkit's peer-to-peer HTTP broker against plain aiohttp.

The raw side is what one writes with aiohttp alone: each subscriber is an aiohttp server
whose handler ``json.loads`` the body; the publisher is one ClientSession that POSTs each
event and awaits the answer (to all four servers at once for a fan-out, to the next one in
turn for a queue group). Raw RPC is one POST whose response carries the reply; so is
eventkit's, whose serving node streams the reply into the request's response (a reply too
slow for that comes by a POST of its own). Every node runs in this
process on loopback. FastStream has no HTTP broker. HTTP pays a request per delivery, so
the counts are smaller.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import aiohttp
from aiohttp import web

from eventkit import Broker
from eventkit.brokers.http import HttpBroker

from . import eventkit_impl as ek
from .payload import Sink, as_bytes, timed_calls, timed_stream
from .runner import Env, Impl, Round, Scenario

LABEL = "aiohttp"
HEADERS = {"content-type": "application/json"}


async def _serve(stack: AsyncExitStack, route: str, handler: object) -> str:
    app = web.Application()
    app.router.add_post(route, handler)  # type: ignore[arg-type]
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return f"http://127.0.0.1:{runner.addresses[0][1]}"


async def _session(stack: AsyncExitStack) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    return await stack.enter_async_context(session)


@asynccontextmanager
async def raw_stream(env: Env, *, subscribers: int, queue: bool) -> AsyncIterator[Round]:
    sink = Sink()

    async def hook(request: web.Request) -> web.Response:
        json.loads(await request.read())
        sink.hit()
        return web.Response(status=204)

    async with AsyncExitStack() as stack:
        urls = [
            await _serve(stack, "/topics/{topic}", hook) + "/topics/bench.orders"
            for _ in range(subscribers)
        ]
        session = await _session(stack)
        turn = itertools.cycle(urls)

        async def post(url: str, body: bytes) -> None:
            async with session.post(url, data=body, headers=HEADERS) as response:
                response.raise_for_status()

        async def send(i: int) -> None:
            body = as_bytes(i)
            if queue:
                await post(next(turn), body)
            elif subscribers == 1:
                await post(urls[0], body)
            else:
                await asyncio.gather(*(post(url, body) for url in urls))

        copies = 1 if queue else subscribers

        async def one(count: int) -> dict[str, float]:
            return await timed_stream(count, count * copies, sink, send)

        yield one


@asynccontextmanager
async def raw_rpc(env: Env, *, callers: int) -> AsyncIterator[Round]:
    async def echo(request: web.Request) -> web.Response:
        body = json.dumps(json.loads(await request.read())).encode()
        return web.Response(body=body, content_type="application/json")

    async with AsyncExitStack() as stack:
        url = await _serve(stack, "/rpc", echo) + "/rpc"
        session = await _session(stack)

        async def call(i: int) -> None:
            async with session.post(url, data=as_bytes(i), headers=HEADERS) as response:
                reply = json.loads(await response.read())
            assert reply["order_id"] == f"o-{i:08d}"

        async def one(count: int) -> dict[str, float]:
            return await timed_calls(count, callers, call)

        yield one


class HttpTarget(ek.Target):
    """Nodes on loopback; the first one made in a scenario is every other one's seed."""

    def __init__(self) -> None:
        self._seed: HttpBroker | None = None

    def broker(self, env: Env) -> Broker:
        options = {"gossip_interval": 0.25, "dead_after": 5.0}
        if self._seed is None:
            self._seed = HttpBroker("http://127.0.0.1:0", **options)
            return self._seed
        return HttpBroker(f"http://127.0.0.1:0?seeds={self._seed.address}", **options)

    async def settle(self, publisher: Broker, topic: str, subscribers: int) -> None:
        assert isinstance(publisher, HttpBroker)
        deadline = time.monotonic() + ek.SETTLE_TIMEOUT
        while time.monotonic() < deadline:
            route = publisher.membership.route(topic)
            known = sum(map(len, route.plain.values())) + sum(map(len, route.groups.values()))
            if known >= subscribers or route.durables:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"the publisher did not learn {subscribers} subscribers of {topic}")

    async def cleanup(self, env: Env, topic: str, durable: str | None) -> None:
        self._seed = None


def scenarios() -> list[Scenario]:
    t = HttpTarget()

    def both(raw: object, eventkit: object) -> list[Impl]:
        return [Impl("raw", LABEL, raw), Impl("eventkit", "eventkit", eventkit)]  # type: ignore[arg-type]

    scaled = "scaled down: one HTTP request per delivery"
    return [
        Scenario(
            "http",
            "pubsub",
            "publish + deliver, 1 subscriber",
            5_000,
            "msg/s",
            both(
                lambda e: raw_stream(e, subscribers=1, queue=False),
                lambda e: ek.stream(t, e, subscribers=1, queue=False),
            ),
            note=scaled,
        ),
        Scenario(
            "http",
            "fanout",
            "fan-out to 4 subscribers",
            2_000,
            "msg/s",
            both(
                lambda e: raw_stream(e, subscribers=4, queue=False),
                lambda e: ek.stream(t, e, subscribers=4, queue=False),
            ),
            note="4 copies of each event; the rate counts deliveries; " + scaled,
        ),
        Scenario(
            "http",
            "queue",
            "queue group of 4",
            5_000,
            "msg/s",
            both(
                lambda e: raw_stream(e, subscribers=4, queue=True),
                lambda e: ek.stream(t, e, subscribers=4, queue=True),
            ),
            note=scaled,
        ),
        Scenario(
            "http",
            "durable",
            "durable publish + deliver (sqlite outbox)",
            2_000,
            "msg/s",
            [
                Impl(
                    "eventkit",
                    "eventkit",
                    lambda e: ek.stream(t, e, subscribers=1, queue=False, durable=True),
                )
            ],
            note="durable: no hand-written aiohttp equivalent, eventkit alone; " + scaled,
        ),
        Scenario(
            "http",
            "rpc-seq",
            "sequential RPC",
            2_000,
            "calls/s",
            both(lambda e: raw_rpc(e, callers=1), lambda e: ek.rpc(t, e, callers=1)),
            note=scaled,
        ),
        Scenario(
            "http",
            "rpc-conc",
            "concurrent RPC, 64 callers",
            5_000,
            "calls/s",
            both(lambda e: raw_rpc(e, callers=64), lambda e: ek.rpc(t, e, callers=64)),
            note=scaled,
        ),
    ]
