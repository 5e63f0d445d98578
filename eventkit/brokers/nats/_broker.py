"""``nats://``: the Broker protocol on NATS (nats-py), with JetStream for ``durable=``.

Topics are NATS subjects one to one (``*``, ``>``); ``queue=`` is a NATS queue group;
message headers (``ce-*`` CloudEvents attributes in binary mode, ``content-type``,
``eventkit-*``) travel as NATS headers unchanged. Plain subscriptions are core NATS
(at-most-once, fast: :mod:`._core`); ``durable=`` subscriptions are
JetStream pull consumers (:mod:`._jetstream`) over streams laid out per
first topic token (:mod:`._streams`).

A publish to a topic that some stream captures is a JetStream publish: it waits for the
stream's ack, retries safely (``Nats-Msg-Id`` = the CloudEvent id de-duplicates) and so
survives a server restart. Other publishes are core NATS: written to the connection, and
buffered (up to ``max_reconnect_buffer`` bytes) while reconnecting. Whether a stream
captures a topic is asked of the server once per topic, cached, and asked again when
JetStream announces a stream change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import anyio
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSub
from nats.errors import (
    NoServersError,
    SlowConsumerError,
)
from nats.nuid import NUID

from ..._tasks import TaskHost
from ...wire import (
    CONTENT_TYPE,
    STRUCTURED,
    BrokerClosed,
    BrokerError,
    ConnectionLost,
    DriverMissing,
    LogLimiter,
    Message,
    PayloadTooLarge,
    UnsupportedFeature,
    event_id_of,
    loggable,
    matches,
    redact,
    validate_topic,
)
from ..base import (
    REPLY_TO,
    BaseBroker,
    Capabilities,
    DeliveryPolicy,
    MessageHandler,
    ServiceDescription,
    Subscription,
    guarded,
    is_inline,
)
from ._compat import remove_sub, require, server_info, sid
from ._config import NatsSettings, parse_settings
from ._core import NatsSubscription
from ._delay import DelayedRelease
from ._durability import SyncCheck, SyncReport, replicas_of
from ._errors import DRIVER_ERRORS, HOW_TO_START, connect_error, translate
from ._fastpath import make_client
from ._headers import STRUCTURED_ONLY, to_nats
from ._jetstream import DurableSubscription, js_publish
from ._kv import open_bucket
from ._micro_finder import find_services
from ._service_api import ServiceApi
from ._streams import StreamHeads, ensure_stream, list_streams

__all__ = ["NatsBroker", "NatsSubscription"]

log = logging.getLogger("eventkit.broker.nats")

_DEFAULT_POLICY = DeliveryPolicy()
DEAD_LETTERS = "eventkit.deadletter.>"
HEADER_ROOM = 4096
_REFRESH_EVERY = 60.0
_MAX_CACHED_TOPICS = 10_000  # topics remembered as not stored, before the cache restarts


_NUID = NUID()  # message ids for JetStream de-duplication, where the event has none


class NatsBroker(BaseBroker):
    """A NATS broker: ``NatsBroker("nats://127.0.0.1:4222")``.

    Options (docs/nats.md; the durability ones also docs/durability.md): ``drain_timeout``,
    ``connect_timeout``, ``publish_timeout``, ``max_reconnect_buffer``, credentials
    (``user``/``password``/``token``, ``creds``, ``nkey``), TLS files (``tls_ca``,
    ``tls_cert``, ``tls_key``), ``name``, ``content_mode``, durability (``replicas``,
    ``monitor``, ``prefetch``), and ``options`` (passed to nats-py's connect).
    """

    def __init__(self, url: str = "nats://127.0.0.1:4222", **options: Any) -> None:
        super().__init__()
        self.settings: NatsSettings = parse_settings(url, **options)
        self.url = self.settings.display
        self.drain_timeout = self.settings.drain_timeout
        self._nc: Client | None = None
        self._tasks = TaskHost("eventkit-nats-broker")
        self._refusals = LogLimiter(log, "permission refusals")
        self._down_since: float | None = None
        self._captured: dict[str, bool] = {}
        self._stream_subjects: list[str] | None = None  # every stream's subjects, when known
        self._stream_heads = StreamHeads([])
        self._advisories: NatsSub | None = None
        self._refreshing = False
        self._stale = False
        self._dead_letters_ready = False
        self._lingering: list[DurableSubscription] = []
        self._connect_error: Exception | None = None
        self._fast_size_limit = 0
        self._delayed = DelayedRelease(self)
        self._sync = SyncCheck(self.settings, self.url, self._client, self._tasks)
        self.capabilities = self._capabilities(durable=True, max_payload=None)

    # -- connection ------------------------------------------------------------------------

    def _client(self) -> Client:
        nc = self._nc
        if nc is None or self.closed:
            raise BrokerClosed("the NATS broker is not connected: call connect() first")
        return nc

    async def _open(self) -> None:
        require()
        nc: Client = make_client()
        kwargs = self.settings.connect_kwargs()
        try:
            await nc.connect(
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
                **kwargs,
            )
        except ImportError as exc:
            raise DriverMissing(
                f"NATS credentials (creds/nkey) need the nkeys package: pip install nkeys ({exc})"
            ) from exc
        except DRIVER_ERRORS as exc:
            reason = self._connect_error or nc.last_error or exc
            answered = bool(server_info(nc))
            raise connect_error(exc, self.url, reason, answered) from exc
        nc.options["max_reconnect_attempts"] = -1  # connected once: keep reconnecting
        self._nc = nc
        self._sync = SyncCheck(self.settings, self.url, self._client, self._tasks)
        info = server_info(nc)
        # NATS counts headers in max_payload: leave them room, so that any body up to the
        # advertised limit fits with ordinary headers.
        self.capabilities = self._capabilities(
            durable=bool(info.get("jetstream")), max_payload=nc.max_payload - HEADER_ROOM
        )
        self._fast_size_limit = nc.max_payload - HEADER_ROOM - 65536
        await self._tasks.start()
        if self.capabilities.durable:
            self._advisories = await nc.subscribe(
                "$JS.EVENT.ADVISORY.STREAM.>", cb=self._on_stream_advisory
            )
            self._tasks.start_soon(self._expire_captures)

    def _capabilities(self, *, durable: bool, max_payload: int | None) -> Capabilities:
        return Capabilities(
            queue_groups=True,
            durable=durable,
            ordered=True,
            no_responders=True,
            max_payload=max_payload,
            structured_events=self.settings.content_mode == "structured",
            delay=durable,  # held in JetStream (._delay)
            delay_kept=durable,
        )

    async def _closing(self) -> None:
        await self._delayed.stop()

    async def _shutdown(self) -> None:
        nc = self._nc
        if nc is None:
            return
        with anyio.move_on_after(2.0):  # pull requests of stopped durables expire
            for lingering in self._lingering:
                await lingering.lingered.wait()
        with anyio.move_on_after(self.drain_timeout):
            try:
                if nc.is_connected:
                    await nc.flush(timeout=max(1, int(self.drain_timeout)))
            except DRIVER_ERRORS as exc:
                log.debug("flush on close failed: %s", exc)
        with anyio.move_on_after(5.0):
            try:
                await nc.close()
            except DRIVER_ERRORS as exc:  # the link broke as it closed: closed all the same
                log.debug("closing the NATS connection: %s: %s", type(exc).__name__, exc)
        await self._tasks.aclose()

    async def _on_error(self, exc: Exception) -> None:
        # Why the first connect fails, for its message; a refusal of the credentials sticks
        # (a later attempt may only see the connection reset).
        if (
            self._nc is None
            and not isinstance(exc, NoServersError)
            and "authorization" not in str(self._connect_error).lower()
        ):
            self._connect_error = exc
        if isinstance(exc, SlowConsumerError):
            log.warning(
                "NATS slow consumer on %r: messages dropped (handlers too slow)", exc.subject
            )
        elif "permissions violation" in str(exc).lower():
            # A publish or subscribe the server's permissions refuse: the message is dropped.
            self._refusals.warning("NATS refused: %s", loggable(exc, quote=False))
        else:
            log.debug("NATS connection: %s: %s", type(exc).__name__, exc)

    @property
    def link_up(self) -> bool:
        """False from a lost connection until nats-py reconnected."""
        return self.connected and self._down_since is None

    async def _on_disconnected(self) -> None:
        if not self.closed:
            self._down_since = time.monotonic()
            log.warning("lost the connection to NATS at %s; reconnecting", self.url)

    async def _on_reconnected(self) -> None:
        self._down_since = None
        nc = self._nc
        where = nc.connected_url if nc is not None else None
        # The server URLs carry the credentials (nats-py reads them there): redacted.
        log.warning("reconnected to NATS at %s", redact(where.geturl()) if where else self.url)
        for sub in self._subscriptions:
            if isinstance(sub, DurableSubscription):
                sub.wake()
        if nc is not None:
            self._sync.reconnected(nc)

    @property
    def replicas(self) -> int:
        """Replicas of the streams and buckets made here (:func:`._durability.replicas_for`)."""
        return replicas_of(self.settings, self._client())

    @property
    def jetstream_sync(self) -> SyncReport | None:
        """Whether the server syncs JetStream writes before acking them (:mod:`._durability`)."""
        return self._sync.report

    # -- publish ---------------------------------------------------------------------------

    async def publish(self, message: Message) -> None:
        # The hot path: one dict lookup (a topic seen before was validated and routed then),
        # one size compare, then nats-py. Headers go through as the same dict unless a value
        # needs escaping.
        nc = self._nc
        if nc is None or self._state != "connected":
            raise BrokerClosed("publish on a broker that is not connected: call connect() first")
        topic = message.topic
        captured = self._captured.get(topic)
        if captured is None:
            validate_topic(topic)
            captured = await self._route(topic)
        if len(message.body) > self._fast_size_limit:
            self._check_size(message)
        if captured:
            msg_id = event_id_of(message) or _NUID.next().decode()
            if await self._publish_kept(message, msg_id):
                return  # else no stream stores it after all: core NATS
        if self._down_since is not None:
            self._check_outage(topic)
        headers = message.headers
        wire: dict[str, str] | None
        if len(headers) == 1 and headers.get(CONTENT_TYPE) == STRUCTURED:
            # A structured event alone: the JSON event format as the payload, marked by its
            # content type as the binding says (one shared header dict, sent as made once).
            reply, wire = "", STRUCTURED_ONLY
        elif headers:
            reply = headers.get(REPLY_TO, "")
            if reply:
                validate_topic(reply)  # a bad subject here would break the connection
                # The reply topic travels as the NATS reply subject (that is what makes the
                # server send no-responders notices), not also as a header.
                headers = {k: v for k, v in headers.items() if k != REPLY_TO}
            wire = to_nats(headers)
        else:
            reply, wire = "", None
        try:
            await nc.publish(topic, message.body, reply, wire)
        except DRIVER_ERRORS as exc:
            raise translate(exc, f"publishing to {topic!r}", self.url) from exc

    async def _hold(self, message: Message, delay: float) -> None:
        """Hold ``message`` in JetStream until ``delay`` seconds from now (see :mod:`._delay`)."""
        await self._delayed.hold(message, delay)

    async def _route(self, topic: str) -> bool:
        """Whether a new topic goes through JetStream (a stream stores it), remembered.

        Matched locally against the subjects of every stream, listed once (one JetStream
        call), not per topic, so a new topic (every RPC reply has its own) costs no round
        trip. The list is dropped when a stream changes (JetStream advisories) or a minute
        passes."""
        if not self.capabilities.durable:
            captured = False  # no JetStream: nothing is stored
        else:
            subjects = self._stream_subjects
            if subjects is None:
                subjects = None if self._down_since else await self._list_stream_subjects()
                if subjects is None:
                    # Nobody can say now (the link down, JetStream busy): JetStream's path
                    # waits, then falls back to core NATS once sure no stream takes it; the
                    # topic is routed again next time.
                    return True
            captured = self._stream_heads.near(topic) and any(
                matches(pattern, topic) for pattern in subjects
            )
        if len(self._captured) >= _MAX_CACHED_TOPICS:  # every RPC reply has a topic of its own
            self._captured = {t: True for t, kept in self._captured.items() if kept}
        self._captured[topic] = captured
        return captured

    def _check_size(self, message: Message) -> None:
        """Bodies near the limit: the limit itself, then headers included (NATS counts both)."""
        self.check_publish(message)  # the shared check and message (PayloadTooLarge)
        limit = self.capabilities.max_payload
        if limit is not None:
            self._check_size_with_headers(message, limit + HEADER_ROOM)

    def _check_outage(self, topic: str) -> None:
        down = self._down_since
        if down is not None and time.monotonic() - down > self.settings.publish_timeout:
            raise ConnectionLost(
                f"NATS at {self.url} has been unreachable for more than "
                f"{self.settings.publish_timeout:g}s; {topic!r} not sent. " + HOW_TO_START
            )

    def _check_size_with_headers(self, message: Message, limit: int) -> None:
        """NATS counts headers in max_payload; a body just under the limit may not fit."""
        size = len(message.body) + 12 + sum(len(k) + len(v) + 4 for k, v in message.headers.items())
        if size > limit:
            raise PayloadTooLarge(
                f"message on {message.topic!r} is {size} bytes with headers, over this NATS "
                f"server's max_payload of {limit} bytes; nothing was sent"
            )

    async def _publish_kept(self, message: Message, msg_id: str) -> bool:
        """Publish so that a stream keeps it (JetStream ack); False if no stream does (the
        caller then publishes it as core NATS)."""
        nc = self._client()
        if self._down_since is not None:
            self._check_outage(message.topic)
        if not self._sync.started:
            self._sync.run_soon()
        stored = await js_publish(
            nc,
            message.topic,
            message.body,
            message.headers,
            msg_id,
            self.settings.publish_timeout,
        )
        if not stored:
            self._captured[message.topic] = False
        return stored

    async def _list_stream_subjects(self) -> list[str] | None:
        """Every stream's subjects, listed and kept; None when JetStream cannot answer now."""
        try:
            streams = await list_streams(self._client())
        except UnsupportedFeature:  # no JetStream on this server: nothing is stored
            streams = {}
        except BrokerError as exc:  # JetStream busy (a cluster electing) or the link down
            log.debug("could not list streams: %s", exc)
            return None
        subjects = [s for config in streams.values() for s in config.get("subjects") or ()]
        self._stream_subjects = subjects
        self._stream_heads = StreamHeads(subjects)
        return subjects

    async def _on_stream_advisory(self, msg: Msg) -> None:
        """A stream was made, changed or deleted: forget the topics found uncaptured, now
        and twice more shortly after (in a cluster the lookup can lag the advisory). Topics
        found captured stay: a JetStream publish corrects itself if the stream went away."""
        if msg.subject.split(".")[4:5] not in (["CREATED"], ["UPDATED"], ["DELETED"]):
            return  # leader elections and the like change nothing here
        self._forget_uncaptured()
        self._stale = True
        if not self._refreshing and not self.closed:
            self._refreshing = True
            self._tasks.start_soon(self._forget_captures)

    async def _forget_captures(self) -> None:
        try:
            while self._stale:
                self._stale = False
                for delay in (0.3, 1.2):
                    await anyio.sleep(delay)
                    self._forget_uncaptured()
        finally:
            self._refreshing = False

    def _forget_uncaptured(self) -> None:
        self._stream_subjects = None
        self._captured = {t: True for t, captured in self._captured.items() if captured}

    async def _expire_captures(self) -> None:
        """A safety net under the advisories: a missed one is corrected within a minute."""
        while True:
            await anyio.sleep(_REFRESH_EVERY)
            self._forget_uncaptured()

    # -- subscribe -------------------------------------------------------------------------

    async def subscribe(
        self,
        topic: str,
        handler: MessageHandler,
        *,
        queue: str | None = None,
        durable: str | None = None,
        policy: DeliveryPolicy | None = None,
    ) -> NatsSubscription | DurableSubscription:
        self._client()
        self.check_subscribe(topic, queue, durable)
        policy = policy or _DEFAULT_POLICY
        sub: NatsSubscription | DurableSubscription
        if durable is not None:
            await self._sync.run()
            await self._ensure_dead_letters()
            sub = DurableSubscription(self, topic, durable, guarded(handler), policy)
        else:
            sub = NatsSubscription(self, topic, queue, guarded(handler), policy)
        try:
            await sub.start()
        except DRIVER_ERRORS as exc:
            raise translate(exc, f"subscribing to {topic!r}", self.url) from exc
        self._track(sub)
        if durable is not None:
            self._forget_uncaptured()
        if self.capabilities.durable and not is_inline(handler):
            self._delayed.serve_soon()  # a subscriber's process also releases delayed messages
        return sub

    async def advertise(self, service: ServiceDescription) -> Subscription:
        """List ``service`` in the NATS service API (``$SRV.PING|INFO|STATS``) until stopped."""
        api = ServiceApi(self, service)
        await api.start()
        return api

    async def key_value(self, bucket: str, *, history: int = 1, replicas: int | None = None) -> Any:
        """JetStream KV ``bucket`` for :mod:`eventkit.store`, made if missing (see :mod:`._kv`)."""
        replicas = replicas or self.replicas
        timeout, url = self.settings.publish_timeout, self.url
        return await open_bucket(
            self._client(), bucket, history=history, replicas=replicas, timeout=timeout, where=url
        )

    async def find_services(
        self, name: str | None = None, *, wait: float = 0.5
    ) -> list[ServiceDescription]:
        """NATS micro services (and eventkit's own) that answer ``$SRV.INFO`` within ``wait``
        seconds (see :mod:`._micro_finder`)."""
        return await find_services(self, name, wait)

    async def _ensure_dead_letters(self) -> None:
        """Dead letters are kept (a stream with limits) as well as sent to core subscribers."""
        if not self._dead_letters_ready:
            await ensure_stream(self._client(), DEAD_LETTERS, replicas=self.replicas)
            self._dead_letters_ready = True

    def _client_or_none_remove(self, sub: NatsSub) -> None:
        """Forget a nats-py subscription locally (its UNSUB was sent, or the link is down)."""
        if self._nc is not None:
            remove_sub(self._nc, sid(sub))

    def _linger(self, sub: DurableSubscription) -> None:
        try:
            self._tasks.start_soon(sub.linger)
            self._lingering.append(sub)
        except RuntimeError:  # the broker is closing: nothing more to wait for
            sub.lingered.set()

    def _forget(self, sub: NatsSubscription | DurableSubscription) -> None:
        self._untrack(sub)

    @property
    def server_info(self) -> Mapping[str, Any]:
        """The server's INFO (version, max_payload, jetstream, cluster), for diagnostics."""
        return dict(server_info(self._client()))
