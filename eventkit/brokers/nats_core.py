"""Core NATS subscriptions (fan-out and queue groups) of the ``nats://`` broker.

At most once and fast: nats-py's delivery task calls the handler directly when
``max_in_flight`` is 1 (order kept); with more, a semaphore in the delivery callback lets up
to that many handlers run at once, so a slow handler applies back-pressure instead of growing
a queue. ``stop()`` sends UNSUB, lets what had already arrived be handled, and cancels handlers
still running after the drain timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import anyio
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSub
from nats.errors import Error as NatsError

from ..errors import DeadLetter
from ..message import NO_RESPONDERS, REPLY_TO, Message
from .base import DeliveryPolicy, MessageHandler
from .nats_headers import from_nats

if TYPE_CHECKING:
    from .nats import NatsBroker

__all__ = ["NatsSubscription"]

log = logging.getLogger("eventkit.broker.nats")


class NatsSubscription:
    """A core NATS subscription (fan-out or queue group); ``stop()`` drains it."""

    def __init__(
        self,
        broker: NatsBroker,
        topic: str,
        queue: str | None,
        handler: MessageHandler,
        policy: DeliveryPolicy,
    ) -> None:
        self.topic = topic
        self.queue = queue
        self.durable: str | None = None
        self._broker = broker
        self._handler = handler
        self._sub: NatsSub | None = None
        self._active = True
        self._stopped = anyio.Event()
        self._limit = policy.max_in_flight
        self._slots = asyncio.Semaphore(policy.max_in_flight) if policy.max_in_flight > 1 else None
        self._running = 0
        self._idle = anyio.Event()
        self._idle.set()
        # Concurrent handlers run as plain asyncio tasks: on this path (every RPC request) a
        # task-group spawn and a cancel scope per message cost more than the handler. They are
        # still owned: stop() waits for them, and cancels them after the drain timeout.
        self._handling: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        cb = self._on_msg if self._slots is None else self._on_msg_concurrent
        self._sub = await self._broker._client().subscribe(
            self.topic, queue=self.queue or "", cb=cb
        )

    async def _on_msg(self, msg: Msg) -> None:
        """One at a time, in order: runs in nats-py's delivery task for this subscription."""
        headers = msg.headers
        if not headers:
            message = Message(msg.subject, msg.data, {})
        elif not msg.data and headers.get("Status") == "503":  # NATS's no-responders notice
            message = Message(msg.subject, b"", {NO_RESPONDERS: "1"})
        else:
            message = Message(msg.subject, msg.data, from_nats(headers))
        if msg.reply:  # a request: its reply topic came as the NATS reply subject
            message.headers[REPLY_TO] = msg.reply
        try:
            await self._handler(message)
        except DeadLetter as exc:
            log.warning(
                "handler for %r dead-lettered a non-durable message: %s", msg.subject, exc.reason
            )
        except Exception as exc:
            log.warning(
                "handler for %r failed, message dropped: %s: %s",
                msg.subject,
                type(exc).__name__,
                exc,
            )

    async def _on_msg_concurrent(self, msg: Msg) -> None:
        assert self._slots is not None
        await self._slots.acquire()
        self._running += 1
        if self._idle.is_set():
            self._idle = anyio.Event()
        task = asyncio.get_running_loop().create_task(self._run(msg))
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)

    async def _run(self, msg: Msg) -> None:
        assert self._slots is not None
        try:
            await self._on_msg(msg)
        finally:
            self._slots.release()
            self._running -= 1
            if self._running == 0:
                self._idle.set()

    async def stop(self) -> None:
        if not self._active:
            await self._stopped.wait()
            return
        self._active = False
        sub, drain = self._sub, self._broker.settings.drain_timeout
        try:
            with anyio.CancelScope(shield=True), anyio.move_on_after(drain) as scope:
                if sub is not None:
                    with contextlib.suppress(NatsError):  # reconnecting or closed: go on
                        await sub.drain()  # type: ignore[no-untyped-call]  # UNSUB + round trip
                await self._idle.wait()
            if scope.cancelled_caught:
                log.warning(
                    "subscription to %r did not drain within %.1fs; cancelling its handlers",
                    self.topic,
                    drain,
                )
                for task in list(self._handling):
                    task.cancel()
            if sub is not None:
                sub._stop_processing()  # cancels nats-py's delivery task if still in a handler
                self._broker._client_or_none_remove(sub)
        finally:
            self._broker._forget(self)
            self._stopped.set()
