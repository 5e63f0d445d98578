"""Context: what a handler knows about the message it is handling, and what propagates.

Metadata and the deadline travel in ``eventkit-*`` headers. While a handler runs, its incoming
message is the *current* one (a context variable), so publishes and calls made from inside the
handler carry the same metadata onward and inherit the deadline, without passing ``ctx``
around by hand.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Protocol

from ..auth import Identity
from ..wire import Headers, Message
from ._protocol import ADDRESS, CALLER, CALLER_ADDRESS, DEADLINE, METADATA_PREFIX, TOKEN

__all__ = [
    "Context",
    "Publisher",
    "current_message",
    "inherited_deadline",
    "metadata_of",
    "propagated_headers",
    "with_token",
]


class Publisher(Protocol):
    """What a handler publishes and calls through: the node's client
    (:class:`eventkit.Client`)."""

    @property
    def publish(self) -> Callable[..., Awaitable[str]]: ...

    @property
    def call(self) -> Callable[..., Awaitable[Any]]: ...


current_message: ContextVar[Message | None] = ContextVar("eventkit_current_message", default=None)


def metadata_of(headers: Headers) -> dict[str, str]:
    n = len(METADATA_PREFIX)
    return {k[n:]: v for k, v in headers.items() if k.startswith(METADATA_PREFIX)}


def propagated_headers(metadata: dict[str, str] | None = None) -> Headers:
    """Headers to put on an outgoing message: the current message's metadata, overlaid with
    ``metadata`` given for this message. (Not the deadline: a call sets its own, from
    :func:`inherited_deadline`, and an event outlives the request that caused it.)"""
    out: Headers = {}
    incoming = current_message.get()
    if incoming is not None and incoming.headers:
        for key, value in incoming.headers.items():
            if key.startswith(METADATA_PREFIX):
                out[key] = value
    if metadata:
        for key, value in metadata.items():
            out[METADATA_PREFIX + key.lower()] = str(value)
    return out


def with_token(
    headers: Callable[[dict[str, str] | None], Headers], token: str
) -> Callable[[dict[str, str] | None], Headers]:
    """``headers`` plus a client's own token: a token is never propagated from the message
    being handled, so a service calls with its own identity."""

    def tokened(metadata: dict[str, str] | None) -> Headers:
        out = headers(metadata)
        out[TOKEN] = token
        return out

    return tokened


def inherited_deadline() -> float | None:
    """The absolute deadline of the message being handled, if it has one."""
    incoming = current_message.get()
    if incoming is None:
        return None
    return _seconds(incoming.headers.get(DEADLINE))


def _seconds(value: str | None) -> float | None:
    """A deadline header as a number; a malformed one counts as none."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class Context:
    """Per-delivery context, given to handlers that ask for it (a ``ctx: Context`` parameter).

    ``node_id`` and ``service`` name this node; ``message`` is the raw message; ``metadata``
    the propagated key/values; ``identity`` the caller's verified token (None when the
    service checks none, or an open handler was called without one); ``caller`` the
    verified subject when there is an identity, else the node id the sender wrote (as
    before auth: a name any sender can write, not a proof); ``caller_node`` and
    ``caller_address`` the sender's node and process, as it says; ``deadline`` the absolute
    time (``time.time()`` scale) a caller stops waiting, if any.
    """

    __slots__ = ("_metadata", "client", "endpoint", "identity", "message", "node_id", "service")

    def __init__(
        self,
        message: Message,
        *,
        node_id: str,
        service: str,
        client: Publisher | None = None,
        endpoint: str | None = None,
        identity: Identity | None = None,
    ) -> None:
        self.message = message
        self.identity = identity
        self.node_id = node_id
        self.service = service
        self.client = client
        self.endpoint = endpoint
        self._metadata: dict[str, str] | None = None

    @property
    def topic(self) -> str:
        return self.message.topic

    @property
    def attempt(self) -> int:
        """Delivery attempt: 1 the first time, more on a durable redelivery."""
        return self.message.attempt

    @property
    def metadata(self) -> dict[str, str]:
        if self._metadata is None:
            self._metadata = metadata_of(self.message.headers)
        return self._metadata

    @property
    def caller(self) -> str | None:
        """The verified subject of the caller's token; without one, the node id it wrote."""
        identity = self.identity
        return identity.subject if identity is not None else self.message.headers.get(CALLER)

    @property
    def caller_node(self) -> str | None:
        """The node id the sender wrote (unverified)."""
        return self.message.headers.get(CALLER)

    @property
    def caller_address(self) -> str | None:
        return self.message.headers.get(CALLER_ADDRESS)

    @property
    def address(self) -> str:
        return ADDRESS

    @property
    def deadline(self) -> float | None:
        return _seconds(self.message.headers.get(DEADLINE))

    def time_left(self) -> float | None:
        """Seconds until the caller's deadline (never negative), or None without one."""
        deadline = self.deadline
        return None if deadline is None else max(0.0, deadline - time.time())

    async def publish(self, topic: str, data: Any, **kwargs: Any) -> str:
        """Publish from this handler's node (metadata propagates)."""
        if self.client is None:
            raise RuntimeError("this context has no client to publish with")
        return await self.client.publish(topic, data, **kwargs)

    def __repr__(self) -> str:
        return f"Context(topic={self.topic!r}, node_id={self.node_id!r}, caller={self.caller!r})"
