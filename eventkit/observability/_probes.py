"""The probe server: ``/healthz``, ``/readyz`` and ``/metrics`` on one small HTTP port.

It runs on the service's own event loop, so an answer to ``/healthz`` proves the loop is
alive, and a blocked loop fails the probe by timing out, as an orchestrator's liveness
probe expects. It speaks just enough HTTP/1.1 for probes and scrapers (GET and HEAD, one
request per connection, a bounded request head read within a few seconds) and needs no
dependency; ``/metrics`` answers what the metrics exposition callable returns (the
Prometheus text format, with the ``otel`` extra), or 404 saying how to turn it on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import anyio
import anyio.abc

from .._tasks import TaskHost
from ..wire import ConfigError
from ._health import Health

__all__ = ["Exposition", "ProbeServer"]

log = logging.getLogger("eventkit.probes")

Exposition = Callable[[], tuple[str, bytes]]
"""Returns (content type, body) of the metrics page."""

_MAX_HEAD = 8192
_READ_TIMEOUT = 5.0
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 400: "Bad Request"}
_REASONS[503] = "Service Unavailable"
_JSON = "application/json"


class ProbeServer:
    """Serves ``health`` on ``host:port`` (port 0: any free one, see :attr:`port`)."""

    def __init__(
        self, health: Health, *, host: str, port: int, metrics: Exposition | None = None
    ) -> None:
        self.health = health
        self.host = host
        self.port = port
        self.metrics = metrics
        self._tasks = TaskHost("eventkit-probes")
        self._listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None

    async def start(self) -> None:
        try:
            listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve probes and metrics on {self.host}:{self.port}: {exc.strerror}; "
                "choose another EVENTKIT_METRICS_PORT (or metrics_port)"
            ) from exc
        self._listener = listener
        self.port = listener.listeners[0].extra(anyio.abc.SocketAttribute.local_port)
        await self._tasks.start()
        self._tasks.start_soon(listener.serve, self._handle)
        log.info("probes on http://%s:%d (/healthz, /readyz, /metrics)", self.host, self.port)

    async def stop(self) -> None:
        await self._tasks.aclose()
        if self._listener is not None:
            await self._listener.aclose()
            self._listener = None

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            try:
                with anyio.fail_after(_READ_TIMEOUT):
                    head = await _read_head(stream)
                status, content_type, body = self._answer(head)
                method = head.split(b" ", 1)[0]
                await stream.send(_response(status, content_type, body, head=method == b"HEAD"))
            except (TimeoutError, anyio.BrokenResourceError, anyio.EndOfStream, OSError):
                return  # the prober went away or never sent a request: nothing to answer

    def _answer(self, head: bytes) -> tuple[int, str, bytes]:
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            return 400, "text/plain", b"a probe is GET /healthz, /readyz or /metrics\n"
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            return 405, "text/plain", b"only GET and HEAD\n"
        if target == b"/healthz":
            return 200, _JSON, json.dumps({"live": True, "node": self.health.node_id}).encode()
        if target == b"/readyz":
            report = self.health.report()
            return (200 if report["ready"] else 503), _JSON, json.dumps(report).encode()
        if target == b"/metrics":
            if self.metrics is None:
                return (
                    404,
                    "text/plain",
                    (b"metrics are off: install eventkit-micro[otel] to have them served here\n"),
                )
            content_type, body = self.metrics()
            return 200, content_type, body
        return 404, "text/plain", b"not found: try /healthz, /readyz or /metrics\n"


async def _read_head(stream: anyio.abc.SocketStream) -> bytes:
    """The request line and headers (the body, if any, is never needed)."""
    data = b""
    while b"\r\n\r\n" not in data and b"\n\n" not in data:
        if len(data) > _MAX_HEAD:
            break  # answer from what came; the rest of an oversized head is not read
        chunk = await stream.receive(4096)
        data += chunk
    return data


def _response(status: int, content_type: str, body: bytes, *, head: bool) -> bytes:
    lines = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    )
    return lines.encode() if head else lines.encode() + body
