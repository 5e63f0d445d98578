"""Event: the CloudEvents 1.0 envelope, its attribute names, ids and times.

The two bindings to a Message live beside it: :mod:`._encode` (publish) and :mod:`._decode`
(delivery). Everything here is pure (no I/O).
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

__all__ = ["Event", "EventIds", "dataschema_of", "now_iso"]

T = TypeVar("T")

SPECVERSION = "1.0"
JSON = "application/json"
STRUCTURED = "application/cloudevents+json"
OCTETS = "application/octet-stream"
CONTENT_TYPE = "content-type"
BINARY_TYPES = (bytes, bytearray, memoryview)  # data sent as it is (base64 in structured mode)

REQUIRED = ("id", "source", "type", "specversion")
# Attributes with a header of their own; everything else after ``ce-`` is an extension.
CORE = frozenset(("id", "source", "type", "specversion", "time", "subject", "dataschema"))
EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")


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
            attrs["time"] = self._time if isinstance(self._time, str) else iso(self._time)
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


def iso(moment: datetime) -> str:
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
