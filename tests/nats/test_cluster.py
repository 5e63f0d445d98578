"""A 3-node JetStream cluster of the test's own: R3 by default, and no acknowledged event
lost while one node is SIGKILLed and another restarted in the middle of a stream."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from eventkit.brokers import DeliveryPolicy
from eventkit.brokers.nats import EmbeddedNatsCluster, NatsBroker
from eventkit.wire import EventKitError, Message
from tests.conformance.util import Recorder, wait_until

pytestmark = pytest.mark.anyio

POLICY = DeliveryPolicy(max_in_flight=8, max_attempts=50, backoff_initial=0.05)


@pytest.fixture
async def cluster() -> AsyncIterator[EmbeddedNatsCluster]:
    async with EmbeddedNatsCluster(3) as nodes:
        yield nodes


async def _stream_info(broker: NatsBroker, stream: str) -> dict[str, Any]:
    """The stream's INFO (``config``, ``cluster``), once the cluster can answer."""
    nc = broker._client()
    for _ in range(100):  # the meta leader may still be elected
        reply = json.loads((await nc.request(f"$JS.API.STREAM.INFO.{stream}", b"")).data)
        if "error" not in reply and reply.get("cluster", {}).get("leader"):
            info: dict[str, Any] = reply
            return info
        await anyio.sleep(0.1)
    raise AssertionError(f"no info for stream {stream}")


async def test_streams_and_buckets_get_three_replicas_in_a_cluster(
    cluster: EmbeddedNatsCluster,
) -> None:
    p = f"c{uuid.uuid4().hex[:8]}"
    # One server named: the cluster's size comes from the server's INFO.
    async with NatsBroker(cluster.node_url(0), publish_timeout=20) as broker:
        assert broker.replicas == 3
        await broker.subscribe(f"{p}.ev", Recorder(), durable=f"{p}-d", policy=POLICY)
        assert (await _stream_info(broker, f"eventkit-{p}"))["config"]["num_replicas"] == 3
        assert (await _stream_info(broker, "eventkit-eventkit"))["config"]["num_replicas"] == 3
        kv = await broker.key_value(f"kv-{p}")
        assert (await kv.status()).stream_info.config.num_replicas == 3
    async with NatsBroker(cluster.node_url(0), replicas=1) as single:
        assert single.replicas == 1  # the option wins


async def test_no_acknowledged_event_is_lost_across_a_kill_and_a_restart(
    cluster: EmbeddedNatsCluster,
) -> None:
    p = f"c{uuid.uuid4().hex[:8]}"
    topic = f"{p}.ev"
    got = Recorder("durable in cluster")
    options = {"publish_timeout": 30.0, "drain_timeout": 5.0}
    async with (
        NatsBroker(cluster.url, **options) as sub_broker,  # type: ignore[arg-type]
        NatsBroker(cluster.url, **options) as publisher,  # type: ignore[arg-type]
    ):
        await sub_broker.subscribe(topic, got, durable=f"{p}-d", policy=POLICY)
        info = await _stream_info(sub_broker, f"eventkit-{p}")
        assert info["config"]["num_replicas"] == 3
        leader = int(info["cluster"]["leader"].removeprefix("n")) - 1  # nodes are n1..n3
        other = (leader + 1) % 3
        acked: list[str] = []
        failed: list[str] = []
        phase = anyio.Event()

        async def publish_stream() -> None:
            for i in range(100_000):
                message = Message(topic, str(i).encode(), {"x-id": str(i), "ce-id": f"{p}-{i}"})
                try:
                    await publisher.publish(message)
                except EventKitError:
                    failed.append(str(i))  # not acknowledged: no promise was made
                else:
                    acked.append(str(i))
                await anyio.sleep(0.002)
                if phase.is_set():
                    return

        async def faults() -> None:
            await wait_until(lambda: len(acked) >= 100, what="100 acked before the kill")
            await cluster.kill(leader)  # the stream's leader, SIGKILLed: no goodbye
            mark = len(acked)
            await wait_until(lambda: len(acked) >= mark + 100, timeout=60, what="acks after")
            await cluster.revive(leader)
            await anyio.to_thread.run_sync(lambda: cluster.stop_node(other))  # a restart
            await anyio.to_thread.run_sync(lambda: cluster.start_node(other))
            mark = len(acked)
            await wait_until(lambda: len(acked) >= mark + 100, timeout=60, what="acks after")
            phase.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(faults)
            await publish_stream()
        await got.wait_ids(acked, timeout=60)
        assert len(acked) >= 300
        assert len(failed) < len(acked)  # the stream went on through both faults


async def test_a_failover_checks_the_new_nodes_sync_setting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "eventkit.broker.nats")
    async with EmbeddedNatsCluster(3, sync_always=False) as nodes:
        p = f"c{uuid.uuid4().hex[:8]}"
        monitors = ",".join(nodes.monitor_urls)
        url = f"{nodes.url}?monitor={monitors}"
        got = Recorder()
        async with NatsBroker(url, options={"dont_randomize": True}) as broker:
            await broker.subscribe(f"{p}.ev", got, durable=f"{p}-d", policy=POLICY)
            first = broker.jetstream_sync
            assert first is not None and first.synced is False
            assert first.server.endswith(f":{nodes.ports[0]}")
            await nodes.kill(0)
            await wait_until(
                lambda: broker.jetstream_sync is not first, timeout=30, what="a second check"
            )
            second = broker.jetstream_sync
            assert second is not None and second.synced is False
            assert second.server != first.server
        warned = [m for m in caplog.messages if "before syncing them" in m]
        assert len(warned) == 2
