"""``memory://``: the full Broker protocol inside one process.

For users' unit tests and single-process apps. It keeps the same semantics as the network
brokers (wildcards, queue groups, per-publisher order, durable redelivery and dead-letter,
draining close) so code tested on it behaves the same on NATS or RabbitMQ.

Brokers with the same URL share one in-process bus (a *hub*): a service and a client made
from ``memory://`` in the same process see each other, while ``memory://other`` is a separate
bus. Durable queues live in the hub, like on a broker server, so they outlive a broker that
closes and are delivered to the next subscriber of the same durable name. Delayed messages
(``publish_later``) wait on the hub's timers: they outlive the broker, not the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import deque
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import anyio

from .._tasks import TaskHost
from ..wire import (
    BrokerClosed,
    ConfigError,
    DeadLetter,
    Headers,
    Message,
    dead_letter_topic,
    is_pattern,
)
from .base import (
    BaseBroker,
    Capabilities,
    DeliveryPolicy,
    FailureLog,
    MessageHandler,
    Timers,
    being_cancelled,
    is_inline,
    no_responders_reply,
    run_inline,
)

__all__ = ["MemoryBroker"]

log = logging.getLogger("eventkit.broker.memory")
_failures = FailureLog(log)

_DEFAULT_POLICY = DeliveryPolicy()
_TURN = 8
"""Messages a worker of a shared channel takes in a row before it lets the other members run
(a turn per message would cost an event-loop pass per message; 8 still spreads a backlog)."""


class _Channel:
    """A FIFO of messages consumed by the workers of one or more subscriptions.

    A plain subscription has a channel of its own; the members of a queue group or of a
    durable name share one, which is what makes them competing consumers. A worker drains
    the channel in a loop and only parks (on a bare asyncio future of its own, which a later
    ``put`` resolves: eventkit runs on asyncio, and an anyio.Event per wait costs several
    objects) when it is empty, so a backlog costs no hand-off per message. Hand-written
    rather than an anyio memory stream because a worker that stops while waiting must never
    swallow an item (a cancelled ``receive`` can).

    The queue holds each message as its four fields in a row (topic, body, headers, attempt):
    unlike a Message, these are not tracked by the cyclic garbage collector, which would walk
    a backlog at each full collection (a fifth of a publish's time with 100,000 queued).
    """

    __slots__ = ("consumers", "inline", "items", "pattern", "seq", "shared", "tokens", "waiters")

    def __init__(self, pattern: str, *, shared: bool, seq: int = 0) -> None:
        self.pattern, self.shared, self.tokens = pattern, shared, tuple(pattern.split("."))
        self.seq = seq  # subscription order: matching channels are filled in this order
        self.consumers = 0
        self.items: deque[Any] = deque()  # topic, body, headers, attempt; topic, body...
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.inline: MessageHandler | None = None  # an inline handler: called on put, no queue

    def put(self, topic: str, body: bytes, headers: Headers, attempt: int = 1) -> None:
        if self.inline is not None:  # the RPC reply inbox: no queue, no worker
            run_inline(self.inline, Message(topic, body, headers, attempt))
            return
        self.items.extend((topic, body, headers, attempt))
        if self.waiters:
            self.wake_one()

    def put_back(self, message: Message) -> None:
        """Return a message to the front of the queue, to be the next one taken."""
        self.items.extendleft((message.attempt, message.headers, message.body, message.topic))
        if self.waiters:
            self.wake_one()

    def take(self) -> Message:
        pop = self.items.popleft
        return Message(pop(), pop(), pop(), pop())

    def wake_one(self) -> None:
        """Wake one parked worker (skipping the futures of workers that left meanwhile)."""
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class _Hub:
    """The in-process bus shared by every MemoryBroker of one URL.

    Routing is an index, not a scan: concrete subscription topics in a dict, only the
    wildcard patterns tested one by one, and the answer per published topic cached. A topic
    in the cache was also validated when it was first published, so a hot topic costs one
    dict lookup per publish. (RPC replies each have a topic of their own: they miss the
    cache, and then only the wildcard patterns are tested, not every subscription.)
    """

    def __init__(self) -> None:
        self.exact: dict[str, list[_Channel]] = {}
        self.wildcards: list[_Channel] = []
        self.groups: dict[tuple[str, str], tuple[_Channel, int]] = {}
        self.durables: dict[str, _Channel] = {}
        self.cache: dict[str, list[_Channel]] = {}
        self.in_flight = 0
        self.timers = 0
        self.held = Timers()  # delayed publishes
        self._seq = 0

    @property
    def routes(self) -> list[tuple[str, _Channel]]:
        """Every routed channel with its pattern, in subscription order."""
        channels = [ch for chs in self.exact.values() for ch in chs] + self.wildcards
        return [(ch.pattern, ch) for ch in sorted(channels, key=lambda ch: ch.seq)]

    def idle(self) -> bool:
        """Nothing is being handled, waiting for a retry, or queued for a live subscriber."""
        if self.in_flight or self.timers or self.held.pending():
            return False
        return not any(ch.items for _, ch in self.routes if ch.consumers)

    def lookup(self, topic: str, *, remember: bool = True) -> list[_Channel]:
        """The channels ``topic`` reaches, in subscription order; cached if ``remember``
        (only for topics that were validated: the cache marks them)."""
        found = list(self.exact.get(topic, ()))
        if self.wildcards:
            tokens = topic.split(".")
            wild = [ch for ch in self.wildcards if _matches(ch.tokens, tokens)]
            if wild:
                found += wild
                found.sort(key=lambda ch: ch.seq)
        if remember:
            if len(self.cache) >= 10_000:  # bounded: every RPC reply has a topic of its own
                self.cache.clear()
            self.cache[topic] = found
        return found

    def route(self, message: Message, channels: list[_Channel] | None = None) -> int:
        """Put a snapshot of ``message`` on every matching channel (``channels``, if the
        caller looked them up); how many there were.

        Each channel gets its own copy, as a network broker serializes the message: the
        publisher may reuse its object, and one handler's edits reach no other handler."""
        topic = message.topic
        if channels is None:  # the broker's own messages: dead letters, no-responders notices
            channels = self.cache.get(topic)
            if channels is None:
                channels = self.lookup(topic, remember=False)
        body, headers = bytes(message.body), message.headers
        for channel in channels:
            channel.put(topic, body, headers.copy())
        return len(channels)

    def new_channel(self, pattern: str, *, shared: bool) -> _Channel:
        """A channel for ``pattern``, routed from now on."""
        self._seq += 1
        channel = _Channel(pattern, shared=shared, seq=self._seq)
        if is_pattern(pattern):
            self.wildcards.append(channel)
        else:
            self.exact.setdefault(pattern, []).append(channel)
        self.cache.clear()
        return channel

    def remove_route(self, channel: _Channel) -> None:
        if channel in self.wildcards:
            self.wildcards.remove(channel)
        else:
            others = [ch for ch in self.exact.get(channel.pattern, ()) if ch is not channel]
            if others:
                self.exact[channel.pattern] = others
            else:
                self.exact.pop(channel.pattern, None)
        self.cache.clear()


_hubs: dict[str, _Hub] = {}


def _matches(pattern: tuple[str, ...], topic: list[str]) -> bool:
    """Whether a topic matches a wildcard pattern, both split into tokens (NATS rules, as
    :func:`eventkit.wire.matches`, without its cache: most topics that miss the route
    cache, RPC replies, are seen once)."""
    for i, token in enumerate(pattern):
        if token == ">":
            return len(topic) > i
        if i >= len(topic) or (token != "*" and token != topic[i]):
            return False
    return len(pattern) == len(topic)


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
        self._waiting: set[asyncio.Future[None]] = set()
        self._running = policy.max_in_flight  # counted at spawn: stop() waits for each one
        self._cut_off = False
        self._done = anyio.Event()
        self._scopes: set[anyio.CancelScope] = set()  # one per worker: a scope is single-use

    async def _work(self) -> None:
        scope = anyio.CancelScope()
        self._scopes.add(scope)
        if self._cut_off:  # stop() gave up draining before this worker even started
            scope.cancel()
        channel = self._channel
        channel.consumers += 1
        try:
            with scope:
                await anyio.lowlevel.checkpoint()  # a cancelled scope ends the worker here
                await self._drain()
        finally:
            self._scopes.discard(scope)
            self._running -= 1
            channel.consumers -= 1
            if channel.items:
                channel.wake_one()  # pass on a wake-up that this leaving worker took
            if self._running == 0:
                self._done.set()

    async def _drain(self) -> None:
        """Take messages off the channel and handle them until the subscription stops.

        One loop per worker, with delivery inline: a message costs a pop and the handler's
        call, and the worker parks only when the channel is empty."""
        channel = self._channel
        items = channel.items
        hub = self._broker._hub
        handler = self._handler
        durable = self.durable is not None
        loop = asyncio.get_running_loop()
        streak = 0  # messages taken since this worker last let the others run
        while True:
            if not self._active and (channel.shared or not items):
                return  # a stopped member leaves the rest to the group; a plain one drains
            if not items:
                waiter = loop.create_future()
                channel.waiters.append(waiter)
                self._waiting.add(waiter)
                try:
                    await waiter
                finally:
                    self._waiting.discard(waiter)
                streak = 0
                continue
            message = channel.take()
            # The taken message is this delivery's own; a durable one is copied once more, so
            # a retry or a dead letter sends the original, not what the handler edited.
            delivered = (
                Message(message.topic, message.body, message.headers.copy(), message.attempt)
                if durable
                else message
            )
            hub.in_flight += 1
            try:
                await handler(delivered)
            except DeadLetter as exc:
                self._broker._fail(self, message, exc.reason, final=True)
            except Exception as exc:
                self._broker._fail(self, message, f"{type(exc).__name__}: {exc}", final=False)
            except asyncio.CancelledError as exc:
                if being_cancelled():
                    if durable:  # not acked: keep it for the next subscriber
                        channel.put_back(message)
                    raise
                # The handler let a cancellation from something it awaited escape: that is a
                # failure of this message, not a stop of the worker.
                reason = f"cancelled inside the handler: {exc!r}"
                self._broker._fail(self, message, reason, final=False)
            finally:
                hub.in_flight -= 1
            streak += 1
            if streak >= _TURN and channel.consumers > 1:
                # Let the other members of a queue group or durable take their turn even
                # when the handler never awaits: competing consumers share work.
                streak = 0
                await asyncio.sleep(0)

    async def stop(self) -> None:
        if not self._active:
            await self._done.wait()
            return
        self._active = False
        self._broker._forget(self)
        for waiter in list(self._waiting):
            with contextlib.suppress(ValueError):
                self._channel.waiters.remove(waiter)
            if not waiter.done():
                waiter.set_result(None)
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

    capabilities = Capabilities(no_responders=True, delay=True)

    def __init__(
        self,
        url: str = "memory://",
        *,
        drain_timeout: float = 10.0,
        connect_timeout: float | None = None,
        publish_timeout: float | None = None,
        **unknown: Any,
    ) -> None:
        """``connect_timeout`` and ``publish_timeout`` are accepted, as every broker takes
        them, and checked; nothing in one process waits for a server."""
        super().__init__()
        if unknown:
            raise ConfigError(
                f"unknown MemoryBroker option(s) {', '.join(sorted(unknown))}; known: "
                "drain_timeout, connect_timeout, publish_timeout"
            )
        for key, value in (
            ("connect_timeout", connect_timeout),
            ("publish_timeout", publish_timeout),
        ):
            if value is not None and value <= 0:
                raise ConfigError(f"{key} must be a positive number of seconds, got {value}")
        parts = urlsplit(url)
        if parts.scheme != "memory":
            raise ConfigError(f"MemoryBroker takes memory:// URLs, got {url!r}")
        if drain_timeout < 0:
            raise ConfigError(f"drain_timeout must be >= 0 seconds, got {drain_timeout}")
        self.url = url
        self.drain_timeout = drain_timeout
        self._hub = _hubs.setdefault(parts.netloc + parts.path, _Hub())
        self._tasks = TaskHost("eventkit-memory-broker")

    async def _open(self) -> None:
        await self._tasks.start()

    async def _shutdown(self) -> None:
        await self._tasks.aclose()

    async def publish(self, message: Message) -> None:
        if self._state != "connected":
            raise BrokerClosed("publish on a broker that is not connected: call connect() first")
        hub, topic = self._hub, message.topic
        channels = hub.cache.get(topic) if topic.__class__ is str else None
        if channels is None:  # a topic not seen before: validated once, then remembered
            self.check_publish(message)
            channels = hub.lookup(topic)
        if not hub.route(message, channels) and (notice := no_responders_reply(message)):
            hub.route(notice)

    async def _hold(self, message: Message, delay: float) -> None:
        """Route ``message`` after ``delay`` seconds (see DelayedPublisher), from the hub."""
        kept = Message(message.topic, bytes(message.body), message.headers.copy())
        self._hub.held.call_later(delay, partial(self._hub.route, kept))

    async def subscribe(
        self,
        topic: str,
        handler: MessageHandler,
        *,
        queue: str | None = None,
        durable: str | None = None,
        policy: DeliveryPolicy | None = None,
    ) -> MemorySubscription:
        self.check_open("subscribe")
        self.check_subscribe(topic, queue, durable)
        hub = self._hub
        if durable is not None:
            channel = hub.durables.get(durable)
            if channel is None:
                channel = hub.durables[durable] = hub.new_channel(topic, shared=True)
            elif channel.pattern != topic:
                raise ConfigError(
                    f"durable {durable!r} already subscribes to {channel.pattern!r}; a durable "
                    f"name keeps one topic, so pick another name for {topic!r}"
                )
        elif queue is not None:
            channel, members = hub.groups.get((topic, queue), (None, 0))
            if channel is None:
                channel = hub.new_channel(topic, shared=True)
            hub.groups[(topic, queue)] = (channel, members + 1)
        else:
            channel = hub.new_channel(topic, shared=False)
        sub = MemorySubscription(
            self, channel, handler, topic, queue, durable, policy or _DEFAULT_POLICY
        )
        self._track(sub)
        if not channel.shared and is_inline(handler):
            channel.inline = handler  # called as messages are put: no worker to start
            sub._running = 0
            sub._done.set()
            return sub
        for _ in range(sub._policy.max_in_flight):
            self._tasks.start_soon(sub._work)
        return sub

    def _forget(self, sub: MemorySubscription) -> None:
        """Unroute a stopping subscription (durable channels stay and keep buffering)."""
        self._untrack(sub)
        hub = self._hub
        sub._channel.inline = None
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
        that handlers publish meanwhile, pending redeliveries and delayed publishes. For
        tests: publish, join, then assert. Raises TimeoutError after ``timeout`` seconds."""
        with anyio.fail_after(timeout):
            quiet = 0
            while quiet < 3:  # idle across a few scheduler passes: woken workers have run
                await anyio.sleep(0 if quiet else 0.001)
                quiet = quiet + 1 if self._hub.idle() else 0

    def _fail(self, sub: MemorySubscription, message: Message, reason: str, *, final: bool) -> None:
        if sub.durable is None:
            _failures.dropped(message, reason)
            return
        policy = sub._policy
        if final or message.attempt >= policy.max_attempts:
            _failures.dead_lettered(message, reason)
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
        channel.put(message.topic, message.body, message.headers, message.attempt)
