"""The HTTP broker's wire format: Message <-> HTTP request, as pure functions.

A message travels in CloudEvents HTTP *binary* content mode: ``ce-*`` headers, ``content-type``
and the body as is. Header values are percent-encoded as the CloudEvents HTTP binding asks
(everything outside printable ASCII, plus space, ``"`` and ``%``), so any value, including
leading spaces and non-ASCII text, survives HTTP; ``content-type`` is sent as is.

Headers that are neither ``ce-*``, ``content-type`` nor ``eventkit-*`` (a user's ``x-id``, a
``traceparent``) travel as themselves and are listed in ``eventkit-http-headers``, so the
receiver keeps exactly those and drops what HTTP stacks add (``user-agent``, ``host``...).
Names HTTP reserves or cannot carry go as ``eventkit-http-h-<percent-encoded name>``.
Transport details (target subscriptions, attempt, sender) use ``eventkit-http-*`` names and
never reach a handler.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote

import pydantic_core

from ...wire import Headers, InvalidEvent, Message

__all__ = [
    "ATTEMPT",
    "DURABLE",
    "FROM",
    "REASON",
    "REJECTED",
    "TO",
    "TOPIC",
    "decode_headers",
    "encode_headers",
    "foreign_messages",
]

CONTENT_TYPE = "content-type"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"

TOPIC = "eventkit-topic"  # on requests to sinks: the topic the event was published on
_TRANSPORT = "eventkit-http-"
FROM = "eventkit-http-from"  # sender node id: marks a request from an eventkit peer
TO = "eventkit-http-to"  # comma-separated subscription entry ids on the receiving node
DURABLE = "eventkit-http-durable"  # a durable delivery: the durable name
ATTEMPT = "eventkit-http-attempt"  # delivery number of a durable message, 1-based
REJECTED = "eventkit-http-rejected"  # response: entry ids that no longer exist
REASON = "eventkit-http-reason"  # response: why a durable delivery failed
REPLIES = "eventkit-http-replies"  # request: seconds the sender reads a reply in the response
ANSWER = "eventkit-http-answer"  # response: its body is the reply to the request, if one came
_LISTED = "eventkit-http-headers"
_ESCAPED = "eventkit-http-h-"

# CloudEvents HTTP binding 3.1.3.2: printable ASCII except space, '"' and '%' stay as they are.
_SAFE = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ' "%')
_TOKEN = re.compile(r"^[!#$&'*+\-.^_`|~0-9a-z]+$")  # an HTTP header name, lower-case
_NAME_SAFE = "!#$&'*+-.^_`|~"
_RESERVED = frozenset(
    (
        "host",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "expect",
        "authorization",
        "proxy-authorization",
        "proxy-connection",
        "cookie",
        "date",
        "server",
        "user-agent",
        "accept",
        "accept-encoding",
    )
)
_KEEP_FROM_FOREIGN = ("traceparent", "tracestate")


def _value(value: str) -> str:
    return quote(value, safe=_SAFE)


def encode_headers(message: Message) -> dict[str, str]:
    """HTTP headers for ``message`` in binary content mode (without transport headers)."""
    out: dict[str, str] = {}
    listed: list[str] = []
    for key, value in message.headers.items():
        if key.startswith("ce-") or key.startswith("eventkit-"):
            if key.startswith(_TRANSPORT) or not _TOKEN.match(key):
                out[_ESCAPED + quote(key, safe=_NAME_SAFE)] = _value(value)
            else:
                out[key] = _value(value)
        elif key == CONTENT_TYPE and value.isascii() and value.isprintable():
            out[key] = value
        elif key in _RESERVED or key == CONTENT_TYPE or not _TOKEN.match(key):
            out[_ESCAPED + quote(key, safe=_NAME_SAFE)] = _value(value)
        else:
            out[key] = _value(value)
            listed.append(key)
    if listed:
        out[_LISTED] = ",".join(listed)
    return out


def decode_headers(headers: Mapping[str, str]) -> tuple[Headers, dict[str, str]]:
    """Message headers and transport headers from a request's headers.

    Keeps ``ce-*`` and ``eventkit-*`` (values percent-decoded), ``content-type``, the names
    a peer listed, and ``traceparent``/``tracestate`` from any producer.
    """
    message: Headers = {}
    transport: dict[str, str] = {}
    listed: Iterable[str] = _KEEP_FROM_FOREIGN
    for raw_key, value in headers.items():
        key = raw_key.lower()
        if key.startswith(_TRANSPORT):
            if key.startswith(_ESCAPED):
                message[unquote(key[len(_ESCAPED) :])] = unquote(value)
            elif key == _LISTED:
                listed = (*_KEEP_FROM_FOREIGN, *value.split(","))
            else:
                transport[key] = value
        elif key.startswith("ce-") or (key.startswith("eventkit-") and key != TOPIC):
            message[key] = unquote(value)
        elif key == CONTENT_TYPE:
            message[key] = value
    for key in listed:
        found = headers.get(key)
        if found is not None:
            message[key] = unquote(found)
    return message, transport


_REQUIRED = ("id", "source", "type", "specversion")


def foreign_messages(topic: str, body: bytes, headers: Headers) -> list[Message]:
    """Check a request from a CloudEvents producer that is not an eventkit peer.

    Binary mode needs the four required ``ce-*`` headers; structured mode a JSON object with
    the required attributes (kept as is: eventkit's event layer parses structured mode); a
    batch (``application/cloudevents-batch+json``) becomes one structured message per event.
    Raises :class:`InvalidEvent` saying what is missing.
    """
    content_type = headers.get(CONTENT_TYPE, "").split(";", 1)[0].strip().lower()
    if content_type == BATCH:
        events = _json(body)
        if not isinstance(events, list):
            raise InvalidEvent("a CloudEvents batch must be a JSON array of events")
        out = []
        for event in events:
            _check_structured(event)
            one = dict(headers)
            one[CONTENT_TYPE] = STRUCTURED
            out.append(Message(topic, pydantic_core.to_json(event), one))
        return out
    if content_type == STRUCTURED:
        _check_structured(_json(body))
        return [Message(topic, body, headers)]
    missing = [name for name in _REQUIRED if not headers.get("ce-" + name)]
    if missing:
        raise InvalidEvent(
            "not a CloudEvent: binary mode needs the headers "
            + ", ".join("ce-" + name for name in missing)
            + f", or send content-type {STRUCTURED} with the event as JSON"
        )
    if headers["ce-specversion"] != "1.0":
        raise InvalidEvent(f"CloudEvents specversion {headers['ce-specversion']!r} is not 1.0")
    if headers.get(CONTENT_TYPE) == _OCTETS and _is_json(body):
        del headers[CONTENT_TYPE]  # the client's default for an untyped body: see _is_json
    return [Message(topic, body, headers)]


_OCTETS = "application/octet-stream"


def _is_json(body: bytes) -> bool:
    """An event sent without a datacontenttype reaches us as ``application/octet-stream``:
    HTTP clients (aiohttp, the cloudevents SDK over it) label an untyped body so. The JSON
    event format reads an absent datacontenttype as JSON, so a JSON body so labelled is taken
    as one without a type (a JSON subscriber reads it; ``bytes`` handlers get it as it came).
    """
    if not body:
        return False
    try:
        pydantic_core.from_json(body)
    except ValueError:
        return False
    return True


def _json(body: bytes) -> Any:
    try:
        return pydantic_core.from_json(body)
    except ValueError as exc:
        raise InvalidEvent(f"the body is not JSON: {exc}") from exc


def _check_structured(event: Any) -> None:
    if not isinstance(event, dict):
        raise InvalidEvent("a structured CloudEvent must be a JSON object")
    missing = [name for name in _REQUIRED if not event.get(name)]
    if missing:
        raise InvalidEvent(f"structured CloudEvent lacks {', '.join(missing)}")
    if event["specversion"] != "1.0":
        raise InvalidEvent(f"CloudEvents specversion {event['specversion']!r} is not 1.0")
