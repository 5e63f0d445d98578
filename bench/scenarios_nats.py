"""NATS: raw nats-py, eventkit's NatsBroker and FastStream, scenario by scenario.

Raw nats-py is what a careful user writes by hand: ``nc.publish`` of ``json.dumps`` bytes, a
callback that ``json.loads``; JetStream ``js.publish`` (awaiting the ack, with a de-duplication
id so a retry is safe) into an interest-retention stream (what eventkit makes: a message stays
until its durables acked it) and a durable push consumer with manual acks; ``nc.request``
against a subscriber that ``msg.respond``\\ s.
Subscribers and publishers each have their own connection, all in this process.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import RetentionPolicy
from nats.js.errors import NotFoundError
from nats.nuid import NUID

from eventkit import Broker
from eventkit.brokers.nats import NatsBroker

from . import eventkit_impl as ek
from .payload import Sink, as_bytes, timed_calls, timed_stream
from .runner import Env, Impl, Round, Scenario

LABEL = "nats-py"


async def _connect(env: Env, stack: AsyncExitStack) -> NatsClient:
    nc = await nats.connect(env.nats_url)
    stack.push_async_callback(nc.close)
    return nc


@asynccontextmanager
async def raw_stream(env: Env, *, subscribers: int, queue: bool) -> AsyncIterator[Round]:
    subject = f"{env.prefix}.raw{uuid.uuid4().hex[:8]}.orders"
    sink = Sink()

    async def on_msg(msg: Msg) -> None:
        json.loads(msg.data)
        sink.hit()

    async with AsyncExitStack() as stack:
        for _ in range(subscribers):
            nc = await _connect(env, stack)
            await nc.subscribe(subject, queue="bench" if queue else "", cb=on_msg)
            await nc.flush()
        pub = await _connect(env, stack)
        copies = 1 if queue else subscribers

        async def send(i: int) -> None:
            await pub.publish(subject, as_bytes(i))

        async def one(count: int) -> dict[str, float]:
            return await timed_stream(count, count * copies, sink, send)

        yield one


@asynccontextmanager
async def raw_durable(env: Env) -> AsyncIterator[Round]:
    """JetStream: a stream of our own with eventkit's durability settings (interest
    retention, a ``Nats-Msg-Id`` on each publish), ``js.publish`` awaiting each ack, a durable
    push consumer acking each message after decoding it. The server's work is then the same
    on both sides; a limits stream without ids costs the server less (docs/durability.md)."""
    tag = uuid.uuid4().hex[:8]
    subject = f"{env.prefix}.raw{tag}.orders"
    stream_name = f"bench-raw-{tag}"
    sink = Sink()

    async def on_msg(msg: Msg) -> None:
        json.loads(msg.data)
        await msg.ack()
        sink.hit()

    async with AsyncExitStack() as stack:
        sub_nc = await _connect(env, stack)
        pub_nc = await _connect(env, stack)
        js = pub_nc.jetstream()
        await js.add_stream(
            name=stream_name, subjects=[subject], retention=RetentionPolicy.INTEREST
        )
        stack.push_async_callback(_delete_stream, pub_nc, stream_name)
        await sub_nc.jetstream().subscribe(
            subject, durable=f"raw-{tag}", cb=on_msg, manual_ack=True, stream=stream_name
        )

        ids = NUID()

        async def send(i: int) -> None:
            await js.publish(subject, as_bytes(i), headers={"Nats-Msg-Id": ids.next().decode()})

        async def one(count: int) -> dict[str, float]:
            return await timed_stream(count, count, sink, send)

        yield one


async def _delete_stream(nc: NatsClient, name: str) -> None:
    with suppress(NotFoundError):
        await nc.jetstream().delete_stream(name)


@asynccontextmanager
async def raw_rpc(env: Env, *, callers: int) -> AsyncIterator[Round]:
    subject = f"{env.prefix}.raw{uuid.uuid4().hex[:8]}.echo"

    async with AsyncExitStack() as stack:
        server = await _connect(env, stack)

        async def echo(msg: Msg) -> None:
            await msg.respond(json.dumps(json.loads(msg.data)).encode())

        await server.subscribe(subject, cb=echo)
        await server.flush()
        client = await _connect(env, stack)

        async def call(i: int) -> None:
            reply = await client.request(subject, as_bytes(i), timeout=10)
            assert json.loads(reply.data)["order_id"] == f"o-{i:08d}"

        async def one(count: int) -> dict[str, float]:
            return await timed_calls(count, callers, call)

        yield one


class NatsTarget(ek.Target):
    def broker(self, env: Env) -> Broker:
        return NatsBroker(env.nats_url)

    async def cleanup(self, env: Env, topic: str, durable: str | None) -> None:
        """eventkit keeps one stream per first topic token: ``eventkit-{token}``; the
        consumer (``durable``) goes with it."""
        if durable is None:
            return
        nc = await nats.connect(env.nats_url)
        try:
            await _delete_stream(nc, f"eventkit-{topic.split('.')[0]}")
        finally:
            await nc.close()


OTEL_NOTE = (
    "eventkit + OTel: tracing and metrics on (the OpenTelemetry SDK, spans and metrics "
    "exported to nowhere); its x raw over eventkit's is the cost of turning them on"
)


def _otel() -> Any | None:
    """:func:`bench.otel.telemetry`, or None without the otel extra (the rows are skipped)."""
    try:
        from .otel import telemetry
    except ImportError:
        return None
    return telemetry


def scenarios(faststream: Any | None) -> list[Scenario]:
    """``faststream``: the module :mod:`bench.faststream_impl`, or None when not installed."""
    t = NatsTarget()
    otel = _otel()

    def impls(raw: Any, eventkit: Any, fast: Any | None, traced: Any = None) -> list[Impl]:
        out = [Impl("raw", LABEL, raw), Impl("eventkit", "eventkit", eventkit)]
        if traced is not None:
            out.append(Impl("eventkit+otel", "eventkit + OTel", traced))
        if fast is not None:
            out.append(Impl("faststream", "FastStream", fast))
        return out

    fs = faststream
    return [
        Scenario(
            "nats",
            "pubsub",
            "publish + deliver, 1 subscriber",
            100_000,
            "msg/s",
            impls(
                lambda e: raw_stream(e, subscribers=1, queue=False),
                lambda e: ek.stream(t, e, subscribers=1, queue=False),
                fs and (lambda e: fs.nats_stream(e, subscribers=1, queue=False)),
                otel and (lambda e: ek.stream(t, e, subscribers=1, queue=False, telemetry=otel())),
            ),
            note=OTEL_NOTE if otel else "",
        ),
        Scenario(
            "nats",
            "fanout",
            "fan-out to 4 subscribers",
            25_000,
            "msg/s",
            impls(
                lambda e: raw_stream(e, subscribers=4, queue=False),
                lambda e: ek.stream(t, e, subscribers=4, queue=False),
                fs and (lambda e: fs.nats_stream(e, subscribers=4, queue=False)),
            ),
            note="4 copies of each event; the rate counts deliveries",
        ),
        Scenario(
            "nats",
            "queue",
            "queue group of 4",
            50_000,
            "msg/s",
            impls(
                lambda e: raw_stream(e, subscribers=4, queue=True),
                lambda e: ek.stream(t, e, subscribers=4, queue=True),
                fs and (lambda e: fs.nats_stream(e, subscribers=4, queue=True)),
            ),
        ),
        Scenario(
            "nats",
            "durable",
            "durable publish + deliver (JetStream)",
            5_000,
            "msg/s",
            impls(
                raw_durable,
                lambda e: ek.stream(t, e, subscribers=1, queue=False, durable=True),
                fs and fs.nats_durable,
            ),
            note="each publish awaits the stream's ack; each delivery is acked; both sides use "
            "an interest-retention stream and a de-duplication id per publish",
        ),
        Scenario(
            "nats",
            "stream",
            "stream of items to a caller",
            100_000,
            "items/s",
            [
                Impl("raw", LABEL, lambda e: raw_stream(e, subscribers=1, queue=False)),
                Impl("eventkit", "eventkit", lambda e: ek.items(t, e)),
            ],
            note="raw: nats-py publishes each item to an inbox subscribed on another connection; "
            "eventkit: one stream from an endpoint that yields models (credit, batching)",
        ),
        Scenario(
            "nats",
            "rpc-seq",
            "sequential RPC",
            5_000,
            "calls/s",
            impls(
                lambda e: raw_rpc(e, callers=1),
                lambda e: ek.rpc(t, e, callers=1),
                fs and (lambda e: fs.nats_rpc(e, callers=1)),
                otel and (lambda e: ek.rpc(t, e, callers=1, telemetry=otel())),
            ),
            note=OTEL_NOTE if otel else "",
        ),
        Scenario(
            "nats",
            "rpc-conc",
            "concurrent RPC, 64 callers",
            20_000,
            "calls/s",
            impls(
                lambda e: raw_rpc(e, callers=64),
                lambda e: ek.rpc(t, e, callers=64),
                fs and (lambda e: fs.nats_rpc(e, callers=64)),
            ),
        ),
    ]
