"""CloudEvents attributes checked as the spec types them, cheaply on valid events.

CloudEvents 1.0 types its attributes: ``time`` is an RFC 3339 timestamp, ``source`` a
non-empty URI-reference (RFC 3986), ``dataschema`` an absolute URI, extension names are
1-20 lower-case letters or digits, and extension values are scalars (string, boolean, or a
32-bit integer; binary, URI and timestamp values travel as strings). A violation is an
:class:`InvalidEvent` that names the attribute and why.

The checks sit on the delivery path, so the common case is made cheap: a publisher sends the
same ``source`` (and ``dataschema``) again and again, and ``time`` strings from eventkit's
:func:`now_iso` repeat within a millisecond, so values once found valid are kept in small
sets (cleared when full): the common event costs two set lookups, a new value one compiled
match.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from typing import Any

from ._errors import InvalidEvent
from ._event import CORE, EXTENSION_NAME
from ._logs import loggable

__all__ = [
    "check_attribute_types",
    "check_binary_attributes",
    "is_rfc3339",
    "is_uri",
    "is_uri_reference",
]

_TIME = re.compile(
    r"(\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:(?:[0-5]\d|60)"
    r"(?:\.\d+)?(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)"
)
_PCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})"
_URI_REFERENCE = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*:)?"
    r"(?P<authority>//(?:(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*@)?"
    r"(?:\[[0-9A-Za-z:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::\d*)?)?"
    rf"(?P<path>(?:{_PCHAR}|/)*)"
    rf"(?:\?(?:{_PCHAR}|[/?])*)?"
    rf"(?:#(?:{_PCHAR}|[/?])*)?"
)
_INT32 = (-(2**31), 2**31 - 1)
_KNOWN = CORE | {"datacontenttype"}
_MAX_CACHED = 1024

_valid: set[str] = set()  # source and dataschema values found valid
_valid_times: set[str] = set()  # time values found valid (eventkit's repeat within a ms)


def is_rfc3339(value: str) -> bool:
    """Whether ``value`` is an RFC 3339 date-time (``2024-05-01T12:00:00.123Z``)."""
    match = _TIME.fullmatch(value)
    if match is None:
        return False
    day = int(match[3])
    if day > 28:
        year, month = int(match[1]), int(match[2])
        return day <= calendar.monthrange(year, month)[1]
    return True


def is_uri_reference(value: str) -> bool:
    """Whether ``value`` is a URI-reference (RFC 3986): an absolute URI or a relative one."""
    match = _URI_REFERENCE.fullmatch(value)
    if match is None:
        return False
    if match["scheme"] is None and match["authority"] is None:
        # A relative path's first segment may not contain ':' (it would read as a scheme).
        return ":" not in match["path"].split("/", 1)[0]
    return True


def is_uri(value: str) -> bool:
    """Whether ``value`` is an absolute URI (it has a scheme)."""
    match = _URI_REFERENCE.fullmatch(value)
    return match is not None and match["scheme"] is not None


def check_binary_attributes(headers: Mapping[str, str], topic: str) -> None:
    """Check the typed attributes of a binary-mode event whose required headers are there.

    The common event (the four required headers, ``ce-time``, ``content-type``) costs two
    set lookups; ``ce-dataschema`` and extension names are looked at only when the event has
    headers besides those."""
    if headers["ce-source"] not in _valid:
        _check_uri("source", headers["ce-source"], topic, absolute=False)
    time = headers.get("ce-time")
    if time is not None and time not in _valid_times:
        _check_time(time, topic)
    if len(headers) > 4 + (time is not None) + ("content-type" in headers):
        dataschema = headers.get("ce-dataschema")
        if dataschema is not None and dataschema not in _valid:
            _check_uri("dataschema", dataschema, topic, absolute=True)
        for key in headers:
            if key.startswith("ce-") and key[3:] not in _KNOWN:
                _check_extension_name(key[3:], topic)


def check_attribute_types(attrs: Mapping[str, Any], topic: str) -> None:
    """Check the typed attributes of an event as a dict of attributes (structured mode, or
    binary mode read into one); the required ones are known to be non-empty strings. As in
    binary mode, the common event costs two set lookups."""
    if attrs["source"] not in _valid:
        _check_uri("source", attrs["source"], topic, absolute=False)
    time = attrs.get("time")
    if time is not None and (not isinstance(time, str) or time not in _valid_times):
        _check_time(time, topic)
    if len(attrs) > 4 + (time is not None) + ("datacontenttype" in attrs):
        dataschema = attrs.get("dataschema")
        if dataschema is not None and (not isinstance(dataschema, str) or dataschema not in _valid):
            _check_uri("dataschema", dataschema, topic, absolute=True)
        for name, value in attrs.items():
            if name not in _KNOWN:
                _check_extension_name(name, topic)
                _check_extension_value(name, value, topic)


def _check_time(time: Any, topic: str) -> None:
    if not isinstance(time, str) or not is_rfc3339(time):
        raise InvalidEvent(
            f"event on {loggable(topic)} has time {loggable(time)}: not an RFC 3339 timestamp "
            "(e.g. 2024-05-01T12:00:00.000Z)"
        )
    _remember(_valid_times, time)


def _check_uri(name: str, value: Any, topic: str, *, absolute: bool) -> None:
    valid = (
        isinstance(value, str)
        and bool(value)
        and (is_uri(value) if absolute else is_uri_reference(value))
    )
    if not valid:
        kind = "an absolute URI" if absolute else "a non-empty URI-reference (RFC 3986)"
        raise InvalidEvent(f"event on {loggable(topic)} has {name} {loggable(value)}: not {kind}")
    _remember(_valid, value)


def _remember(valid: set[str], value: str) -> None:
    if len(valid) >= _MAX_CACHED:
        valid.clear()
    valid.add(value)


def _check_extension_name(name: str, topic: str) -> None:
    if not EXTENSION_NAME.match(name):
        raise InvalidEvent(
            f"event on {loggable(topic)} has an extension attribute named {loggable(name)}: "
            "names are 1-20 lower-case letters or digits"
        )


def _check_extension_value(name: str, value: Any, topic: str) -> None:
    if isinstance(value, str | bool):
        return
    if isinstance(value, int) and _INT32[0] <= value <= _INT32[1]:
        return
    raise InvalidEvent(
        f"event on {loggable(topic)} has extension {name} = {loggable(value, limit=60)}: "
        "extension values are strings, booleans or 32-bit integers"
    )
