"""``amqp://`` and ``amqps://``: RabbitMQ through aio-pika's robust connection.

Topology, all on one durable topic exchange (``eventkit`` unless ``exchange=`` says otherwise):

- a topic is the routing key; a pattern binds with ``*`` as is and ``>`` as ``*.#``;
- a plain subscriber has an exclusive auto-delete queue of its own (fan-out);
- ``queue="g"`` shares one auto-delete queue ``{exchange}.group.g.{pattern}`` (competing
  consumers; the pattern in the name keeps one group name on two topics apart);
- ``durable="d"`` shares the durable queue ``{exchange}.durable.d``: persistent messages,
  manual acks, retries through ``{exchange}.durable.d.retry.{ms}`` queues whose message TTL is
  the backoff and which dead-letter back into the durable queue, and dead letters published
  on the exchange under ``eventkit.deadletter.d`` (kept in ``{exchange}.deadletter.d``, seen by
  any subscriber of that topic);
- a delayed publish waits in a TTL queue that dead-letters into the exchange (:mod:`._delay`).

Every subscription has a channel of its own whose prefetch bounds what RabbitMQ sends ahead,
so a slow handler never pulls a whole queue into memory. When RabbitMQ restarts, aio-pika
restores the connection, channels, queues, bindings and consumers; publishes wait (up to
``publish_timeout``) for the connection to come back.
"""

from __future__ import annotations

import logging
import re
import ssl
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aio_pika
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
from ._headers import binding_key, queue_name_part, to_amqp
from ._subscription import RabbitSubscription

__all__ = ["DEFAULT_MAX_PAYLOAD", "RabbitBroker", "RabbitSubscription"]

log = logging.getLogger("eventkit.broker.rabbitmq")

DEFAULT_MAX_PAYLOAD = 128 * 1024 * 1024
"""RabbitMQ's own default ``max_message_size``; bigger bodies are refused before sending."""

_DEFAULT_POLICY = DeliveryPolicy()

_EXCHANGE_NAME = re.compile(r"^[A-Za-z0-9_\-.:@]{1,200}$")


class RabbitBroker(BaseBroker):
    """A broker on RabbitMQ, from a URL such as ``amqp://user:pass@host:5672/vhost``.

    Options (everything else about the connection goes in the URL's query, or ``options``):

    - ``exchange``: the topic exchange every message goes through (default ``eventkit``);
      services that should see each other use the same one.
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
    ) -> None:
        super().__init__()
        parts = urlsplit(url)
        if parts.scheme not in ("amqp", "amqps"):
            raise ConfigError(f"RabbitBroker takes amqp:// or amqps:// URLs, got {redact(url)!r}")
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
        self._delays = DelayQueues(self)

    # -- lifecycle -------------------------------------------------------------------------

    async def _open(self) -> None:
        kwargs: dict[str, Any] = {"reconnect_interval": 1.0, **self._options}
        ssl_context = self._ssl_context()
        if ssl_context is not None:
            kwargs["ssl_context"] = ssl_context
        conn: AbstractRobustConnection | None = None
        try:
            with anyio.fail_after(self.connect_timeout):
                conn = await aio_pika.connect_robust(
                    self.url, timeout=self.connect_timeout, **kwargs
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

    async def publish_later(self, message: Message, delay: float) -> None:
        """Hold ``message`` in a delay queue for ``delay`` seconds (see :mod:`._delay`)."""
        self.check_open("publish")
        if delay := self.check_delay(message, delay):
            await self._delays.hold(message, delay)
        else:
            await self.publish(message)

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
            raise publish_error(
                exc, key, self._where, self.publish_timeout, link_up=self.link_up
            ) from exc

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
                amqp_queue = await self._declare(channel, topic, queue, durable)
                sub = RabbitSubscription(
                    self, channel, amqp_queue, guarded(handler), topic, queue, durable, policy
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
    ) -> aio_pika.abc.AbstractRobustQueue:
        """Declare and bind the subscription's queue (and a durable name's dead-letter queue)."""
        key = binding_key(topic)
        if durable is not None:
            name = self.durable_queue(durable)
            dead = dead_letter_topic(durable)
            dlq = await channel.declare_queue(
                f"{self.exchange}.deadletter.{queue_name_part(durable)}", durable=True
            )
            await dlq.bind(self.exchange, dead)
            amqp_queue = await channel.declare_queue(
                name,
                durable=True,
                arguments={
                    "x-dead-letter-exchange": self.exchange,
                    "x-dead-letter-routing-key": dead,
                },
            )
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
        return amqp_queue

    def durable_queue(self, durable: str) -> str:
        """The queue that holds a durable name's messages."""
        return f"{self.exchange}.durable.{queue_name_part(durable)}"

    async def declare_retry_queue(
        self, channel: AbstractRobustChannel, durable: str, ms: int
    ) -> str:
        """The queue where a failed durable message waits ``ms`` before going back."""
        home = self.durable_queue(durable)
        name = f"{home}.retry.{ms}"
        await channel.declare_queue(
            name,
            durable=True,
            robust=False,
            arguments={
                "x-message-ttl": ms,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": home,
            },
        )
        return name

    def forget(self, sub: RabbitSubscription) -> None:
        self._untrack(sub)

    def translate(self, exc: Exception, doing: str) -> Exception:
        """A driver exception as eventkit's, saying what was being done (others unchanged)."""
        return translate(exc, doing, self._where, self.connect_timeout)
