"""The registry's I/O: gossip the local record over ``{ns}.registry``, fold what peers say.

:class:`Registry` subscribes (fan-out) to the registry topic, announces the local node (if
any) on start and every ``heartbeat`` seconds, answers queries with the same announcement,
expires silent peers, and says leave on stop. Changes reach synchronous listeners (the RPC
client fails calls pending on a node that left) and async watchers. Messages are CloudEvents
in the broker's default content mode; a malformed one is logged, counted and ignored.

On a broker with a service discovery of its own (a
:class:`~eventkit.brokers.base.ServiceFinder`: NATS), a query also asks it, and the services
it finds that eventkit did not start (NATS micro services) are folded into the same view as
records of their own kind (:func:`~._outside.outside_record`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from pydantic import BaseModel

from .._tasks import TaskHost
from ..brokers.base import Broker, DeliveryPolicy, ServiceFinder, Subscription
from ..wire import (
    ConfigError,
    DataCodec,
    Decoder,
    EventIds,
    LogLimiter,
    Message,
    event_id_of,
    loggable,
    now_iso,
    to_message,
)
from ._outside import outside_record
from ._records import (
    ANNOUNCE,
    LEAVE,
    QUERY,
    NodeInfo,
    RegistryChange,
    RegistryQuery,
    registry_topic,
)
from ._view import RegistryView

__all__ = ["Registry"]

log = logging.getLogger("eventkit.registry")

JITTER_ABOVE = 32
"""With this many known nodes or more, answers to a query are spread over ``JITTER`` seconds
so that a newcomer's query does not make every node publish in the same instant."""
JITTER = 0.05

Listener = Callable[[RegistryChange], None]


class Registry:
    """One process's membership in the gossiped registry, and its view of everyone else.

    ``broker`` must be connected; ``source`` is the CloudEvents source of what this process
    says. ``local`` returns this node's record (None for a client that only watches and
    calls). ``ttl`` sets how often silent peers are looked for
    (every ``min(1, ttl/3)`` seconds); each peer's own record says when it expires.
    """

    def __init__(
        self,
        broker: Broker,
        *,
        source: str,
        namespace: str,
        ttl: float,
        heartbeat: float,
        local: Callable[[], NodeInfo] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if ttl <= 0 or heartbeat <= 0:
            raise ConfigError("registry ttl and heartbeat must be positive numbers of seconds")
        self.broker = broker
        self.source = source
        self._ids = EventIds()
        self.topic = registry_topic(namespace)
        self.ttl = ttl
        self.heartbeat = heartbeat
        self.view = RegistryView()
        self.malformed = 0
        """Registry messages that were not valid (logged and ignored)."""
        self._malformed_log = LogLimiter(log, "malformed registry messages")
        self._local = local
        self._rng = rng or random.Random()
        self._decode = Decoder(DataCodec(Any), event=True)
        self._node_codec = DataCodec(NodeInfo)
        self._query_codec = DataCodec(RegistryQuery)
        self._listeners: list[Listener] = []
        self._watchers: set[MemoryObjectSendStream[RegistryChange]] = set()
        self._waiting: dict[str, set[anyio.Event]] = {}
        self._tasks = TaskHost("eventkit-registry")
        self._finder = broker if isinstance(broker, ServiceFinder) else None
        self._subscription: Subscription | None = None
        self._started = False
        self._stopped = False

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe, announce the local node, ask everyone to announce, start the timers.

        Returns without waiting for answers; :meth:`query` waits for them.
        """
        if self._started:
            return
        if self._stopped:
            raise RuntimeError("this Registry was stopped; make a new one")
        self._started = True
        self._subscription = await self.broker.subscribe(
            self.topic, self._on_message, policy=DeliveryPolicy(max_in_flight=1)
        )
        await self._tasks.start()
        try:
            if self._local is not None:
                await self._announce()
                self._tasks.start_soon(self._heartbeats)
            await self._publish_query(None)
            self._tasks.start_soon(self._expiry)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._shutdown(leave=False)
            raise

    async def stop(self) -> None:
        """Say leave (for a local node), stop receiving and the timers, end every watch.

        Idempotent; a leave that cannot be sent (the broker is gone) is logged, and peers
        then drop this node when its TTL runs out.
        """
        if self._stopped or not self._started:
            self._stopped = True
            return
        with anyio.CancelScope(shield=True):
            await self._shutdown(leave=True)

    async def _shutdown(self, *, leave: bool) -> None:
        self._stopped = True
        await self._tasks.aclose()  # no heartbeat can follow the leave
        if leave and self._local is not None:
            try:
                node = self._local()
                await self._publish(node, LEAVE, node.id)
            except Exception as exc:
                log.warning("could not announce leave on %r: %s", self.topic, exc)
        if self._subscription is not None:
            await self._subscription.stop()
            self._subscription = None
        for stream in list(self._watchers):
            stream.close()
        self._watchers.clear()
        for events in self._waiting.values():
            for event in events:
                event.set()

    # -- asking --------------------------------------------------------------------------

    async def query(self, service: str | None = None, *, wait: float = 0.25) -> None:
        """Ask every node (of ``service``, or all) to announce itself, and wait for answers.

        Waits up to ``wait`` seconds; when ``service`` is named, returns once a node of it has
        answered and no further node of it turned up for a short quiet gap (so a newcomer
        learns every node of the service in the one round trip). The answers land in
        :attr:`view`; so do the services the broker's own discovery finds meanwhile, where it
        has one.
        """
        if not self._started or self._stopped:
            raise RuntimeError("query() needs a started registry: call start() first")
        arrived = anyio.Event()
        if service is not None:
            self._waiting.setdefault(service, set()).add(arrived)
        try:
            async with anyio.create_task_group() as tg:
                if self._finder is not None:
                    tg.start_soon(self._find_outside, self._finder, service, wait)
                await self._publish_query(service)
                with anyio.move_on_after(wait):
                    await arrived.wait()
                    assert service is not None
                    quiet_gap = min(0.05, wait / 4)
                    known = len(self.view.nodes(service))
                    while True:
                        await anyio.sleep(quiet_gap)
                        now_known = len(self.view.nodes(service))
                        if now_known == known:
                            break
                        known = now_known
        finally:
            if service is not None:
                waiting = self._waiting.get(service)
                if waiting is not None:
                    waiting.discard(arrived)
                    if not waiting:
                        del self._waiting[service]

    async def _find_outside(self, finder: ServiceFinder, service: str | None, wait: float) -> None:
        """Fold what the broker's own discovery finds: the services eventkit did not start
        that have endpoints to call. eventkit's own are known by gossip (those of other
        namespaces too answer ``$SRV``: their endpoints are marked, and one with no endpoint
        cannot be told from an outside service with none, so neither is listed)."""
        try:
            found = await finder.find_services(service, wait=wait)
        except Exception as exc:  # the broker's discovery is a bonus: a query still answers
            log.warning("could not ask the broker for its services: %s", exc)
            return
        now = time.time()
        for description in found:
            if description.kind == "eventkit" or not description.endpoints:
                continue
            known = self.view.get(description.node_id)
            if known is not None and known.kind == "eventkit":
                continue
            change = self.view.apply("announce", outside_record(description, ttl=self.ttl), now)
            if change is not None:
                self._emit(change)

    async def _publish_query(self, service: str | None) -> None:
        await self._publish(RegistryQuery(service=service), QUERY, None)

    async def _publish(self, data: BaseModel, kind: str, subject: str | None) -> None:
        message = to_message(
            self.topic,
            data,
            id=self._ids(),
            source=self.source,
            type=kind,
            time=now_iso(),
            subject=subject,
            structured=self.broker.capabilities.structured_events,
        )
        await self.broker.publish(message)

    # -- watching ------------------------------------------------------------------------

    def add_listener(self, fn: Listener) -> None:
        """Call ``fn(change)`` synchronously on every change (it must not block)."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    @asynccontextmanager
    async def watch(
        self, *, initial: bool = False, buffer: int = 1000
    ) -> AsyncIterator[MemoryObjectReceiveStream[RegistryChange]]:
        """``async with registry.watch() as changes: async for change in changes: ...``

        Iteration ends when the registry stops. With ``initial``, the nodes known now come
        first as ``added`` changes with reason ``"snapshot"``. A watcher more than ``buffer``
        changes behind misses changes (logged); :attr:`view` is always the whole truth.
        """
        current = self.view.all() if initial else []
        send, receive = anyio.create_memory_object_stream[RegistryChange](buffer + len(current))
        for node in current:
            send.send_nowait(RegistryChange(kind="added", node=node, reason="snapshot"))
        if self._stopped:
            send.close()
        else:
            self._watchers.add(send)
        try:
            with receive:
                yield receive
        finally:
            self._watchers.discard(send)
            send.close()

    def _emit(self, change: RegistryChange) -> None:
        log.debug("registry: %s %s (%s)", change.kind, change.node.id, change.reason)
        for fn in list(self._listeners):
            try:
                fn(change)
            except Exception:
                log.exception("registry listener %r failed on %s", fn, change.kind)
        for stream in list(self._watchers):
            try:
                stream.send_nowait(change)
            except anyio.WouldBlock:
                log.warning("a registry watcher is too slow: dropped %s", change.kind)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._watchers.discard(stream)
        if change.kind != "removed" and (waiting := self._waiting.get(change.node.service)):
            for event in waiting:
                event.set()

    # -- the background work -------------------------------------------------------------

    async def _announce(self) -> None:
        assert self._local is not None
        node = self._local()
        # The local view learns of this node at once, not when the broker loops it back.
        self._fold(ANNOUNCE, node)
        await self._publish(node, ANNOUNCE, node.id)

    async def _heartbeats(self) -> None:
        while True:
            await anyio.sleep(self.heartbeat)
            try:
                await self._announce()
            except Exception as exc:  # the broker is down: try again next beat
                log.warning("registry heartbeat on %r failed: %s", self.topic, exc)

    async def _expiry(self) -> None:
        interval = min(1.0, self.ttl / 3)
        while True:
            await anyio.sleep(interval)
            for change in self.view.expire(time.time()):
                self._emit(change)

    async def _answer(self, delay: float) -> None:
        await anyio.sleep(delay)
        try:
            await self._announce()
        except Exception as exc:
            log.warning("could not answer a registry query: %s", exc)

    # -- receiving -----------------------------------------------------------------------

    def _fold(self, kind: str, node: NodeInfo) -> None:
        change = self.view.apply("announce" if kind == ANNOUNCE else "leave", node, time.time())
        if change is None:
            if kind == ANNOUNCE and (waiting := self._waiting.get(node.service)):
                for event in waiting:  # a known node answered: the query is answered too
                    event.set()
            return
        self._emit(change)

    async def _on_message(self, message: Message) -> None:
        try:
            event = self._decode(message)
            kind = event.type
            if kind in (ANNOUNCE, LEAVE):
                node = self._node_codec.from_value(event.data)
            elif kind == QUERY:
                query = self._query_codec.from_value(event.data)
            else:
                log.debug("ignoring registry event of unknown type %s", loggable(kind))
                return
        except ValueError as exc:  # InvalidEvent and pydantic's ValidationError are ValueErrors
            self.malformed += 1
            self._malformed_log.warning(
                "ignoring a malformed registry message (event %s): %s",
                loggable(event_id_of(message)),
                loggable(exc, quote=False, limit=1000),
            )
            return
        if kind == QUERY:
            self._on_query(query)
        else:
            self._fold(kind, node)

    def _on_query(self, query: Any) -> None:
        if self._local is None or self._stopped:
            return
        assert isinstance(query, RegistryQuery)
        if query.service is not None and query.service != self._local().service:
            return
        delay = self._rng.uniform(0, JITTER) if len(self.view) >= JITTER_ABOVE else 0.0
        self._tasks.start_soon(self._answer, delay)
