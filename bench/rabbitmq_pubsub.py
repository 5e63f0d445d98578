"""RabbitMQ pub/sub throughput: eventkit's RabbitBroker against raw aio-pika, in one run.

    python -m bench.rabbitmq_pubsub [--url amqp://guest:guest@127.0.0.1:5672/]
        [--count 5000] [--repeat 5] [--publishers 1] [--prefetch 64] [--profile]

Not a test. Each round publishes ``count`` CloudEvents (binary mode: ``ce-*`` headers, a
~40-byte JSON body, persistent) from one connection to a fan-out subscriber on another, and
measures

- publish rate: messages / time until the last publish returned (with confirms: confirmed);
- delivered rate: messages / time from the first publish to the last handled delivery.

Both sides do the same work: the subscriber acks each delivery after its handler ran (manual
ack, ``prefetch`` deliveries ahead), the publisher awaits every publish (``publishers``
concurrent tasks share the count). Variants run interleaved, the order rotating each round,
and the table shows medians and the ratio to raw aio-pika with the same confirm setting.
``--profile`` runs one eventkit round with confirms under cProfile and prints where the time
goes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import anyio

from eventkit.brokers.base import DeliveryPolicy
from eventkit.brokers.rabbitmq import RabbitBroker
from eventkit.wire import Message

HEADERS = {
    "ce-specversion": "1.0",
    "ce-id": "0",
    "ce-source": "/bench",
    "ce-type": "bench.event",
    "ce-time": "2024-01-01T00:00:00Z",
    "content-type": "application/json",
}
AMQP_HEADERS = {k: v for k, v in HEADERS.items() if k != "content-type"}
BODY = b'{"order_id": "o-1", "total_cents": 999}'
Round = Callable[[int], Awaitable[tuple[float, float]]]


async def _publish_all(count: int, publishers: int, send: Callable[[], Awaitable[Any]]) -> None:
    per = count // publishers

    async def run() -> None:
        for _ in range(per):
            await send()

    async with anyio.create_task_group() as tg:
        for _ in range(publishers):
            tg.start_soon(run)


class Counter:
    """Counts deliveries and says when ``want`` arrived."""

    def __init__(self) -> None:
        self.n = 0
        self.want = 0
        self.done = anyio.Event()

    def reset(self, want: int) -> None:
        self.n, self.want, self.done = 0, want, anyio.Event()

    def hit(self) -> None:
        self.n += 1
        if self.n >= self.want:
            self.done.set()


async def _timed(count: int, publishers: int, counter: Counter, send: Any) -> tuple[float, float]:
    count = count // publishers * publishers
    counter.reset(count)
    start = time.perf_counter()
    await _publish_all(count, publishers, send)
    published = time.perf_counter()
    with anyio.fail_after(120):
        await counter.done.wait()
    delivered = time.perf_counter()
    return count / (published - start), count / (delivered - start)


async def raw_variant(
    url: str, exchange: str, *, confirm: bool, publishers: int, prefetch: int
) -> tuple[Round, Callable[[], Awaitable[None]]]:
    pub_conn = await aio_pika.connect_robust(url)
    sub_conn = await aio_pika.connect_robust(url)
    pub_channel = await pub_conn.channel(publisher_confirms=confirm)
    pub_exchange = await pub_channel.declare_exchange(
        exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    sub_channel = await sub_conn.channel(publisher_confirms=False)
    await sub_channel.set_qos(prefetch_count=prefetch)
    queue = await sub_channel.declare_queue(exclusive=True, auto_delete=True)
    key = f"bench.raw.{uuid.uuid4().hex[:8]}"
    await queue.bind(exchange, key)
    counter = Counter()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        counter.hit()
        await message.ack()

    await queue.consume(on_message)

    async def send() -> None:
        message = aio_pika.Message(
            BODY,
            headers=dict(AMQP_HEADERS),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await pub_exchange.publish(message, key, mandatory=False)

    async def one_round(count: int) -> tuple[float, float]:
        return await _timed(count, publishers, counter, send)

    async def close() -> None:
        await pub_conn.close()
        await sub_conn.close()

    return one_round, close


async def eventkit_variant(
    url: str, exchange: str, *, confirm: bool, publishers: int, prefetch: int
) -> tuple[Round, Callable[[], Awaitable[None]]]:
    pub = RabbitBroker(url, exchange=exchange, confirm=confirm)
    sub = RabbitBroker(url, exchange=exchange, prefetch=prefetch)
    await pub.connect()
    await sub.connect()
    counter = Counter()

    async def handler(_: Message) -> None:
        counter.hit()

    topic = f"bench.eventkit.{uuid.uuid4().hex[:8]}"
    await sub.subscribe(topic, handler, policy=DeliveryPolicy(max_in_flight=1))

    async def send() -> None:
        await pub.publish(Message(topic, BODY, dict(HEADERS)))

    async def one_round(count: int) -> tuple[float, float]:
        return await _timed(count, publishers, counter, send)

    async def close() -> None:
        await pub.close()
        await sub.close()

    return one_round, close


async def main(args: argparse.Namespace) -> None:
    exchange = f"eventkit-bench-{uuid.uuid4().hex[:8]}"
    names = [
        ("raw aio-pika", raw_variant, True),
        ("eventkit RabbitBroker", eventkit_variant, True),
        ("raw aio-pika", raw_variant, False),
        ("eventkit RabbitBroker", eventkit_variant, False),
    ]
    variants = []
    for label, make, confirm in names:
        one_round, close = await make(
            args.url, exchange, confirm=confirm, publishers=args.publishers, prefetch=args.prefetch
        )
        variants.append((label, confirm, one_round, close))
    results: dict[int, list[tuple[float, float]]] = {i: [] for i in range(len(variants))}
    try:
        for _, _, one_round, _ in variants:  # warm up
            await one_round(min(500, args.count))
        for r in range(args.repeat):
            order = list(range(len(variants)))
            order = order[r % len(order) :] + order[: r % len(order)]
            for i in order:
                results[i].append(await variants[i][2](args.count))
        if args.profile:
            await _profile(variants[1][2], args.count)
    finally:
        for *_, close in variants:
            await close()
        conn = await aio_pika.connect(args.url)
        async with conn:
            channel = await conn.channel()
            await channel.exchange_delete(exchange)
    _report(args, variants, results)


async def _profile(one_round: Round, count: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    await one_round(count)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    print(out.getvalue())


def _report(
    args: argparse.Namespace,
    variants: list[tuple[str, bool, Round, Any]],
    results: dict[int, list[tuple[float, float]]],
) -> None:
    print(
        f"\n{args.count} messages x {args.repeat} rounds, {args.publishers} publisher task(s), "
        f"prefetch {args.prefetch}; medians (msgs/s) and ratio to raw aio-pika\n"
    )
    print(
        f"{'variant':<24}{'confirms':<10}{'publish/s':>11}{'ratio':>8}{'delivered/s':>13}"
        f"{'ratio':>8}"
    )
    base: dict[bool, tuple[float, float]] = {}
    for i, (label, confirm, *_) in enumerate(variants):
        pub = statistics.median(p for p, _ in results[i])
        got = statistics.median(d for _, d in results[i])
        if label.startswith("raw"):
            base[confirm] = (pub, got)
        raw_pub, raw_got = base[confirm]
        print(
            f"{label:<24}{'on' if confirm else 'off':<10}{pub:>11.0f}{pub / raw_pub:>8.2f}"
            f"{got:>13.0f}{got / raw_got:>8.2f}"
        )


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--publishers", type=int, default=1)
    parser.add_argument("--prefetch", type=int, default=64)
    parser.add_argument("--profile", action="store_true")
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
