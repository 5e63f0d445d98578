"""One-pass validation of a structured CloudEvent whose data is of one type.

A structured event is one JSON object: the attributes and ``data`` together. Parsing it into
a dict and then validating ``data`` against the handler's model walks the data twice and
builds it twice; a pydantic schema for the whole envelope, with ``data`` typed as the
handler's type, reads the bytes once, in pydantic's core. Anything unusual (``data_base64``,
an invalid event) is left to the general path in :mod:`eventkit.events`, which says what is
wrong; this module only has to be right on valid events and to decline the rest.
"""

from __future__ import annotations

from typing import Annotated, Any, NotRequired, Required, cast

from pydantic import ConfigDict, StringConstraints, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from .events import SPECVERSION

__all__ = ["EnvelopeReader"]

_Attribute = Annotated[str, StringConstraints(min_length=1)]


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
