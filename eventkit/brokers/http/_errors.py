"""aiohttp and socket exceptions as eventkit's, in one place.

A publish on the HTTP broker never fails for a peer's sake: a peer that does not answer is
marked unreachable and its queue-group share moves on (:mod:`._sender`), so what aiohttp
raises there is logged, never raised. What does reach the user (listening on the node's
address) passes through :func:`listen_error`.
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp

from ...wire import ConfigError, ConnectionLost, EventKitError

__all__ = ["NET_ERRORS", "listen_error"]

NET_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
"""What a request to a peer may raise: the peer is then unreachable, not the caller's fault."""


def listen_error(exc: Exception, host: str, port: int) -> EventKitError:
    """Why this node cannot serve at ``host:port``."""
    if isinstance(exc, EventKitError):
        return exc
    if isinstance(exc, ssl.SSLError):
        return ConfigError(f"cannot serve TLS on {host}:{port}: {exc} (check tls_cert and tls_key)")
    return ConnectionLost(
        f"cannot listen on {host}:{port}: {exc}; is another process (or node) on that port?"
    )
