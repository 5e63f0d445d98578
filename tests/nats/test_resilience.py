"""Restarts, failover and offline subscribers, on embedded servers of the tests' own."""

from __future__ import annotations

import uuid

import anyio
import pytest

from eventkit.brokers import DeliveryPolicy
from eventkit.brokers.nats import NatsBroker
from eventkit.brokers.nats._embedded import EmbeddedNats, EmbeddedNatsCluster
from eventkit.wire import Message
from tests.conformance.util import Recorder, publish_retrying, settle, wait_until

pytestmark = pytest.mark.anyio

POLICY = DeliveryPolicy(max_in_flight=8, max_attempts=20, backoff_initial=0.05)


def _prefix() -> str:
    return f"r{uuid.uuid4().hex[:8]}"


async def _publish_through(
    publisher: NatsBroker, topic: str, outage: anyio.Event, after: int, sent: list[str]
) -> None:
    """Publish numbered messages until ``after`` more went out once ``outage`` is over."""
    extra = 0
    with anyio.fail_after(60):
        for i in range(100_000):
            message = Message(topic, str(i).encode(), {"x-id": str(i), "ce-id": f"{topic}-{i}"})
            await publish_retrying(publisher, message, timeout=30)
            sent.append(str(i))
            await anyio.sleep(0.002)  # paces the stream, so the outage falls inside it
            if outage.is_set():
                extra += 1
                if extra >= after:
                    return


async def test_restart_durable_gets_everything_and_plain_resumes(own_nats: EmbeddedNats) -> None:
    p = _prefix()
    durable, plain = Recorder("durable"), Recorder("plain")
    async with NatsBroker(own_nats.url) as sub_broker, NatsBroker(own_nats.url) as publisher:
        await sub_broker.subscribe(f"{p}.ev", durable, durable=f"{p}-d", policy=POLICY)
        await sub_broker.subscribe(f"{p}.ev", plain)
        await settle(publisher, sub_broker)
        restarted = anyio.Event()
        sent: list[str] = []

        async def restart_soon() -> None:
            await wait_until(lambda: len(sent) >= 50, what="50 published before the restart")
            await own_nats.arestart()  # publishes go on during the outage
            restarted.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(restart_soon)
            await _publish_through(publisher, f"{p}.ev", restarted, after=100, sent=sent)
        await durable.wait_ids(sent, timeout=30)
        # The plain (core) subscriber resumed by itself: it gets what came after the restart.
        await plain.wait_ids(sent[-20:], timeout=10)
        assert {m.body for m in durable.messages} == {s.encode() for s in sent}


async def test_offline_durable_subscriber_gets_all_thousand(nats_server: EmbeddedNats) -> None:
    p = _prefix()
    async with NatsBroker(nats_server.url) as broker:
        sub = await broker.subscribe(f"{p}.orders", Recorder(), durable=f"{p}-d")
        await sub.stop()  # the durable now exists with nobody listening
        async with anyio.create_task_group() as tg:
            for worker in range(10):

                async def publish(worker: int = worker) -> None:
                    for i in range(worker, 1000, 10):
                        await broker.publish(Message(f"{p}.orders", b"{}", {"x-id": str(i)}))

                tg.start_soon(publish)
        got = Recorder("late subscriber")
        policy = DeliveryPolicy(max_in_flight=32)
        await broker.subscribe(f"{p}.orders", got, durable=f"{p}-d", policy=policy)
        await got.wait_ids((str(i) for i in range(1000)), timeout=30)
        assert not got.duplicates()


async def test_many_nodes_create_streams_and_durables_at_once(nats_server: EmbeddedNats) -> None:
    p = _prefix()
    patterns = [f"{p}.orders.*", f"{p}.orders.placed", f"{p}.*.paid", f"{p}.refunds.>"]
    brokers = [NatsBroker(nats_server.url) for _ in range(10)]
    recorders = [Recorder(f"node {i}") for i in range(10)]
    try:
        async with anyio.create_task_group() as tg:
            for b in brokers:
                tg.start_soon(b.connect)
        async with anyio.create_task_group() as tg:
            for i, (b, r) in enumerate(zip(brokers, recorders, strict=True)):
                pattern = patterns[i % len(patterns)]
                name = f"{p}-{i % len(patterns)}"
                tg.start_soon(lambda b=b, r=r, t=pattern, n=name: b.subscribe(t, r, durable=n))
        topics = [f"{p}.orders.placed", f"{p}.refunds.r.1", f"{p}.x.paid"]
        for t in topics:
            await brokers[0].publish(Message(t, b"{}", {"x-id": t}))
        for index in range(len(patterns)):  # each durable got its matching topics once
            members = recorders[index :: len(patterns)]
            wanted = [t for t in topics if _matches(patterns[index], t)]
            await wait_until(
                lambda m=members, w=wanted: sorted(i for r in m for i in r.ids()) == sorted(w),
                what=f"durable {index} to get {wanted}",
            )
    finally:
        with anyio.CancelScope(shield=True):
            for b in brokers:
                await b.close()


def _matches(pattern: str, topic: str) -> bool:
    from eventkit.wire import matches

    return matches(pattern, topic)


async def test_cluster_failover_loses_no_durable_event() -> None:
    p = _prefix()
    async with EmbeddedNatsCluster(3) as cluster:
        first = cluster.node_url(0)
        others = ",".join(cluster.node_url(i).removeprefix("nats://") for i in (1, 2))
        sub_url = f"{first},{others}"  # the subscriber starts on node 0, which we kill
        pub_url = f"{cluster.node_url(1)},{first.removeprefix('nats://')}"
        ordered = {"options": {"dont_randomize": True}, "replicas": 3}
        got = Recorder("durable in cluster")
        async with (
            NatsBroker(sub_url, **ordered) as sub_broker,  # type: ignore[arg-type]
            NatsBroker(pub_url, **ordered) as publisher,  # type: ignore[arg-type]
        ):
            await sub_broker.subscribe(f"{p}.ev", got, durable=f"{p}-d", policy=POLICY)
            await settle(publisher, sub_broker)
            assert sub_broker.server_info["port"] == cluster.ports[0]
            killed = anyio.Event()
            sent: list[str] = []

            async def kill_soon() -> None:
                await wait_until(lambda: len(sent) >= 50, what="50 published before the kill")
                await cluster.kill(0)
                killed.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(kill_soon)
                await _publish_through(publisher, f"{p}.ev", killed, after=100, sent=sent)
            await got.wait_ids(sent, timeout=30)
            assert sub_broker.server_info["port"] != cluster.ports[0]  # it failed over
