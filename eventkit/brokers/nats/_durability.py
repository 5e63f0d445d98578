"""Whether the NATS server syncs acknowledged JetStream writes to disk, checked once.

A JetStream ack means the server has the message, not that it is on disk: by default a
server fsyncs its stores every two minutes, so a crash of the machine (power, kernel, VM)
can lose events that publishers saw acknowledged. ``sync_interval: always`` in the server's
``jetstream`` block fsyncs each write before its ack (the shipped configs under
brokers/nats/ and :class:`EmbeddedNats` set it).

Nothing an ordinary client can ask over NATS says which it is: the INFO a server sends,
JetStream account info (``$JS.API.INFO``) and the system requests open to every account
(``$SYS.REQ.USER.INFO``, ``...PING.CONNZ``, ``...PING.STATZ``) carry no sync settings, and
``VARZ``/``JSZ`` answer only the system account. The HTTP monitoring endpoint does:
``/varz`` has ``jetstream.config.sync_always`` and ``sync_interval``. So the broker reads
``/varz`` at its ``monitor=`` URL (or URLs, comma-separated: a cluster's nodes), or at the
NATS default monitoring port (8222) on the host it is connected to, and believes the answer
only when it comes from the server it is connected to (the same ``server_id``). Where no
endpoint answers, it says once that it could not tell. The check is pure but for the HTTP
GETs, run in a worker thread.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from nats.aio.client import Client

from ..._tasks import TaskHost
from ...wire import BrokerClosed, ConfigError, loggable, redact
from ._compat import server_info
from ._config import NatsSettings

__all__ = [
    "DEFAULT_MONITOR_PORT",
    "SyncCheck",
    "SyncReport",
    "check_connection",
    "check_sync",
    "log_report",
    "monitor_for",
    "replicas_for",
    "replicas_of",
]

log = logging.getLogger("eventkit.broker.nats")

DEFAULT_MONITOR_PORT = 8222
_TIMEOUT = 1.0
_MAX_BYTES = 1 << 20
_DOC = "see docs/durability.md"


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What the check found. ``synced``: True (each write fsynced before its ack), False
    (acked before it is synced), None (could not tell: ``reason`` says why)."""

    server: str
    monitor: str
    synced: bool | None
    interval: float | None = None
    reason: str = ""


def replicas_of(settings: NatsSettings, nc: Client) -> int:
    """:func:`replicas_for` the server ``nc`` is connected to and the servers it knows."""
    pool = len({(u.hostname, u.port) for u in nc.servers})
    return replicas_for(settings, server_info(nc), pool)


def replicas_for(settings: NatsSettings, info: dict[str, Any], pool: int = 0) -> int:
    """The ``replicas`` setting, or by the cluster: 3 when the server's INFO names a cluster
    of 3 or more servers (``connect_urls``: the client URLs of the nodes up at connect), or
    the client knows 3 or more of its servers (``pool``: the URL's, and those the cluster
    announced since); else 1 (a single server). More than one replica asked of a single
    server is a :class:`ConfigError` (JetStream refuses it)."""
    clustered = bool(info.get("cluster"))
    if settings.replicas is not None:
        if settings.replicas > 1 and not clustered:
            raise ConfigError(
                f"replicas={settings.replicas} needs a NATS cluster, and the server at "
                f"{settings.display} is a single server: leave replicas unset (1 here, 3 on a "
                "cluster of 3 or more) or set replicas=1"
            )
        return settings.replicas
    if not clustered:
        return 1
    known = max(len(set(info.get("connect_urls") or ())), len(settings.servers), pool)
    return 3 if known >= 3 else 1


async def check_connection(nc: Client, settings: NatsSettings, url: str) -> SyncReport | None:
    """Check the server ``nc`` is connected to (None: the ``monitor`` setting is ``off``)."""
    monitor = settings.monitor
    if monitor == "off":
        return None
    where = nc.connected_url
    host = where.hostname if where is not None else None
    shown = f"{host}:{where.port}" if where is not None else url
    server_id = str(server_info(nc).get("server_id", ""))
    candidates = monitor.split(",") if monitor else [monitor_for(host)]
    reasons = []
    for candidate in candidates:  # a cluster's nodes: the one this connection reached
        report = await check_sync(shown, server_id, candidate)
        if report.synced is not None:
            return report
        reasons.append(report.reason)
    return SyncReport(shown, str(monitor or ""), None, reason="; ".join(reasons))


def monitor_for(host: str | None, port: int = DEFAULT_MONITOR_PORT) -> str | None:
    """The conventional monitoring URL on ``host`` (None without a host)."""
    if not host:
        return None
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}"


def _get_varz(monitor: str) -> Any:
    with urllib.request.urlopen(f"{monitor.rstrip('/')}/varz", timeout=_TIMEOUT) as resp:
        return json.loads(resp.read(_MAX_BYTES))


async def check_sync(server: str, server_id: str, monitor: str | None) -> SyncReport:
    """Read the sync settings of the server ``server_id`` from its ``/varz`` at ``monitor``."""
    if monitor is None:
        return SyncReport(server, "", None, reason="no monitoring URL is known")
    shown = redact(monitor)
    try:
        varz = await anyio.to_thread.run_sync(_get_varz, monitor)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        reason = f"no monitoring endpoint answered at {shown} ({type(exc).__name__})"
        return SyncReport(server, shown, None, reason=reason)
    if not isinstance(varz, dict) or varz.get("server_id") != server_id:
        reason = f"the monitoring endpoint at {shown} belongs to another server"
        return SyncReport(server, shown, None, reason=reason)
    config = (varz.get("jetstream") or {}).get("config") or {}
    interval = config.get("sync_interval")
    seconds = interval / 1e9 if isinstance(interval, int | float) else None
    return SyncReport(server, shown, bool(config.get("sync_always")), seconds)


def log_report(report: SyncReport, replicas: int) -> None:
    """One line: a warning when acked writes may not be on disk, else info or debug."""
    if report.synced:
        log.debug("NATS at %s syncs each JetStream write before its ack", report.server)
        return
    if report.synced is None:
        log.info(
            "could not tell whether NATS at %s syncs JetStream writes before acking them: "
            "%s; pass monitor=http://HOST:8222 (the server's http port), %s",
            report.server,
            loggable(report.reason, quote=False),
            _DOC,
        )
        return
    every = f"every {report.interval:g}s" if report.interval else "on its own schedule"
    risk = (
        "if a majority of the stream's nodes fail at once"
        if replicas >= 3
        else "if the machine fails (power, kernel, VM)"
    )
    log.warning(
        "NATS at %s acknowledges JetStream writes before syncing them to disk (it syncs %s): "
        "acknowledged durable events can be lost %s. Set `sync_interval: always` in the "
        "server's jetstream block (brokers/nats/*.conf ship with it); %s",
        report.server,
        every,
        risk,
        _DOC,
    )


class SyncCheck:
    """The check of one broker's connection: run once per server it reaches (a failover to
    another node of a cluster checks that node too), so at most one warning for each.
    ``client`` gives the connection (raising :class:`BrokerClosed` once it is closed);
    checks that nothing waits for run in ``tasks``."""

    def __init__(
        self, settings: NatsSettings, url: str, client: Callable[[], Client], tasks: TaskHost
    ) -> None:
        self._settings = settings
        self._url = url
        self._client = client
        self._tasks = tasks
        self._servers: set[str] = set()
        self.started = False  # a check ran or is running for the current server
        self.report: SyncReport | None = None

    async def run(self) -> None:
        """Check now, unless this server was checked already (a durable subscribe waits)."""
        if self.started:
            return
        self.started = True
        nc = self._client()
        server_id = str(server_info(nc).get("server_id", ""))
        if server_id in self._servers:
            return
        self._servers.add(server_id)
        self.report = await check_connection(nc, self._settings, self._url)
        if self.report is not None:
            log_report(self.report, self._settings.replicas or replicas_of(self._settings, nc))

    def run_soon(self) -> None:
        """Check beside the caller (a publish never waits for it)."""
        if not self.started:
            self.started = True
            self._tasks.start_soon(self._run_beside)

    def reconnected(self, nc: Client) -> None:
        """After a reconnect: check the server reached, if it is new and a check already ran
        on another (a connection that never did durable work is not checked)."""
        if self._servers and server_info(nc).get("server_id") not in self._servers:
            self._tasks.start_soon(self._run_beside)

    async def _run_beside(self) -> None:
        self.started = False
        try:
            await self.run()
        except BrokerClosed:  # closed meanwhile: nothing left to warn about
            log.debug("the JetStream sync check ended with the broker")
