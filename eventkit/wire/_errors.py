"""The error model: one exception tree for everything eventkit raises.

Driver exceptions (nats-py, aio-pika, aiohttp) are translated at the adapter boundary, so users
only ever catch these. Remote (RPC) errors carry go-micro's wire shape
``{id, code, detail, status}`` and map to a subclass per status.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "BadRequest",
    "BrokerClosed",
    "BrokerError",
    "ConfigError",
    "ConnectionLost",
    "DeadLetter",
    "DeadlineExceeded",
    "DriverMissing",
    "EventKitError",
    "Forbidden",
    "InternalError",
    "InvalidEvent",
    "InvalidTopic",
    "NotFound",
    "PayloadTooLarge",
    "PublishError",
    "RemoteError",
    "ServiceUnavailable",
    "StreamClosed",
    "Unauthorized",
    "UnsupportedFeature",
]


class EventKitError(Exception):
    """Base of every error eventkit raises."""


class ConfigError(EventKitError, ValueError):
    """A setting, name or signature is wrong; the message says what to change."""


class InvalidTopic(ConfigError):
    """A topic or topic pattern is not valid (dot-separated tokens, ``*`` and ``>`` wildcards)."""


class DriverMissing(ConfigError, ImportError):
    """The broker's driver is not installed; the message gives the pip command."""


class BrokerError(EventKitError):
    """Something went wrong talking to the broker."""


class ConnectionLost(BrokerError, ConnectionError):
    """The broker cannot be reached, or the connection broke and did not come back in time."""


class BrokerClosed(BrokerError):
    """The broker was used after ``close()`` (or before ``connect()``)."""


class PublishError(BrokerError):
    """The broker refused a message or could not confirm it."""


class PayloadTooLarge(PublishError):
    """The message body is larger than the broker accepts; nothing was sent."""


class UnsupportedFeature(BrokerError):
    """This broker cannot honour the requested semantic (e.g. ``durable=`` where it has none)."""


class InvalidEvent(EventKitError, ValueError):
    """A message is not a valid CloudEvent, or its data does not match the handler's type."""


class DeadLetter(EventKitError):
    """Raised by a handler (or by eventkit) to dead-letter a durable message at once.

    Retrying cannot help (the event is malformed, the data invalid): the broker skips the
    remaining attempts and moves the message to the dead-letter topic with ``reason``.
    On a non-durable subscription it is logged and the message dropped.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StreamClosed(EventKitError):
    """A stream's sending side is closed: ``close_send()`` was called, the stream was
    cancelled, or the other side ended it. Nothing was sent."""


class RemoteError(EventKitError):
    """An RPC failed; the shape matches go-micro's ``{id, code, detail, status}``.

    ``id`` names the service (or the caller, for local failures), ``code`` is a numeric status
    like HTTP's, ``detail`` a human text, ``status`` the status text. Handlers may raise it
    (or a subclass) to send a typed error to the caller.
    """

    code: ClassVar[int] = 500
    status: ClassVar[str] = "Internal Server Error"
    _by_code: ClassVar[dict[int, type[RemoteError]]] = {}

    def __init__(
        self, detail: str, *, id: str = "", code: int | None = None, data: Any = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.id = id
        self.data = data
        if code is not None:
            self.code = code  # type: ignore[misc]  # per-instance override of the class default

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        RemoteError._by_code.setdefault(cls.code, cls)

    def __str__(self) -> str:
        where = f" from {self.id}" if self.id else ""
        return f"{self.code} {self.status}{where}: {self.detail}"

    def to_wire(self) -> dict[str, Any]:
        """The JSON object sent to the caller."""
        wire: dict[str, Any] = {
            "id": self.id,
            "code": self.code,
            "detail": self.detail,
            "status": self.status,
        }
        if self.data is not None:
            wire["data"] = self.data
        return wire

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> RemoteError:
        """Rebuild the typed exception a caller raises from the wire object."""
        code = int(wire.get("code", 500))
        kind = RemoteError._by_code.get(code, RemoteError)
        err = kind(
            str(wire.get("detail", "")),
            id=str(wire.get("id", "")),
            code=code,
            data=wire.get("data"),
        )
        if kind is RemoteError:
            err.status = str(wire.get("status", "Error"))  # type: ignore[misc]
        return err


class BadRequest(RemoteError):
    """400: the request did not validate; ``data`` holds the field errors."""

    code = 400
    status = "Bad Request"


class Unauthorized(RemoteError):
    """401: the call or event carried no token, or one that is expired or not signed by a
    key the service trusts; the detail says which (never the token)."""

    code = 401
    status = "Unauthorized"


class Forbidden(RemoteError):
    """403: the caller's token is valid but lacks a scope the endpoint or subscription
    requires."""

    code = 403
    status = "Forbidden"


class NotFound(RemoteError):
    """404: the service has no such endpoint."""

    code = 404
    status = "Not Found"


class DeadlineExceeded(RemoteError, TimeoutError):
    """408: no reply within the call's deadline."""

    code = 408
    status = "Request Timeout"


class InternalError(RemoteError):
    """500: the handler raised; its traceback stays in the handler's log."""

    code = 500
    status = "Internal Server Error"


class ServiceUnavailable(RemoteError):
    """503: no node of the service is known or reachable."""

    code = 503
    status = "Service Unavailable"


RemoteError._by_code[500] = InternalError
