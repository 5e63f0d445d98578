"""RPC between real processes on real brokers: selection, failover after SIGKILL, TTL."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from eventkit import Client, Settings
from tests.conformance.util import wait_until
from tests.servers import free_port, require_server

pytestmark = pytest.mark.anyio

NODE = textwrap.dedent(
    """
    import os
    import anyio
    from eventkit import Context, Service

    svc = Service("worker")
    slow = float(os.environ.get("SLOW", "0"))

    @svc.endpoint("Work.Echo")
    async def echo(req: dict, ctx: Context) -> dict:
        if slow:
            await anyio.sleep(slow)
        return {"node": ctx.node_id}

    @svc.after_start
    def ready() -> None:
        print("ready", svc.node_id, flush=True)

    svc.run()
    """
)

BROKERS = {
    "nats": ("nats://127.0.0.1:4222", 4222, "NATS"),
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672/", 5672, "RabbitMQ"),
    # peer to peer: the caller listens on a free port and is every node's seed
    "http": ("http://127.0.0.1:{port}", 0, "HTTP"),
}


class Node:
    def __init__(self, proc: subprocess.Popen[str], node_id: str) -> None:
        self.proc = proc
        self.id = node_id


@pytest.fixture(params=sorted(BROKERS))
def broker_url(request: pytest.FixtureRequest) -> str:
    url, port, what = BROKERS[request.param]
    if port == 0:
        return url.format(port=free_port())
    require_server("127.0.0.1", port, what)
    return url


def node_url(broker_url: str) -> str:
    """Where a node connects: the shared server, or for HTTP its own port seeded by the caller."""
    if broker_url.startswith("http://"):
        return f"http://127.0.0.1:0?seeds={broker_url.removeprefix('http://')}&dead_after=2"
    return broker_url


async def mesh_formed(kit: Client, nodes: int) -> None:
    """On HTTP a process joins the mesh within a gossip round: wait until the caller has
    heard of ``nodes`` peers (other brokers are connected as soon as they start)."""
    membership = getattr(kit.broker, "membership", None)
    if membership is None:
        return
    await wait_until(lambda: len(membership.peers()) >= nodes, what=f"{nodes} peers in the mesh")


@pytest.fixture
def ns() -> str:
    return f"ekp{uuid.uuid4().hex[:8]}"


@pytest.fixture
def spawn(tmp_path: Path, broker_url: str, ns: str) -> Iterator[object]:
    script = tmp_path / "node.py"
    script.write_text(NODE)
    procs: list[subprocess.Popen[str]] = []

    def start(slow: float = 0.0) -> Node:
        env = {
            **os.environ,
            "EVENTKIT_BROKER": node_url(broker_url),
            "EVENTKIT_NAMESPACE": ns,
            "EVENTKIT_REGISTRY_TTL": "2",
            "EVENTKIT_HEARTBEAT": "0.5",
            "SLOW": str(slow),
            "EVENTKIT_DRAIN_TIMEOUT": "5",
        }
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if os.environ.get("CI") else None,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line[:1] == ["ready"], f"node did not start: {line}"
        return Node(proc, line[1])

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def caller(broker_url: str, ns: str, selector: str = "round_robin") -> Client:
    settings = Settings(broker=broker_url, namespace=ns, registry_ttl=2.0, heartbeat=0.5)
    return Client(settings=settings, selector=selector)


async def wait_nodes(kit: Client, count: int) -> None:
    registry = await kit.get_registry()
    with anyio.fail_after(10):
        while len(registry.view.nodes("worker")) != count:
            await registry.query("worker", wait=0.2)


async def test_round_robin_alternates_between_processes(
    spawn: object, broker_url: str, ns: str
) -> None:
    a, b = spawn(), spawn()  # type: ignore[operator]
    async with caller(broker_url, ns) as kit:
        await wait_nodes(kit, 2)
        nodes = [(await kit.call("worker", "Work.Echo", {}, timeout=5))["node"] for _ in range(10)]
    assert Counter(nodes) == {a.id: 5, b.id: 5}
    assert all(x != y for x, y in itertools.pairwise(nodes))


async def test_least_inflight_avoids_the_slow_node(spawn: object, broker_url: str, ns: str) -> None:
    # 1 s per call: slow against the fast node's work even on a loaded machine under coverage
    slow, fast = spawn(slow=1.0), spawn()  # type: ignore[operator]
    async with caller(broker_url, ns, selector="least_inflight") as kit:
        await wait_nodes(kit, 2)
        served: list[str] = []

        async def one() -> None:
            served.append((await kit.call("worker", "Work.Echo", {}, timeout=10))["node"])

        for _ in range(4):  # waves of concurrent calls
            async with anyio.create_task_group() as tg:
                for _ in range(10):
                    tg.start_soon(one)
                    await anyio.sleep(0.01)  # calls start one by one, each seeing the others
    counts = Counter(served)
    assert counts[fast.id] > 2 * counts[slow.id], counts


async def test_sigkill_calls_still_succeed_and_the_node_expires(
    spawn: object, broker_url: str, ns: str
) -> None:
    a, b = spawn(), spawn()  # type: ignore[operator]
    async with caller(broker_url, ns) as kit:
        await wait_nodes(kit, 2)
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait()
        nodes = [(await kit.call("worker", "Work.Echo", {}, timeout=3))["node"] for _ in range(20)]
        assert set(nodes) == {b.id}
        registry = await kit.get_registry()
        await wait_until(  # its TTL is 2 s
            lambda: a.id not in {n.id for n in registry.view.nodes("worker")},
            what="the killed node to expire",
        )


async def test_a_late_node_sees_all_within_one_query(
    spawn: object, broker_url: str, ns: str
) -> None:
    a, b = spawn(), spawn()  # type: ignore[operator]
    async with caller(broker_url, ns) as kit:
        await mesh_formed(kit, 2)
        registry = await kit.get_registry()
        await registry.query("worker", wait=1.0)
        assert {n.id for n in registry.view.nodes("worker")} == {a.id, b.id}
