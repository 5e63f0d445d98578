"""Subscribers that take messages that are not CloudEvents (``accept="any"``): the parts the
service decides, the source of their synthesised events and the hint a strict one gives.

The decoding itself is the wire's (:class:`~eventkit.wire.PlainDecoder`); the service
chooses it per subscription, so the default path (CloudEvents only) is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..brokers import Broker
from ..wire import InvalidEvent, Message, PlainDecoder, is_cloudevent
from ._router import Subscriber

__all__ = ["decoder_of", "explain_invalid", "not_a_cloudevent_hint", "source_of"]


def decoder_of(sub: Subscriber, broker: Broker) -> Callable[[Message], Any] | None:
    """How ``sub`` reads a message into its handler's data (None: the handler takes none):
    the handler's :class:`~eventkit.wire.Decoder`, wrapped for ``accept="any"``."""
    signature = sub.signature
    if signature.data_param is None:
        return None
    if sub.accept == "any":
        return PlainDecoder(signature.decode, source=source_of(broker))
    return signature.decode


def explain_invalid(error: InvalidEvent, message: Message, accept: str) -> str:
    """The reason a subscriber logs for an invalid message, with how to opt in when a strict
    one got something that is no CloudEvent at all."""
    return f"{error}{not_a_cloudevent_hint(message)}" if accept == "cloudevents" else str(error)


def source_of(broker: Broker) -> str:
    """The CloudEvents source of events made from plain messages: the broker's URL without
    credentials, query or path (``nats://10.0.0.5:4222``)."""
    parts = urlsplit(broker.url.split(",", 1)[0])
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, "", "", "")) or "eventkit"


def not_a_cloudevent_hint(message: Message) -> str:
    """What to add to the error of a strict subscriber that got a message that does not even
    claim to be a CloudEvent: how to take such messages."""
    if is_cloudevent(message):
        return ""
    return (
        "; it carries no CloudEvents attributes (no ce-* headers, no CloudEvents content type,"
        " no event in its JSON body): to take plain messages on this subscription, subscribe"
        ' with accept="any"'
    )
