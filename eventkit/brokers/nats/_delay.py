"""Delayed publishes on NATS: held in a JetStream stream, released when due.

A delayed message waits in the stream ``eventkit-delayed`` (subjects ``eventkit.delayed.>``,
file storage, removed once released) with its due time (wall clock, seconds since the epoch)
in ``eventkit-deliver-at``. When it falls due, a releaser publishes it to its topic as an
ordinary publish would (so core, queue and durable subscribers all get it), then acks it.
Every NatsBroker that published a delayed message or subscribed (but for an RPC reply inbox)
runs a releaser, so every service does; they share one durable consumer, so each message is
released once (at least once: a releaser that dies between the publish and the ack releases
it again, de-duplicated by JetStream for stored topics through the event id). A message
that falls due while no eventkit process is connected goes out when one connects.

Where the server has JetStream's message scheduler (nats-server 2.12+, ADR-51) the stream
is made with ``allow_msg_schedules`` and a delayed message is a one-shot schedule
(``Nats-Schedule: @at ...``) on a subject of its own, whose target is the due subject: the
server holds it and produces it on ``eventkit.delayed.due.{topic}`` at its time. On older
servers (or a stream made by one) the message goes to the due subject at once, and the
releaser hands it back to the server with a ``nak`` delayed until it is due. Either way
the releaser checks the due time before it releases, so nothing goes out early.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.nuid import NUID

from ...wire import BrokerError, Message, event_id_of, loggable
from ._compat import server_info
from ._headers import from_nats
from ._jetstream import js_publish
from ._streams import _api

if TYPE_CHECKING:
    from ._broker import NatsBroker

__all__ = ["DELIVER_AT", "DelayedRelease"]

log = logging.getLogger("eventkit.broker.nats")

STREAM = "eventkit-delayed"
DELIVER_AT = "eventkit-deliver-at"
_SCHEDULED = "eventkit.delayed.at."  # one subject per scheduled message (ADR-51 asks it)
_DUE = "eventkit.delayed.due."
_CONSUMER = "eventkit-release"
_BATCH = 64
_FETCH = 5.0  # seconds a fetch waits for something due
_ACK_WAIT = 5.0  # a releaser that died holding a message: released by another after this
_RETRY = 1.0  # seconds before a release that failed (the link down) is tried again
_nuid = NUID()


def scheduler_version(version: str) -> bool:
    """Whether a nats-server of ``version`` has the message scheduler (2.12 and later)."""
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (2, 12)


def schedule_at(due: float) -> str:
    """The ``@at`` schedule for a wall-clock ``due`` time, rounded up to the whole second
    (the scheduler's resolution), so that the server never produces it early."""
    when = datetime.fromtimestamp(math.ceil(due), UTC)
    return "@at " + when.strftime("%Y-%m-%dT%H:%M:%SZ")


class DelayedRelease:
    """One broker's part in delayed publishes: the holding stream, and a releaser."""

    def __init__(self, broker: NatsBroker) -> None:
        self._broker = broker
        self._ready = False
        self._native = False
        self._lock: anyio.Lock | None = None  # made in the loop (the broker is made outside)
        self._stopping = False
        self._serving = False
        self._fetching: anyio.CancelScope | None = None  # stop() cancels a waiting fetch
        self._done: anyio.Event | None = None  # set when the releaser has stopped

    async def hold(self, message: Message, delay: float) -> None:
        """Keep ``message`` in the stream until ``delay`` seconds from now (confirmed)."""
        await self.start()
        broker = self._broker
        due = time.time() + delay
        headers = dict(message.headers)
        headers[DELIVER_AT] = repr(due)
        msg_id = "delayed-" + (event_id_of(message) or _nuid.next().decode())
        subject = _DUE + message.topic
        if self._native:
            headers["Nats-Schedule"] = schedule_at(due)
            headers["Nats-Schedule-Target"] = subject
            subject = _SCHEDULED + _nuid.next().decode()
        timeout = broker.settings.publish_timeout
        if not await js_publish(broker._client(), subject, message.body, headers, msg_id, timeout):
            raise BrokerError(
                f"JetStream stream {STREAM!r} is gone; the delayed message was not kept"
            )

    def serve_soon(self) -> None:
        """Release delayed messages from this broker too, starting in the background (a
        subscriber's process usually lives long). Best effort: a server that refuses the
        stream (permissions) costs delayed publishes only, never the subscription."""
        if not self._serving:
            self._serving = True
            self._broker._tasks.start_soon(self._serve)

    async def _serve(self) -> None:
        try:
            await self.start()
        except Exception as exc:
            if not self._broker.closed:
                log.warning("this broker cannot release delayed messages: %s", exc)

    async def start(self) -> None:
        """Make the stream and the shared consumer (once), and start releasing."""
        if self._ready or self._stopping:
            return
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self._ready or self._stopping:
                return
            broker = self._broker
            nc = broker._client()
            native = scheduler_version(str(server_info(nc).get("version", "")))
            config: dict[str, Any] = {
                "name": STREAM,
                "subjects": ["eventkit.delayed.>"],
                "retention": "workqueue",
                "storage": "file",
                "num_replicas": broker.replicas,
                "duplicate_window": 120 * 10**9,
                "discard": "old",
            }
            if native:
                config["allow_msg_schedules"] = True
            resp = await _api(nc, f"STREAM.CREATE.{STREAM}", config)
            if "error" in resp:  # made before (perhaps by an older server): take it as it is
                resp = await _api(nc, f"STREAM.INFO.{STREAM}")
                if "error" in resp:
                    raise BrokerError(f"JetStream refused stream {STREAM!r}: {resp['error']}")
            self._native = native and bool(resp["config"].get("allow_msg_schedules"))
            js = nc.jetstream()
            sub = await js.pull_subscribe(
                _DUE + ">",
                durable=_CONSUMER,
                stream=STREAM,
                config=ConsumerConfig(
                    ack_policy=AckPolicy.EXPLICIT,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_wait=_ACK_WAIT,
                    max_deliver=-1,
                    max_ack_pending=10_000,
                ),
            )
            if self._stopping:  # the broker began closing meanwhile
                await sub.unsubscribe()
                return
            self._done = anyio.Event()
            broker._tasks.start_soon(self._release_loop, sub, self._done)
            self._ready = True

    async def _release_loop(self, sub: Any, done: anyio.Event) -> None:
        try:
            while True:
                self._fetching = scope = anyio.CancelScope()  # a scope is entered once
                if self._stopping:
                    break
                msgs: list[Msg] = []
                with scope:
                    try:
                        msgs = await sub.fetch(_BATCH, timeout=_FETCH)
                    except TimeoutError:  # nothing came: ask again
                        pass
                    except Exception as exc:  # the link is down, or the consumer went away
                        log.debug("delayed messages: fetch failed: %s", exc)
                        await anyio.sleep(_RETRY)
                for msg in msgs:  # outside the scope: a stop lets them finish
                    await self._release(msg)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
                try:
                    await sub.unsubscribe()
                except NatsError as exc:
                    log.debug("releaser unsubscribe: %s", exc)
            done.set()

    async def stop(self) -> None:
        """Stop releasing while the connection is still up (the broker is closing): what
        this releaser holds is released or handed back first, not left to ``ack_wait``."""
        self._stopping = True
        if self._fetching is not None:
            self._fetching.cancel()
        if self._done is not None:
            await self._done.wait()

    async def _release(self, msg: Msg) -> None:
        """Publish ``msg`` to its topic if it is due; else hand it back until it is."""
        headers = from_nats(dict(msg.headers or {}))
        try:
            due = float(headers.pop(DELIVER_AT, "0"))
        except ValueError:
            due = 0.0
        left = due - time.time()
        try:
            if left > 0:
                await msg.nak(delay=left)
                return
            topic = msg.subject[len(_DUE) :]
            await self._broker.publish(Message(topic, msg.data, headers))
            await msg.ack()
        except Exception as exc:  # the link is down, or the topic refused: try again later
            (log.debug if self._broker.closed else log.warning)(
                "could not release a delayed message to %s: %s",
                loggable(msg.subject[len(_DUE) :]),
                loggable(exc, quote=False),
            )
            with contextlib.suppress(NatsError):  # else redelivered after ack_wait
                await msg.nak(delay=_RETRY)
