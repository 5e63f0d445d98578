"""Publishing a CloudEvent: the event's attributes and data encoded as one Message.

Binary content mode: attributes in ``ce-*`` headers, ``content-type`` for
``datacontenttype``, the data alone as the body. Structured mode
(``application/cloudevents+json``): the whole event as one JSON object in the body. A
publisher sends many events that differ only in id, time and data, so what repeats is
encoded once and kept: one JSON encode of the data per event.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pydantic_core

from ._errors import InvalidEvent
from ._event import (
    BINARY_TYPES,
    CONTENT_TYPE,
    CORE,
    EXTENSION_NAME,
    JSON,
    OCTETS,
    SPECVERSION,
    STRUCTURED,
    dataschema_of,
    iso,
)
from ._message import Headers, Message

__all__ = ["check_extensions", "encode_data", "to_message"]


def encode_data(data: Any) -> tuple[bytes, str | None]:
    """The body bytes and datacontenttype for ``data`` in binary mode."""
    if data is None:
        return b"", None
    if isinstance(data, BINARY_TYPES):
        return bytes(data), OCTETS
    try:
        return pydantic_core.to_json(data), JSON
    except pydantic_core.PydanticSerializationError as exc:
        raise InvalidEvent(
            f"event data of type {type(data).__name__} is not JSON-serializable: {exc}; "
            "publish a pydantic model, a JSON value or bytes"
        ) from exc


def check_extensions(extensions: Mapping[str, Any]) -> None:
    for name in extensions:
        if not EXTENSION_NAME.match(name) or name in CORE or name == "datacontenttype":
            raise InvalidEvent(
                f"CloudEvents extension name {name!r} must be 1-20 lower-case letters or digits "
                "and not a core attribute"
            )


def to_message(
    topic: str,
    data: Any,
    *,
    id: str,
    source: str,
    type: str,
    time: str | None = None,
    subject: str | None = None,
    dataschema: str | None = None,
    extensions: Mapping[str, Any] | None = None,
    headers: Headers | None = None,
    structured: bool = False,
) -> Message:
    """Encode one CloudEvent as a Message, in binary mode unless ``structured``.

    ``headers`` (extra, non-CloudEvents headers) is taken over, not copied.
    """
    if structured:
        out = headers if headers is not None else {}
        out[CONTENT_TYPE] = STRUCTURED
        if extensions or data is None or isinstance(data, BINARY_TYPES):
            if dataschema is None:
                dataschema = dataschema_of(data)
            body = _structured_body(id, source, type, time, subject, dataschema, extensions, data)
        else:
            body = _structured_json(id, source, type, time, subject, dataschema, data)
        return Message(topic, body, out)

    key = (source, type, subject, dataschema, time is None, data.__class__)
    template = _templates.get(key) or _binary_template(key, data)
    body = encode_data(data)[0]
    if headers:
        h = headers
        h.update(template)
    else:
        h = template.copy()
    h["ce-id"] = id
    if time is not None:
        h["ce-time"] = time
    if extensions:
        for name, value in extensions.items():
            h["ce-" + name] = value if isinstance(value, str) else _attr_str(value)
    return Message(topic, body, h)


_templates: dict[tuple[str, str, str | None, str | None, bool, type], Headers] = {}
_OPTIONAL = (CONTENT_TYPE, "ce-subject", "ce-dataschema")


def _binary_template(
    key: tuple[str, str, str | None, str | None, bool, type], data: Any
) -> Headers:
    """The headers of binary-mode events with these (source, type, subject, dataschema,
    untimed, data class), in order, for each event to copy and fill in ``ce-id`` and
    ``ce-time``: the other headers follow from the key, so they are worked out once."""
    source, type, subject, dataschema, untimed, _ = key
    dataschema = dataschema_of(data) if dataschema is None else dataschema
    content_type = encode_data(data)[1] if data is None or isinstance(data, BINARY_TYPES) else JSON
    h: Headers = {"ce-specversion": SPECVERSION, "ce-id": "", "ce-source": source, "ce-type": type}
    if not untimed:
        h["ce-time"] = ""
    for name, value in zip(_OPTIONAL, (content_type, subject, dataschema), strict=True):
        if value is not None:
            h[name] = value
    if len(_templates) >= _MAX_PREFIXES:
        _templates.clear()
    _templates[key] = h
    return h


_prefixes: dict[tuple[str, str, str | None, str | None, type], bytes] = {}
_MAX_PREFIXES = 1024
_time_text: str | None = None
_time_json = b"null"


def _structured_json(
    id: str,
    source: str,
    type: str,
    time: str | None,
    subject: str | None,
    dataschema: str | None,
    data: Any,
) -> bytes:
    """A structured event with JSON data, in the common shape (no extensions).

    A publisher sends many events that differ only in id, time and data: the attributes that
    repeat (and the data class's schema id) are encoded once per (source, type, subject,
    dataschema, data class) as a prefix, and the time once per millisecond, so an event costs
    the encoding of its data and its id, not of a whole envelope dict.
    """
    global _time_text, _time_json
    key = (source, type, subject, dataschema, data.__class__)
    prefix = _prefixes.get(key)
    if prefix is None:
        attrs: dict[str, str] = {"specversion": SPECVERSION, "source": source, "type": type}
        if subject is not None:
            attrs["subject"] = subject
        schema = dataschema if dataschema is not None else dataschema_of(data)
        if schema is not None:
            attrs["dataschema"] = schema
        attrs["datacontenttype"] = JSON
        if len(_prefixes) >= _MAX_PREFIXES:
            _prefixes.clear()
        prefix = _prefixes[key] = pydantic_core.to_json(attrs)[:-1]  # without the closing }
    to_json = pydantic_core.to_json
    try:
        encoded = to_json(data)
    except pydantic_core.PydanticSerializationError as exc:
        raise InvalidEvent(f"event data is not JSON-serializable: {exc}") from exc
    if time is None:
        return b"".join((prefix, b',"id":', to_json(id), b',"data":', encoded, b"}"))
    if time is not _time_text:  # now_iso() hands out one string per millisecond
        _time_text, _time_json = time, to_json(time)
    return b"".join(
        (prefix, b',"id":', to_json(id), b',"time":', _time_json, b',"data":', encoded, b"}")
    )


def _structured_body(
    id: str,
    source: str,
    type: str,
    time: str | None,
    subject: str | None,
    dataschema: str | None,
    extensions: Mapping[str, Any] | None,
    data: Any,
) -> bytes:
    """A structured event in any shape: extensions, no data, or bytes as ``data_base64``."""
    event: dict[str, Any] = {"specversion": SPECVERSION, "id": id, "source": source, "type": type}
    if time is not None:
        event["time"] = time
    if subject is not None:
        event["subject"] = subject
    if dataschema is not None:
        event["dataschema"] = dataschema
    if extensions:
        event.update(extensions)
    if isinstance(data, BINARY_TYPES):
        event["datacontenttype"] = OCTETS
        event["data_base64"] = base64.b64encode(data).decode()
    elif data is not None:
        event["datacontenttype"] = JSON
        event["data"] = data
    try:
        return pydantic_core.to_json(event)
    except pydantic_core.PydanticSerializationError as exc:
        raise InvalidEvent(f"event data is not JSON-serializable: {exc}") from exc


def _attr_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)
