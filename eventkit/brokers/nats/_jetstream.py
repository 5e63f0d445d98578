"""Durable subscriptions on JetStream, and confirmed publishes into streams.

A durable subscription is a durable pull consumer named after the durable, filtered on the
subscription's pattern (stream layout: :mod:`eventkit.brokers.nats._streams`). Each subscriber
holds up to ``prefetch`` messages (the broker's ``prefetch``, by default twice
``max_in_flight`` and at least 32): it asks for a batch that fills its buffer, and asks again
once half of it is free, so the next messages are already here when a handler finishes
rather than one round trip away. At most ``max_in_flight`` handlers run at once; the others
wait in arrival order, so ``max_in_flight=1`` keeps order. Waiting messages are marked in
progress like running ones, so ``ack_wait`` does not run out on them. After the handler
returns the message is acked (an ack is a write on the connection, flushed with the next
ones, never awaited on the server); on failure it is nak'ed with the policy's backoff; after
``max_attempts`` deliveries (the JetStream delivery count, which is ``Message.attempt``) or on
:class:`DeadLetter` it is published to the dead-letter topic and terminated.

Pull requests go to a private inbox; on ``stop()`` the inbox is unsubscribed (the server drops
pull requests nobody listens to) and anything already on its way is nak'ed for the next
subscriber, so stopping loses nothing and redelivers at once rather than after ``ack_wait``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSub
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from ...wire import (
    BrokerError,
    ConfigError,
    ConnectionLost,
    DeadLetter,
    Message,
    PublishError,
    dead_letter_topic,
    loggable,
)
from ..base import DeliveryPolicy, FailureLog, MessageHandler
from ._compat import remove_sub, send_unsubscribe, sid
from ._errors import DRIVER_ERRORS, translate
from ._headers import from_nats, to_nats
from ._streams import stream_for_subject

if TYPE_CHECKING:
    from ._broker import NatsBroker

__all__ = ["DurableSubscription", "js_publish"]

log = logging.getLogger("eventkit.broker.nats")
_failures = FailureLog(log)

MSG_ID = "Nats-Msg-Id"
_PULL_EXPIRES = 5.0
_LINGER = 0.25
_ACK_WAIT = 5.0
_MAX_ACK_PENDING = 1000


async def js_publish(
    nc: Client, subject: str, body: bytes, headers: dict[str, str], msg_id: str, timeout: float
) -> bool:
    """Publish into a stream and wait for its ack, retrying (safely: de-duplicated by
    ``msg_id``) until ``timeout``. False when no stream takes ``subject`` any more."""
    hdrs = dict(to_nats(headers) or {})
    hdrs[MSG_ID] = msg_id
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ConnectionLost(
                f"JetStream did not confirm a publish to {subject!r} within {timeout:.1f}s "
                "(server down or stream unavailable); it may or may not have been stored"
            )
        try:
            reply = await nc.request(subject, body, timeout=min(2.0, left), headers=hdrs)
        except NoRespondersError:
            # No stream, or a stream without a leader for a moment (a cluster electing one):
            # only a lookup tells them apart, and only the first may fall back to core NATS.
            try:
                if not await stream_for_subject(nc, subject):
                    return False
            except BrokerError:
                pass
            await anyio.sleep(0.1)
            continue
        except NatsTimeout:
            continue
        except DRIVER_ERRORS as exc:
            raise translate(exc, f"publishing to {subject!r}", "the server") from exc
        try:
            resp = json.loads(reply.data)
        except ValueError:
            resp = {}
        error = resp.get("error") if isinstance(resp, dict) else None
        if error is None:
            return True
        if error.get("code") == 503:  # stream leader moving: retry within the timeout
            await anyio.sleep(0.1)
            continue
        raise PublishError(f"JetStream refused a publish to {subject!r}: {error}")


class DurableSubscription:
    """A durable (JetStream) subscription; ``stop()`` drains it."""

    def __init__(
        self,
        broker: NatsBroker,
        topic: str,
        durable: str,
        handler: MessageHandler,
        policy: DeliveryPolicy,
    ) -> None:
        self.topic = topic
        self.queue: str | None = durable
        self.durable: str | None = durable
        self._broker = broker
        self._name = durable
        self._handler = handler
        self._policy = policy
        self._stream = ""
        self._inbox = ""
        self._sub: NatsSub | None = None
        self._active = True
        self._running = 0  # handlers running now
        self._workers = 0  # tasks that run handlers (at most max_in_flight)
        self._parked: list[anyio.Event] = []  # workers waiting for a message
        self._slot = anyio.Event()
        self._request_done = anyio.Event()
        self._request_id = 0
        self._request_left = 0
        self._idle = anyio.Event()
        self._idle.set()
        self._stopped = anyio.Event()
        self._puller_done = anyio.Event()
        self._request_until = 0.0
        self.lingered = anyio.Event()
        self._scopes: set[anyio.CancelScope] = set()
        self._backlog: deque[Msg] = deque()
        self._unavailable = False
        self._handling: dict[int, Msg] = {}  # nats-py's Msg is not hashable
        wanted = broker.settings.prefetch or max(32, 2 * policy.max_in_flight)
        self._prefetch = max(wanted, policy.max_in_flight)
        self._low_water = max(1, self._prefetch // 2)  # ask again once this many are free

    async def start(self) -> None:
        """Create the stream and consumer (idempotently), then start pulling."""
        nc = self._broker._client()
        from ._streams import _api, ensure_stream

        self._stream = await ensure_stream(nc, self.topic, replicas=self._broker.replicas)
        await self._ensure_consumer(_api)
        self._inbox = nc.new_inbox()
        self._sub = await nc.subscribe(self._inbox + ".*", cb=self._on_msg)
        self._broker._tasks.start_soon(self._pull_loop)
        self._broker._tasks.start_soon(self._progress_loop)

    async def _ensure_consumer(self, api: Any) -> None:
        nc = self._broker._client()
        subject = f"CONSUMER.INFO.{self._stream}.{self._name}"
        for _ in range(10):
            info = await api(nc, subject)
            if "error" not in info:
                existing = info["config"].get("filter_subject") or ""
                if existing and existing != self.topic:
                    raise ConfigError(
                        f"durable {self._name!r} already subscribes to {existing!r}; a durable "
                        f"name keeps one topic, so pick another name for {self.topic!r}"
                    )
                return
            config = {
                "durable_name": self._name,
                "filter_subject": self.topic,
                "ack_policy": "explicit",
                "deliver_policy": "new",
                "ack_wait": int(_ACK_WAIT * 10**9),
                "max_deliver": -1,
                "max_ack_pending": max(_MAX_ACK_PENDING, self._prefetch),
                "max_waiting": 512,
                "replay_policy": "instant",
            }
            resp = await api(
                nc,
                f"CONSUMER.DURABLE.CREATE.{self._stream}.{self._name}",
                {"stream_name": self._stream, "config": config},
            )
            error = resp.get("error")
            if error is None:
                return
            if error.get("code") not in (400, 500, 503) or "filter" in str(error).lower():
                raise BrokerError(f"JetStream refused durable {self._name!r}: {error}")
            await anyio.sleep(0.05)  # another node created it first, or JetStream is settling
        raise BrokerError(f"could not create durable consumer {self._name!r}; retry later")

    async def _pull_loop(self) -> None:
        nc = self._broker._client()
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{self._stream}.{self._name}"
        expires = int(_PULL_EXPIRES * 10**9)
        try:
            while self._active:
                free = self._prefetch - self._running - len(self._backlog)
                if free < self._low_water and (self._running or self._backlog):
                    self._slot = anyio.Event()
                    await self._slot.wait()
                    continue
                self._request_id += 1
                self._request_left = free
                self._request_done = anyio.Event()
                body = b'{"batch":%d,"expires":%d}' % (free, expires)
                self._request_until = time.monotonic() + _PULL_EXPIRES + 0.2
                try:
                    await nc.publish(subject, body, reply=f"{self._inbox}.{self._request_id}")
                except NatsError:
                    await anyio.sleep(0.2)  # disconnected and buffer full: try again soon
                    continue
                with anyio.move_on_after(_PULL_EXPIRES + 1.0):
                    await self._request_done.wait()
                if self._unavailable:  # a cluster electing a leader: do not spin
                    self._unavailable = False
                    await anyio.sleep(0.1)
        finally:
            self._puller_done.set()

    async def _progress_loop(self) -> None:
        """Tell the server that long handlers are still working (``ack_wait`` is short, so
        that a delivery lost with a connection comes back soon)."""
        while self._active or self._running:
            await anyio.sleep(_ACK_WAIT / 3)
            for msg in [*self._handling.values(), *self._backlog]:
                await _quietly(msg.in_progress())

    def wake(self) -> None:
        """Re-issue the pull request now (after a reconnect the old one is gone)."""
        self._request_done.set()

    async def _on_msg(self, msg: Msg) -> None:
        headers = msg.headers
        if not msg.data and headers and "Status" in headers:
            # Status replies come to the inbox of the request they end; data messages keep
            # their own subject, so only these tell requests apart.
            status = headers["Status"]
            if status != "100" and msg.subject.endswith(f".{self._request_id}"):
                log.debug("pull on %r ended: %s %s", self._name, status, headers.get("Description"))
                self._unavailable = status == "503"  # no consumer leader right now
                self._request_done.set()
            return
        if not self._active:
            await _quietly(msg.nak())  # stopping: hand it to the next subscriber now
            return
        if self._request_left > 0:
            self._request_left -= 1
            if self._request_left == 0:
                self._request_done.set()
        self._backlog.append(msg)  # taken in arrival order by the workers
        if self._parked:
            self._parked.pop().set()
        elif self._workers < self._policy.max_in_flight:
            self._workers += 1
            self._broker._tasks.start_soon(self._work)

    async def _work(self) -> None:
        """A worker: runs handlers one after another while messages wait, then parks until
        the next one (waking a parked task costs less than starting one per message).
        Workers are made as messages need them, up to ``max_in_flight``, and end at stop;
        one that stop cancels naks the message it was handling."""
        scope = anyio.CancelScope()
        self._scopes.add(scope)
        try:
            with scope:
                while True:
                    while self._backlog and self._active:
                        await self._handle(self._backlog.popleft(), scope)
                    if not self._active:
                        return
                    wake = anyio.Event()
                    self._parked.append(wake)
                    await wake.wait()
        finally:
            self._scopes.discard(scope)
            self._workers -= 1

    async def _handle(self, msg: Msg, scope: anyio.CancelScope) -> None:
        self._running += 1
        if self._idle.is_set():
            self._idle = anyio.Event()
        self._handling[id(msg)] = msg
        try:
            await self._deliver(msg)
        finally:
            self._handling.pop(id(msg), None)
            if scope.cancel_called:  # stop gave up waiting: the next subscriber gets it
                with anyio.CancelScope(shield=True):
                    await _quietly(msg.nak())
            self._running -= 1
            if self._running == 0:
                self._idle.set()
            self._slot.set()

    async def _deliver(self, msg: Msg) -> None:
        attempt = _delivered(msg.reply)
        message = Message(msg.subject, msg.data, from_nats(msg.headers), attempt)
        policy = self._policy
        if attempt > policy.max_attempts:
            await self._dead_letter(msg, message, f"no ack after {attempt - 1} deliveries")
            return
        try:
            await self._handler(message)
        except DeadLetter as exc:
            await self._dead_letter(msg, message, exc.reason)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if attempt >= policy.max_attempts:
                await self._dead_letter(msg, message, reason)
            else:
                log.info(
                    "handler for %s failed (attempt %d): %s",
                    loggable(msg.subject),
                    attempt,
                    loggable(reason, quote=False),
                )
                await _quietly(msg.nak(delay=policy.backoff(attempt)))
        else:
            await _quietly(msg.ack())

    async def _dead_letter(self, msg: Msg, message: Message, reason: str) -> None:
        _failures.dead_lettered(message, reason)
        assert self.durable is not None
        dead = message.dead_lettered(reason, dead_letter_topic(self.durable))
        meta = msg.metadata
        msg_id = f"dl-{meta.stream}-{meta.sequence.stream}"
        try:
            if not await self._broker._publish_kept(dead, msg_id):
                await self._broker.publish(dead)  # no stream keeps it: core subscribers only
        except Exception as exc:  # never lose it: leave it to be redelivered
            log.error("could not dead-letter message on %s: %s", loggable(message.topic), exc)
            await _quietly(msg.nak(delay=self._policy.backoff_max))
            return
        await _quietly(msg.term())

    async def stop(self) -> None:
        if not self._active:
            await self._stopped.wait()
            return
        self._active = False
        self._slot.set()
        self._request_done.set()
        while self._parked:
            self._parked.pop().set()  # idle workers end
        drain = self._broker.settings.drain_timeout
        try:
            with anyio.CancelScope(shield=True), anyio.move_on_after(drain):
                nc = self._broker._nc
                if self._sub is not None and nc is not None and nc.is_connected:
                    # No new pulls are served once the server has this; the subscription
                    # stays locally a little longer (linger) to nak what was already sent.
                    await _quietly(send_unsubscribe(nc, sid(self._sub)))
                await self._puller_done.wait()
                while self._backlog:
                    await _quietly(self._backlog.popleft().nak())
                await self._idle.wait()
            if self._running:
                log.warning(
                    "durable %r did not drain within %.1fs; cancelling its handlers",
                    self._name,
                    drain,
                )
                for scope in list(self._scopes):
                    scope.cancel()
                with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
                    await self._idle.wait()
        finally:
            self._broker._forget(self)
            self._broker._linger(self)
            self._stopped.set()

    async def linger(self) -> None:
        """After the UNSUB, keep the inbox briefly and nak what still arrives.

        The server may have picked this subscriber's pull request just before the UNSUB
        reached it; such a message must go back at once rather than after ``ack_wait``.
        """
        nc, sub = self._broker._nc, self._sub
        try:
            if nc is not None and sub is not None:
                with anyio.move_on_after(2.0):
                    with contextlib.suppress(NatsError, TimeoutError):
                        await nc.flush(timeout=2)
                    await anyio.sleep(_LINGER)
        finally:
            if nc is not None and sub is not None:
                sub._stop_processing()
                remove_sub(nc, sid(sub))
            self.lingered.set()


def _delivered(reply: str) -> int:
    """The delivery count in a JetStream ack subject, without parsing all of its metadata:
    ``$JS.ACK.<stream>.<consumer>.<delivered>.…`` (9 tokens), or with a domain and an account
    hash before the stream (12 or more)."""
    tokens = reply.split(".", 7)
    return int(tokens[4] if reply.count(".") == 8 else tokens[6])


async def _quietly(coro: Any) -> None:
    """Send an ack/nak/term; a connection that is gone makes it a redelivery, not an error."""
    try:
        await coro
    except NatsError as exc:
        log.debug("ack not sent: %s", exc)
