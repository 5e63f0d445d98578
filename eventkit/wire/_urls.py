"""Broker URLs as messages, logs and the CLI show them: without their secrets.

A URL may carry a user and password (``amqp://user:pass@host/``, ``nats://user:pass@h:4222``)
or a token (``nats://token@host``); none of it may reach a log, an error or a CLI line. What
stays (scheme, hosts, ports, path) is what a reader needs to see where a process points.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["redact_url"]

_SECRET_PARAMS = ("password", "pass", "token", "secret", "key", "nkey", "creds")


def redact_url(url: str) -> str:
    """``url`` with any user info replaced by ``***`` and secret query values hidden."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    redacted = f"{scheme}{sep}{netloc}{slash}{tail}"
    parts = urlsplit(redacted)
    if not parts.query:
        return redacted
    query = "&".join(_hide(pair) for pair in parts.query.split("&"))
    return urlunsplit(parts._replace(query=query))


def _hide(pair: str) -> str:
    key, eq, _value = pair.partition("=")
    if eq and any(word in key.lower() for word in _SECRET_PARAMS):
        return f"{key}=***"
    return pair
