"""Subscribers that take messages that are not CloudEvents (``accept="any"``): the parts the
service decides, the source of their synthesised events and the hint a strict one gives.

The decoding itself is the wire's (:class:`~eventkit.wire.PlainDecoder`); the service
chooses it per subscription, so the default path (CloudEvents only) is unchanged.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ..brokers import Broker
from ..wire import Message, is_cloudevent

__all__ = ["not_a_cloudevent_hint", "source_of"]


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
