"""Three nodes in separate processes on loopback: they converge, survive a SIGKILL, rejoin."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import anyio
import pytest

from eventkit.brokers.http import HttpBroker
from eventkit.wire import Message
from tests.servers import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("n1", "n2", "n3")


class Mesh:
    def __init__(self) -> None:
        self.ports = {name: free_port() for name in NAMES}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def addr(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def start(self, name: str) -> None:
        seeds = ",".join(self.addr(other) for other in NAMES if other != name)
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "tests.http.node", name, str(self.ports[name]), seeds],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def mesh() -> Iterator[Mesh]:
    mesh = Mesh()
    try:
        yield mesh
    finally:
        mesh.stop_all()


async def _view(session: aiohttp.ClientSession, addr: str) -> set[str] | None:
    """Addresses of the nodes a node knows (itself included), or None if it does not answer."""
    try:
        async with session.get(f"http://{addr}/_eventkit/members") as resp:
            body = await resp.json()
    except (aiohttp.ClientError, OSError, TimeoutError):
        return None
    return {r["addr"] for r in body["records"] if r["status"] == "alive"}


async def _converge(mesh: Mesh, alive: list[str], *, timeout: float = 20.0) -> None:
    wanted = {mesh.addr(n) for n in alive}
    views: dict[str, set[str] | None] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        with anyio.move_on_after(timeout):
            while True:
                views = {n: await _view(session, mesh.addr(n)) for n in alive}
                if all(
                    v is not None and {a for a in v if a in _all(mesh)} == wanted
                    for v in views.values()
                ):
                    return
                await anyio.sleep(0.1)
    raise AssertionError(f"views did not converge on {sorted(wanted)}: {views}")


def _all(mesh: Mesh) -> set[str]:
    return {mesh.addr(n) for n in NAMES}


class Echoes:
    """Which nodes answered each ping; wakes waiters on every echo."""

    def __init__(self) -> None:
        self.by_ping: dict[str, set[str]] = {}
        self.changed = anyio.Event()

    async def __call__(self, message: Message) -> None:
        self.by_ping.setdefault(message.headers["x-id"], set()).add(message.headers["x-node"])
        self.changed.set()
        self.changed = anyio.Event()

    async def ping_until(self, node: HttpBroker, expected: set[str]) -> None:
        """Ping until every expected node echoed one ping (gossip may lag a round)."""
        with anyio.fail_after(20):
            while True:
                ping = uuid.uuid4().hex
                await node.publish(Message("mesh.ping", b"", {"x-id": ping}))
                with anyio.move_on_after(0.5):
                    while self.by_ping.get(ping, set()) != expected:
                        await self.changed.wait()
                if self.by_ping.get(ping) == expected:
                    return


async def test_three_processes_converge_survive_a_kill_and_rejoin(mesh: Mesh) -> None:
    for name in reversed(NAMES):  # any order: n3 starts with no seed up yet
        mesh.start(name)
        await anyio.sleep(0.1)  # staggered starts: the first nodes find no seed up
    await _converge(mesh, list(NAMES))

    echoes = Echoes()
    seeds = ",".join(mesh.addr(n) for n in NAMES)
    url = f"http://127.0.0.1:0?seeds={seeds}"
    async with HttpBroker(url, gossip_interval=0.2, dead_after=1.5) as observer:
        await observer.subscribe("mesh.echo", echoes)
        await echoes.ping_until(observer, set(NAMES))

        mesh.procs["n3"].send_signal(signal.SIGKILL)
        mesh.procs["n3"].wait(timeout=10)
        await _converge(mesh, ["n1", "n2"])
        await echoes.ping_until(observer, {"n1", "n2"})
        assert mesh.addr("n3") not in {p.addr for p in observer.membership.peers()}

        mesh.start("n3")
        await _converge(mesh, list(NAMES))
        await echoes.ping_until(observer, set(NAMES))
