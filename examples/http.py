"""Serve an ASGI app (Starlette) from a Service, between the service's start and stop.

The socket is bound before the broker connects, so a busy port fails the start at once; the
server starts once the service is up and stops before the service drains, so in-flight HTTP
requests can still make their RPC calls. The Service, not uvicorn, owns SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from eventkit import ConfigError, Service

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the Service's run() handles the signals and stops us in before_stop


def serve_http(svc: Service, app: Any, *, port_env: str, host_env: str, port: int) -> None:
    """Serve ``app`` while ``svc`` runs, on ``$host_env`` (127.0.0.1) : ``$port_env`` (port)."""
    state: dict[str, Any] = {}

    @svc.before_start
    def bind() -> None:
        host = os.environ.get(host_env, "127.0.0.1")
        number = int(os.environ.get(port_env, str(port)))
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, number))
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"{svc.name}: cannot listen on {host}:{number} ({exc}); set {port_env}"
            ) from exc
        sock.listen(128)
        state["sock"] = sock
        state["url"] = f"http://{host}:{sock.getsockname()[1]}"

    @svc.after_start
    async def start() -> None:
        config = uvicorn.Config(app, lifespan="off", log_level="warning")
        server = _Server(config)
        state["server"] = server
        state["task"] = asyncio.get_running_loop().create_task(server.serve([state["sock"]]))
        log.info("%s serves HTTP at %s", svc.name, state["url"])

    @svc.before_stop
    async def stop() -> None:
        server, task = state.pop("server", None), state.pop("task", None)
        if server is not None and task is not None:
            server.should_exit = True
            await task  # in-flight requests finish first
        sock = state.pop("sock", None)
        if sock is not None:
            sock.close()
