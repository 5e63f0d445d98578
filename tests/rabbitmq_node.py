"""Private RabbitMQ nodes for the tests that restart (or later cluster) a server.

The machine's RabbitMQ at 127.0.0.1:5672 is shared with other test runs and other people, so
no test stops it. A test that needs to restart a server starts a node of its own instead,
with the ``rabbitmq-server`` and ``rabbitmqctl`` on this machine::

    async with private_rabbitmq() as node:      # started, on a free loopback port
        broker = RabbitBroker(node.url)
        await node.restart()                    # stop_app, then start_app
        async with node.outage():               # down for the block
            ...
                                                # stopped, its folder removed, at the end

A node has its own name (``eventkit-test-<hex>@localhost``), AMQP and Erlang distribution
ports, data and log folders, config, an empty plugin list (no management listener to clash
with the shared node's) and an Erlang cookie. Nodes made from one :class:`RabbitHome` share
the cookie, so they can form a cluster: ``await b.join(a)`` (``join_cluster``), and
:func:`private_rabbitmq_cluster` starts N of them joined to the first, or, given a config
file such as ``brokers/rabbitmq/cluster.conf``, lets them find each other by classic config
peer discovery with that file's settings (its node names replaced by the private ones).
``await node.kill()`` ends a node at once (SIGKILL), as a crash or a power cut would.

Under ``CI`` a machine without ``rabbitmq-server`` fails the test (tests.servers).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import anyio
from anyio.abc import Process

from tests.servers import free_port, port_open, require_tool

__all__ = [
    "RabbitHome",
    "RabbitNode",
    "cluster_config",
    "private_rabbitmq",
    "private_rabbitmq_cluster",
]

START_TIMEOUT = 120.0
"""Bound of a node's boot (a few seconds when the machine is quiet)."""


def _tool_dir() -> Path:
    """Where the real ``rabbitmq-server`` and ``rabbitmqctl`` scripts live.

    Debian's ``/usr/sbin/rabbitmq-*`` are a wrapper that switches to the ``rabbitmq`` user
    and the system node's environment; the scripts beside the wrapper take ours.
    """
    require_tool("rabbitmqctl", "to manage a private RabbitMQ node")
    return (
        Path(require_tool("rabbitmq-server", "to start a private RabbitMQ node")).resolve().parent
    )


@dataclass
class RabbitHome:
    """A folder for nodes that share one Erlang cookie (the nodes of one cluster)."""

    root: Path
    cookie: str = field(default_factory=lambda: secrets.token_hex(16))

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        cookie_file = self.root / ".erlang.cookie"
        cookie_file.write_text(self.cookie)
        cookie_file.chmod(0o400)  # Erlang refuses a cookie others can read

    def node(self) -> RabbitNode:
        """A new, not yet started node in this home."""
        return RabbitNode(self, f"eventkit-test-{secrets.token_hex(4)}")


@dataclass
class RabbitNode:
    """One private RabbitMQ node: ``await start()``, ``restart()``, ``stop()``."""

    home: RabbitHome
    name: str
    amqp_port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    config: str = ""
    """More rabbitmq.conf lines, after the node's own listener."""
    _process: Process | None = field(default=None, repr=False)
    _output: IO[bytes] | None = field(default=None, repr=False)

    @property
    def nodename(self) -> str:
        return f"{self.name}@localhost"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def folder(self) -> Path:
        return self.home.root / self.name

    def _env(self) -> dict[str, str]:
        loopback_only = "-kernel inet_dist_use_interface {127,0,0,1}"
        return {
            **os.environ,
            "HOME": str(self.home.root),  # where Erlang reads the cookie
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.folder / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "rabbitmq-env.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": loopback_only,
            "RABBITMQ_CTL_ERL_ARGS": loopback_only,
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_CRASH_DUMP": str(self.folder / "log" / "erl_crash.dump"),
        }

    def _prepare(self) -> IO[bytes]:
        """Write the node's files; the open console log its output goes to."""
        for sub in ("mnesia", "log"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        # Not the machine's /etc/rabbitmq files: they name the shared node and its port.
        (self.folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}\n{self.config}"
        )
        (self.folder / "enabled_plugins").write_text("[].\n")
        (self.folder / "rabbitmq-env.conf").write_text("")
        return open(self.folder / "console.log", "ab")  # closed by stop()

    def log_tail(self, lines: int = 40) -> str:
        """The end of the node's console output, for failure messages."""
        path = self.folder / "console.log"
        if not path.exists():
            return "(no output)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    async def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run ``rabbitmqctl -n <this node> ARGS``; its output, or an error with it."""
        command = [str(_tool_dir() / "rabbitmqctl"), "-q", "-n", self.nodename, *args]
        with anyio.fail_after(timeout):
            done = await anyio.run_process(command, env=self._env(), check=False)
        out = (done.stdout + done.stderr).decode(errors="replace")
        if done.returncode != 0:
            raise RuntimeError(f"`rabbitmqctl {' '.join(args)}` on {self.nodename}: {out}")
        return out

    async def start(self) -> None:
        """Start the node and return once it serves AMQP."""
        if self._process is not None:
            raise RuntimeError(f"{self.nodename} is already running")
        self._output = self._prepare()
        self._process = await anyio.open_process(
            [str(_tool_dir() / "rabbitmq-server")],
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() can end all of it
        )
        try:
            await self._wait_serving(START_TIMEOUT)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.stop()
            raise

    async def _wait_serving(self, timeout: float) -> None:
        with anyio.move_on_after(timeout):
            while not port_open("127.0.0.1", self.amqp_port, timeout=0.2):
                if self._process is None or self._process.returncode is not None:
                    raise RuntimeError(
                        f"RabbitMQ node {self.nodename} exited at start:\n{self.log_tail()}"
                    )
                await anyio.sleep(0.1)
            return  # the AMQP listener opens last in a boot
        raise TimeoutError(
            f"RabbitMQ node {self.nodename} did not serve on 127.0.0.1:{self.amqp_port} "
            f"within {timeout}s:\n{self.log_tail()}"
        )

    async def restart(self) -> None:
        """Restart the RabbitMQ application (``stop_app``, ``start_app``): every connection
        drops, durable queues and their messages stay. Returns once it serves AMQP again."""
        async with self.outage():
            pass

    @asynccontextmanager
    async def outage(self) -> AsyncIterator[None]:
        """The RabbitMQ application is stopped for the block (the node runs on, refusing
        connections), and started again after it, whatever happens inside."""
        with anyio.CancelScope(shield=True):
            await self.ctl("stop_app")
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                await self.ctl("start_app")
                await self._wait_serving(START_TIMEOUT)

    async def join(self, other: RabbitNode) -> None:
        """Make this node a member of ``other``'s cluster (both from one RabbitHome)."""
        if other.home is not self.home:
            raise ValueError("nodes of one cluster share a RabbitHome (one Erlang cookie)")
        await self.ctl("stop_app")
        await self.ctl("join_cluster", other.nodename)
        await self.ctl("start_app")
        await self._wait_serving(START_TIMEOUT)

    async def kill(self) -> None:
        """End the node at once with SIGKILL, as a crash would: no goodbye to its peers or
        clients, nothing flushed that RabbitMQ did not already write."""
        process, self._process = self._process, None
        if process is None:
            return
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            if self._output is not None:
                self._output.close()
                self._output = None

    async def stop(self) -> None:
        """Stop the node (gracefully, else by killing its process group); idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        with anyio.CancelScope(shield=True):
            try:
                if process.returncode is None:
                    with contextlib.suppress(RuntimeError, TimeoutError, OSError):
                        await self.ctl("stop", timeout=30)  # else killed below
                with anyio.move_on_after(30):
                    await process.wait()
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                        os.killpg(process.pid, signal.SIGKILL)
                    await process.wait()
            finally:
                if self._output is not None:
                    self._output.close()
                    self._output = None


_PEER_NODE = re.compile(r"^\s*cluster_formation\.classic_config\.nodes\.[^=]*=.*$", re.M)
_PEER_BACKEND = re.compile(
    r"^\s*cluster_formation\.peer_discovery_backend\s*=\s*classic_config\s*$", re.M
)


def cluster_config(template: str, nodenames: list[str]) -> str:
    """``template`` (a rabbitmq.conf with classic config peer discovery) naming ``nodenames``
    instead of its own nodes."""
    if not _PEER_BACKEND.search(template) or not _PEER_NODE.search(template):
        raise ValueError("the cluster config has no classic_config peer discovery with nodes")
    kept = _PEER_NODE.sub("", template).rstrip("\n")
    listed = "".join(
        f"cluster_formation.classic_config.nodes.{i} = {name}\n"
        for i, name in enumerate(nodenames, 1)
    )
    return f"{kept}\n{listed}"


async def _start_all(nodes: list[RabbitNode]) -> None:
    async with anyio.create_task_group() as tg:  # the boots overlap
        for node in nodes:
            tg.start_soon(node.start)


@asynccontextmanager
async def private_rabbitmq_cluster(
    size: int, *, config: Path | None = None
) -> AsyncIterator[list[RabbitNode]]:
    """``size`` started nodes of one cluster; all stopped and their folder removed at the end.

    Without ``config`` the second and later nodes join the first (``join_cluster``). With it,
    every node boots with that file's settings and finds the others by classic config peer
    discovery: the first boots alone, the others then join it as they boot (nodes that all
    boot at once could each form a cluster of their own).
    """
    _tool_dir()  # a missing rabbitmq-server says so here, not from inside a task group
    root = Path(tempfile.mkdtemp(prefix="eventkit-rabbitmq-"))
    try:
        home = RabbitHome(root)
        async with AsyncExitStack() as stack:
            nodes = [home.node() for _ in range(size)]
            for node in nodes:
                stack.push_async_callback(node.stop)
            if config is None:
                await _start_all(nodes)
                for node in nodes[1:]:
                    await node.join(nodes[0])
            else:
                template = await anyio.Path(config).read_text()
                text = cluster_config(template, [n.nodename for n in nodes])
                for node in nodes:
                    node.config = text
                await nodes[0].start()
                await _start_all(nodes[1:])
                await nodes[0].ctl("await_online_nodes", str(size), timeout=START_TIMEOUT)
            yield nodes
    finally:
        shutil.rmtree(root, ignore_errors=True)


@asynccontextmanager
async def private_rabbitmq() -> AsyncIterator[RabbitNode]:
    """One started node of this test's own; stopped and removed at the end."""
    async with private_rabbitmq_cluster(1) as (node,):
        yield node
