"""Delivery: the one path from a Message to an Event, or to a handler's data.

Both content modes are read (binary: ``ce-*`` headers; structured: the JSON event format as
the body, with or without a content type, as the NATS binding carries it). :func:`decode`
is the single entry: the RPC server, subscribers, the registry and the test helpers all call
it (through a :class:`Decoder`), so an event is judged the same way everywhere.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pydantic_core
from pydantic import ValidationError

from ._attributes import check_attribute_types, check_binary_attributes
from ._codec import DataCodec
from ._errors import InvalidEvent
from ._event import CONTENT_TYPE, CORE, JSON, REQUIRED, SPECVERSION, Event
from ._message import UNREADABLE, Headers, Message
from ._recognise import as_structured, envelope_in_body, is_structured_type

__all__ = ["Decoder", "decode_attributes", "decode_event", "event_id_of", "is_structured"]


def is_structured(message: Message) -> bool:
    """Structured mode: the CloudEvents JSON content type, or (NATS's binding, which carries
    the JSON event format as the whole payload) no content type and no ``ce-*`` attributes
    and a body that is a JSON object."""
    headers = message.headers
    content_type = headers.get(CONTENT_TYPE)
    if content_type is not None:
        return is_structured_type(content_type)
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
        check_attribute_types(obj, message.topic)
        return obj, raw, is_json_bytes

    attrs: dict[str, Any] = {}
    for key, value in headers.items():
        if key.startswith("ce-"):
            attrs[key[3:]] = value
    _require(attrs, message.topic)
    content_type = headers.get(CONTENT_TYPE)
    if content_type is not None:
        attrs["datacontenttype"] = content_type
    check_attribute_types(attrs, message.topic)
    return attrs, message.body, is_json(attrs.get("datacontenttype"))


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


_CE_DATACONTENTTYPE = "ce-datacontenttype"


def _content_type(headers: Headers) -> str | None:
    """A binary event's datacontenttype: ``content-type`` (where eventkit and the HTTP and
    AMQP bindings keep it), else a ``ce-datacontenttype`` header, which is the attribute
    wherever it comes from (never an extension)."""
    content_type = headers.get(CONTENT_TYPE)
    return content_type if content_type is not None else headers.get(_CE_DATACONTENTTYPE)


def event_from_headers(headers: Headers, data: Any) -> Event[Any]:
    """An Event straight from binary-mode headers whose required attributes were checked."""
    event: Event[Any] = Event.__new__(Event)
    event.id = headers["ce-id"]
    event.source = headers["ce-source"]
    event.type = headers["ce-type"]
    event.specversion = SPECVERSION
    time = event._time = headers.get("ce-time")
    content_type = event.datacontenttype = _content_type(headers)
    subject = event.subject = headers.get("ce-subject")
    dataschema = event.dataschema = headers.get("ce-dataschema")
    extensions: dict[str, Any] = {}
    # Extensions are looked for only when there are headers besides the attributes just read
    # (the common event has none, and the walk costs more than the rest of this function).
    known = 4 + (time is not None) + (content_type is not None)
    if len(headers) > known + (subject is not None) + (dataschema is not None):
        for key, value in headers.items():
            if key.startswith("ce-") and key[3:] not in CORE and key != _CE_DATACONTENTTYPE:
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


class Decoder:
    """Decodes messages into the data of one type, or into ``Event``\\ s of it (``event``).

    Calling it is the single decode path: binary mode straight from the headers (no attribute
    dict to build and take apart), structured mode in one validation of the whole envelope
    where the event has the common shape, and the general path for everything else, which
    says what is wrong. Raises :class:`InvalidEvent`.
    """

    __slots__ = ("codec", "event")

    def __init__(self, codec: DataCodec, *, event: bool) -> None:
        self.codec = codec
        self.event = event

    def __call__(self, message: Message) -> Any:
        codec = self.codec
        headers = message.headers
        try:
            if (
                headers
                and headers.get("ce-specversion") == SPECVERSION
                and headers.get("ce-id")
                and headers.get("ce-source")
                and headers.get("ce-type")
            ):
                # Binary mode: no attribute dict to build and take apart.
                check_binary_attributes(headers, message.topic)
                content_type = _content_type(headers)
                json_body = content_type is None or content_type == JSON or is_json(content_type)
                data = codec.from_body(message.body, json_body)
                return event_from_headers(headers, data) if self.event else data
            if is_structured(message):
                # Structured mode (on NATS without a header block): one validation, for a
                # valid event; anything else takes the general path, which says what is wrong.
                envelope = codec.envelope()
                read = envelope.read(message.body) if envelope is not None else None
                if read is not None:
                    check_attribute_types(read[0], message.topic)
                    return build_event(*read) if self.event else read[1]
            message = _general(message)
            attrs, raw, json_body = decode_attributes(message)
            if isinstance(raw, bytes):
                data = codec.from_body(raw, json_body)
            else:
                data = codec.from_value(raw)
        except ValidationError as exc:
            raise InvalidEvent(
                f"data on {message.topic!r} does not match {_type_name(codec.type)}: "
                f"{exc.error_count()} error(s): {_short_errors(exc)}"
            ) from exc
        except InvalidEvent:
            raise
        except ValueError as exc:
            raise InvalidEvent(f"data on {message.topic!r} is not valid JSON: {exc}") from exc
        return build_event(attrs, data) if self.event else data


def _general(message: Message) -> Message:
    """A message the fast reads declined, ready for the general path: rejected when its
    transport could not read its attributes; marked structured when its body is an event
    whatever its content type says."""
    unreadable = message.headers.get(UNREADABLE)
    if unreadable is not None:
        raise InvalidEvent(f"message on {message.topic!r} is not a valid CloudEvent: {unreadable}")
    if not is_structured(message) and envelope_in_body(message):
        return as_structured(message)
    return message


def decode_event(message: Message, data_type: Any = Any) -> Event[Any]:
    """The CloudEvent in ``message``, its data read as ``data_type`` (raises InvalidEvent).

    For occasional reads (tools, tests); a subscriber keeps a :class:`Decoder`.
    """
    decoder: Decoder = Decoder(DataCodec(data_type), event=True)
    event: Event[Any] = decoder(message)
    return event


def _short_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or repr(tp)
