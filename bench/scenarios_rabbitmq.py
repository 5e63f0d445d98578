"""RabbitMQ: raw aio-pika, eventkit's RabbitBroker and FastStream, scenario by scenario.

Every library gets the same delivery contract, eventkit's default: messages published
persistent on a topic exchange with publisher confirms (each publish awaits its confirm),
consumed with manual acks after the handler ran, 64 deliveries prefetched per consumer. A
fan-out subscriber has its own auto-delete queue, a queue group shares one, a durable
subscriber has a durable quorum queue (eventkit's default; FastStream declares what its
defaults say). Raw RPC is aio-pika's documented pattern: a request with
``reply_to`` (an exclusive callback queue) and ``correlation_id``, answered on the default
exchange. RabbitMQ is much slower than NATS per message, so the counts are smaller.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from eventkit import Broker
from eventkit.brokers.rabbitmq import RabbitBroker

from . import eventkit_impl as ek
from .payload import Sink, as_bytes, timed_calls, timed_stream
from .runner import Env, Impl, Round, Scenario

LABEL = "aio-pika"
PREFETCH = 64


async def _connect(env: Env, stack: AsyncExitStack) -> AbstractRobustConnection:
    conn = await aio_pika.connect_robust(env.amqp_url)
    stack.push_async_callback(conn.close)
    return conn


async def _delete(env: Env, exchanges: list[str], queues: list[str]) -> None:
    conn = await aio_pika.connect(env.amqp_url)
    async with conn:
        channel = await conn.channel()
        for name in queues:
            await channel.queue_delete(name)
        for name in exchanges:
            await channel.exchange_delete(name)


@asynccontextmanager
async def raw_stream(
    env: Env, *, subscribers: int, queue: bool, durable: bool = False
) -> AsyncIterator[Round]:
    tag = uuid.uuid4().hex[:8]
    key = f"{env.prefix}.raw{tag}.orders"
    exchange_name = f"{env.prefix}-raw-{tag}"
    names = [f"{exchange_name}-{k}" for k in range(subscribers)]
    if queue or durable:
        names = [names[0]] * subscribers
    sink = Sink()

    async def on_message(message: AbstractIncomingMessage) -> None:
        json.loads(message.body)
        await message.ack()
        sink.hit()

    async with AsyncExitStack() as stack:
        stack.push_async_callback(_delete, env, [exchange_name], sorted(set(names)))
        pub = await _connect(env, stack)
        pub_channel = await pub.channel(publisher_confirms=True)
        exchange = await pub_channel.declare_exchange(
            exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        for name in names:
            conn = await _connect(env, stack)
            channel = await conn.channel()
            await channel.set_qos(prefetch_count=PREFETCH)
            quorum = {"x-queue-type": "quorum"} if durable else None
            q = await channel.declare_queue(
                name, durable=durable, auto_delete=not durable, arguments=quorum
            )
            await q.bind(exchange_name, key)
            await q.consume(on_message)
        copies = 1 if queue or durable else subscribers

        async def send(i: int) -> None:
            message = aio_pika.Message(
                as_bytes(i),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            await exchange.publish(message, key)

        async def one(count: int) -> dict[str, float]:
            return await timed_stream(count, count * copies, sink, send)

        yield one


@asynccontextmanager
async def raw_rpc(env: Env, *, callers: int) -> AsyncIterator[Round]:
    name = f"{env.prefix}-raw-{uuid.uuid4().hex[:8]}-echo"
    async with AsyncExitStack() as stack:
        server = await _connect(env, stack)
        server_channel = await server.channel()
        await server_channel.set_qos(prefetch_count=PREFETCH)
        requests = await server_channel.declare_queue(name, auto_delete=True)

        async def echo(message: AbstractIncomingMessage) -> None:
            body = json.dumps(json.loads(message.body)).encode()
            reply = aio_pika.Message(
                body, content_type="application/json", correlation_id=message.correlation_id
            )
            await server_channel.default_exchange.publish(reply, message.reply_to or "")
            await message.ack()

        await requests.consume(echo)

        client = await _connect(env, stack)
        channel = await client.channel()
        callback = await channel.declare_queue(exclusive=True, auto_delete=True)
        pending: dict[str, asyncio.Future[bytes]] = {}

        async def on_reply(message: AbstractIncomingMessage) -> None:
            future = pending.pop(message.correlation_id or "", None)
            if future is not None and not future.done():
                future.set_result(message.body)

        await callback.consume(on_reply, no_ack=True)
        loop = asyncio.get_running_loop()
        ids = iter(range(1 << 62))

        async def call(i: int) -> None:
            correlation = str(next(ids))
            future: asyncio.Future[bytes] = loop.create_future()
            pending[correlation] = future
            request = aio_pika.Message(
                as_bytes(i),
                content_type="application/json",
                correlation_id=correlation,
                reply_to=callback.name,
            )
            await channel.default_exchange.publish(request, name)
            reply = await asyncio.wait_for(future, 10)
            assert json.loads(reply)["order_id"] == f"o-{i:08d}"

        async def one(count: int) -> dict[str, float]:
            return await timed_calls(count, callers, call)

        yield one


class RabbitTarget(ek.Target):
    """One exchange for eventkit's nodes in this run, deleted after each scenario."""

    def broker(self, env: Env) -> Broker:
        return RabbitBroker(env.amqp_url, exchange=self.exchange(env), prefetch=PREFETCH)

    @staticmethod
    def exchange(env: Env) -> str:
        return f"{env.prefix}-eventkit"

    async def cleanup(self, env: Env, topic: str, durable: str | None) -> None:
        name = self.exchange(env)
        queues = [f"{name}.durable.{durable}", f"{name}.deadletter.{durable}"] if durable else []
        await _delete(env, [name], queues)


def scenarios(faststream: Any | None) -> list[Scenario]:
    t = RabbitTarget()
    fs = faststream

    def impls(raw: Any, eventkit: Any, fast: Any | None) -> list[Impl]:
        out = [Impl("raw", LABEL, raw), Impl("eventkit", "eventkit", eventkit)]
        if fast is not None:
            out.append(Impl("faststream", "FastStream", fast))
        return out

    scaled = "scaled down: RabbitMQ confirms every publish"
    return [
        Scenario(
            "rabbitmq",
            "pubsub",
            "publish + deliver, 1 subscriber",
            4_000,
            "msg/s",
            impls(
                lambda e: raw_stream(e, subscribers=1, queue=False),
                lambda e: ek.stream(t, e, subscribers=1, queue=False),
                fs and (lambda e: fs.rabbit_stream(e, subscribers=1, queue=False)),
            ),
            note=scaled,
        ),
        Scenario(
            "rabbitmq",
            "fanout",
            "fan-out to 4 subscribers",
            1_500,
            "msg/s",
            impls(
                lambda e: raw_stream(e, subscribers=4, queue=False),
                lambda e: ek.stream(t, e, subscribers=4, queue=False),
                fs and (lambda e: fs.rabbit_stream(e, subscribers=4, queue=False)),
            ),
            note="4 copies of each event; the rate counts deliveries; " + scaled,
        ),
        Scenario(
            "rabbitmq",
            "queue",
            "queue group of 4",
            4_000,
            "msg/s",
            impls(
                lambda e: raw_stream(e, subscribers=4, queue=True),
                lambda e: ek.stream(t, e, subscribers=4, queue=True),
                fs and (lambda e: fs.rabbit_stream(e, subscribers=4, queue=True)),
            ),
            note=scaled,
        ),
        Scenario(
            "rabbitmq",
            "durable",
            "durable publish + deliver (quorum queue, confirms)",
            3_000,
            "msg/s",
            impls(
                lambda e: raw_stream(e, subscribers=1, queue=False, durable=True),
                lambda e: ek.stream(t, e, subscribers=1, queue=False, durable=True),
                fs and (lambda e: fs.rabbit_stream(e, subscribers=1, queue=False, durable=True)),
            ),
            note=scaled,
        ),
        Scenario(
            "rabbitmq",
            "rpc-seq",
            "sequential RPC",
            1_000,
            "calls/s",
            impls(
                lambda e: raw_rpc(e, callers=1),
                lambda e: ek.rpc(t, e, callers=1),
                fs and (lambda e: fs.rabbit_rpc(e, callers=1)),
            ),
            note=scaled,
        ),
        Scenario(
            "rabbitmq",
            "rpc-conc",
            "concurrent RPC, 64 callers",
            3_000,
            "calls/s",
            impls(
                lambda e: raw_rpc(e, callers=64),
                lambda e: ek.rpc(t, e, callers=64),
                fs and (lambda e: fs.rabbit_rpc(e, callers=64)),
            ),
            note=scaled,
        ),
    ]
