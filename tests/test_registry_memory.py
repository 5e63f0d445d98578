"""The gossiped registry on memory://: real services, a real bus, nothing patched."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from eventkit import Client, Event, Service
from eventkit.brokers.memory import MemoryBroker
from eventkit.discovery import (
    ANNOUNCE,
    LEAVE,
    QUERY,
    NodeInfo,
    Registry,
    RegistryChange,
    registry_topic,
)
from eventkit.wire import Message

pytestmark = pytest.mark.anyio

TOPIC = registry_topic("eventkit")


class HelloRequest(BaseModel):
    name: str


class HelloReply(BaseModel):
    msg: str


def fast(name: str, **options: Any) -> Service:
    """A service that heartbeats every 0.5 s and is dropped after 2 s of silence."""
    return Service(name, registry_ttl=2.0, heartbeat=0.5, **options)


def bus() -> str:
    return f"memory://registry-{uuid.uuid4().hex[:12]}"


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():  # a view filled by another task; bounded
            await anyio.sleep(0.005)


async def next_change(
    changes: AsyncIterator[RegistryChange], timeout: float = 5.0
) -> RegistryChange:
    with anyio.fail_after(timeout):
        return await changes.__anext__()


@asynccontextmanager
async def observer(url: str, **kwargs: float) -> AsyncIterator[Registry]:
    """A process that only watches: a client's registry with no node of its own."""
    async with Client(MemoryBroker(url)) as client:
        registry = Registry(
            client.broker,
            source=client.source,
            namespace="eventkit",
            ttl=kwargs.get("ttl", 2.0),
            heartbeat=kwargs.get("heartbeat", 0.5),
        )
        try:
            yield registry
        finally:
            await registry.stop()


class Tally:
    """Counts registry events on the bus by type and source."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def on_message(self, message: Message) -> None:
        self.seen.append((message.headers.get("ce-type", ""), message.headers.get("ce-source", "")))

    def count(self, kind: str, source: str | None = None) -> int:
        return sum(1 for t, s in self.seen if t == kind and (source is None or s == source))


@asynccontextmanager
async def tally(url: str) -> AsyncIterator[Tally]:
    counter = Tally()
    async with MemoryBroker(url) as broker:
        await broker.subscribe(TOPIC, counter.on_message)
        yield counter


def greeter() -> Service:
    svc = fast("greeter", version="1.2.0", metadata={"team": "core"})

    @svc.endpoint("Greeter.Hello", idempotent=True)
    async def hello(req: HelloRequest) -> HelloReply:
        return HelloReply(msg=f"hi {req.name}")

    @svc.subscribe("shop.orders.*", queue="greeter")
    async def on_order(event: Event[dict[str, int]]) -> None:
        return None

    return svc


async def test_two_services_see_each_other_and_a_late_client_learns_both() -> None:
    url = bus()
    a, b = greeter(), fast("audit")
    async with tally(url) as seen:
        await a.start(broker=MemoryBroker(url))
        await b.start(broker=MemoryBroker(url))
        try:
            assert a.registry is not None and b.registry is not None
            # b asked once when it started, a answered; a heard b's announcement.
            await until(lambda: len(a.registry.view) == 2 and len(b.registry.view) == 2)  # type: ignore[union-attr]
            assert a.registry.view.known_services() == ["audit", "greeter"]
            assert b.registry.view.known_services() == ["audit", "greeter"]
            assert seen.count(QUERY) == 2  # one per start: nobody had to ask again

            async with observer(url) as late:
                async with late.watch() as changes:
                    await late.start()  # sends its one query
                    added = {(await next_change(changes)).node.id for _ in range(2)}
                assert added == {a.node_id, b.node_id}
                assert seen.count(QUERY, late.source) == 1
                # Asking for one service returns once it answered (not after `wait`).
                with anyio.fail_after(10):
                    await late.query("audit", wait=30.0)
                assert seen.count(QUERY, late.source) == 2
        finally:
            await b.stop()
            await a.stop()


async def test_the_record_describes_endpoints_and_subscriptions() -> None:
    url = bus()
    svc = greeter()
    async with observer(url) as view:
        await view.start()
        async with view.watch() as changes:
            await svc.start(broker=MemoryBroker(url))
            try:
                change = await next_change(changes)
            finally:
                await svc.stop()
            left = await next_change(changes)
        assert (left.kind, left.reason, left.node) == ("removed", "leave", change.node)
        assert view.view.describe("greeter") == []
    node = change.node
    assert (change.kind, change.reason) == ("added", "announce")
    assert (node.id, node.service, node.version) == (svc.node_id, "greeter", "1.2.0")
    assert node.metadata == {"team": "core"} and node.ttl == 2.0 and node.address
    (endpoint,) = node.endpoints
    assert endpoint.name == "Greeter.Hello"
    assert endpoint.metadata == {"idempotent": "true"}
    assert endpoint.request["properties"]["name"]["type"] == "string"
    assert endpoint.response["properties"]["msg"]["type"] == "string"
    (sub,) = node.subscriptions
    assert (sub.topic, sub.queue, sub.durable) == ("shop.orders.*", "greeter", None)


async def test_graceful_stop_removes_the_node_at_once() -> None:
    url = bus()
    a, b = greeter(), fast("audit")
    await a.start(broker=MemoryBroker(url))
    await b.start(broker=MemoryBroker(url))
    try:
        registry = a.registry
        assert registry is not None
        await until(lambda: registry.view.get(b.node_id) is not None)
        heard: list[RegistryChange] = []
        registry.add_listener(heard.append)
        async with registry.watch() as changes:
            await b.stop()
            change = await next_change(changes)
        assert (change.kind, change.reason, change.node.id) == ("removed", "leave", b.node_id)
        assert heard == [change]
        assert registry.view.nodes("audit") == []
        assert b.registry is None
    finally:
        await b.stop()
        await a.stop()


async def test_silent_nodes_expire_after_their_ttl() -> None:
    url = bus()
    async with observer(url, ttl=0.3, heartbeat=0.1) as view, Client(MemoryBroker(url)) as raw:
        await view.start()
        async with view.watch() as changes:
            # A node that announced once and then fell silent (its heartbeats stopped).
            ghost = NodeInfo(
                id="ghost-1", service="ghost", version="1", address="h/1", ttl=0.3, started=1.0
            )
            await raw.publish(TOPIC, ghost, type=ANNOUNCE)
            assert (await next_change(changes)).kind == "added"
            gone = await next_change(changes)
            assert (gone.kind, gone.reason, gone.node.id) == ("removed", "expired", "ghost-1")
            assert view.view.get("ghost-1") is None


async def test_a_crashed_node_expires_while_its_heartbeats_fail() -> None:
    url = bus()
    async with observer(url, ttl=0.4, heartbeat=0.1) as view:
        await view.start()
        crashed_broker = MemoryBroker(url)
        client = Client(crashed_broker)
        await client.connect()
        record = NodeInfo(
            id="crash-1", service="crash", version="1", address="h/2", ttl=0.4, started=1.0
        )
        node = Registry(
            crashed_broker,
            source="/clients/crash-1",
            namespace="eventkit",
            ttl=0.4,
            heartbeat=0.1,
            local=lambda: record,
        )
        async with view.watch() as changes:
            await node.start()
            assert (await next_change(changes)).node.id == "crash-1"
            await crashed_broker.close()  # the process "dies": no leave, heartbeats fail
            gone = await next_change(changes)
            assert (gone.kind, gone.reason, gone.node.id) == ("removed", "expired", "crash-1")
        await node.stop()  # the leave cannot be sent; stop still ends cleanly
        await node.stop()


async def test_malformed_registry_messages_are_ignored() -> None:
    url = bus()
    good = NodeInfo(id="ok-1", service="ok", version="1", address="h/1", ttl=5.0, started=1.0)

    def ce(kind: str, body: bytes, content_type: str = "application/json") -> Message:
        return Message(
            TOPIC,
            body,
            {
                "ce-id": uuid.uuid4().hex,
                "ce-source": "/test",
                "ce-type": kind,
                "ce-specversion": "1.0",
                "content-type": content_type,
            },
        )

    bad = [
        Message(TOPIC, b"not a cloudevent"),  # no ce-* headers
        ce(ANNOUNCE, b"{not json"),
        ce(ANNOUNCE, b'{"id": "x"}'),  # misses required fields
        ce(ANNOUNCE, good.model_copy(update={"ttl": -1.0}).model_dump_json().encode()),
        ce(LEAVE, b"[]"),
        ce(QUERY, b'{"service": 42}'),
        ce(ANNOUNCE, b"\x00\x01", "application/octet-stream"),
    ]
    svc = fast("steady")
    async with observer(url) as view:
        await view.start()
        await svc.start(broker=MemoryBroker(url))
        try:
            assert svc.registry is not None
            await until(lambda: view.view.get(svc.node_id) is not None)
            async with view.watch() as changes, MemoryBroker(url) as raw:
                for message in bad:
                    await raw.publish(message)
                await raw.publish(ce("eventkit.registry.future", b"{}"))  # unknown: skipped
                await raw.publish(ce(ANNOUNCE, good.model_dump_json().encode()))
                change = await next_change(changes)
            assert change.node == good  # everything before it was read and ignored
            assert view.malformed == len(bad)
            await until(lambda: svc.registry is not None and svc.registry.malformed == len(bad))
            assert view.view.known_services() == ["ok", "steady"]
            assert svc.registry.view.get("ok-1") == good  # the service's registry lives on
        finally:
            await svc.stop()


async def test_watch_snapshot_listener_errors_and_end_on_stop() -> None:
    url = bus()
    svc = greeter()
    await svc.start(broker=MemoryBroker(url))
    try:
        async with observer(url) as view:
            await view.start()
            await view.query("greeter", wait=5.0)
            assert [n.id for n in view.view.nodes("greeter")] == [svc.node_id]

            def broken(change: RegistryChange) -> None:
                raise RuntimeError("a listener bug")

            view.add_listener(broken)
            heard: list[RegistryChange] = []
            view.add_listener(heard.append)
            async with view.watch(initial=True) as changes:
                first = await next_change(changes)
                assert (first.kind, first.reason, first.node.id) == (
                    "added",
                    "snapshot",
                    svc.node_id,
                )
                await svc.stop()
                left = await next_change(changes)
                assert (left.kind, left.reason) == ("removed", "leave")
                assert heard == [left]  # the broken listener did not stop the others
                await view.stop()
                with anyio.fail_after(5):
                    rest = [change async for change in changes]
                assert rest == []  # iteration ended with the registry
            with pytest.raises(RuntimeError, match="start"):
                await view.query()
    finally:
        await svc.stop()
