"""One subscription on RabbitMQ: its consumer, workers, acks, retries and dead letters.

aio-pika hands each delivery to :meth:`RabbitSubscription._on_message`, which only queues it;
``max_in_flight`` workers (tasks in the broker's task group) run the handler and settle the
delivery. The channel's prefetch bounds how many deliveries wait here, so memory stays bounded
however slow the handler is, and one worker keeps the queue's order.

Settling: success acks. On a durable subscription a failure publishes a copy (confirmed) to a
retry queue that returns it after the backoff, or to the dead-letter topic after
``max_attempts``, and only then acks, so a crash in between redelivers rather than loses.
On other subscriptions a failure is logged and the message acked (dropped).

A plain subscription whose handler is marked :func:`~eventkit.brokers.base.inline` (the RPC
reply inbox, which only resolves a future) skips the workers: it consumes without acks and
runs the handler as the delivery arrives, one hand-off and one frame less per reply.

Counting attempts: a retry is a new copy, so it carries its attempt number in the
``x-eventkit-attempt`` header. Deliveries of one copy that were never settled (its consumer
went away before acking) count too: a quorum queue counts them in ``x-delivery-count``; a
classic queue only flags a redelivery, which counts one. A quorum queue also dead-letters a
copy delivered more often than its ``x-delivery-limit`` (``_queues.delivery_limit``); that
dead letter reaches the dead-letter topic with the reason RabbitMQ gave
(``_headers.broker_dead_letter``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import aio_pika
import aiormq.exceptions as amqp_errors
import anyio
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel, AbstractRobustQueue

from ...wire import DeadLetter, Message, dead_letter_topic, loggable
from ..base import DeliveryPolicy, FailureLog, MessageHandler, is_inline, run_inline
from ._headers import (
    ATTEMPT_HEADER,
    DELIVERY_COUNT_HEADER,
    INTERNAL_PREFIXES,
    TOPIC_HEADER,
    broker_dead_letter,
    from_amqp,
    to_amqp,
)
from ._queues import QueueType

if TYPE_CHECKING:
    from ._broker import RabbitBroker

__all__ = ["RabbitSubscription"]

log = logging.getLogger("eventkit.broker.rabbitmq")
_failures = FailureLog(log)

_SETTLE_ERRORS = (
    amqp_errors.AMQPError,
    amqp_errors.ChannelInvalidStateError,
    ConnectionError,
    OSError,
)


class RabbitSubscription:
    """A live subscription on a :class:`RabbitBroker`; ``stop()`` drains it."""

    def __init__(
        self,
        broker: RabbitBroker,
        channel: AbstractRobustChannel,
        amqp_queue: AbstractRobustQueue,
        handler: MessageHandler,
        topic: str,
        queue: str | None,
        durable: str | None,
        policy: DeliveryPolicy,
        queue_type: QueueType = "classic",
    ) -> None:
        self.topic = topic
        self.queue = queue
        self.durable = durable
        self._broker = broker
        self._channel = channel
        self._amqp_queue = amqp_queue
        self._handler = handler
        self._policy = policy
        self.queue_type = queue_type
        """The durable queue's type as it is on RabbitMQ (its retry queues take it too)."""
        self._adopt_retry: dict[int, bool] = {}
        self._shared = queue is not None or durable is not None
        self._buffer: deque[AbstractIncomingMessage] = deque()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._tag: str | None = None
        self._active = True
        self._running = 0
        self._done = anyio.Event()
        self._scopes: set[anyio.CancelScope] = set()
        self.inline = not self._shared and is_inline(handler)
        if self.inline:
            self._done.set()  # no workers to wait for

    @property
    def queue_name(self) -> str:
        """The RabbitMQ queue this subscription consumes."""
        return str(self._amqp_queue.name)

    async def start(self) -> None:
        self._tag = await self._amqp_queue.consume(self._on_message, no_ack=self.inline)

    async def _on_message(self, incoming: AbstractIncomingMessage) -> None:
        if self.inline:
            if self._active:
                run_inline(self._handler, _message(incoming))
            return
        if not self._active:
            if self._shared:  # arrived between stop() and the cancel's reply: give it back
                await _settle(incoming.reject(requeue=True))
            return
        self._buffer.append(incoming)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    async def _next(self) -> AbstractIncomingMessage | None:
        while True:
            if self._buffer and (self._active or not self._shared):
                return self._buffer.popleft()
            if not self._active:
                return None
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    async def work(self) -> None:
        """One worker: handle deliveries until the subscription stops."""
        self._running += 1
        scope = anyio.CancelScope()
        self._scopes.add(scope)
        try:
            with scope:
                while (incoming := await self._next()) is not None:
                    await self._deliver(incoming)
        finally:
            self._scopes.discard(scope)
            self._running -= 1
            if self._running == 0:
                self._done.set()

    async def _deliver(self, incoming: AbstractIncomingMessage) -> None:
        if self._shared and _stale(incoming):
            return  # its channel died: RabbitMQ has already requeued it for a live consumer
        message = _message(incoming)
        try:
            await self._handler(message)
        except DeadLetter as exc:
            await self._failed(incoming, message, exc.reason, final=True)
        except Exception as exc:
            await self._failed(incoming, message, f"{type(exc).__name__}: {exc}", final=False)
        else:
            await _settle(incoming.ack())

    async def _failed(
        self, incoming: AbstractIncomingMessage, message: Message, reason: str, *, final: bool
    ) -> None:
        durable = self.durable
        if durable is None:
            _failures.dropped(message, reason)
            await _settle(incoming.ack())
            return
        broker = self._broker
        try:
            if final or message.attempt >= self._policy.max_attempts:
                _failures.dead_lettered(message, reason)
                dead = message.dead_lettered(reason, dead_letter_topic(durable))
                table, content_type = to_amqp(dead.headers)
                copy = _copy(incoming, table, content_type)
                await broker.republish(copy, broker.exchange, dead.topic)
            else:
                ms = round(self._policy.backoff(message.attempt) * 1000)
                retry_queue = await broker.declare_retry_queue(
                    self._channel, durable, ms, self.queue_type, self._adopt_retry
                )
                table = {
                    k: v
                    for k, v in (incoming.headers or {}).items()
                    if not k.startswith(INTERNAL_PREFIXES)
                }
                table[ATTEMPT_HEADER] = message.attempt + 1
                table[TOPIC_HEADER] = message.topic
                copy = _copy(incoming, table, incoming.content_type)
                await broker.republish(copy, "", retry_queue)
        except Exception as exc:
            log.warning(
                "could not hand the failed message on %s back to RabbitMQ (%s); "
                "it stays with RabbitMQ and is redelivered",
                loggable(message.topic),
                exc,
            )
            await _settle(incoming.nack(requeue=True))
            return
        await _settle(incoming.ack())

    async def stop(self) -> None:
        if not self._active:
            await self._done.wait()
            return
        self._active = False
        broker = self._broker
        broker.forget(self)
        with anyio.CancelScope(shield=True):
            if self._tag is not None and not self._channel.is_closed:
                with anyio.move_on_after(broker.connect_timeout):
                    await self._amqp_queue.cancel(self._tag)
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)
            await self._give_back()
            with anyio.move_on_after(broker.drain_timeout):
                await self._done.wait()
            if not self._done.is_set():
                log.warning(
                    "subscription to %r did not drain within %.1fs; cancelling its handlers",
                    self.topic,
                    broker.drain_timeout,
                )
                for scope in list(self._scopes):
                    scope.cancel()
                await self._done.wait()
            await self._give_back()
            with anyio.move_on_after(broker.connect_timeout):
                await self._channel.close()

    async def _give_back(self) -> None:
        """Return deliveries that no handler started to RabbitMQ (shared queues keep them)."""
        while self._shared and self._buffer:
            await _settle(self._buffer.popleft().reject(requeue=True))


def _message(incoming: AbstractIncomingMessage) -> Message:
    raw = incoming.headers
    topic = raw.get(TOPIC_HEADER) if raw else None
    attempt = _int(raw.get(ATTEMPT_HEADER)) if raw else 1
    count = raw.get(DELIVERY_COUNT_HEADER) if raw and incoming.redelivered else None
    if count is not None:  # a quorum queue's count of this copy's earlier deliveries
        attempt += _int(count)
    elif incoming.redelivered:
        attempt += 1
    headers = from_amqp(raw, incoming.content_type)
    if raw and "x-death" in raw:
        headers.update(broker_dead_letter(raw, headers))
    return Message(
        _str(topic) if topic is not None else str(incoming.routing_key),
        incoming.body,
        headers,
        attempt,
    )


def _copy(
    incoming: AbstractIncomingMessage, table: dict[str, Any], content_type: str | None
) -> aio_pika.Message:
    """A persistent copy of a delivery with new headers, keeping its other properties."""
    return aio_pika.Message(
        incoming.body,
        headers=table,
        content_type=content_type,
        content_encoding=incoming.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        priority=incoming.priority,
        correlation_id=incoming.correlation_id,
        reply_to=incoming.reply_to,
        message_id=incoming.message_id,
        timestamp=incoming.timestamp,
        type=incoming.type,
        app_id=incoming.app_id,
    )


def _stale(incoming: AbstractIncomingMessage) -> bool:
    try:
        incoming.channel  # noqa: B018  # raises once the delivery's channel is closed
    except amqp_errors.ChannelInvalidStateError:
        return True
    return False


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(value: Any) -> int:
    try:
        return max(1, int(_str(value)))
    except (TypeError, ValueError):
        return 1


async def _settle(settling: Any) -> None:
    """Ack, nack or reject; a channel lost meanwhile means RabbitMQ requeues it anyway."""
    try:
        await settling
    except _SETTLE_ERRORS as exc:
        log.debug("could not settle a delivery (%s); RabbitMQ will redeliver it", exc)
