"""``eventkit up [DIR]``: bring up a stack of services, each in its own process.

The broker is ``--broker`` / ``EVENTKIT_BROKER``, the stack file's ``broker``, or the default
``nats://127.0.0.1:4222``. When nothing answers at the default, an embedded nats-server
(JetStream on) is started there first, and stopped last; a URL that was named and does not
answer is an error, unless ``--embed`` asks for a server on it (a typo in a port never starts a
broker of its own). ``--nats-cluster`` starts a 3-node JetStream cluster on loopback instead
(the URL's port and the next two; routes and monitoring on free ports), and the services get
all three servers, so their streams and buckets get 3 replicas. Every replica of every service
runs as ``python -m eventkit.cli run MODULE:ATTR`` in a session of its own, bound to this
process's life (:mod:`.lifeline`: no child survives ``up``, even one killed with SIGKILL), with
its output prefixed and coloured. A process is *up* once its node appears in the registry
(matched by host and pid), *restarting* after it exited by itself (with backoff), and *down*
once stopped. The first Ctrl-C, SIGTERM or SIGHUP (a closed terminal) stops every process
gracefully (SIGTERM: drain, say leave) and SIGKILLs what did not stop within ``--grace``
seconds; a second one kills at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import anyio
import anyio.abc
import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from ..discovery import RegistryChange
from ..service import Client, Settings, new_node_id
from ..wire import ConfigError, EventKitError, redact
from .broker import EmbeddedBroker
from .connection import DEFAULT_BROKER, BrokerOption, NamespaceOption, no_broker_hint, run_async
from .lifeline import STOP_SIGNALS, child_env, signal_group
from .output import console, fail, progress
from .stack import ServiceSpec, Stack, load_stack

__all__ = ["Supervisor", "up"]

COLORS = (
    "cyan",
    "magenta",
    "green",
    "yellow",
    "blue",
    "bright_red",
    "bright_cyan",
    "bright_magenta",
    "bright_green",
    "bright_yellow",
    "bright_blue",
)
HOST = socket.gethostname()


@dataclass
class Proc:
    """One replica of one service, and what the supervisor knows of it."""

    spec: ServiceSpec
    label: str
    color: str
    state: str = "starting"
    detail: str = ""
    pid: int | None = None
    node_id: str | None = None
    restarts: int = 0
    process: anyio.abc.Process | None = None
    exited: anyio.Event = field(default_factory=anyio.Event)


class Supervisor:
    """Runs the processes of a stack until told to stop; reports their state as it changes."""

    def __init__(
        self,
        stack: Stack,
        url: str,
        namespace: str | None,
        *,
        grace: float = 10.0,
        shown: str | None = None,
    ) -> None:
        self.stack = stack
        self.url = url
        self.shown = shown or url  # the URL as the stack's lines show it
        self.namespace = namespace
        self.grace = grace
        self.procs: list[Proc] = []
        for i, spec in enumerate(stack.services):
            for n in range(1, spec.replicas + 1):
                label = spec.name if spec.replicas == 1 else f"{spec.name}.{n}"
                self.procs.append(Proc(spec, label, COLORS[i % len(COLORS)]))
        self.width = max(len(p.label) for p in self.procs)
        self.width = max(self.width, len("eventkit"))
        self.stopping = False
        self._stop_requested = anyio.Event()
        self._all_up_said = False
        self._live: Live | None = None

    # -- output --------------------------------------------------------------------------

    def log(self, proc: Proc, line: str) -> None:
        console.print(f"[{proc.color}]{proc.label:<{self.width}} |[/] {escape(line)}")

    def say(self, message: str) -> None:
        console.print(f"[bold]{'eventkit':<{self.width}} |[/] {escape(message)}")

    def set_state(self, proc: Proc, state: str, detail: str = "") -> None:
        if proc.state == state and proc.detail == detail:
            return
        proc.state, proc.detail = state, detail
        self.say(f"{proc.label} is {state}" + (f" ({detail})" if detail else ""))
        if not self._all_up_said and all(p.state == "up" for p in self.procs):
            self._all_up_said = True
            self.say(
                f"stack {self.stack.name} is up: {len(self.procs)} process(es) on "
                f"{redact(self.shown)}"
                + (f", namespace {self.namespace}" if self.namespace else "")
                + "; Ctrl-C stops it"
            )

    def table(self) -> RenderableType:
        table = Table(
            "SERVICE", "PID", "STATE", "RESTARTS", "NODE", title=f"stack {self.stack.name}"
        )
        styles = {"up": "green", "starting": "yellow", "restarting": "red", "down": "dim"}
        for p in self.procs:
            table.add_row(
                p.label,
                str(p.pid or "-"),
                f"[{styles.get(p.state, '')}]{p.state}[/]",
                str(p.restarts),
                p.node_id or "-",
            )
        return Group(table)

    # -- running -------------------------------------------------------------------------

    def env_for(self, proc: Proc) -> dict[str, str]:
        env = child_env()
        env["EVENTKIT_BROKER"] = self.url
        if self.namespace:
            env["EVENTKIT_NAMESPACE"] = self.namespace
        paths = [str(p) for p in self.stack.pythonpath]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.stack.env)
        env.update(proc.spec.env)
        return env

    async def run(self) -> None:
        """Run every process until SIGINT/SIGTERM, then stop them all."""
        live = (
            Live(get_renderable=self.table, console=console, refresh_per_second=4, transient=True)
            if console.is_terminal
            else None
        )
        self._live = live
        if live is not None:
            live.start()
        try:
            async with anyio.create_task_group() as aux:
                aux.start_soon(self._signals)
                aux.start_soon(self._watch_registry)
                async with anyio.create_task_group() as tg:
                    for proc in self.procs:
                        tg.start_soon(self._supervise, proc)
                    tg.start_soon(self._stopper)
                aux.cancel_scope.cancel()
        finally:
            if live is not None:
                live.stop()
                console.print(self.table())

    def stop(self) -> None:
        """Ask every process to stop (as the first Ctrl-C does)."""
        self._stop_requested.set()

    async def _signals(self) -> None:
        # The loop's handlers replace any inherited disposition, SIGINT ignored included.
        with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
            async for signum in signals:
                if not self._stop_requested.is_set():
                    self.say(
                        f"{signal.Signals(signum).name}: stopping every process "
                        f"(grace {self.grace:.0f}s; Ctrl-C again kills them)"
                    )
                    self.stop()
                else:
                    self.say("killing every process")
                    self._signal_all(signal.SIGKILL)

    def _signal_all(self, signum: signal.Signals) -> None:
        for proc in self.procs:
            if proc.process is not None and proc.process.returncode is None:
                signal_group(proc.process.pid, signum)

    async def _stopper(self) -> None:
        await self._stop_requested.wait()
        self.stopping = True
        self._signal_all(signal.SIGTERM)
        with anyio.move_on_after(self.grace):
            for proc in self.procs:
                await proc.exited.wait()
        late = [p.label for p in self.procs if not p.exited.is_set()]
        if late:
            self.say(f"not stopped within {self.grace:.0f}s, killing: {', '.join(late)}")
            self._signal_all(signal.SIGKILL)

    async def _supervise(self, proc: Proc) -> None:
        backoff = 1.0
        cmd = [sys.executable, "-m", "eventkit.cli", "run", proc.spec.target]
        try:
            while not self.stopping:
                started = time.monotonic()
                process = await anyio.open_process(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env=self.env_for(proc),
                    start_new_session=True,
                )
                proc.process, proc.pid, proc.node_id = process, process.pid, None
                self.set_state(proc, "starting", f"pid {process.pid}")
                if self.stopping:  # a stop came while it started
                    signal_group(process.pid, signal.SIGTERM)
                assert process.stdout is not None
                await self._pump(proc, process.stdout)
                with anyio.CancelScope(shield=True):
                    code = await process.wait()
                if self.stopping:
                    self.set_state(proc, "down", f"exit status {code}")
                    return
                if time.monotonic() - started > 30:
                    backoff = 1.0
                proc.restarts += 1
                self.set_state(proc, "restarting", f"exit status {code}; again in {backoff:.0f}s")
                with anyio.move_on_after(backoff):
                    await self._stop_requested.wait()
                backoff = min(backoff * 2, 10.0)
            self.set_state(proc, "down", "stopped")
        finally:
            proc.exited.set()

    async def _pump(self, proc: Proc, stream: anyio.abc.ByteReceiveStream) -> None:
        buffer = b""
        while True:
            try:
                chunk = await stream.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                self.log(proc, line.decode(errors="replace").rstrip())
        if buffer:
            self.log(proc, buffer.decode(errors="replace").rstrip())

    async def _watch_registry(self) -> None:
        """Marks a process up once its node is in the registry (by host and pid)."""
        argv = ["--broker", self.url] + (["--namespace", self.namespace] if self.namespace else [])
        client = Client(settings=Settings.load(argv=argv), node_id=new_node_id("up"))
        try:
            await client.connect()
            registry = await client.get_registry()
        except EventKitError as exc:
            self.say(f"cannot watch the registry ({redact(str(exc))}); states stay 'starting'")
            return
        registry.add_listener(self._on_change)
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await client.close()

    def _on_change(self, change: RegistryChange) -> None:
        host, _, pid = change.node.address.rpartition("/")
        if host != HOST or not pid.isdigit():
            return
        for proc in self.procs:
            if proc.pid == int(pid) and proc.process is not None:
                if change.kind == "removed":
                    if not self.stopping and proc.process.returncode is None:
                        self.set_state(proc, "starting", f"left the registry: {change.reason}")
                    return
                proc.node_id = change.node.id
                self.set_state(proc, "up", f"pid {proc.pid}, node {change.node.id}")
                return


def _answers(url: str) -> bool | None:
    """Whether something listens at the URL's host:port (None when that cannot be told)."""
    parts = urlsplit(url)
    if "," in parts.netloc or parts.hostname is None:
        return None
    port = parts.port or {"nats": 4222, "amqp": 5672, "amqps": 5671}.get(parts.scheme)
    if port is None:
        return None
    try:
        with socket.create_connection((parts.hostname, port), timeout=1.0):
            return True
    except OSError:
        return False


def _embedded_port(url: str) -> int | None:
    """The port to start an embedded NATS on, when ``url`` is one loopback NATS server."""
    parts = urlsplit(url)
    if parts.scheme != "nats" or "," in parts.netloc or "@" in parts.netloc:
        return None
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    return parts.port or 4222


EmbedOption = Annotated[
    bool | None,
    typer.Option(
        "--embed/--no-embed",
        help="Start an embedded NATS server at the broker URL when nothing answers there "
        "[default: only at the default URL]",
        show_default=False,
    ),
]


ClusterOption = Annotated[
    bool,
    typer.Option(
        "--nats-cluster",
        help="Start a local 3-node NATS JetStream cluster (R3 streams) on loopback at the "
        "broker URL's port and the next two, instead of a single embedded server",
    ),
]


def up(
    directory: Annotated[
        Path, typer.Argument(help="Directory with an eventkit.toml naming the services")
    ] = Path("."),
    broker: BrokerOption = None,
    namespace: NamespaceOption = None,
    grace: Annotated[
        float, typer.Option(help="Seconds processes get to stop before they are killed")
    ] = 10.0,
    embed: EmbedOption = None,
    nats_cluster: ClusterOption = False,
) -> None:
    """Bring up a stack (broker included, when none runs) until Ctrl-C."""
    try:
        stack = load_stack(directory)
    except ConfigError as exc:
        fail(str(exc), "see `eventkit up --help` and docs/cli.md for the stack file")
    url = broker or stack.broker or DEFAULT_BROKER
    source = _source(broker, stack)
    if url.startswith("memory:"):
        fail(
            "memory:// lives in one process, and a stack runs one process per service",
            f"use a shared broker, e.g. the default {DEFAULT_BROKER} (started for you if absent)",
        )
    try:
        Settings.load(argv=["--broker", url] + (["--namespace", namespace] if namespace else []))
    except ConfigError as exc:
        fail(str(exc))
    server: EmbeddedBroker | None
    if nats_cluster:
        server = _cluster_for(url, embed)
        url = server.url
    else:
        server = _broker_for(url, source, embed)
    shown = url
    if server is not None and server.monitors:
        # The services read the embedded servers' sync settings where they are served.
        url = f"{server.url}?monitor={','.join(server.monitors)}"
    supervisor = Supervisor(stack, url, namespace, grace=grace, shown=shown)
    try:
        run_async(supervisor.run, handle_signals=False)
    finally:
        if server is not None:
            server.stop()
            what = "cluster" if nats_cluster else "server"
            console.print(f"[bold]eventkit |[/] embedded NATS {what} stopped")


def _source(broker: str | None, stack: Stack) -> str | None:
    """Where the broker URL was named (None: nowhere, the default)."""
    if broker is not None:
        return "--broker / EVENTKIT_BROKER"
    if stack.broker is not None:
        return f"{stack.directory / 'eventkit.toml'} [stack] broker"
    return None


def _broker_for(url: str, source: str | None, embed: bool | None) -> EmbeddedBroker | None:
    """The embedded server to run for the stack, if any; fails when no broker can be had."""
    if _answers(url) is not False:
        if embed:
            fail(f"--embed: something already answers at {redact(url)}", "leave out --embed")
        return None
    shown = redact(url)
    named = f" (named by {source})" if source else " (the default broker)"
    if embed is False or (embed is None and source is not None):
        fail(f"no broker answers at {shown}{named}", no_broker_hint(url))
    port = _embedded_port(url)
    if port is None:
        fail(
            f"no broker answers at {shown}{named}, and an embedded NATS server can only be "
            "started at a loopback nats:// URL (nats://127.0.0.1:PORT)",
            no_broker_hint(url),
        )
    with progress(f"starting an embedded NATS server on 127.0.0.1:{port}"):
        server = EmbeddedBroker(port)
        try:
            server.start()
        except EventKitError as exc:
            fail(f"could not start an embedded NATS server: {exc}", no_broker_hint(url))
    console.print(
        f"[bold]eventkit |[/] nothing answered at {escape(shown)}: started an embedded NATS "
        f"server (JetStream on, pid {server.pid}) at {escape(server.url)}; it stops with the stack"
    )
    return server


def _cluster_for(url: str, embed: bool | None) -> EmbeddedBroker:
    """The 3-node cluster of ``--nats-cluster``, at the URL's port and the next two."""
    shown = redact(url)
    if embed is False:
        fail("--nats-cluster starts a cluster of its own; leave out --no-embed")
    port = _embedded_port(url)
    if port is None or port + 2 > 65535:
        fail(
            f"--nats-cluster starts its nodes at a loopback nats:// URL, got {shown}",
            "e.g. --broker nats://127.0.0.1:4222 (nodes on 4222, 4223 and 4224)",
        )
    taken = [p for p in range(port, port + 3) if _answers(f"nats://127.0.0.1:{p}")]
    if taken:
        fail(
            f"--nats-cluster: something already answers on 127.0.0.1 port(s) "
            f"{', '.join(map(str, taken))}",
            "pick another port with --broker nats://127.0.0.1:PORT (the cluster takes PORT "
            "and the next two)",
        )
    with progress(f"starting a 3-node NATS cluster on 127.0.0.1:{port}-{port + 2}"):
        server = EmbeddedBroker(port, nodes=3)
        try:
            server.start()
        except EventKitError as exc:
            fail(f"could not start the NATS cluster: {exc}", no_broker_hint(url))
    console.print(
        f"[bold]eventkit |[/] started a 3-node NATS JetStream cluster (pid {server.pid}) at "
        f"{escape(server.url)}: streams and buckets get 3 replicas; it stops with the stack"
    )
    return server
