"""What the CloudEvents NATS binding's rules cost: the structured mark and binary headers.

    python -m bench.nats_binding [--url nats://127.0.0.1:4222] [--count 20000] [--repeat 5]

Not a test. Two measurements in one run:

1. End to end, typed: ``count`` events to a service whose handler takes
   ``Event[OrderPlaced]`` (publisher and subscriber in one process, as in nats_pubsub),
   publish and delivered rates, variants interleaved, medians, each as a ratio to the first
   row (the wire form eventkit used before it followed the binding's 1.0.3 rules):

   - ``eventkit structured, unmarked``: eventkit's encoding sent by its client with no
     header block (the old form);
   - ``eventkit structured (marked)``: ``kit.publish``, the default: the same body with the
     binding's mark of structured mode (``content-type: application/cloudevents+json``);
   - ``raw, structured, no header`` / ``+ content-type``: plain nats-py publishing
     pre-encoded structured bodies without and with the mark (nats-py encodes the header);
   - ``eventkit binary``: ``kit.publish(..., structured=False)`` (``ce-*`` headers);
   - ``eventkit binary, encoded``: the same with a subject that must be percent-encoded.

2. CPU per call of the adapter's header mapping (``to_nats`` on publish, ``from_nats`` on
   delivery) for a binary event whose values are plain and one whose subject needs
   encoding, beside a dict copy as the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import timeit
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from nats.aio.client import Client as RawClient

import eventkit
from eventkit import Event, Service
from eventkit.brokers.nats import NatsBroker
from eventkit.brokers.nats._embedded import EmbeddedNats
from eventkit.brokers.nats._headers import from_nats, to_nats
from eventkit.wire import now_iso, to_message

from .nats_pubsub import Done, OrderPlaced, _order, _reachable

STRUCTURED = "application/cloudevents+json"
ENCODED_SUBJECT = "ordre passé à 100%"
Round = Callable[[str, int], Awaitable[tuple[float, float]]]


async def _consumer(url: str, topic: str, done: Done, stack: AsyncExitStack) -> None:
    svc = Service("bench-binding")

    @svc.subscribe(topic)
    async def on_order(event: Event[OrderPlaced]) -> None:
        done.hit()

    await svc.start(broker=NatsBroker(url))
    stack.push_async_callback(svc.stop)
    await asyncio.sleep(0.1)  # the SUB reaches the server


def _raw(header: bool) -> Round:
    async def one(url: str, count: int) -> tuple[float, float]:
        topic = f"bench.bind.{uuid.uuid4().hex[:8]}"
        done = Done(count)
        bodies = [
            to_message(topic, _order(i), id=f"e-{i}", source="/bench", type="t", structured=True)
            for i in range(count)
        ]
        headers = {"content-type": STRUCTURED} if header else None
        async with AsyncExitStack() as stack:
            await _consumer(url, topic, done, stack)
            pub = RawClient()
            await pub.connect(url)
            stack.push_async_callback(pub.close)
            start = time.perf_counter()
            for message in bodies:
                await pub.publish(topic, message.body, headers=headers)
            await pub.flush()
            published = time.perf_counter()
            end = await done.wait()
        return count / (published - start), count / (end - start)

    return one


def _eventkit(structured: bool, subject: str | None = None) -> Round:
    async def one(url: str, count: int) -> tuple[float, float]:
        topic = f"bench.bind.{uuid.uuid4().hex[:8]}"
        done = Done(count)
        async with AsyncExitStack() as stack:
            await _consumer(url, topic, done, stack)
            kit = await stack.enter_async_context(eventkit.connect(url))
            await kit.publish(topic, _order(-1), structured=structured, subject=subject)
            done.seen -= 1  # learns the topic; does not count
            await asyncio.sleep(0.05)
            start = time.perf_counter()
            for i in range(count):
                await kit.publish(topic, _order(i), structured=structured, subject=subject)
            await kit.broker._client().flush()  # type: ignore[attr-defined]
            published = time.perf_counter()
            end = await done.wait()
        return count / (published - start), count / (end - start)

    return one


def _unmarked() -> Round:
    """eventkit's client and encoding, the structured event sent without the binding's mark
    (the form before 1.0.3): the same work as ``eventkit structured`` but the header block."""

    async def one(url: str, count: int) -> tuple[float, float]:
        topic = f"bench.bind.{uuid.uuid4().hex[:8]}"
        done = Done(count)
        async with AsyncExitStack() as stack:
            await _consumer(url, topic, done, stack)
            kit = await stack.enter_async_context(eventkit.connect(url))
            nc = kit.broker._client()  # type: ignore[attr-defined]
            start = time.perf_counter()
            for i in range(count):
                message = to_message(
                    topic, _order(i), id=f"e-{i}", source=kit.source, type=topic,
                    time=now_iso(), structured=True,
                )  # fmt: skip
                await nc.publish(topic, message.body)
            await nc.flush()
            published = time.perf_counter()
            end = await done.wait()
        return count / (published - start), count / (end - start)

    return one


VARIANTS: dict[str, Round] = {
    "eventkit structured, unmarked": _unmarked(),
    "eventkit structured (marked)": _eventkit(structured=True),
    "raw, structured, no header": _raw(header=False),
    "raw, structured + content-type": _raw(header=True),
    "eventkit binary": _eventkit(structured=False, subject="o-1"),
    "eventkit binary, encoded": _eventkit(structured=False, subject=ENCODED_SUBJECT),
}


async def end_to_end(url: str, count: int, repeat: int) -> None:
    names = list(VARIANTS)
    results: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for r in range(repeat):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            results[name].append(await VARIANTS[name](url, count))
    base = names[0]
    base_pub = statistics.median(p for p, _ in results[base])
    base_del = statistics.median(d for _, d in results[base])
    print(f"\n{count} typed events x {repeat} rounds to Event[OrderPlaced], server {url}")
    print(f"{'variant':<32}{'publish/s':>12}{'ratio':>8}{'delivered/s':>14}{'ratio':>8}")
    for name in names:
        pub = statistics.median(p for p, _ in results[name])
        dlv = statistics.median(d for _, d in results[name])
        print(f"{name:<32}{pub:>12,.0f}{pub / base_pub:>8.2f}{dlv:>14,.0f}{dlv / base_del:>8.2f}")


def header_mapping() -> None:
    def event_headers(subject: str) -> dict[str, str]:
        message = to_message(
            "t", _order(1), id="e-1", source="/bench", type="t", time="2026-01-01T00:00:00Z",
            subject=subject,
        )  # fmt: skip
        return message.headers

    print("\nheader mapping, CPU per call (best of 5 x 100,000)")
    print(f"{'step':<44}{'µs':>8}")
    for label, subject in (("plain values", "o-1"), ("subject needs encoding", ENCODED_SUBJECT)):
        headers = event_headers(subject)
        wire = to_nats(headers) or {}
        rows = (
            (f"dict copy (the floor), {label}", lambda h=headers: dict(h)),
            (f"to_nats, binary event, {label}", lambda h=headers: to_nats(h)),
            (f"from_nats, binary event, {label}", lambda w=wire: from_nats(dict(w))),
        )
        for name, fn in rows:
            best = min(timeit.repeat(fn, number=100_000, repeat=5)) / 100_000 * 1e6
            print(f"{name:<44}{best:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    async def go() -> None:
        if args.url or _reachable("127.0.0.1", 4222):
            await end_to_end(args.url or "nats://127.0.0.1:4222", args.count, args.repeat)
        else:
            async with EmbeddedNats() as server:
                await end_to_end(server.url, args.count, args.repeat)

    asyncio.run(go())
    header_mapping()


if __name__ == "__main__":
    main()
