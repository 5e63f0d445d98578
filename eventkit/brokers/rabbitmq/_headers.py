"""The AMQP side of an eventkit message: header binding, routing keys and queue names.

Pure functions, no I/O, so each is unit-tested without a server.

Headers follow the CloudEvents RabbitMQ protocol binding (binary content mode): attributes
travel as ``ce-*`` message headers and ``datacontenttype`` as the AMQP ``content_type``
property, so a consumer using the cloudevents SDK's ``bindings.rabbitmq`` reads what eventkit
publishes and the other way round. eventkit keeps ``content-type`` as a header on
:class:`~eventkit.wire.Message`; it is moved to and from the property here. The AMQP 1.0
binding's ``cloudEvents_`` and ``cloudEvents:`` prefixes are accepted on input. The headers
RabbitMQ adds (``x-death``, ``x-first-death-*``, ...) and this adapter's own
(``x-eventkit-*``) never reach a handler; every other header passes through. A message
RabbitMQ dead-lettered itself gains eventkit's dead-letter headers instead
(:func:`broker_dead_letter`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...wire import DEAD_LETTER_REASON, DEAD_LETTER_TOPIC, Headers

__all__ = [
    "ATTEMPT_HEADER",
    "DELIVERY_COUNT_HEADER",
    "INTERNAL_PREFIXES",
    "TOPIC_HEADER",
    "binding_key",
    "broker_dead_letter",
    "from_amqp",
    "queue_name_part",
    "to_amqp",
]

ATTEMPT_HEADER = "x-eventkit-attempt"
"""The delivery number a retried message carries (classic queues do not count deliveries)."""

TOPIC_HEADER = "x-eventkit-topic"
"""The original topic of a retried message, whose routing key becomes its queue's name."""

DELIVERY_COUNT_HEADER = "x-delivery-count"
"""A quorum queue's count of a message's earlier deliveries that were never settled."""

INTERNAL_PREFIXES = (
    "x-eventkit-",
    "x-death",
    "x-first-death-",
    "x-last-death-",
    "x-delivery-count",
)
"""Header names set by RabbitMQ or by this adapter, never shown to handlers."""

_CONTENT_TYPE = "content-type"
_INPUT_PREFIXES = ("cloudevents_", "cloudevents:")


def to_amqp(headers: Headers) -> tuple[dict[str, Any], str | None]:
    """eventkit headers -> (AMQP headers table, ``content_type`` property)."""
    content_type = headers.get(_CONTENT_TYPE)
    if content_type is None:
        return dict(headers), None
    table: dict[str, Any] = {k: v for k, v in headers.items() if k != _CONTENT_TYPE}
    return table, content_type


def from_amqp(table: Mapping[str, Any] | None, content_type: str | None) -> Headers:
    """AMQP headers table and ``content_type`` property -> eventkit headers (lower-case keys)."""
    headers: Headers = {}
    if table:
        for key, value in table.items():
            name = key.lower()
            if name.startswith(INTERNAL_PREFIXES):
                continue
            if name.startswith(_INPUT_PREFIXES):
                name = "ce-" + name[len("cloudevents_") :]
            headers[name] = _text(value)
    if content_type is not None:
        headers[_CONTENT_TYPE] = content_type
    return headers


def _text(value: Any) -> str:
    """A header value as eventkit's string; AMQP tables may hold bytes, numbers, timestamps."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def binding_key(pattern: str) -> str:
    """An eventkit topic pattern -> the AMQP topic-exchange binding key.

    ``*`` is the same on both sides. eventkit's ``>`` matches one or more tokens while AMQP's
    ``#`` matches zero or more, so ``a.>`` binds as ``a.*.#``: one token, then any number.
    """
    if not pattern.endswith(">"):
        return pattern
    return pattern[:-1] + "*.#"


_NAME_SAFE = str.maketrans({"*": "+", ">": "#", "$": "/"})


def queue_name_part(text: str) -> str:
    """A topic pattern or name as part of a queue name.

    AMQP clients refuse ``*``, ``>`` and ``$`` in queue names; they become ``+``, ``#`` and
    ``/``, which never occur in eventkit tokens, so two different patterns never share a name.
    """
    return text.translate(_NAME_SAFE)


_RETRY_QUEUE = re.compile(r"\.retry\.[0-9]+$")


def broker_dead_letter(table: Mapping[str, Any], headers: Headers) -> Headers:
    """The dead-letter headers for a message RabbitMQ dead-lettered by itself.

    eventkit's own dead letters carry the reason and topic; one that RabbitMQ dead-lettered
    (a quorum queue's delivery limit, an operator policy's length limit or TTL) carries only
    ``x-death``, whose latest entry gives both. Empty for eventkit's dead letters and for a
    retry back from its retry queue (an expiry there is the backoff, not a death).
    """
    deaths = table.get("x-death")
    if DEAD_LETTER_REASON in headers or not isinstance(deaths, list) or not deaths:
        return {}
    last = deaths[0]
    if not isinstance(last, Mapping):
        return {}
    reason = _text(last.get("reason", "unknown"))
    queue = _text(last.get("queue", ""))
    if reason == "expired" and _RETRY_QUEUE.search(queue):
        return {}
    found: Headers = {DEAD_LETTER_REASON: f"RabbitMQ dead-lettered it from {queue}: {reason}"}
    keys = last.get("routing-keys")
    topic = table.get(TOPIC_HEADER) or (keys[0] if isinstance(keys, list) and keys else None)
    if topic is not None:
        found[DEAD_LETTER_TOPIC] = _text(topic)
    return found
