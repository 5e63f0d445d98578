"""A three-node RabbitMQ cluster (brokers/rabbitmq/cluster.conf, on private loopback nodes)
loses a node to SIGKILL in the middle of a stream: the clients fail over to another node of
their URL's host list, and no event whose publish was confirmed is lost.

The node killed is the one both clients are connected to, which also leads the durable
quorum queue (it was declared there): the queue elects a new leader among the two others.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from eventkit.brokers import DeliveryPolicy
from eventkit.brokers.rabbitmq import RabbitBroker
from eventkit.wire import ConnectionLost, Message, PublishError
from tests.conformance.util import Recorder, settle, wait_until
from tests.rabbitmq_node import RabbitNode, private_rabbitmq_cluster

pytestmark = pytest.mark.anyio

CLUSTER_CONF = Path(__file__).parents[2] / "brokers" / "rabbitmq" / "cluster.conf"
DURABLE = "audit"


@pytest.fixture
async def nodes() -> AsyncIterator[list[RabbitNode]]:
    async with private_rabbitmq_cluster(3, config=CLUSTER_CONF) as nodes:
        yield nodes


async def _members(node: RabbitNode, queue: str) -> list[str]:
    listed = await node.ctl("list_queues", "name", "type", "members", "--formatter", "json")
    [row] = [q for q in json.loads(listed) if q["name"] == queue]
    assert row["type"] == "quorum"
    return sorted(row["members"])


async def test_a_killed_node_loses_no_confirmed_event(nodes: list[RabbitNode]) -> None:
    # The shipped config formed one cluster of the three, with its settings.
    status = json.loads(await nodes[1].ctl("cluster_status", "--formatter", "json"))
    assert sorted(status["running_nodes"]) == sorted(n.nodename for n in nodes)
    assert "pause_minority" in await nodes[2].ctl("environment")
    hosts = ",".join(f"127.0.0.1:{n.amqp_port}" for n in nodes)
    url = f"amqp://guest:guest@{hosts}/"
    got = Recorder("durable subscriber")
    confirmed: list[str] = []
    unconfirmed = 0
    policy = DeliveryPolicy(max_in_flight=4, max_attempts=50)
    options = {"exchange": "eventkit-cluster", "timeout": 20, "drain_timeout": 5.0}
    async with (
        RabbitBroker(url, **options) as subscriber,
        RabbitBroker(url, **options) as publisher,
    ):
        sub = await subscriber.subscribe("audit.event", got, durable=DURABLE, policy=policy)
        assert sub.queue_type == "quorum"
        assert await _members(nodes[1], sub.queue_name) == sorted(n.nodename for n in nodes)
        await settle(publisher, subscriber)

        async def publish_stream(killed: anyio.Event) -> None:
            nonlocal unconfirmed
            n = 0
            after = 0
            with anyio.fail_after(90):
                while not killed.is_set() or after < 300:
                    n += 1  # a new id per attempt: an unconfirmed one may or may not arrive
                    try:
                        await publisher.publish(Message("audit.event", b"e", {"x-id": str(n)}))
                    except (ConnectionLost, PublishError):
                        unconfirmed += 1
                        await anyio.sleep(0.05)  # a pause between retries while it fails over
                        continue
                    confirmed.append(str(n))
                    after += killed.is_set()
                    await anyio.sleep(0.002)  # paces the stream, so the kill falls inside

        killed = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(publish_stream, killed)
            await wait_until(lambda: len(confirmed) >= 200, what="200 events before the kill")
            await nodes[0].kill()  # the node both clients use, and the queue's leader
            killed.set()
        await got.wait_ids(confirmed, timeout=60)
        assert subscriber.link_up and publisher.link_up  # now on another node
    counts = Counter(got.ids())
    assert set(confirmed) <= set(counts)
    for i in (i for i, n in counts.items() if n > 1):  # only unacked deliveries come again
        assert max(m.attempt for m in got.messages if m.headers["x-id"] == i) > 1
