"""Core NATS subscriptions (fan-out and queue groups) of the ``nats://`` broker.

At most once and fast: messages go from the connection's read loop to the subscription's
:class:`~eventkit.brokers.nats._dispatch.Dispatcher`, which runs up to ``max_in_flight``
handlers at once (1 keeps the order of arrival) and holds the rest, so a slow handler applies
back-pressure instead of starting ever more tasks. ``stop()`` sends UNSUB, lets what had
already arrived be handled, and cancels handlers still running after the drain timeout.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

import anyio
from nats.aio.subscription import Subscription as NatsSub
from nats.errors import Error as NatsError

from ..base import DeliveryPolicy, MessageHandler
from ._compat import sid
from ._dispatch import Dispatcher

if TYPE_CHECKING:
    from ._broker import NatsBroker

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
        self._dispatcher = Dispatcher(topic, handler, policy.max_in_flight)
        self._sub: NatsSub | None = None
        self._active = True
        self._stopped = anyio.Event()

    async def start(self) -> None:
        nc = self._broker._client()
        # nats-py's callback is the route until the read loop hands over directly (and for
        # a client where nats-py does not allow that).
        self._sub = await nc.subscribe(
            self.topic, queue=self.queue or "", cb=self._dispatcher.deliver_msg
        )
        route = getattr(nc, "route_directly", None)
        if route is not None:
            route(sid(self._sub), self._dispatcher.deliver)

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
                    self._unroute(sub)  # all that was sent before the UNSUB has arrived
                await self._dispatcher.wait_idle()
            if scope.cancelled_caught:
                log.warning(
                    "subscription to %r did not drain within %.1fs; cancelling its handlers",
                    self.topic,
                    drain,
                )
                self._dispatcher.cancel()
            if sub is not None:
                self._unroute(sub)
                sub._stop_processing()  # nats-py's own delivery task
                self._broker._client_or_none_remove(sub)
        finally:
            self._broker._forget(self)
            self._stopped.set()

    def _unroute(self, sub: NatsSub) -> None:
        route = getattr(self._broker._nc, "route_directly", None)
        if route is not None:
            route(sid(sub), None)
