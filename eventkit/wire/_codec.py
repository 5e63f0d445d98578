"""Reading data as one type: a handler's (or a call's) data, validated by pydantic.

:class:`DataCodec` validates incoming data as one type, from JSON bytes or from a decoded
JSON value. For a structured CloudEvent it also makes an :class:`EnvelopeReader`: parsing
the event into a dict and then validating ``data`` walks the data twice and builds it twice;
a pydantic schema for the whole envelope, with ``data`` typed as the handler's type, reads
the bytes once, in pydantic's core. Anything unusual (``data_base64``, an invalid event) is
left to the general path in :mod:`._decode`, which says what is wrong; the reader only has
to be right on valid events and to decline the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, NotRequired, Required, cast

import pydantic_core
from pydantic import ConfigDict, StringConstraints, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from ._errors import InvalidEvent
from ._event import SPECVERSION

__all__ = ["DataCodec", "EnvelopeReader"]

_Attribute = Annotated[str, StringConstraints(min_length=1)]


class DataCodec:
    """Validates incoming data as one type (from JSON bytes or decoded JSON) and dumps it."""

    __slots__ = ("_adapter", "_envelope", "_raw", "_validate_json", "type")

    def __init__(self, tp: Any) -> None:
        self.type = tp
        self._raw = tp is bytes
        self._adapter: TypeAdapter[Any] | None = None if tp is Any else TypeAdapter(tp)
        self._envelope: EnvelopeReader | None = None
        # The core validator's own method, taken on first use (when a model built lazily is
        # complete): TypeAdapter.validate_json adds a Python layer to every message.
        self._validate_json: Callable[[bytes], Any] | None = None

    def envelope(self) -> EnvelopeReader | None:
        """The one-pass reader of structured events with this data type (None for ``bytes``
        data, which structured mode carries as ``data_base64``); made on first use."""
        if self._envelope is None and not self._raw:
            self._envelope = EnvelopeReader(self.type)
        return self._envelope

    def from_body(self, body: bytes, json_body: bool) -> Any:
        if self._raw:
            return body
        if not json_body:
            if self.type is str:
                return body.decode()
            if self._adapter is None:
                return body
            raise InvalidEvent(f"data is not JSON, so it cannot be read as {self.type!r}")
        if not body:
            return self.from_value(None)
        if self._adapter is None:
            return pydantic_core.from_json(body)
        validate = self._validate_json
        if validate is None:
            validate = self._validate_json = self._adapter.validator.validate_json
        return validate(body)

    def from_value(self, value: Any) -> Any:
        if self._adapter is None or (self._raw and isinstance(value, bytes)):
            return value
        return self._adapter.validate_python(value)

    def json_schema(self) -> dict[str, Any]:
        if self._adapter is None:
            return {}
        try:
            return self._adapter.json_schema()
        except Exception:  # a type pydantic cannot describe still works, it just has no schema
            return {}


class EnvelopeReader:
    """Reads structured events whose ``data`` is a ``T`` in one validation."""

    __slots__ = ("_validate",)

    def __init__(self, data_type: Any) -> None:
        fields: dict[str, Any] = {
            "specversion": Required[_Attribute],
            "id": Required[_Attribute],
            "source": Required[_Attribute],
            "type": Required[_Attribute],
            "time": NotRequired[str],
            "subject": NotRequired[str],
            "dataschema": NotRequired[str],
            "datacontenttype": NotRequired[str],
            "data": NotRequired[data_type],
        }
        envelope: Any = cast(Any, TypedDict)("Envelope", fields, total=False)
        envelope.__pydantic_config__ = ConfigDict(extra="allow")
        # The core validator itself: TypeAdapter.validate_json adds a Python layer per call.
        self._validate = TypeAdapter(envelope).validator.validate_json

    def read(self, body: bytes) -> tuple[dict[str, Any], Any] | None:
        """(attributes, data) of a valid event in the common shape; None for anything else
        (the caller's general path then decodes it, or says what is wrong with it)."""
        try:
            attrs: dict[str, Any] = self._validate(body)
        except ValidationError:
            return None
        if attrs["specversion"] != SPECVERSION or "data_base64" in attrs or "data" not in attrs:
            return None
        return attrs, attrs.pop("data")
