"""The private RabbitMQ node helper (tests.rabbitmq_node): it serves, restarts, clusters,
and leaves nothing behind; the machine's shared node is never touched."""

from __future__ import annotations

import re
from pathlib import Path

import aio_pika
import anyio
import pytest

from tests.rabbitmq_node import cluster_config, private_rabbitmq, private_rabbitmq_cluster
from tests.servers import port_open


async def _publish_persistent(url: str, queue_name: str, body: bytes) -> None:
    async with await aio_pika.connect(url) as conn:
        channel = await conn.channel()
        queue = await channel.declare_queue(queue_name, durable=True)
        await channel.default_exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), queue.name
        )


async def _get(url: str, queue_name: str) -> bytes | None:
    async with await aio_pika.connect(url) as conn:
        channel = await conn.channel()
        queue = await channel.declare_queue(queue_name, durable=True)
        incoming = await queue.get(fail=False, no_ack=True)
        return None if incoming is None else incoming.body


@pytest.mark.anyio
async def test_a_private_node_restarts_with_its_durable_messages_and_is_gone_after() -> None:
    async with private_rabbitmq() as node:
        assert node.amqp_port != 5672
        await _publish_persistent(node.url, "kept", b"before the restart")
        dropped = anyio.Event()
        async with await aio_pika.connect(node.url) as connection:
            connection.close_callbacks.add(lambda *_: dropped.set())
            await node.restart()
            with anyio.fail_after(10):
                await dropped.wait()  # the restart closed every connection
        assert await _get(node.url, "kept") == b"before the restart"
        folder = node.folder
    assert not port_open("127.0.0.1", node.amqp_port)
    assert not folder.exists()


@pytest.mark.anyio
async def test_nodes_of_one_home_form_a_cluster() -> None:
    async with private_rabbitmq_cluster(2) as (first, second):
        status = await first.ctl("cluster_status", "--formatter", "json")
        assert first.nodename in status and second.nodename in status
        await _publish_persistent(first.url, "shared", b"via the first node")
        assert await _get(second.url, "shared") == b"via the first node"


def test_the_shipped_cluster_config_names_the_private_nodes() -> None:
    template = (Path(__file__).parents[1] / "brokers" / "rabbitmq" / "cluster.conf").read_text()
    text = cluster_config(template, ["a@localhost", "b@localhost"])
    settings = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert all(re.fullmatch(r"[a-z_.0-9]+ = \S+", line) for line in settings), settings
    assert "cluster_formation.peer_discovery_backend = classic_config" in settings
    nodes = [line.split(" = ")[1] for line in settings if ".classic_config.nodes." in line]
    assert nodes == ["a@localhost", "b@localhost"]
    assert "rabbit@rabbit-1" not in text
    with pytest.raises(ValueError, match="classic_config"):
        cluster_config("heartbeat = 30\n", ["a@localhost"])
