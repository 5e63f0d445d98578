"""`eventkit up --nats-cluster`: a 3-node JetStream cluster on loopback for the stack, R3
streams for its durables, and every node stopped with the stack."""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path

import anyio
import pytest

from eventkit.brokers.nats import NatsBroker
from eventkit.wire import Message
from tests.cli.util import EVENTKIT, Background, env_for, eventkit, namespace
from tests.servers import free_port, port_open

SERVICE = """
from pydantic import BaseModel

from eventkit import Event, Service

svc = Service("clustered")


class Placed(BaseModel):
    order_id: str


@svc.subscribe("clustered.orders.placed", durable="clustered")
async def on_placed(event: Event[Placed]) -> None:
    print("handled order", event.data.order_id, flush=True)
"""


def _three_free_ports() -> int:
    """A port whose next two are free as well (the cluster takes all three)."""
    for _ in range(50):
        port = free_port()
        try:
            for p in (port + 1, port + 2):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise AssertionError("no three free ports in a row")


def _stack(tmp_path: Path) -> Path:
    (tmp_path / "clustered_svc.py").write_text(SERVICE)
    (tmp_path / "eventkit.toml").write_text(
        '[stack]\nname = "clustered"\n[services]\nclustered = "clustered_svc:svc"\n'
    )
    return tmp_path


async def _replicas_and_publish(url: str) -> int:
    async with NatsBroker(url) as broker:
        nc = broker._client()
        for _ in range(100):
            reply = await nc.request("$JS.API.STREAM.INFO.eventkit-clustered", b"", timeout=5)
            info = json.loads(reply.data)
            if "error" not in info:
                break
            await anyio.sleep(0.1)
        body = json.dumps({"specversion": "1.0", "id": "e-1", "source": "/t", "type": "placed"})
        event = json.loads(body) | {"data": {"order_id": "o-42"}}
        await broker.publish(
            Message(
                "clustered.orders.placed",
                json.dumps(event).encode(),
                {"content-type": "application/cloudevents+json"},
            )
        )
        replicas: int = info["config"]["num_replicas"]
        return replicas


def test_up_with_a_nats_cluster_runs_the_stack_on_r3_streams(tmp_path: Path) -> None:
    port = _three_free_ports()
    env = env_for(namespace(), broker=f"nats://127.0.0.1:{port}")
    up = Background([*EVENTKIT, "up", str(_stack(tmp_path)), "--nats-cluster"], env=env)
    try:
        up.wait_for("started a 3-node NATS JetStream cluster", timeout=60)
        up.wait_for(r"stack clustered is up: 1 process", timeout=60)
        url = "nats://" + ",".join(f"127.0.0.1:{p}" for p in range(port, port + 3))
        assert url in up.output
        assert all(port_open("127.0.0.1", p) for p in range(port, port + 3))
        assert anyio.run(_replicas_and_publish, url) == 3
        up.wait_for(r"^clustered +\| .*handled order o-42", timeout=30)
    finally:
        code = up.stop(signal.SIGINT, timeout=60)
    assert code == 0, up.output
    assert "embedded NATS cluster stopped" in up.output
    # The services were told where the nodes' monitoring is, and found them syncing.
    assert "could not tell whether NATS" not in up.output
    assert "before syncing them" not in up.output
    assert not [p for p in range(port, port + 3) if port_open("127.0.0.1", p)]


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (["--no-embed"], "starts a cluster of its own"),
        (["--broker", "nats://10.1.2.3:4222"], "at a loopback nats:// URL"),
    ],
)
def test_up_with_a_nats_cluster_refuses_what_it_cannot_do(
    tmp_path: Path, extra: list[str], error: str
) -> None:
    env = env_for(namespace(), broker=f"nats://127.0.0.1:{_three_free_ports()}")
    result = eventkit("up", str(_stack(tmp_path)), "--nats-cluster", *extra, env=env)
    assert result.returncode != 0
    assert error in result.stderr


def test_up_with_a_nats_cluster_will_not_share_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = env_for(namespace(), broker=f"nats://127.0.0.1:{port}")
        result = eventkit("up", str(_stack(tmp_path)), "--nats-cluster", env=env)
    assert result.returncode != 0
    assert "something already answers" in result.stderr
