"""The probe server of a real service on a real NATS server: /healthz, /readyz, /metrics.

Readiness follows the service's lifecycle (false while it starts, true once every
subscription and endpoint is registered, false as soon as a drain begins, before the node
leaves) and the broker link (false while NATS is down). ``/metrics`` is scraped and parsed
with prometheus_client's own parser.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

import eventkit
from eventkit import Event, Service
from eventkit.brokers.nats import EmbeddedNats

pytestmark = pytest.mark.anyio


@pytest.fixture
def nats() -> Iterator[EmbeddedNats]:
    server = EmbeddedNats().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def probe_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTKIT_METRICS_PORT", "0")
    monkeypatch.setenv("EVENTKIT_METRICS_HOST", "127.0.0.1")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def get(http: aiohttp.ClientSession, svc: Service, path: str) -> tuple[int, Any]:
    assert svc.observing is not None and svc.observing.probes is not None
    async with http.get(f"http://127.0.0.1:{svc.observing.probes.port}{path}") as resp:
        body = await (resp.json() if path != "/metrics" else resp.text())
        return resp.status, body


async def test_readiness_follows_start_drain_and_the_broker_link(
    nats: EmbeddedNats, probe_env: None, http: aiohttp.ClientSession
) -> None:
    svc = Service("probed")
    seen: dict[str, Any] = {}

    @svc.endpoint("Probed.Ping")
    async def ping() -> str:
        return "pong"

    @svc.before_start
    async def starting() -> None:
        seen["starting"] = await get(http, svc, "/readyz")
        seen["live"] = await get(http, svc, "/healthz")

    @svc.before_stop
    async def draining() -> None:  # runs before the node leaves the registry
        assert svc.registry is not None
        seen["draining"] = await get(http, svc, "/readyz")

    await svc.start(broker=nats.url)
    try:
        status, report = await get(http, svc, "/readyz")
        assert status == 200
        assert report["ready"] is True and report["node"] == svc.node_id
        await anyio.to_thread.run_sync(nats.stop_node, 0)
        with anyio.fail_after(10):
            while (await get(http, svc, "/readyz"))[0] != 503:
                await anyio.sleep(0.05)
        status, report = await get(http, svc, "/readyz")
        assert report["checks"]["broker_connected"] is False
        assert (await get(http, svc, "/healthz"))[0] == 200  # alive all the same
        await anyio.to_thread.run_sync(nats.start_node, 0)
        with anyio.fail_after(20):
            while (await get(http, svc, "/readyz"))[0] != 200:
                await anyio.sleep(0.1)
    finally:
        await svc.stop()
    assert seen["starting"][0] == 503 and seen["starting"][1]["checks"]["registered"] is False
    assert seen["live"] == (200, {"live": True, "node": svc.node_id})
    assert seen["draining"][0] == 503 and seen["draining"][1]["checks"]["draining"] is True


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(family: Any, suffix: str, **labels: str) -> float:
    for sample in family.samples:
        if sample.labels.get("error_type") and "error_type" not in labels:
            continue  # a success's sample is the one without error_type
        if sample.name == family.name + suffix and all(
            sample.labels.get(k) == v for k, v in labels.items()
        ):
            return float(sample.value)
    raise AssertionError(f"no {family.name}{suffix} with {labels}: {family.samples}")


async def test_metrics_are_scraped_and_parse(
    nats: EmbeddedNats, probe_env: None, http: aiohttp.ClientSession
) -> None:
    svc = Service("metered")
    handled = anyio.Event()

    @svc.endpoint("Metered.Check")
    async def check(req: dict[str, int]) -> dict[str, int]:
        if req["n"] < 0:
            raise ValueError("negative")
        return req

    @svc.subscribe("metered.events", queue="metered")
    async def on_event(event: Event[dict[str, int]]) -> None:
        if event.data["n"] == 2:
            handled.set()
        if event.data["n"] == 1:
            raise RuntimeError("this one fails")

    await svc.start(broker=nats.url)
    try:
        async with eventkit.connect(nats.url) as kit:
            for n in (0, 1, 2):
                await kit.publish("metered.events", {"n": n})
            await kit.call("metered", "Metered.Check", {"n": 1})
            with pytest.raises(eventkit.InternalError):
                await kit.call("metered", "Metered.Check", {"n": -1})
        with anyio.fail_after(10):
            await handled.wait()
        status, text = await get(http, svc, "/metrics")
    finally:
        await svc.stop()
    assert status == 200
    found = families(text)
    sub = {
        "messaging_destination_name": "metered.events",
        "messaging_consumer_group_name": "metered",
    }
    consumed = found["messaging_client_consumed_messages"]
    assert value(consumed, "_total", **sub, messaging_system="nats") == 3 - 1
    assert value(consumed, "_total", **sub, error_type="RuntimeError") == 1
    process = found["messaging_process_duration_seconds"]
    assert value(process, "_count", **sub) == 2
    assert value(process, "_bucket", **sub, le="+Inf") == 2
    in_flight = found["eventkit_messaging_in_flight"]
    assert value(in_flight, "", **sub) == 0
    server = found["rpc_server_call_duration_seconds"]
    method = {"rpc_method": "metered/Metered.Check"}
    assert value(server, "_count", **method, rpc_status_code="200") == 1
    assert value(server, "_count", **method, rpc_status_code="500", error_type="500") == 1
    link = found["eventkit_broker_connected"]
    assert value(link, "", messaging_system="nats") == 1
