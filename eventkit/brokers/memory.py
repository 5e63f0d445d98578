"""``memory://``: the full Broker protocol inside one process.

For users' unit tests and single-process apps. It keeps the same semantics as the network
brokers (wildcards, queue groups, per-publisher order, durable redelivery and dead-letter,
draining close) so code tested on it behaves the same on NATS or RabbitMQ.

Brokers with the same URL share one in-process bus (a *hub*): a service and a client made
from ``memory://`` in the same process see each other, while ``memory://other`` is a separate
bus. Durable queues live in the hub, like on a broker server, so they outlive a broker that
closes and are delivered to the next subscriber of the same durable name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import anyio

from .._tasks import TaskHost
from ..errors import BrokerClosed, ConfigError, DeadLetter
from ..message import Message, no_responders_reply
from ..topics import dead_letter_topic, matches
from .base import BaseBroker, Capabilities, DeliveryPolicy, MessageHandler, being_cancelled

__all__ = ["MemoryBroker"]

log = logging.getLogger("eventkit.broker.memory")

_DEFAULT_POLICY = DeliveryPolicy()


class _Channel:
    """A FIFO of messages consumed by the workers of one or more subscriptions.

    A plain subscription has a channel of its own; the members of a queue group or of a
    durable name share one, which is what makes them competing consumers. Hand-written rather
    than an anyio memory stream because a worker that stops while waiting must never swallow
    an item (a cancelled ``receive`` can).
    """

    __slots__ = ("consumers", "items", "pattern", "shared", "waiters")

    def __init__(self, pattern: str, *, shared: bool) -> None:
        self.pattern = pattern
        self.shared = shared
        self.consumers = 0
        self.items: deque[Message] = deque()
        self.waiters: deque[anyio.Event] = deque()

    def put(self, message: Message) -> None:
        self.items.append(message)
        if self.waiters:
            self.waiters.popleft().set()

    def wake_one(self) -> None:
        if self.items and self.waiters:
            self.waiters.popleft().set()


class _Hub:
    """The in-process bus shared by every MemoryBroker of one URL."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, _Channel]] = []
        self.groups: dict[tuple[str, str], tuple[_Channel, int]] = {}
        self.durables: dict[str, _Channel] = {}
        self._cache: dict[str, list[_Channel]] = {}
        self.in_flight = 0
        self.timers = 0

    def idle(self) -> bool:
        """Nothing is being handled, waiting for a retry, or queued for a live subscriber."""
        if self.in_flight or self.timers:
            return False
        return not any(ch.items for _, ch in self.routes if ch.consumers)

    def channels_for(self, topic: str) -> list[_Channel]:
        found = self._cache.get(topic)
        if found is None:
            found = [ch for pattern, ch in self.routes if matches(pattern, topic)]
            if len(self._cache) >= 10_000:  # bounded: every RPC reply has a topic of its own
                self._cache.clear()
            self._cache[topic] = found
        return found

    def route(self, message: Message) -> int:
        """Put a snapshot of ``message`` on every matching channel; how many there were.

        Each channel gets its own copy, as a network broker serializes the message: the
        publisher may reuse its object, and one handler's edits reach no other handler."""
        channels = self.channels_for(message.topic)
        topic, body, headers = message.topic, bytes(message.body), message.headers
        for channel in channels:
            channel.put(Message(topic, body, dict(headers)))
        return len(channels)

    def add_route(self, channel: _Channel) -> None:
        self.routes.append((channel.pattern, channel))
        self._cache.clear()

    def remove_route(self, channel: _Channel) -> None:
        self.routes = [(p, ch) for p, ch in self.routes if ch is not channel]
        self._cache.clear()


_hubs: dict[str, _Hub] = {}


class MemorySubscription:
    """A subscription on the memory broker; ``stop()`` drains it."""

    def __init__(
        self,
        broker: MemoryBroker,
        channel: _Channel,
        handler: MessageHandler,
        topic: str,
        queue: str | None,
        durable: str | None,
        policy: DeliveryPolicy,
    ) -> None:
        self.topic = topic
        self.queue = queue
        self.durable = durable
        self._broker = broker
        self._channel = channel
        self._handler = handler
        self._policy = policy
        self._active = True
        self._waiting: set[anyio.Event] = set()
        self._running = policy.max_in_flight  # counted at spawn: stop() waits for each one
        self._cut_off = False
        self._done = anyio.Event()
        self._scopes: set[anyio.CancelScope] = set()  # one per worker: a scope is single-use

    async def _next(self) -> Message | None:
        channel = self._channel
        while True:
            if not self._active and (channel.shared or not channel.items):
                channel.wake_one()  # pass on a wake-up meant for a worker that is leaving
                return None
            if channel.items:
                return channel.items.popleft()
            event = anyio.Event()
            channel.waiters.append(event)
            self._waiting.add(event)
            try:
                await event.wait()
            finally:
                self._waiting.discard(event)

    async def _work(self) -> None:
        scope = anyio.CancelScope()
        self._scopes.add(scope)
        if self._cut_off:  # stop() gave up draining before this worker even started
            scope.cancel()
        self._channel.consumers += 1
        try:
            with scope:
                await anyio.lowlevel.checkpoint()  # a cancelled scope ends the worker here
                channel = self._channel
                while (message := await self._next()) is not None:
                    await self._broker._deliver(self, message)
                    if channel.consumers > 1:
                        # Let the other members of a queue group or durable take their turn
                        # even when the handler never awaits: competing consumers share work.
                        await anyio.lowlevel.checkpoint()
        finally:
            self._scopes.discard(scope)
            self._running -= 1
            self._channel.consumers -= 1
            if self._running == 0:
                self._done.set()

    async def stop(self) -> None:
        if not self._active:
            await self._done.wait()
            return
        self._active = False
        self._broker._forget(self)
        for event in list(self._waiting):
            with contextlib.suppress(ValueError):
                self._channel.waiters.remove(event)
            event.set()
        with anyio.move_on_after(self._broker.drain_timeout):
            await self._done.wait()
        if not self._done.is_set():
            log.warning(
                "subscription to %r did not drain within %.1fs; cancelling its handlers",
                self.topic,
                self._broker.drain_timeout,
            )
            self._cut_off = True
            for scope in self._scopes:
                scope.cancel()
            await self._done.wait()


class MemoryBroker(BaseBroker):
    """An in-process broker. ``memory://`` is the default bus; ``memory://name`` another one."""

    capabilities = Capabilities(
        queue_groups=True, durable=True, ordered=True, max_payload=None, no_responders=True
    )

    def __init__(self, url: str = "memory://", *, drain_timeout: float = 10.0, **_: Any) -> None:
        parts = urlsplit(url)
        if parts.scheme != "memory":
            raise ConfigError(f"MemoryBroker takes memory:// URLs, got {url!r}")
        self.url = url
        self.drain_timeout = drain_timeout
        self._hub = _hubs.setdefault(parts.netloc + parts.path, _Hub())
        self._subs: list[MemorySubscription] = []
        self._tasks = TaskHost("eventkit-memory-broker")
        self._connected = False
        self._closed = False

    async def connect(self) -> None:
        if self._connected:
            return
        if self._closed:
            raise BrokerClosed("this MemoryBroker was closed; make a new one")
        await self._tasks.start()
        self._connected = True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._connected:
            return
        with anyio.CancelScope(shield=True):
            for sub in list(self._subs):
                await sub.stop()
            await self._tasks.aclose()

    async def publish(self, message: Message) -> None:
        if not self._connected or self._closed:
            raise BrokerClosed("publish on a broker that is not connected: call connect() first")
        self.check_publish(message)
        if not self._hub.route(message) and (notice := no_responders_reply(message)):
            self._hub.route(notice)

    async def subscribe(
        self,
        topic: str,
        handler: MessageHandler,
        *,
        queue: str | None = None,
        durable: str | None = None,
        policy: DeliveryPolicy | None = None,
    ) -> MemorySubscription:
        if not self._connected or self._closed:
            raise BrokerClosed("subscribe on a broker that is not connected: call connect()")
        self.check_subscribe(topic, queue, durable)
        hub = self._hub
        if durable is not None:
            channel = hub.durables.get(durable)
            if channel is None:
                channel = hub.durables[durable] = _Channel(topic, shared=True)
                hub.add_route(channel)
            elif channel.pattern != topic:
                raise ConfigError(
                    f"durable {durable!r} already subscribes to {channel.pattern!r}; a durable "
                    f"name keeps one topic, so pick another name for {topic!r}"
                )
        elif queue is not None:
            channel, members = hub.groups.get((topic, queue), (None, 0))
            if channel is None:
                channel = _Channel(topic, shared=True)
                hub.add_route(channel)
            hub.groups[(topic, queue)] = (channel, members + 1)
        else:
            channel = _Channel(topic, shared=False)
            hub.add_route(channel)
        sub = MemorySubscription(
            self, channel, handler, topic, queue, durable, policy or _DEFAULT_POLICY
        )
        self._subs.append(sub)
        for _ in range(sub._policy.max_in_flight):
            self._tasks.start_soon(sub._work)
        return sub

    def _forget(self, sub: MemorySubscription) -> None:
        """Unroute a stopping subscription (durable channels stay and keep buffering)."""
        if sub in self._subs:
            self._subs.remove(sub)
        hub = self._hub
        if sub.durable is not None:
            return
        if sub.queue is not None:
            key = (sub.topic, sub.queue)
            channel, members = hub.groups[key]
            if members > 1:
                hub.groups[key] = (channel, members - 1)
                return
            del hub.groups[key]
        hub.remove_route(sub._channel)

    async def join(self, timeout: float = 10.0) -> None:
        """Wait until every message on this bus has been handled, including the messages
        that handlers publish meanwhile and pending redeliveries. For tests: publish, join,
        then assert. Raises TimeoutError after ``timeout`` seconds."""
        with anyio.fail_after(timeout):
            quiet = 0
            while quiet < 3:  # idle across a few scheduler passes: woken workers have run
                await anyio.sleep(0 if quiet else 0.001)
                quiet = quiet + 1 if self._hub.idle() else 0

    async def _deliver(self, sub: MemorySubscription, message: Message) -> None:
        hub = self._hub
        hub.in_flight += 1
        try:
            await self._handle(sub, message)
        finally:
            hub.in_flight -= 1

    async def _handle(self, sub: MemorySubscription, message: Message) -> None:
        try:
            # The channel's snapshot is this delivery's own; a durable one is copied once more,
            # so a retry or a dead letter sends the original, not what the handler edited.
            if sub.durable is not None:
                delivered = Message(
                    message.topic, message.body, dict(message.headers), message.attempt
                )
            else:
                delivered = message
            await sub._handler(delivered)
        except DeadLetter as exc:
            self._fail(sub, message, exc.reason, final=True)
        except anyio.get_cancelled_exc_class() as exc:
            if not being_cancelled():
                # The handler let a cancellation from something it awaited escape: that is a
                # failure of this message, not a stop of the worker.
                self._fail(sub, message, f"cancelled inside the handler: {exc!r}", final=False)
                return
            if sub.durable is not None:  # not acked: keep it for the next subscriber
                sub._channel.items.appendleft(message)
            raise
        except Exception as exc:
            self._fail(sub, message, f"{type(exc).__name__}: {exc}", final=False)

    def _fail(self, sub: MemorySubscription, message: Message, reason: str, *, final: bool) -> None:
        if sub.durable is None:
            log.warning("handler for %r failed, message dropped: %s", message.topic, reason)
            return
        policy = sub._policy
        if final or message.attempt >= policy.max_attempts:
            log.warning(
                "dead-lettering message on %r after %d attempt(s): %s",
                message.topic,
                message.attempt,
                reason,
            )
            self._hub.route(message.dead_lettered(reason, dead_letter_topic(sub.durable)))
            return
        retry = dataclasses.replace(message, attempt=message.attempt + 1)
        delay = policy.backoff(message.attempt)
        self._hub.timers += 1
        self._tasks.start_soon(_put_later, self._hub, sub._channel, retry, delay)


async def _put_later(hub: _Hub, channel: _Channel, message: Message, delay: float) -> None:
    """Redeliver after a backoff; if the broker closes first, requeue at once (never lose it)."""
    try:
        await anyio.sleep(delay)
    finally:
        hub.timers -= 1
        channel.put(message)
