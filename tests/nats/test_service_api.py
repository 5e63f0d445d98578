"""Standard NATS tooling sees eventkit services: $SRV.PING, $SRV.INFO and $SRV.STATS."""

from __future__ import annotations

import json
from typing import Any

import nats
import pytest
from nats.micro.service import ServiceInfo, ServicePing, ServiceStats
from pydantic import BaseModel

from eventkit import Client, Service, Settings
from eventkit.brokers.nats import NatsBroker
from eventkit.brokers.nats._embedded import EmbeddedNats

pytestmark = pytest.mark.anyio


class Sum(BaseModel):
    a: int
    b: int


def make_service() -> Service:
    svc = Service(
        "adder",
        version="2.1.0",
        metadata={"team": "math"},
        description="adds numbers",
        namespace="srvapi",
    )

    @svc.endpoint("Adder.Add")
    async def add(req: Sum) -> int:
        return req.a + req.b

    @svc.endpoint("Adder.Fail")
    async def fail(req: dict[str, Any]) -> None:
        raise RuntimeError("nope")

    return svc


async def request(url: str, subject: str) -> dict[str, Any]:
    nc = await nats.connect(url)
    try:
        reply = await nc.request(subject, b"", timeout=2)
        result: dict[str, Any] = json.loads(reply.data)
        return result
    finally:
        await nc.close()


async def test_ping_info_and_stats_answer_as_the_nats_service_api(
    nats_server: EmbeddedNats,
) -> None:
    url = nats_server.url
    svc = make_service()
    await svc.start(broker=NatsBroker(url))
    try:
        settings = Settings(broker=url, namespace="srvapi")
        async with Client(settings=settings) as kit:
            assert await kit.call("adder", "Adder.Add", Sum(a=2, b=3)) == 5
            with pytest.raises(Exception, match="nope"):
                await kit.call("adder", "Adder.Fail", {})

        ping = ServicePing.from_dict(await request(url, "$SRV.PING.adder"))
        assert (ping.name, ping.id, ping.version) == ("adder", svc.node_id, "2.1.0")
        assert ping.metadata == {"team": "math"}
        raw_ping = await request(url, f"$SRV.PING.adder.{svc.node_id}")
        assert raw_ping["type"] == "io.nats.micro.v1.ping_response"

        info = ServiceInfo.from_dict(await request(url, "$SRV.INFO.adder"))
        assert info.description == "adds numbers"
        assert sorted(e.name for e in info.endpoints) == ["Adder.Add", "Adder.Fail"]
        assert {e.subject for e in info.endpoints} == {"srvapi.rpc.adder"}
        assert {e.queue_group for e in info.endpoints} == {"adder"}

        stats = ServiceStats.from_dict(await request(url, "$SRV.STATS"))
        by_name = {e.name: e for e in stats.endpoints}
        assert by_name["Adder.Add"].num_requests == 1
        assert by_name["Adder.Add"].num_errors == 0
        assert by_name["Adder.Fail"].num_errors == 1
        assert "nope" in (by_name["Adder.Fail"].last_error or "")
        assert by_name["Adder.Add"].processing_time > 0
    finally:
        await svc.stop()


async def test_discovery_is_only_on_nats() -> None:
    svc = make_service()
    await svc.start(broker="memory://srv-api")
    try:
        topics = [s for s in svc.broker._hub.routes if s[0].startswith("$SRV")]  # type: ignore[attr-defined]
        assert topics == []
    finally:
        await svc.stop()
