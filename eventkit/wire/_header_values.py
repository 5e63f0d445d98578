"""CloudEvents attribute values in transport headers: the percent-encoding two bindings share.

The HTTP binding (1.0.2, section 3.1.3.2) and the NATS binding (1.0.3, section 3.1.3.2) write
the same rule. On the way out, space, ``"``, ``%`` and every character outside printable
ASCII (U+0021-U+007E) are percent-encoded as the bytes of their UTF-8 encoding, upper-case
hex. On the way in, double-quoted strings (older producers) are unquoted first, then exactly
one round of percent-decoding is made; lower-case hex and needless encoding are accepted, and
bytes that are not valid UTF-8 (``%C0%A0``, an overlong space) are rejected.

The adapters of those transports call these on ``ce-*`` values only, and only when a value
needs it (the check is one regular-expression search), so an event whose attributes are
plain ASCII costs one search per attribute.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote_to_bytes

from ._errors import InvalidEvent

__all__ = ["decode_header_value", "encode_header_value", "needs_encoding"]

_SAFE = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ' "%')
needs_encoding = re.compile(r"[^\x21\x23\x24\x26-\x7e]").search
"""``needs_encoding(value)`` is a match (truthy) when the value must be percent-encoded."""


def encode_header_value(value: str) -> str:
    """``value`` as the bindings write it in a header (unchanged when nothing needs encoding)."""
    return quote(value, safe=_SAFE) if needs_encoding(value) else value


def decode_header_value(value: str) -> str:
    """A header value back to the attribute's string; raises :class:`InvalidEvent` when its
    percent-encoded bytes are not UTF-8."""
    if '"' in value:
        value = _unquote_strings(value)
    if "%" not in value:
        return value
    try:  # unquote_to_bytes: the same single round as unquote, in fewer Python steps
        return unquote_to_bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent(
            f"a CloudEvents header value is percent-encoded bytes that are not UTF-8 "
            f"({exc.reason} at byte {exc.start}); the binding requires UTF-8"
        ) from None


def _unquote_strings(value: str) -> str:
    """RFC 7230 3.2.6: the text of each double-quoted string, backslash escapes resolved."""
    out: list[str] = []
    quoted = False
    escaped = False
    for char in value:
        if escaped:
            out.append(char)
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        else:
            out.append(char)
    return "".join(out)
