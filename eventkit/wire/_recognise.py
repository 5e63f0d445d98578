"""Telling a CloudEvent from other messages, whatever the content type says.

The bindings mark structured mode with an ``application/cloudevents`` content type (the NATS
binding: "matched case-insensitively") and binary mode with ``ce-*`` headers. Producers that
are not CloudEvents-aware get it wrong in a known way: a whole event sent as the body with
``content-type: application/json`` (or none). Such a body is recognised by its attributes: a
JSON object with ``specversion``, ``id``, ``source`` and ``type`` strings is an event in the
JSON format. These checks run only off the hot path (after the fast binary and structured
reads declined a message), so they may parse the body.
"""

from __future__ import annotations

import pydantic_core

from ._event import CONTENT_TYPE, REQUIRED, STRUCTURED
from ._message import UNREADABLE, Message

__all__ = ["as_structured", "envelope_in_body", "is_cloudevent", "is_structured_type"]

_CE_TYPE = "application/cloudevents"
_BATCH = "application/cloudevents-batch"


def is_structured_type(content_type: str) -> bool:
    """Whether a content type marks a structured event (``application/cloudevents+json``,
    any case, with or without parameters; a batch is not one event)."""
    if content_type.startswith(STRUCTURED):
        return True
    lowered = content_type.lstrip().lower()
    return lowered.startswith(_CE_TYPE) and not lowered.startswith(_BATCH)


def envelope_in_body(message: Message) -> bool:
    """A JSON object body carrying the required attributes, without ``ce-*`` headers: a
    structured event sent under another content type (or none)."""
    body = message.body
    if "ce-specversion" in message.headers or body.lstrip()[:1] != b"{":
        return False
    try:
        obj = pydantic_core.from_json(body)
    except ValueError:
        return False
    return isinstance(obj, dict) and all(isinstance(obj.get(name), str) for name in REQUIRED)


def as_structured(message: Message) -> Message:
    """The same message marked as a structured event (its headers copied, not changed)."""
    headers = dict(message.headers)
    headers[CONTENT_TYPE] = STRUCTURED
    return Message(message.topic, message.body, headers, message.attempt)


def is_cloudevent(message: Message) -> bool:
    """Whether ``message`` claims to be a CloudEvent in either mode (it may still be an invalid
    one): ``ce-specversion``, a CloudEvents content type, an event's attributes in a JSON
    body, or attributes the transport could not read. A plain JSON object is not one."""
    headers = message.headers
    if "ce-specversion" in headers or UNREADABLE in headers:
        return True
    content_type = headers.get(CONTENT_TYPE)
    if content_type is not None and is_structured_type(content_type):
        return True
    return envelope_in_body(message)
