"""Message headers <-> NATS headers: the CloudEvents NATS binding exactly, the rest unchanged.

A binary-mode event (``ce-specversion`` among the headers) follows the binding's header rules
(CloudEvents NATS protocol binding 1.0.3, 3.1.3): every attribute travels as a ``ce-`` header,
``datacontenttype`` included (``ce-datacontenttype``; eventkit's :class:`Message` keeps it in
``content-type``, as HTTP does, and it is moved here), and every value is percent-encoded as
the binding says (:func:`~eventkit.wire.encode_header_value`). On the way in, quoted strings
are unescaped and one round of percent-decoding is made; a value whose bytes are not UTF-8
makes the message unreadable (:data:`~eventkit.wire.UNREADABLE`: the subscriber rejects it
with the reason). A ``content-type`` on a binary event from an older producer is still read
as its datacontenttype.

A structured event carries ``content-type: application/cloudevents+json``, the binding's mark
of structured mode (:data:`STRUCTURED_ONLY` when nothing else rides with it).

Other headers pass through as NATS headers unchanged (``eventkit-*``, ``traceparent``...),
but the NATS header block trims values and cannot hold line breaks: the rare value that would
be altered (leading or trailing white space, CR or LF) is sent percent-encoded and listed in
the ``eventkit-escaped`` header, so it arrives as sent.

A failed reply (``eventkit-status``) also carries ``Nats-Service-Error-Code`` and
``Nats-Service-Error``, as the NATS service API (ADR-32) says, and those of a reply from a
NATS micro service are read as ``eventkit-status`` and ``eventkit-error``. Incoming keys are
lower-cased and NATS's own headers (``Nats-*``, ``Status``) are dropped.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from ...wire import (
    CONTENT_TYPE,
    STRUCTURED,
    UNREADABLE,
    InvalidEvent,
    decode_header_value,
    encode_header_value,
    needs_encoding,
)
from ..base import REPLY_ERROR, REPLY_STATUS

__all__ = ["ESCAPED", "MICRO_ERROR", "MICRO_ERROR_CODE", "STRUCTURED_ONLY", "from_nats", "to_nats"]

ESCAPED = "eventkit-escaped"
MICRO_ERROR = "Nats-Service-Error"
MICRO_ERROR_CODE = "Nats-Service-Error-Code"
DATACONTENTTYPE = "ce-datacontenttype"
STRUCTURED_ONLY: dict[str, str] = {CONTENT_TYPE: STRUCTURED}
"""The headers of a structured event with nothing else: one shared dict (never modified),
so the client can send its header block as bytes made once."""
_WS = " \t\r\n\x0b\x0c"
_ERROR_LIMIT = 512  # a foreign service's error text, as far as eventkit keeps it


def _altered(value: str) -> bool:
    return bool(value) and (value[0] in _WS or value[-1] in _WS or "\n" in value or "\r" in value)


def to_nats(headers: dict[str, str]) -> dict[str, str] | None:
    """Headers for nats-py's publish: the same dict when nothing needs changing (no copy)."""
    if not headers:
        return None
    if "ce-specversion" in headers:
        return _binary_event(headers)
    if REPLY_STATUS in headers:
        return _escaped(_failed_reply(headers))
    return _escaped(headers)


def _escaped(headers: dict[str, str]) -> dict[str, str]:
    for v in headers.values():  # a plain loop: the common case is one pass, no calls
        if v and (v[0] in _WS or v[-1] in _WS or "\n" in v or "\r" in v):
            break
    else:
        return headers
    escaped = [k for k, v in headers.items() if _altered(v)]
    out = dict(headers)
    for key in escaped:
        out[key] = quote(out[key], safe="")
    out[ESCAPED] = ",".join(escaped)
    return out


def _binary_event(headers: dict[str, str]) -> dict[str, str]:
    """A binary-mode event's headers as the binding writes them (a new dict: the message's
    own headers are left as they are).

    The attributes a publisher repeats (source, type, subject, the content type) are
    encoded once and remembered; the id and time, new with every event, are checked (one
    regular-expression search each). An encoded value has no white space left, so only the
    other headers are looked at for the ``eventkit-escaped`` rule."""
    out: dict[str, str] = {}
    known = _ENCODED
    loose = False
    for key, value in headers.items():
        if key in _PER_EVENT:
            out[key] = encode_header_value(value) if needs_encoding(value) else value
        elif key.startswith("ce-"):
            encoded = known.get(value)
            out[key] = encoded if encoded is not None else _remember(value)
        elif key == CONTENT_TYPE:
            encoded = known.get(value)
            out[DATACONTENTTYPE] = encoded if encoded is not None else _remember(value)
        else:
            out[key] = value
            loose = loose or _altered(value)
    return _escaped(out) if loose else out


_PER_EVENT = frozenset(("ce-id", "ce-time"))
_ENCODED: dict[str, str] = {}  # attribute value -> as sent (values a publisher repeats)
_DECODED: dict[str, str] = {}  # value as received -> attribute value (the same, inbound)
_MAX_ENCODED = 4096


def _remember(value: str) -> str:
    if len(_ENCODED) >= _MAX_ENCODED:
        _ENCODED.clear()
    encoded = _ENCODED[value] = encode_header_value(value)
    return encoded


def _failed_reply(headers: dict[str, str]) -> dict[str, str]:
    out = dict(headers)
    out[MICRO_ERROR_CODE] = headers[REPLY_STATUS]
    out[MICRO_ERROR] = headers.get(REPLY_ERROR) or "error " + headers[REPLY_STATUS]
    return out


def from_nats(headers: dict[str, str] | None) -> dict[str, str]:
    """Headers as eventkit sees them, from a delivered NATS message (whose header dict this
    takes over: it may be changed and returned)."""
    if not headers:
        return {}
    encoded = False
    for key, value in headers.items():  # eventkit's own keys are lower-case: then the dict
        if not key.islower():  # is used as it is, with a binary event's values decoded
            break
        if "%" in value or '"' in value:
            encoded = True
    else:
        if ESCAPED not in headers:
            if "ce-specversion" not in headers:
                return headers
            if encoded:
                return _event_in(headers, ())
            content_type = headers.pop(DATACONTENTTYPE, None)
            if content_type is not None:
                headers[CONTENT_TYPE] = content_type
            return headers
    out = {k.lower(): v for k, v in headers.items() if not k.startswith(("Nats-", "Status"))}
    code = headers.get(MICRO_ERROR_CODE)
    if code is not None and REPLY_STATUS not in out:  # a NATS micro service's failed reply
        out[REPLY_STATUS] = code if code.strip().isdigit() else "500"
        out[REPLY_ERROR] = headers.get(MICRO_ERROR, "")[:_ERROR_LIMIT]
    escaped = out.pop(ESCAPED, None)
    done: tuple[str, ...] = ()
    if escaped:
        done = tuple(escaped.split(","))
        for key in done:
            if key in out:
                out[key] = unquote(out[key])
    return _event_in(out, done) if "ce-specversion" in out else out


def _event_in(headers: dict[str, str], done: tuple[str, ...]) -> dict[str, str]:
    """A binary-mode event's headers read by the binding's rules (changed in place)."""
    known = _DECODED
    for key, value in headers.items():
        if ("%" in value or '"' in value) and key.startswith("ce-") and key not in done:
            decoded = known.get(value)
            if decoded is not None:
                headers[key] = decoded
                continue
            try:
                headers[key] = decoded = decode_header_value(value)
            except InvalidEvent as exc:
                del headers["ce-specversion"]
                headers[UNREADABLE] = f"header {key}: {exc}"
                return headers
            if len(known) >= _MAX_ENCODED:
                known.clear()
            known[value] = decoded
    content_type = headers.pop(DATACONTENTTYPE, None)
    if content_type is not None:
        headers[CONTENT_TYPE] = content_type
    return headers
