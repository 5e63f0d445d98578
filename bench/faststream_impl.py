"""FastStream's side of the NATS and RabbitMQ scenarios (imported only when installed).

Written as FastStream's docs show it: a broker per connection, ``@broker.subscriber`` handlers
taking the pydantic ``Payload`` (validated by FastStream), ``broker.publish(model, ...)``, and
``broker.request`` for RPC against a subscriber that returns the model. Per-message logging is
turned off (``logger=None``), as in a tuned deployment: it is FastStream's fastest setting.
RabbitMQ channels get the same prefetch (64) and publisher confirms as the other libraries.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from importlib.metadata import version
from typing import Any

import aio_pika
import nats
from faststream.nats import JStream, PullSub
from faststream.nats import NatsBroker as FsNats
from faststream.rabbit import Channel, ExchangeType, RabbitExchange, RabbitQueue
from faststream.rabbit import RabbitBroker as FsRabbit

from .payload import Payload, Sink, as_model, timed_calls, timed_stream
from .runner import Env, Round

VERSION = version("faststream")
PREFETCH = 64


def _nats(env: Env) -> FsNats:
    return FsNats(env.nats_url, logger=None)


def _rabbit(env: Env) -> FsRabbit:
    return FsRabbit(env.amqp_url, logger=None, default_channel=Channel(prefetch_count=PREFETCH))


def _counter(sink: Sink) -> Any:
    async def on_order(msg: Payload) -> None:
        sink.hit()

    return on_order


async def _started(broker: Any, stack: AsyncExitStack) -> Any:
    await broker.start()
    stack.push_async_callback(broker.stop)
    return broker


@asynccontextmanager
async def nats_stream(env: Env, *, subscribers: int, queue: bool) -> AsyncIterator[Round]:
    subject = f"{env.prefix}.fs{uuid.uuid4().hex[:8]}.orders"
    sink = Sink()
    async with AsyncExitStack() as stack:
        for _ in range(subscribers):
            broker = _nats(env)
            broker.subscriber(subject, queue="bench" if queue else "")(_counter(sink))
            await _started(broker, stack)
        pub = await _started(_nats(env), stack)
        copies = 1 if queue else subscribers

        async def send(i: int) -> None:
            await pub.publish(as_model(i), subject)

        async def one(count: int) -> dict[str, float]:
            return await timed_stream(count, count * copies, sink, send)

        yield one


@asynccontextmanager
async def nats_durable(env: Env) -> AsyncIterator[Round]:
    tag = uuid.uuid4().hex[:8]
    subject = f"{env.prefix}.fs{tag}.orders"
    stream = JStream(f"bench-fs-{tag}", subjects=[subject])
    sink = Sink()
    async with AsyncExitStack() as stack:
        stack.push_async_callback(_delete_stream, env, stream.name)
        broker = _nats(env)
        broker.subscriber(
            subject, stream=stream, durable=f"fs-{tag}", pull_sub=PullSub(batch_size=PREFETCH)
        )(_counter(sink))
        await _started(broker, stack)
        pub = await _started(_nats(env), stack)

        async def send(i: int) -> None:
            await pub.publish(as_model(i), subject, stream=stream.name)

        async def one(count: int) -> dict[str, float]:
            return await timed_stream(count, count, sink, send)

        yield one


async def _delete_stream(env: Env, name: str) -> None:
    nc = await nats.connect(env.nats_url)
    try:
        await nc.jetstream().delete_stream(name)
    finally:
        await nc.close()


@asynccontextmanager
async def nats_rpc(env: Env, *, callers: int) -> AsyncIterator[Round]:
    subject = f"{env.prefix}.fs{uuid.uuid4().hex[:8]}.echo"
    async with AsyncExitStack() as stack:
        server = _nats(env)

        @server.subscriber(subject)
        async def echo(req: Payload) -> Payload:
            return req

        await _started(server, stack)
        client = await _started(_nats(env), stack)

        async def call(i: int) -> None:
            reply = await client.request(as_model(i), subject, timeout=10)
            assert Payload.model_validate_json(reply.body).order_id == f"o-{i:08d}"

        async def one(count: int) -> dict[str, float]:
            return await timed_calls(count, callers, call)

        yield one


@asynccontextmanager
async def rabbit_stream(
    env: Env, *, subscribers: int, queue: bool, durable: bool = False
) -> AsyncIterator[Round]:
    tag = uuid.uuid4().hex[:8]
    key = f"{env.prefix}.fs{tag}.orders"
    exchange = RabbitExchange(f"{env.prefix}-fs-{tag}", type=ExchangeType.TOPIC)
    sink = Sink()
    queues = [f"{env.prefix}-fs-{tag}-{k}" for k in range(subscribers)]
    if queue or durable:
        queues = [queues[0]] * subscribers
    async with AsyncExitStack() as stack:
        stack.push_async_callback(_delete_amqp, env, exchange.name, sorted(set(queues)))
        for name in queues:
            broker = _rabbit(env)
            q = RabbitQueue(name, durable=durable, auto_delete=not durable, routing_key=key)
            broker.subscriber(q, exchange)(_counter(sink))
            await _started(broker, stack)
        pub = await _started(_rabbit(env), stack)
        copies = 1 if queue or durable else subscribers

        async def send(i: int) -> None:
            await pub.publish(as_model(i), exchange=exchange, routing_key=key, persist=True)

        async def one(count: int) -> dict[str, float]:
            return await timed_stream(count, count * copies, sink, send)

        yield one


async def _delete_amqp(env: Env, exchange: str, queues: list[str]) -> None:
    conn = await aio_pika.connect(env.amqp_url)
    async with conn:
        channel = await conn.channel()
        for name in queues:
            await channel.queue_delete(name)
        await channel.exchange_delete(exchange)


@asynccontextmanager
async def rabbit_rpc(env: Env, *, callers: int) -> AsyncIterator[Round]:
    name = f"{env.prefix}-fs-{uuid.uuid4().hex[:8]}-echo"
    async with AsyncExitStack() as stack:
        server = _rabbit(env)

        @server.subscriber(RabbitQueue(name, auto_delete=True))
        async def echo(req: Payload) -> Payload:
            return req

        await _started(server, stack)
        client = await _started(_rabbit(env), stack)

        async def call(i: int) -> None:
            reply = await client.request(as_model(i), queue=name, timeout=10)
            assert Payload.model_validate_json(reply.body).order_id == f"o-{i:08d}"

        async def one(count: int) -> dict[str, float]:
            return await timed_calls(count, callers, call)

        yield one
