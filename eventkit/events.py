"""Event: the CloudEvents 1.0 envelope, and its two bindings to a Message.

Binary content mode (the default on output): attributes in ``ce-*`` headers, ``content-type``
for ``datacontenttype``, the data alone as the body. Structured mode
(``application/cloudevents+json``): the whole event as one JSON object in the body. Both are
always accepted on input. The functions here are pure (no I/O), so the publish and deliver
paths call them directly: one JSON encode on publish, one validating decode on delivery
(pydantic parses the body bytes straight into the handler's model).
"""

from __future__ import annotations

import base64
import itertools
import os
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import pydantic_core
from pydantic import BaseModel

from .errors import InvalidEvent
from .message import Headers, Message

__all__ = ["Event", "EventIds", "decode_attributes", "encode_data", "to_message"]

T = TypeVar("T")

SPECVERSION = "1.0"
JSON = "application/json"
STRUCTURED = "application/cloudevents+json"
OCTETS = "application/octet-stream"
CONTENT_TYPE = "content-type"
_BINARY = (bytes, bytearray, memoryview)  # data sent as it is (base64 in structured mode)

REQUIRED = ("id", "source", "type", "specversion")
# Attributes with a header of their own; everything else after ``ce-`` is an extension.
_CORE = frozenset(("id", "source", "type", "specversion", "time", "subject", "dataschema"))
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")


class Event(Generic[T]):
    """A CloudEvent whose ``data`` is a ``T`` (a pydantic model or any JSON value).

    Handlers annotate a parameter as ``Event[OrderPlaced]`` to receive the envelope with the
    data validated. ``time`` is parsed from its string only when read.
    """

    __slots__ = (
        "_time",
        "data",
        "datacontenttype",
        "dataschema",
        "extensions",
        "id",
        "source",
        "specversion",
        "subject",
        "type",
    )

    def __init__(
        self,
        *,
        id: str,
        source: str,
        type: str,
        data: T,
        specversion: str = SPECVERSION,
        time: datetime | str | None = None,
        datacontenttype: str | None = JSON,
        subject: str | None = None,
        dataschema: str | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        self.id = id
        self.source = source
        self.type = type
        self.specversion = specversion
        self._time = time
        self.datacontenttype = datacontenttype
        self.subject = subject
        self.dataschema = dataschema
        self.extensions: dict[str, Any] = dict(extensions) if extensions else {}
        self.data = data

    @property
    def time(self) -> datetime | None:
        # Parsed on each read, not cached over the string: the attribute stays as it came
        # (a datetime would be formatted back with microseconds, a different attribute).
        if isinstance(self._time, str):
            try:
                return datetime.fromisoformat(self._time)
            except ValueError:
                return None
        return self._time

    def attributes(self) -> dict[str, Any]:
        """Context attributes (everything but data), as in the structured JSON format."""
        attrs: dict[str, Any] = {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
        }
        for name in ("datacontenttype", "subject", "dataschema"):
            value = getattr(self, name)
            if value is not None:
                attrs[name] = value
        if self._time is not None:
            attrs["time"] = self._time if isinstance(self._time, str) else _iso(self._time)
        attrs.update(self.extensions)
        return attrs

    def __repr__(self) -> str:
        return (
            f"Event(type={self.type!r}, id={self.id!r}, source={self.source!r}, data={self.data!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return bool(self.attributes() == other.attributes() and self.data == other.data)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


_last_ms = -1
_last_iso = ""


def now_iso() -> str:
    """The current time as RFC 3339 with milliseconds, formatted once per millisecond (a
    publisher sending thousands of events a second would otherwise format each)."""
    global _last_ms, _last_iso
    ms = time.time_ns() // 1_000_000
    if ms != _last_ms:
        _last_iso = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
        _last_iso = _last_iso.replace("+00:00", "Z")
        _last_ms = ms
    return _last_iso


class EventIds:
    """Unique event ids: a random per-process prefix and a counter (cheaper than uuid4)."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}-{next(self._counter)}"


_schema_ids: dict[type, str | None] = {}


def dataschema_of(data: Any) -> str | None:
    """The JSON Schema ``$id`` a pydantic model names in ``json_schema_extra``, if any
    (looked up once per model class)."""
    if not isinstance(data, BaseModel):
        return None
    cls = type(data)
    try:
        return _schema_ids[cls]
    except KeyError:
        extra = cls.model_config.get("json_schema_extra")
        schema_id = extra.get("$id") if isinstance(extra, dict) else None
        found = _schema_ids[cls] = schema_id if isinstance(schema_id, str) else None
        return found


def encode_data(data: Any) -> tuple[bytes, str | None]:
    """The body bytes and datacontenttype for ``data`` in binary mode."""
    if data is None:
        return b"", None
    if isinstance(data, _BINARY):
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
        if not _EXTENSION_NAME.match(name) or name in _CORE or name == "datacontenttype":
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
        if extensions or data is None or isinstance(data, _BINARY):
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
    content_type = encode_data(data)[1] if data is None or isinstance(data, _BINARY) else JSON
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
    if isinstance(data, _BINARY):
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
        return _iso(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def is_structured(message: Message) -> bool:
    """Structured mode: the CloudEvents JSON content type, or (NATS's binding, which carries
    the JSON event format as the whole payload) no content type and no ``ce-*`` attributes
    and a body that is a JSON object."""
    headers = message.headers
    content_type = headers.get(CONTENT_TYPE)
    if content_type is not None:
        return content_type.startswith(STRUCTURED)
    if "ce-specversion" in headers:
        return False
    body = message.body
    return body[:1] == b"{" or body.lstrip()[:1] == b"{"


def event_id_of(message: Message) -> str | None:
    """The event id of a CloudEvent message in either mode, for logs (None if it has none)."""
    event_id = message.headers.get("ce-id")
    if event_id is None and is_structured(message):
        try:
            obj = pydantic_core.from_json(message.body)
        except ValueError:
            return None
        found = obj.get("id") if isinstance(obj, dict) else None
        return found if isinstance(found, str) else None
    return event_id


def decode_attributes(message: Message) -> tuple[dict[str, Any], Any, bool]:
    """Split a message into (attributes, raw data, data_is_json_bytes).

    Binary mode: the raw data is the body bytes (JSON bytes when the content type is JSON).
    Structured mode: the body is parsed once and the raw data is the decoded ``data`` value
    (or the bytes of ``data_base64``). Raises :class:`InvalidEvent` naming what is missing.
    """
    headers = message.headers
    if is_structured(message):
        try:
            obj = pydantic_core.from_json(message.body)
        except ValueError as exc:
            raise InvalidEvent(
                f"structured CloudEvent on {message.topic!r} is not JSON: {exc}"
            ) from exc
        if not isinstance(obj, dict):
            raise InvalidEvent(f"structured CloudEvent on {message.topic!r} is not a JSON object")
        if "data_base64" in obj:
            try:
                raw: Any = base64.b64decode(obj.pop("data_base64"), validate=True)
            except (ValueError, TypeError) as exc:
                raise InvalidEvent(f"data_base64 on {message.topic!r} is not base64") from exc
            is_json_bytes = is_json(obj.get("datacontenttype"))
        else:
            raw = obj.pop("data", None)
            is_json_bytes = False
        _require(obj, message.topic)
        return obj, raw, is_json_bytes

    attrs: dict[str, Any] = {}
    for key, value in headers.items():
        if key.startswith("ce-"):
            attrs[key[3:]] = value
    _require(attrs, message.topic)
    content_type = headers.get(CONTENT_TYPE)
    if content_type is not None:
        attrs["datacontenttype"] = content_type
    return attrs, message.body, is_json(content_type)


def is_json(content_type: Any) -> bool:
    """Whether a datacontenttype is JSON (absent means JSON, as CloudEvents says)."""
    if content_type is None:
        return True  # CloudEvents: JSON is the default when no datacontenttype is given
    base = str(content_type).split(";", 1)[0].strip().lower()
    return base == JSON or base.endswith("+json") or base == "text/json"


_STRING_ATTRIBUTES = ("time", "subject", "dataschema", "datacontenttype")


def _require(attrs: Mapping[str, Any], topic: str) -> None:
    missing = [name for name in REQUIRED if not attrs.get(name)]
    if missing:
        raise InvalidEvent(
            f"message on {topic!r} is not a CloudEvent: missing {', '.join(missing)} "
            "(binary mode needs ce-id, ce-source, ce-type and ce-specversion headers; "
            "structured mode a JSON object with those attributes)"
        )
    wrong = [
        name
        for name in (*REQUIRED, *_STRING_ATTRIBUTES)
        if name in attrs and not isinstance(attrs[name], str)
    ]
    if wrong:
        raise InvalidEvent(
            f"message on {topic!r} is not a valid CloudEvent: {', '.join(wrong)} must be string(s)"
        )
    if attrs["specversion"] != SPECVERSION:
        raise InvalidEvent(
            f"message on {topic!r} has CloudEvents specversion {attrs['specversion']!r}; "
            f"only {SPECVERSION!r} is supported"
        )


def event_from_headers(headers: Headers, data: Any) -> Event[Any]:
    """An Event straight from binary-mode headers whose required attributes were checked."""
    event: Event[Any] = Event.__new__(Event)
    event.id = headers["ce-id"]
    event.source = headers["ce-source"]
    event.type = headers["ce-type"]
    event.specversion = SPECVERSION
    time = event._time = headers.get("ce-time")
    content_type = event.datacontenttype = headers.get(CONTENT_TYPE)
    subject = event.subject = headers.get("ce-subject")
    dataschema = event.dataschema = headers.get("ce-dataschema")
    extensions: dict[str, Any] = {}
    # Extensions are looked for only when there are headers besides the attributes just read
    # (the common event has none, and the walk costs more than the rest of this function).
    known = 4 + (time is not None) + (content_type is not None)
    if len(headers) > known + (subject is not None) + (dataschema is not None):
        for key, value in headers.items():
            if key.startswith("ce-") and key[3:] not in _CORE:
                extensions[key[3:]] = value
    event.extensions = extensions
    event.data = data
    return event


def build_event(attrs: dict[str, Any], data: Any) -> Event[Any]:
    """An Event from checked attributes (the dict is consumed: what is left in it after the
    core attributes are the extensions) and the decoded data."""
    event: Event[Any] = Event.__new__(Event)
    pop = attrs.pop
    event.id = pop("id")
    event.source = pop("source")
    event.type = pop("type")
    event.specversion = pop("specversion")
    event._time = pop("time", None)
    event.datacontenttype = pop("datacontenttype", None)
    event.subject = pop("subject", None)
    event.dataschema = pop("dataschema", None)
    event.extensions = attrs
    event.data = data
    return event
