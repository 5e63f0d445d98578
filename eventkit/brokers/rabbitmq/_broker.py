"""``amqp://`` and ``amqps://``: RabbitMQ through aio-pika's robust connection.

Topology, all on one durable topic exchange (``eventkit`` unless ``exchange=`` says otherwise):

- a topic is the routing key; a pattern binds with ``*`` as is and ``>`` as ``*.#``;
- a plain subscriber has an exclusive auto-delete queue of its own (fan-out);
- ``queue="g"`` shares one auto-delete queue ``{exchange}.group.g.{pattern}`` (competing
  consumers; the pattern in the name keeps one group name on two topics apart);
- ``durable="d"`` shares the durable queue ``{exchange}.durable.d`` (a quorum queue unless
  ``queue_type="classic"``: see ``_queues``): persistent messages, manual acks, retries
  through ``{exchange}.durable.d.retry.{ms}`` queues whose message TTL is the backoff and
  which dead-letter back into the durable queue, and dead letters published on the exchange
  under ``eventkit.deadletter.d`` (kept in ``{exchange}.deadletter.d``, seen by any subscriber
  of that topic);
- a delayed publish waits in a TTL queue that dead-letters into the exchange (:mod:`._delay`).

Every subscription has a channel of its own whose prefetch bounds what RabbitMQ sends ahead,
so a slow handler never pulls a whole queue into memory. When RabbitMQ restarts, aio-pika
restores the connection, channels, queues, bindings and consumers, on another node of the
URL's host list where it names several (``_failover``); publishes wait (up to
``publish_timeout``) for the connection to come back.
"""

from __future__ import annotations

import contextlib
import logging
import re
import ssl
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aio_pika
import aiormq.exceptions as amqp_errors
import anyio
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from aiormq.abc import DeliveredMessage
from pamqp.commands import Basic

from ..._tasks import TaskHost
from ...wire import (
    BrokerClosed,
    ConfigError,
    ConnectionLost,
    Message,
    dead_letter_topic,
    redact,
)
from ..base import (
    REPLY_TO,
    BaseBroker,
    Capabilities,
    DeliveryPolicy,
    MessageHandler,
    guarded,
    no_responders_reply,
)
from ._delay import DelayQueues
from ._errors import DRIVER_ERRORS, START_HINT, connect_error, publish_error, translate
from ._failover import failover_connection, split_hosts
from ._headers import binding_key, queue_name_part, to_amqp
from ._queues import (
    QueueType,
    dead_letter_queue_arguments,
    durable_queue_arguments,
    probe,
    queue_type_of,
    retry_queue_arguments,
    warn_adopted,
)
from ._subscription import RabbitSubscription

__all__ = ["DEFAULT_MAX_PAYLOAD", "RabbitBroker", "RabbitSubscription"]

log = logging.getLogger("eventkit.broker.rabbitmq")

DEFAULT_MAX_PAYLOAD = 128 * 1024 * 1024
"""RabbitMQ's own default ``max_message_size``; bigger bodies are refused before sending."""

_DEFAULT_POLICY = DeliveryPolicy()

_EXCHANGE_NAME = re.compile(r"^[A-Za-z0-9_\-.:@]{1,200}$")


class RabbitBroker(BaseBroker):
    """A broker on RabbitMQ, from a URL such as ``amqp://user:pass@host:5672/vhost``.

    The URL may name several nodes of one cluster, ``amqp://user:pass@h1:5672,h2:5672/vhost``:
    the connection goes to the first that answers and, when it is lost, to the next.

    Options (everything else about the connection goes in the URL's query, or ``options``):

    - ``exchange``: the topic exchange every message goes through (default ``eventkit``);
      services that should see each other use the same one.
    - ``queue_type``: ``"quorum"`` (default) or ``"classic"``, the type of the queues
      durable subscriptions declare; also the URL query ``?queue_type=classic`` (the keyword
      wins). An existing classic queue is kept, with a warning (docs/rabbitmq.md#durability).
    - ``drain_timeout``: seconds ``close()`` / ``stop()`` wait for running handlers.
    - ``prefetch``: deliveries RabbitMQ may send ahead to one subscription; default, and
      never less than, the subscription's ``DeliveryPolicy.max_in_flight``.
    - ``confirm``: wait for RabbitMQ's confirm on every publish (default). ``False`` returns
      once the message is written to the socket; retries and dead letters are always confirmed.
    - ``connect_timeout``: seconds for connecting, declaring a subscription's queues and
      closing (default 10).
    - ``publish_timeout``: seconds a publish waits for its confirm, and for a lost
      connection to come back before :class:`ConnectionLost` (default 10).
    - ``timeout``: the former name of both; it sets each one not given.
    - ``max_payload``: bodies above it raise :class:`PayloadTooLarge` (RabbitMQ's default).
    - ``tls_ca``, ``tls_cert``, ``tls_key``: files for ``amqps://`` (CA bundle, client
      certificate and key); without them the system's CAs are used.
    - ``options``: passed to ``aio_pika.connect_robust`` as keyword arguments
      (``heartbeat``, ``reconnect_interval``, ``client_properties``, ...).
    """

    def __init__(
        self,
        url: str = "amqp://guest:guest@127.0.0.1:5672/",
        *,
        exchange: str = "eventkit",
        drain_timeout: float = 10.0,
        prefetch: int | None = None,
        confirm: bool = True,
        connect_timeout: float | None = None,
        publish_timeout: float | None = None,
        timeout: float | None = None,
        max_payload: int | None = DEFAULT_MAX_PAYLOAD,
        tls_ca: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        options: Mapping[str, Any] | None = None,
        queue_type: str | None = None,
    ) -> None:
        super().__init__()
        parts = urlsplit(url)
        if parts.scheme not in ("amqp", "amqps"):
            raise ConfigError(f"RabbitBroker takes amqp:// or amqps:// URLs, got {redact(url)!r}")
        query = parse_qsl(parts.query, keep_blank_values=True)
        from_query = [value for key, value in query if key == "queue_type"]
        if queue_type is None and from_query:
            queue_type = from_query[-1]
        self.queue_type: QueueType = queue_type_of(queue_type or "quorum")
        rest = urlencode([(key, value) for key, value in query if key != "queue_type"])
        self._urls = split_hosts(urlunsplit(parts._replace(query=rest)))
        if not _EXCHANGE_NAME.match(exchange):
            raise ConfigError(
                f"exchange name {exchange!r} may only contain letters, digits and _ - . : @"
            )
        if prefetch is not None and prefetch < 1:
            raise ConfigError(f"prefetch must be at least 1, got {prefetch}")
        default = 10.0 if timeout is None else timeout
        connect_timeout = default if connect_timeout is None else connect_timeout
        publish_timeout = default if publish_timeout is None else publish_timeout
        if drain_timeout < 0 or connect_timeout <= 0 or publish_timeout <= 0:
            raise ConfigError(
                "drain_timeout must be >= 0, connect_timeout and publish_timeout > 0 (seconds)"
            )
        if max_payload is not None and max_payload < 1:
            raise ConfigError(f"max_payload must be positive, got {max_payload}")
        if (tls_ca or tls_cert or tls_key) and parts.scheme != "amqps":
            raise ConfigError(f"TLS files were given for {redact(url)!r}: use an amqps:// URL")
        if tls_key and not tls_cert:
            raise ConfigError("tls_key needs tls_cert (the client certificate it belongs to)")
        self.url = url
        self.exchange = exchange
        self.drain_timeout = drain_timeout
        self.prefetch = prefetch
        self.confirm = confirm
        self.connect_timeout = connect_timeout
        self.publish_timeout = publish_timeout
        # Unroutable requests come back as basic.return before their confirm, so a broker
        # that confirms can tell a caller at once that nobody took its request.
        self.capabilities = Capabilities(
            queue_groups=True,
            durable=True,
            ordered=True,
            max_payload=max_payload,
            no_responders=confirm,
            delay=True,  # per-delay TTL queues (._delay)
            delay_kept=True,
        )
        self._tls = (tls_ca, tls_cert, tls_key)
        self._options = dict(options or {})
        self._where = redact(url)
        self._conn: AbstractRobustConnection | None = None
        self._confirmed: AbstractRobustChannel | None = None
        self._fast: AbstractRobustChannel | None = None
        self._tasks = TaskHost("eventkit-rabbitmq-broker")
        self._renewed = float("-inf")
        self._delays = DelayQueues(self)

    # -- lifecycle -------------------------------------------------------------------------

    async def _open(self) -> None:
        kwargs: dict[str, Any] = {"reconnect_interval": 1.0, **self._options}
        ssl_context = self._ssl_context()
        if ssl_context is not None:
            kwargs["ssl_context"] = ssl_context
        conn: AbstractRobustConnection | None = None
        try:
            if len(self._urls) > 1:
                kwargs["connection_class"] = failover_connection(self._urls)
            with anyio.fail_after(self.connect_timeout):
                conn = await aio_pika.connect_robust(
                    self._urls[0], timeout=self.connect_timeout, **kwargs
                )
                self._confirmed = await self._publish_channel(conn, confirm=True)
                self._fast = self._confirmed
                if not self.confirm:
                    self._fast = await self._publish_channel(conn, confirm=False)
        except BaseException as exc:
            if conn is not None:
                with anyio.CancelScope(shield=True), anyio.move_on_after(self.connect_timeout):
                    await conn.close()
            if isinstance(exc, Exception):
                raise connect_error(exc, self._where) from exc
            raise
        self._conn = conn
        await self._tasks.start()

    @property
    def link_up(self) -> bool:
        """False while the robust connection reconnects."""
        conn = self._conn
        return self.connected and conn is not None and conn.connected.is_set()

    async def _shutdown(self) -> None:
        await self._tasks.aclose()
        if self._conn is not None:
            with anyio.move_on_after(self.connect_timeout):
                await self._conn.close()

    async def _publish_channel(
        self, conn: AbstractRobustConnection, *, confirm: bool
    ) -> AbstractRobustChannel:
        """A channel to publish on; declaring the exchange there has it restored on reconnect."""
        channel = await conn.channel(publisher_confirms=confirm)
        await channel.declare_exchange(self.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        return channel

    def _ssl_context(self) -> ssl.SSLContext | None:
        if urlsplit(self.url).scheme != "amqps":
            return None
        ca, cert, key = self._tls
        try:
            context = ssl.create_default_context(cafile=ca)
            if cert:
                context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load the TLS files for {self._where}: {exc}") from exc
        return context

    # -- publish ---------------------------------------------------------------------------

    async def publish(self, message: Message) -> None:
        fast = self._fast
        if fast is None or self._state != "connected":
            raise BrokerClosed("publish on a broker that is not connected: call connect() first")
        self.check_publish(message)
        headers, content_type = to_amqp(message.headers)
        properties = Basic.Properties(headers=headers, content_type=content_type, delivery_mode=2)
        request = self.confirm and REPLY_TO in message.headers
        returned = await self._send(
            fast, self.exchange, message.topic, message.body, properties, mandatory=request
        )
        if request and isinstance(returned, DeliveredMessage):  # routed to no queue
            notice = no_responders_reply(message)
            if notice is not None:
                await self.publish(notice)

    async def _hold(self, message: Message, delay: float) -> None:
        """Hold ``message`` in a delay queue for ``delay`` seconds (see :mod:`._delay`)."""
        await self._delays.hold(message, delay)

    async def _send(
        self,
        channel: AbstractRobustChannel,
        exchange: str,
        key: str,
        body: bytes,
        properties: Basic.Properties,
        *,
        mandatory: bool = False,
    ) -> object:
        """Publish one AMQP message (confirmed where the channel confirms); errors translated.

        Returns the confirmation: the returned message itself when ``mandatory`` and the
        message was routed to no queue.

        Straight to the underlying aiormq channel: building an ``aio_pika.Message`` per publish
        cost more than everything else eventkit does on this path.
        """
        if channel.is_closed:
            await self._wait_ready(channel)
        try:
            underlay = await channel.get_underlay_channel()
            return await underlay.basic_publish(
                body,
                exchange=exchange,
                routing_key=key,
                properties=properties,
                mandatory=mandatory,
                timeout=self.publish_timeout,
            )
        except DRIVER_ERRORS as exc:
            if isinstance(exc, amqp_errors.DeliveryError):
                await self._renew(channel)
            raise publish_error(
                exc, key, self._where, self.publish_timeout, link_up=self.link_up
            ) from exc

    async def _renew(self, channel: AbstractRobustChannel) -> None:
        """Reopen a channel after a negative confirm (at most once a second).

        A channel whose publish reached a quorum queue between two leaders (its node was
        lost) goes on being refused by that queue after a new leader is elected (seen on
        RabbitMQ 3.10); a new channel finds the new leader. Closing the driver's channel
        makes the robust one reopen itself, with its exchange declared again.
        """
        now = anyio.current_time()
        if now - self._renewed < 1.0:
            return
        self._renewed = now
        with contextlib.suppress(*DRIVER_ERRORS):
            underlay = await channel.get_underlay_channel()
            await underlay.close()

    async def _wait_ready(self, channel: AbstractRobustChannel) -> None:
        """Wait for a robust channel to come back after a lost connection, within
        ``publish_timeout``."""
        if self.closed:
            raise BrokerClosed("this RabbitBroker was closed")
        with anyio.move_on_after(self.publish_timeout):
            await channel.ready()
            return
        raise ConnectionLost(
            f"RabbitMQ at {self._where} has been unreachable for {self.publish_timeout}s: "
            + START_HINT
        )

    async def republish(self, message: aio_pika.Message, exchange: str, key: str) -> None:
        """A confirmed publish for retries and dead letters (``exchange`` "" is the default)."""
        confirmed = self._confirmed
        if confirmed is None or self._conn is None:
            raise BrokerClosed("the broker is closed")
        await self._send(confirmed, exchange, key, message.body, message.properties)

    # -- subscribe -------------------------------------------------------------------------

    async def subscribe(
        self,
        topic: str,
        handler: MessageHandler,
        *,
        queue: str | None = None,
        durable: str | None = None,
        policy: DeliveryPolicy | None = None,
    ) -> RabbitSubscription:
        self.check_open("subscribe")
        assert self._conn is not None
        self.check_subscribe(topic, queue, durable)
        policy = policy or _DEFAULT_POLICY
        prefetch = max(policy.max_in_flight, self.prefetch or 0)
        channel: AbstractRobustChannel | None = None
        try:
            with anyio.fail_after(self.connect_timeout):
                channel = await self._conn.channel(publisher_confirms=False)
                await channel.set_qos(prefetch_count=prefetch)
                amqp_queue, kind = await self._declare(channel, topic, queue, durable, policy)
                sub = RabbitSubscription(
                    self, channel, amqp_queue, guarded(handler), topic, queue, durable, policy, kind
                )
                await sub.start()
        except BaseException as exc:
            if channel is not None:
                with anyio.CancelScope(shield=True), anyio.move_on_after(self.connect_timeout):
                    await channel.close()
            if isinstance(exc, Exception):
                error = self.translate(exc, f"subscribing to {topic!r}")
                if error is not exc:
                    raise error from exc
            raise
        self._track(sub)
        for _ in range(0 if sub.inline else policy.max_in_flight):
            self._tasks.start_soon(sub.work)
        return sub

    async def _declare(
        self,
        channel: AbstractRobustChannel,
        topic: str,
        queue: str | None,
        durable: str | None,
        policy: DeliveryPolicy,
    ) -> tuple[aio_pika.abc.AbstractRobustQueue, QueueType]:
        """Declare and bind the subscription's queue (and a durable name's dead-letter queue);
        the type of a durable queue as it is (an existing classic one stays classic)."""
        key = binding_key(topic)
        kind = self.queue_type
        if durable is not None:
            dead = dead_letter_topic(durable)
            adopted: dict[str, str] = {}
            dlq = await self._durable_queue(
                channel,
                f"{self.exchange}.deadletter.{queue_name_part(durable)}",
                (dead_letter_queue_arguments(kind), dead_letter_queue_arguments("classic")),
                adopted,
            )
            await dlq.bind(self.exchange, dead)
            name = self.durable_queue(durable)
            arguments = (
                durable_queue_arguments(kind, self.exchange, dead, policy.max_attempts),
                durable_queue_arguments("classic", self.exchange, dead, policy.max_attempts),
            )
            amqp_queue = await self._durable_queue(channel, name, arguments, adopted)
            if adopted.get(name) == "x-queue-type":
                kind = "classic"
            if adopted:
                warn_adopted(durable, adopted)
        elif queue is not None:
            amqp_queue = await channel.declare_queue(
                f"{self.exchange}.group.{queue_name_part(queue)}.{queue_name_part(topic)}",
                auto_delete=True,
            )
        else:
            amqp_queue = await channel.declare_queue(
                f"{self.exchange}.sub.{uuid.uuid4().hex}", exclusive=True, auto_delete=True
            )
        await amqp_queue.bind(self.exchange, key)
        return amqp_queue, kind

    async def _durable_queue(
        self,
        channel: AbstractRobustChannel,
        name: str,
        arguments: tuple[dict[str, Any], dict[str, Any]],
        adopted: dict[str, str],
    ) -> aio_pika.abc.AbstractRobustQueue:
        """Declare a durable queue with the first ``arguments`` (the second are its classic
        ones), or adopt an existing one of that name whose type or delivery limit differ
        (noted in ``adopted``: queue name -> the argument)."""
        wanted, classic = arguments
        if self.queue_type == "quorum":
            assert self._conn is not None
            differs = await probe(self._conn, name, wanted, classic)
            if differs is not None:
                adopted[name] = differs
                return await channel.declare_queue(name, passive=True)
        return await channel.declare_queue(name, durable=True, arguments=wanted)

    def durable_queue(self, durable: str) -> str:
        """The queue that holds a durable name's messages."""
        return f"{self.exchange}.durable.{queue_name_part(durable)}"

    async def declare_retry_queue(
        self,
        channel: AbstractRobustChannel,
        durable: str,
        ms: int,
        queue_type: QueueType,
        adopt: dict[int, bool],
    ) -> str:
        """The queue where a failed durable message waits ``ms`` before going back, of the
        durable queue's type; ``adopt`` remembers, per delay, whether an existing queue of
        another type is used as it is (probed once per subscription and delay)."""
        home = self.durable_queue(durable)
        name = f"{home}.retry.{ms}"
        arguments = retry_queue_arguments(queue_type, ms, home)
        if queue_type == "quorum" and ms not in adopt:
            assert self._conn is not None
            classic = retry_queue_arguments("classic", ms, home)
            adopt[ms] = await probe(self._conn, name, arguments, classic) is not None
        if adopt.get(ms):
            await channel.declare_queue(name, passive=True, robust=False)
        else:
            await channel.declare_queue(name, durable=True, robust=False, arguments=arguments)
        return name

    def forget(self, sub: RabbitSubscription) -> None:
        self._untrack(sub)

    def translate(self, exc: Exception, doing: str) -> Exception:
        """A driver exception as eventkit's, saying what was being done (others unchanged)."""
        return translate(exc, doing, self._where, self.connect_timeout)
