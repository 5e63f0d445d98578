"""Delivered events/s between two HTTP nodes: eventkit's http:// broker vs plain aiohttp.

``python -m bench.http_pubsub [--messages 5000] [--rounds 5] [--publishers 1,32]``

Both sides run in this process on loopback, so they share one event loop and one CPU budget:
eventkit is two HttpBroker nodes (a subscriber with one handler and a publisher); the baseline
is a plain aiohttp ClientSession POSTing the same CloudEvents binary-mode requests to a plain
aiohttp server whose handler reads the body and counts it. A round publishes ``messages``
events from ``publishers`` concurrent tasks and ends when the subscriber has all of them.
Rounds alternate between the two, and the medians are compared as a ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable

import aiohttp
import anyio
from aiohttp import web

from eventkit.brokers.http import HttpBroker
from eventkit.wire import Message

HEADERS = {
    "ce-specversion": "1.0",
    "ce-id": "0",
    "ce-source": "/bench",
    "ce-type": "bench.event",
    "content-type": "application/json",
}
BODY = b'{"order_id": "o-1", "total_cents": 999}'
Round = Callable[[int, int], Awaitable[float]]


async def _publish_all(count: int, publishers: int, send: Callable[[int], Awaitable[None]]) -> None:
    per = count // publishers

    async def run(p: int) -> None:
        for i in range(per):
            await send(p * per + i)

    async with anyio.create_task_group() as tg:
        for p in range(publishers):
            tg.start_soon(run, p)


async def eventkit_round(pub: HttpBroker, sub: HttpBroker, topic: str) -> Round:
    state = {"n": 0, "want": 0}
    done = anyio.Event()

    async def handler(_: Message) -> None:
        state["n"] += 1
        if state["n"] >= state["want"]:
            done.set()

    await sub.subscribe(topic, handler)
    with anyio.fail_after(10):  # wait for the subscription to reach the publisher
        while not pub.membership.route(topic).plain:
            await anyio.sleep(0.01)

    async def run(count: int, publishers: int) -> float:
        nonlocal done
        done = anyio.Event()
        state["n"], state["want"] = 0, (count // publishers) * publishers
        start = time.perf_counter()

        async def send(i: int) -> None:
            await pub.publish(Message(topic, BODY, {**HEADERS, "ce-id": str(i)}))

        await _publish_all(count, publishers, send)
        await done.wait()
        return state["want"] / (time.perf_counter() - start)

    return run


async def raw_round(session: aiohttp.ClientSession, url: str, received: list[int]) -> Round:
    async def run(count: int, publishers: int) -> float:
        received.clear()
        want = (count // publishers) * publishers
        start = time.perf_counter()

        async def send(i: int) -> None:
            async with session.post(url, data=BODY, headers={**HEADERS, "ce-id": str(i)}):
                pass

        await _publish_all(count, publishers, send)
        assert len(received) == want  # the server counted each one before answering
        return want / (time.perf_counter() - start)

    return run


async def main(messages: int, rounds: int, publisher_counts: list[int]) -> None:
    received: list[int] = []

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        received.append(1)
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/topics/{topic}", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with (
            HttpBroker("http://127.0.0.1:0") as sub,
            HttpBroker(f"http://127.0.0.1:0?seeds={sub.address}") as pub,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
        ):
            ours = await eventkit_round(pub, sub, "bench.orders")
            theirs = await raw_round(session, f"http://127.0.0.1:{port}/topics/x", received)
            await ours(500, 4)  # warm up both: connections, caches
            await theirs(500, 4)
            print(f"{messages} events per round, {rounds} rounds, interleaved; medians")
            print(f"{'publishers':>10} {'eventkit ev/s':>14} {'aiohttp ev/s':>13} {'ratio':>6}")
            for publishers in publisher_counts:
                a: list[float] = []
                b: list[float] = []
                for _ in range(rounds):
                    a.append(await ours(messages, publishers))
                    b.append(await theirs(messages, publishers))
                ma, mb = statistics.median(a), statistics.median(b)
                print(f"{publishers:>10} {ma:>14,.0f} {mb:>13,.0f} {ma / mb:>6.2f}")
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--publishers", default="1,32")
    args = parser.parse_args()
    counts = [int(p) for p in args.publishers.split(",")]
    anyio.run(main, args.messages, args.rounds, counts)
