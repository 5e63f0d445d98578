"""Secrets out of sight: the one redaction of broker URLs and settings.

Every log line, error, hint, CLI line and ``repr`` that can carry a broker URL or a broker
option goes through :func:`redact`, so a password, token, NKEY seed or secret query parameter
is written as ``***`` wherever eventkit speaks. It works on plain text too (an exception text
that quotes a URL), on mappings of settings, and leaves anything without a secret as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, overload

__all__ = ["SECRET", "redact"]

SECRET = "***"
"""What a secret is written as."""

# Option and query parameter names whose value is a secret (compared lower-case, with - as _).
_SECRET_NAMES = frozenset(
    (
        "password",
        "passwd",
        "pass",
        "pwd",
        "token",
        "auth_token",
        "access_token",
        "refresh_token",
        "api_key",
        "apikey",
        "secret",
        "client_secret",
        "nkey",
        "nkeys_seed",
        "seed",
        "signature",
        "sig",
        "credentials",
        "authorization",
        "eventkit_token",
        "auth_key",
    )
)
# scheme://[userinfo@]rest, up to whitespace or a quote: a URL inside any text.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
# An NKEY seed (base32, 'S' then the key type): secret wherever it appears.
_NKEY_SEED = re.compile(r"\bS[UANOCPX][A-Z2-7]{56}\b")
# A JSON Web Token (header.claims.signature, base64url): a bearer credential wherever it is.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]+\.eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
# name=value pairs in a query or a text (token=..., password: ...).
_PAIR = re.compile(r"(?i)\b([a-z_\-]+)(=|:\s*)([^&#\s,;'\"]+)")


@overload
def redact(value: str) -> str: ...
@overload
def redact(value: Mapping[str, Any]) -> dict[str, Any]: ...
@overload
def redact(value: None) -> None: ...


def redact(value: Any) -> Any:
    """``value`` with its secrets written as ``***``.

    A string is a URL or a text that may contain URLs: the password (or a token alone) in a
    URL's user info, secret query parameters (``token=``, ``password=``...), NKEY seeds and
    JSON Web Tokens are replaced; the rest stays, so the result still says where. A mapping
    of settings comes back with secret-named values replaced and URL values redacted.
    Anything else is returned as it is.
    """
    if isinstance(value, str):
        if "://" in value:
            value = _URL.sub(_redact_url_match, value)
        if "S" in value:
            value = _NKEY_SEED.sub(SECRET, value)
        if "eyJ" in value:
            value = _JWT.sub(SECRET, value)
        return value
    if isinstance(value, Mapping):
        return {key: _redact_setting(str(key), item) for key, item in value.items()}
    return value


def is_secret_name(name: str) -> bool:
    """Whether an option or parameter of this name holds a secret."""
    return name.lower().replace("-", "_") in _SECRET_NAMES


def _redact_setting(name: str, value: Any) -> Any:
    if value is None:
        return None
    if is_secret_name(name):
        return SECRET
    if isinstance(value, str | Mapping):
        return redact(value)
    if isinstance(value, list | tuple):
        return type(value)(redact(v) if isinstance(v, str) else v for v in value)
    return value


def _redact_url_match(match: re.Match[str]) -> str:
    return _redact_url(match.group(0))


def _redact_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    # The authority ends at the first / ? or #; user info is everything before its last @.
    end = len(rest)
    for mark in "/?#":
        at = rest.find(mark)
        if at != -1:
            end = min(end, at)
    authority, tail = rest[:end], rest[end:]
    userinfo, at_sign, hosts = authority.rpartition("@")
    if at_sign:
        user, colon, _password = userinfo.partition(":")
        userinfo = f"{user}:{SECRET}" if colon else SECRET  # a name alone is a token (NATS)
        authority = f"{userinfo}@{hosts}"
    if "?" in tail or "#" in tail:
        tail = _PAIR.sub(_redact_pair, tail)
    return f"{scheme}://{authority}{tail}"


def _redact_pair(match: re.Match[str]) -> str:
    name, sep, _value = match.groups()
    return f"{name}{sep}{SECRET}" if is_secret_name(name) else match.group(0)
