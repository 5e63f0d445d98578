"""Delayed publishes on RabbitMQ: per-delay TTL queues that dead-letter into the exchange.

RabbitMQ has no delay of its own without the delayed-message-exchange plugin, which a server
seldom has, so eventkit uses what every server has: a delayed message is published
(persistent, confirmed) with its topic as routing key to the headers exchange
``{exchange}.delayed``, which routes it by its ``x-eventkit-delay`` header to the durable
queue ``{exchange}.delayed.{ms}``. That queue has no consumer; its message TTL is ``ms``, and
an expired message is dead-lettered into the topic exchange under its own routing key, the
topic, where it reaches every queue bound then, as a publish at that moment would.

A queue holds messages of one delay only (a queue expires messages from its head, so one
queue of mixed delays would hold short ones behind long ones). To bound the number of
queues, a delay is rounded up to two significant digits of milliseconds (1,234 ms waits
1,300 ms): never early, at most a tenth late. A delay queue deletes itself when unused for
ten minutes past its TTL. The longest delay is what a message TTL holds (about 49 days).
Dead-lettering from a classic queue is at most once: a node that fails at the moment a
message expires may lose it (RabbitMQ's documented limit).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import aio_pika
from aiormq.abc import DeliveredMessage
from pamqp.commands import Basic

from ...wire import Message, PublishError, UnsupportedFeature
from ._headers import to_amqp

if TYPE_CHECKING:
    from ._broker import RabbitBroker

__all__ = ["DELAY_HEADER", "DelayQueues", "delay_ms"]

DELAY_HEADER = "x-eventkit-delay"
_EXPIRES_AFTER_MS = 600_000
MAX_DELAY_MS = 2**32 - 1 - _EXPIRES_AFTER_MS
_REDECLARE = 60.0  # seconds a declared delay queue is taken as there (it lives >= 10 min)


def delay_ms(seconds: float) -> int:
    """``seconds`` as the delay queue's TTL: milliseconds rounded up to two significant
    digits (never shorter than asked). Raises UnsupportedFeature past the longest TTL."""
    ms = math.ceil(round(seconds * 1000, 6))  # 0.07 s is 70 ms, not 71
    if ms > MAX_DELAY_MS:
        raise UnsupportedFeature(
            f"RabbitMQ holds a delayed message at most {MAX_DELAY_MS // 86_400_000} days "
            f"(a message TTL), not {seconds:g}s: keep it elsewhere and publish it later"
        )
    if ms >= 100:
        unit = 10 ** (len(str(ms)) - 2)
        ms = math.ceil(ms / unit) * unit
    return ms


class DelayQueues:
    """One broker's delay queues: declared when first used, and again once a minute."""

    def __init__(self, broker: RabbitBroker) -> None:
        self._broker = broker
        self._exchange = f"{broker.exchange}.delayed"
        self._declared: dict[int, float] = {}  # ms -> when declared (monotonic)

    async def hold(self, message: Message, seconds: float) -> None:
        """Publish ``message`` to wait ``seconds`` (rounded up) in its delay queue."""
        ms = delay_ms(seconds)
        await self._declare(ms)
        headers, content_type = to_amqp(message.headers)
        table = dict(headers or {})
        table[DELAY_HEADER] = str(ms)
        properties = Basic.Properties(headers=table, content_type=content_type, delivery_mode=2)
        broker = self._broker
        channel = broker._confirmed
        assert channel is not None
        returned = await broker._send(
            channel, self._exchange, message.topic, message.body, properties, mandatory=True
        )
        if isinstance(returned, DeliveredMessage):  # its queue went away meanwhile
            self._declared.pop(ms, None)
            raise PublishError(
                f"the delay queue for {ms} ms was gone; the message to {message.topic!r} was "
                "not kept: publish it again"
            )

    async def _declare(self, ms: int) -> None:
        now = time.monotonic()
        if now - self._declared.get(ms, -math.inf) < _REDECLARE:
            return
        broker = self._broker
        channel = broker._confirmed
        assert channel is not None
        try:
            exchange = await channel.declare_exchange(
                self._exchange, aio_pika.ExchangeType.HEADERS, durable=True, robust=False
            )
            queue = await channel.declare_queue(
                f"{self._exchange}.{ms}",
                durable=True,
                robust=False,
                arguments={
                    "x-message-ttl": ms,
                    "x-expires": ms + _EXPIRES_AFTER_MS,
                    "x-dead-letter-exchange": broker.exchange,
                },
            )
            await queue.bind(
                exchange, "", arguments={"x-match": "all", DELAY_HEADER: str(ms)}, robust=False
            )
        except Exception as exc:
            raise broker.translate(exc, f"declaring the delay queue for {ms} ms") from exc
        self._declared[ms] = now
