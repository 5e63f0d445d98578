"""The Broker protocol: the whole surface an adapter implements.

Everything above the broker (events, RPC, the registry) uses only this, so a new broker is one
module that passes ``tests/conformance``. The surface is deliberately narrow: connect, publish,
subscribe, close.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

import anyio

from ..wire import (
    BrokerClosed,
    ConfigError,
    Message,
    PayloadTooLarge,
    UnsupportedFeature,
    redact,
    validate_name,
    validate_pattern,
    validate_topic,
)

__all__ = [
    "NO_RESPONDERS",
    "REPLY_BY",
    "REPLY_ERROR",
    "REPLY_STATUS",
    "REPLY_TO",
    "BaseBroker",
    "Broker",
    "Capabilities",
    "DelayedPublisher",
    "DeliveryPolicy",
    "EndpointDescription",
    "FailureLog",
    "KeyValueHolder",
    "MessageHandler",
    "ServiceAdvertiser",
    "ServiceDescription",
    "ServiceFinder",
    "Subscription",
    "Timers",
    "backoff_steps",
    "being_cancelled",
    "delay_seconds",
    "guarded",
    "inline",
    "is_inline",
    "no_responders_reply",
    "run_inline",
    "stop_all",
]

from ._delay import DelayedPublisher, Timers, backoff_steps, delay_seconds
from ._delivery import (
    FailureLog,
    being_cancelled,
    guarded,
    inline,
    is_inline,
    run_inline,
    stop_all,
)

log = logging.getLogger("eventkit.broker")

# Requests, as far as a broker knows them. A message that carries REPLY_TO is a request whose
# reply goes to that topic; REPLY_BY, when present, is when its sender stops waiting (seconds
# since the epoch, as text). A broker with ``Capabilities.no_responders`` answers a request
# that reached no subscriber with an empty message carrying NO_RESPONDERS, so the sender
# learns at once that it surely did not run; a broker may also carry the reply back inside
# its own transport until REPLY_BY (the HTTP broker does). Above the broker, the RPC protocol
# (:mod:`eventkit.rpc`) uses these same headers; an adapter needs nothing more of RPC.
# A reply that reports a failure carries REPLY_STATUS (a number, HTTP-like: 400, 404, 500...)
# and REPLY_ERROR (one line saying what failed, for people); a reply without REPLY_STATUS
# succeeded. An adapter whose transport has its own way of marking a failed reply (NATS's
# service API: ``Nats-Service-Error-Code``) maps it to and from these two headers.
REPLY_TO = "eventkit-reply-to"
REPLY_BY = "eventkit-deadline"
NO_RESPONDERS = "eventkit-no-responders"
REPLY_STATUS = "eventkit-status"
REPLY_ERROR = "eventkit-error"


def no_responders_reply(request: Message) -> Message | None:
    """The notice a broker sends when ``request`` reached nobody (None if it wants no reply)."""
    reply_to = request.headers.get(REPLY_TO)
    if reply_to is None:
        return None
    return Message(reply_to, b"", {NO_RESPONDERS: "1"})


MessageHandler = Callable[[Message], Awaitable[None]]
"""Called once per delivery. Returning acks; raising nacks (durable: redelivered later);
raising :class:`eventkit.errors.DeadLetter` dead-letters a durable message at once."""


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How a subscription receives: concurrency, and for durable ones, retries.

    ``max_in_flight``: handlers running at once for this subscription; 1 keeps per-publisher
    order, more lets slow handlers overlap (order is then not promised). It also bounds what a
    broker prefetches. ``max_attempts``: deliveries of one durable message before it is
    dead-lettered. A failed durable message is retried after ``backoff_initial`` seconds,
    doubling up to ``backoff_max``; or, with ``backoff_steps`` (a list of seconds, such as
    ``(0.1, 1, 5)``), after the n-th step for the n-th failure, the last one repeated.
    """

    max_in_flight: int = 1
    max_attempts: int = 5
    backoff_initial: float = 0.05
    backoff_max: float = 5.0
    backoff_steps: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ConfigError(f"max_in_flight must be at least 1, got {self.max_in_flight}")
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.backoff_initial < 0 or self.backoff_max < self.backoff_initial:
            raise ConfigError("backoff must satisfy 0 <= backoff_initial <= backoff_max")
        if self.backoff_steps is not None:
            object.__setattr__(self, "backoff_steps", backoff_steps(self.backoff_steps))

    def backoff(self, attempt: int) -> float:
        """Delay before redelivering after failed delivery number ``attempt`` (1-based)."""
        steps = self.backoff_steps
        if steps is not None:
            return steps[min(attempt, len(steps)) - 1]
        return float(min(self.backoff_max, self.backoff_initial * (2 ** (attempt - 1))))


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a broker honours; the conformance suite tests each claim, and that a missing one
    is a clear :class:`~eventkit.errors.UnsupportedFeature` rather than a silent difference."""

    queue_groups: bool = True
    durable: bool = True
    ordered: bool = True
    """Messages from one publisher to one subscriber (``max_in_flight=1``) arrive in order."""
    max_payload: int | None = None
    """Largest body in bytes, where the broker has a limit; bigger ones raise PayloadTooLarge."""
    no_responders: bool = False
    """A message with an ``eventkit-reply-to`` header that reaches no subscriber makes the
    broker deliver an empty message with ``eventkit-no-responders: 1`` to that reply topic
    (see :func:`no_responders_reply`). RPC uses it to fail over at once
    instead of waiting for a timeout; without it, callers rely on timeouts and the registry."""
    structured_events: bool = False
    """Events go in CloudEvents structured mode unless the publisher says otherwise: the
    broker's binding carries the JSON event format as the whole body (NATS). Either mode is
    read on every broker."""
    delay: bool = False
    """``publish_later`` is honoured (the broker is a :class:`DelayedPublisher`): a delayed
    message reaches the subscriptions matching when it falls due, never earlier."""
    delay_kept: bool = False
    """Delayed messages wait on the broker's server, so they outlive the publishing process
    (and a server restart, as its storage does); False: they wait in the publisher's process
    and are lost when it exits."""


@runtime_checkable
class Subscription(Protocol):
    """A live subscription; ``stop()`` ends it."""

    topic: str
    queue: str | None
    durable: str | None

    async def stop(self) -> None:
        """Stop receiving, drain, then return.

        No new messages reach the subscription; those it already received are handled and
        in-flight handlers finish (a drain, bounded by the broker's drain timeout, after which
        handlers are cancelled). No delivery happens after ``stop()`` returns. Idempotent.
        On a queue group or durable subscription, messages not yet taken stay with the broker
        for the other (or the next) subscribers of the group or durable name.
        """
        ...


@runtime_checkable
class Broker(Protocol):
    """A message broker, chosen by URL scheme (see :func:`eventkit.brokers.from_url`)."""

    url: str
    capabilities: Capabilities

    async def connect(self) -> None:
        """Open the connection. Raises :class:`ConnectionLost` when the broker is unreachable."""
        ...

    async def close(self) -> None:
        """Stop every subscription (draining in-flight handlers), then disconnect.

        Idempotent, and never hangs: a drain is bounded by the broker's drain timeout.
        """
        ...

    async def publish(self, message: Message) -> None:
        """Send ``message`` to ``message.topic`` (a concrete topic, no wildcards).

        Returns once the broker has accepted it (for brokers with confirms, once confirmed).
        Messages from one publisher reach a subscriber in publish order where
        ``capabilities.ordered``. Raises :class:`PayloadTooLarge`, :class:`PublishError`,
        :class:`BrokerClosed` or :class:`ConnectionLost`.
        """
        ...

    async def subscribe(
        self,
        topic: str,
        handler: MessageHandler,
        *,
        queue: str | None = None,
        durable: str | None = None,
        policy: DeliveryPolicy | None = None,
    ) -> Subscription:
        """Deliver messages matching ``topic`` (``*`` one token, ``>`` the rest) to ``handler``.

        Without ``queue`` or ``durable`` every subscriber gets every message (fan-out).
        ``queue``: competing consumers; each message goes to one member of the group, and each
        group on a topic gets every message. ``durable``: at-least-once; the broker keeps the
        message until a handler of that durable name returns, redelivers on failure with the
        policy's backoff, and after ``policy.max_attempts`` moves it to
        ``eventkit.deadletter.{durable}`` with the reason in headers. Subscribers sharing a
        durable name share the work. Messages published while no subscriber of a durable name
        runs (after its first subscribe) are delivered when one starts.
        Raises :class:`InvalidTopic` and :class:`UnsupportedFeature`.
        """
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


# -- optional: a broker's own service discovery ----------------------------------------------


@dataclass(frozen=True, slots=True)
class EndpointDescription:
    """One endpoint of a service as a broker's native discovery lists it: a request to
    ``subject`` (plain JSON, with the broker's reply topic) reaches it; its members share
    the work as queue group ``queue_group``."""

    name: str
    subject: str
    queue_group: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServiceDescription:
    """A running service, in plain values, for a broker that lists services natively.

    ``stats()`` returns per-endpoint counters (``name``, ``num_requests``, ``num_errors``,
    ``last_error``, ``processing_time``, ``average_processing_time``; times in ns).
    ``kind``: who runs it: ``"eventkit"``, or for a service eventkit did not start that a
    :class:`ServiceFinder` found, what the broker calls it (``"nats-micro"``).
    """

    name: str
    node_id: str
    version: str
    description: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    endpoints: Sequence[EndpointDescription] = ()
    stats: Callable[[], list[dict[str, Any]]] = list
    kind: str = "eventkit"


@runtime_checkable
class ServiceAdvertiser(Protocol):
    """A broker with a service discovery of its own (NATS's ``$SRV`` service API).

    A service on such a broker is also listed there, so the broker's own tools see it next to
    native services. eventkit's gossiped registry stays the source of truth for callers.
    """

    async def advertise(self, service: ServiceDescription) -> Subscription:
        """Answer the broker's discovery requests for ``service`` until the returned
        subscription is stopped."""
        ...


@runtime_checkable
class KeyValueHolder(Protocol):
    """A broker whose server holds key-value buckets itself (NATS: JetStream KV), which the
    store (:mod:`eventkit.store`) then uses before asking for a store URL."""

    async def key_value(self, bucket: str, *, history: int = 1, replicas: int | None = None) -> Any:
        """The driver's handle on ``bucket`` (nats-py's ``KeyValue``), made if missing with the
        broker's durability settings (``replicas``: None takes the broker's own)."""
        ...


@runtime_checkable
class ServiceFinder(Protocol):
    """A broker whose own service discovery also finds services eventkit did not start
    (NATS micro services, in any language, answering ``$SRV.INFO``).

    The registry asks it when it queries, and lists what it finds next to eventkit's own
    services; callers reach their endpoints by a request to each endpoint's subject, and
    read a failure from the reply's REPLY_STATUS and REPLY_ERROR headers.
    """

    async def find_services(
        self, name: str | None = None, *, wait: float = 0.5
    ) -> list[ServiceDescription]:
        """The services (named ``name``, or all) that answer within ``wait`` seconds; sooner
        when nothing listens, or when ``name`` is given and the answers have stopped coming.
        eventkit's own services answer too, and come back with ``kind="eventkit"``."""
        ...


class BaseBroker:
    """The lifecycle every adapter shares, and the checks every broker makes the same way.

    An adapter implements :meth:`_open` (connect to its server) and :meth:`_shutdown` (after
    its subscriptions stopped), optionally :meth:`_closing` (before they stop), and
    ``publish`` / ``subscribe``, which call :meth:`check_publish` / :meth:`check_subscribe`
    first and :meth:`_track` each subscription they make. This class owns the rest:
    ``connect()`` is idempotent and refuses a closed broker; ``close()`` is idempotent, stops
    every subscription (each drains within ``drain_timeout``), then shuts down, shielded from
    cancellation so a close never leaves half a broker; ``async with`` does both.
    """

    url: str
    capabilities: Capabilities = Capabilities()
    drain_timeout: float = 10.0
    _state: str = "new"  # new -> connected -> closing -> closed (or new -> closed)
    _subscriptions: list[Any]

    def __init__(self) -> None:
        self._state = "new"
        self._subscriptions = []

    def __repr__(self) -> str:
        url = getattr(self, "url", None)
        where = f" {redact(url)!r}" if isinstance(url, str) else ""
        return f"<{type(self).__name__}{where} {self._state}>"

    @property
    def connected(self) -> bool:
        return self._state == "connected"

    @property
    def link_up(self) -> bool:
        """Connected, and the link to the server up as far as the adapter knows (an adapter
        that reconnects says False meanwhile): what readiness probes and the connection
        gauge report."""
        return self._state == "connected"

    @property
    def closed(self) -> bool:
        """``close()`` has begun (or finished): nothing new may start."""
        return self._state in ("closing", "closed")

    async def connect(self) -> None:
        """Open the connection (once); raises :class:`BrokerClosed` after ``close()``."""
        if self._state == "connected":
            return
        if self._state != "new":
            raise BrokerClosed(f"this {type(self).__name__} was closed; make a new one")
        await self._open()
        self._state = "connected"

    async def close(self) -> None:
        """Stop every subscription (draining), then disconnect. Idempotent; never hangs."""
        if self._state in ("closing", "closed"):
            return
        was_connected = self._state == "connected"
        self._state = "closing"
        try:
            if was_connected:
                with anyio.CancelScope(shield=True):
                    await self._closing()
                    await stop_all(list(self._subscriptions))
                    await self._shutdown()
        finally:
            self._state = "closed"

    async def _open(self) -> None:
        raise NotImplementedError

    async def _closing(self) -> None:
        """Called once by ``close()`` before the subscriptions stop (to say goodbye)."""

    async def _shutdown(self) -> None:
        """Called once by ``close()`` after every subscription stopped."""

    def check_open(self, what: str) -> None:
        """Raise :class:`BrokerClosed` unless connected (``what``: the operation refused)."""
        if self._state != "connected":
            raise BrokerClosed(f"{what} on a broker that is not connected: call connect() first")

    def _track(self, subscription: Any) -> None:
        """Remember a live subscription, so that ``close()`` stops it."""
        self._subscriptions.append(subscription)

    def _untrack(self, subscription: Any) -> None:
        """Forget a subscription that stopped (idempotent)."""
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    def check_subscribe(self, topic: str, queue: str | None, durable: str | None) -> None:
        validate_pattern(topic)
        if queue is not None:
            validate_name("queue group", queue)
            if not self.capabilities.queue_groups:
                raise UnsupportedFeature(f"{type(self).__name__} has no queue groups (queue=)")
        if durable is not None:
            validate_name("durable", durable)
            if not self.capabilities.durable:
                raise UnsupportedFeature(
                    f"{type(self).__name__} cannot keep messages (durable=): use a broker with "
                    "durable subscriptions, such as nats:// (JetStream) or amqp://"
                )
            if queue is not None and queue != durable:
                raise ConfigError(
                    f"durable={durable!r} already makes a group of competing consumers; "
                    f"drop queue={queue!r} or give it the same name"
                )

    def check_publish(self, message: Message) -> None:
        validate_topic(message.topic)
        limit = self.capabilities.max_payload
        if limit is not None and len(message.body) > limit:
            raise PayloadTooLarge(
                f"message body of {len(message.body)} bytes on {message.topic!r} exceeds this "
                f"broker's limit of {limit} bytes; nothing was sent"
            )

    def check_delay(self, message: Message, delay: float) -> float:
        """``delay`` checked (seconds >= 0); refuses a delayed publish the broker cannot
        honour: none at all, or a request (its caller waits for the reply now)."""
        if not self.capabilities.delay:
            raise UnsupportedFeature(f"{type(self).__name__} cannot hold a message (delay=)")
        if REPLY_TO in message.headers:
            raise UnsupportedFeature(
                f"a request to {message.topic!r} cannot be delayed: its caller waits for the "
                "reply now; publish an event instead"
            )
        self.check_publish(message)
        return delay_seconds(delay)

    if TYPE_CHECKING:  # every adapter defines it (the Broker protocol)

        async def publish(self, message: Message) -> None: ...

    async def publish_later(self, message: Message, delay: float) -> None:
        """Have ``message`` reach subscribers no earlier than ``delay`` seconds from now (see
        :class:`DelayedPublisher`): checked here, held by the adapter's ``_hold``; no delay
        is a plain publish."""
        self.check_open("publish")
        if delay := self.check_delay(message, delay):
            await self._hold(message, delay)
        else:
            await self.publish(message)

    async def _hold(self, message: Message, delay: float) -> None:
        """Keep ``message`` for ``delay`` (> 0) seconds, then route it: an adapter whose
        ``capabilities.delay`` is true overrides this (``check_delay`` refuses the others)."""
        raise UnsupportedFeature(f"{type(self).__name__} cannot hold a message (delay=)")

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
