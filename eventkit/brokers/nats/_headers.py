"""Message headers <-> NATS headers, exactly.

eventkit's headers pass through as NATS headers unchanged (``ce-*``, ``content-type``,
``eventkit-*``), but the NATS header block trims values and cannot hold line breaks. The rare
value that would be altered (leading or trailing white space, CR or LF) is sent
percent-encoded and listed in the ``eventkit-escaped`` header, so it arrives as sent.
Incoming keys are lower-cased and NATS's own headers (``Nats-*``, ``Status``) are dropped.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

__all__ = ["ESCAPED", "from_nats", "to_nats"]

ESCAPED = "eventkit-escaped"
_WS = " \t\r\n\x0b\x0c"


def _altered(value: str) -> bool:
    return bool(value) and (value[0] in _WS or value[-1] in _WS or "\n" in value or "\r" in value)


def to_nats(headers: dict[str, str]) -> dict[str, str] | None:
    """Headers for nats-py's publish: the same dict when nothing needs escaping (no copy)."""
    if not headers:
        return None
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


def from_nats(headers: dict[str, str] | None) -> dict[str, str]:
    """Headers as eventkit sees them, from a delivered NATS message."""
    if not headers:
        return {}
    for key in headers:  # eventkit's own keys are lower-case: then the dict is used as it is
        if not key.islower():
            break
    else:
        if ESCAPED not in headers:
            return headers
    out = {k.lower(): v for k, v in headers.items() if not k.startswith(("Nats-", "Status"))}
    escaped = out.pop(ESCAPED, None)
    if escaped:
        for key in escaped.split(","):
            if key in out:
                out[key] = unquote(out[key])
    return out
