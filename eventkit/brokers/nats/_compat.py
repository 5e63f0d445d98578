"""Every nats-py private name eventkit uses, and the check that they are still there.

nats-py has no public API for a few things the adapter needs: the server's INFO (JetStream on
or off, max_payload as the server says it), a subscription's id (to route its messages
directly, to drop it locally), sending an UNSUB for a pull consumer, and the methods the
faster client (:mod:`._fastpath`) overrides. Each is reached through a function here, and
:func:`missing` lists the ones a nats-py release lacks. pyproject.toml bounds nats-py to the
releases the tests pass on; this check is the belt to that brace: the faster client is only
used when everything it overrides is present, and a connect on a nats-py that lacks what the
adapter cannot do without fails with an error naming the supported releases.
"""

from __future__ import annotations

import inspect
from typing import Any

from nats.aio.client import Client
from nats.aio.subscription import Subscription

from ...wire import DriverMissing

__all__ = [
    "SUPPORTED",
    "fast_client_supported",
    "missing",
    "remove_sub",
    "require",
    "send_unsubscribe",
    "server_info",
    "sid",
]

SUPPORTED = "nats-py>=2.9,<2.17"
"""The releases eventkit is tested on (pyproject.toml says the same)."""

_CLIENT_NAMES = ("_server_info", "_remove_sub", "_send_unsubscribe")
_FAST_CLIENT_NAMES = ("_send_command", "_flush_queue", "_flush_pending", "_process_headers")


def _has(obj: Any, names: tuple[str, ...]) -> list[str]:
    return [name for name in names if not hasattr(obj, name)]


def missing() -> list[str]:
    """The private names the adapter needs (not counting the faster client) that are gone."""
    client = Client()
    gone = _has(client, _CLIENT_NAMES)
    if "id" not in inspect.signature(Subscription.__init__).parameters:
        gone.append("Subscription(id=...)")
    elif not hasattr(Subscription(client, 1), "_id"):
        gone.append("Subscription._id")
    return gone


def fast_client_supported() -> bool:
    """Whether nats-py still has the methods the faster client overrides or calls, with
    the signatures it was written against (otherwise nats-py's own client is used)."""
    try:
        send = inspect.signature(Client._send_publish)
        process = inspect.signature(Client._process_msg)
        parse = inspect.getattr_static(Client, "_parse_header_lines")
    except (AttributeError, ValueError, TypeError):
        return False
    return (
        not _has(Client(), _FAST_CLIENT_NAMES)
        and list(send.parameters)
        == ["self", "subject", "reply", "payload", "payload_size", "headers"]
        and list(process.parameters) == ["self", "sid", "subject", "reply", "data", "headers"]
        and isinstance(parse, staticmethod)
    )


_MISSING = missing()


def require() -> None:
    """Raise DriverMissing when the installed nats-py lacks what the adapter needs."""
    if _MISSING:
        raise DriverMissing(
            f"this nats-py release lacks {', '.join(_MISSING)}, which eventkit needs; "
            f'install a supported one: pip install "{SUPPORTED}"'
        )


def server_info(nc: Client) -> dict[str, Any]:
    """The INFO the server sent on connect (empty before it did)."""
    info: dict[str, Any] = nc._server_info or {}
    return info


def sid(sub: Subscription) -> int:
    """A subscription's id, as the protocol's MSG lines carry it."""
    value: int = sub._id
    return value


def remove_sub(nc: Client, subscription_id: int) -> None:
    """Forget a subscription locally (its UNSUB was sent, or the link is down)."""
    nc._remove_sub(subscription_id)


async def send_unsubscribe(nc: Client, subscription_id: int) -> None:
    """Send UNSUB for a subscription without waiting on its pending messages."""
    await nc._send_unsubscribe(subscription_id)
