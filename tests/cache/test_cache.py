"""The caller's reply cache on memory://: hits, misses, TTL, the bound, errors, tokens, the
endpoint's hint and the metrics. The endpoint counts how often it really runs."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from eventkit import Auth, BadRequest, Client, Context, Service
from eventkit.discovery import EndpointInfo, node_record
from eventkit.observability import Telemetry
from eventkit.rpc import Caller, ReplyCache
from eventkit.rpc._cache import endpoint_hints
from eventkit.testing import run

pytestmark = pytest.mark.anyio

KEY = "eventkit-cache-test-secret-of-at-least-32-bytes"


def counting_service(auth: Auth | None = None) -> tuple[Service, Counter[str]]:
    svc = Service("catalog", auth=auth)
    ran: Counter[str] = Counter()

    @svc.endpoint("Catalog.Price")
    async def price(req: dict[str, Any], ctx: Context) -> dict[str, Any]:
        ran[req["sku"]] += 1
        if req["sku"] == "bad":
            raise BadRequest("no such sku")
        return {"sku": req["sku"], "cents": 100, "for": ctx.caller}

    @svc.endpoint("Catalog.Hinted", cache=30)
    async def hinted(req: dict[str, Any]) -> int:
        ran["hinted"] += 1
        return ran["hinted"]

    return svc, ran


async def test_a_hit_answers_without_the_service_and_a_new_request_misses() -> None:
    svc, ran = counting_service()
    async with run(svc) as kit:
        first = await kit.call("catalog", "Catalog.Price", {"sku": "a"}, cache=10)
        again = await kit.call("catalog", "Catalog.Price", {"sku": "a"}, cache=10)
        assert again == first and again is not first  # a fresh value from the kept bytes
        assert ran["a"] == 1
        await kit.call("catalog", "Catalog.Price", {"sku": "b"}, cache=10)
        assert ran["b"] == 1
        await kit.call("catalog", "Catalog.Price", {"sku": "a"})  # no cache asked: sent
        assert ran["a"] == 2
        assert (kit.cache.hits, kit.cache.misses) == (1, 2)


async def test_an_entry_expires_with_its_ttl() -> None:
    svc, ran = counting_service()
    async with run(svc) as kit:
        await kit.call("catalog", "Catalog.Price", {"sku": "a"}, cache=0.2)
        await kit.call("catalog", "Catalog.Price", {"sku": "a"}, cache=0.2)
        assert ran["a"] == 1
        await anyio.sleep(0.3)
        await kit.call("catalog", "Catalog.Price", {"sku": "a"}, cache=0.2)
        assert ran["a"] == 2


async def test_the_cache_is_bounded_least_recently_used_out() -> None:
    svc, ran = counting_service()
    async with run(svc) as kit, Client(kit.broker, owns_broker=False, cache_size=2) as small:
        for sku in ("a", "b", "a", "c"):  # a is used again, so b is the one to go
            await small.call("catalog", "Catalog.Price", {"sku": sku}, cache=10)
        assert len(small.cache) == 2
        await small.call("catalog", "Catalog.Price", {"sku": "a"}, cache=10)
        await small.call("catalog", "Catalog.Price", {"sku": "b"}, cache=10)
        assert ran == {"a": 1, "b": 2, "c": 1}


async def test_errors_are_not_cached() -> None:
    svc, ran = counting_service()
    async with run(svc) as kit:
        for _ in range(2):
            with pytest.raises(BadRequest):
                await kit.call("catalog", "Catalog.Price", {"sku": "bad"}, cache=10)
        assert ran["bad"] == 2 and len(kit.cache) == 0


async def test_callers_with_different_tokens_never_share_a_reply() -> None:
    auth = Auth(KEY, default="open")
    svc, ran = counting_service(auth)
    async with run(svc) as kit:
        shared = ReplyCache()
        callers = [
            Caller(
                kit.broker,
                namespace=kit.namespace,
                node_id=f"caller-{name}",
                registry=kit.get_registry,
                token=auth.mint(name, ttl=60),
                cache=shared,
            )
            for name in ("ann", "bob")
        ]
        try:
            replies = [
                await c.call("catalog", "Catalog.Price", {"sku": "a"}, cache=10)
                for c in (*callers, *callers)
            ]
        finally:
            for c in callers:
                await c.close()
        assert [r["for"] for r in replies] == ["ann", "bob", "ann", "bob"]
        assert ran["a"] == 2 and shared.hits == 2


async def test_the_endpoint_hint_applies_unless_the_caller_says_otherwise() -> None:
    svc, _ran = counting_service()
    async with run(svc) as kit:
        assert await kit.call("catalog", "Catalog.Hinted", {}) == 1
        assert await kit.call("catalog", "Catalog.Hinted", {}) == 1  # the hint: 30 s
        assert await kit.call("catalog", "Catalog.Hinted", {}, cache=0) == 2  # never cached
        (described,) = await kit.describe("catalog")
        (info,) = [e for e in described.endpoints if e.name == "Catalog.Hinted"]
        assert info.metadata["cache"] == "30.0"


def test_hints_that_cannot_be_read_mean_no_caching() -> None:
    def node(hint: str) -> Any:
        endpoint = EndpointInfo(name="E", metadata={"cache": hint})
        return node_record(node_id="n", service="s", version="1", ttl=5, endpoints=[endpoint])

    assert endpoint_hints(node("12.5"), "E") == (False, 12.5)
    for bad in ("soon", "-1", "nan", "inf"):
        assert endpoint_hints(node(bad), "E") == (False, 0.0)
    assert endpoint_hints(node("5"), "Other") == (False, 0.0)


async def test_hits_and_misses_are_counted_in_the_metrics() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    telemetry = Telemetry(tracing=False, metrics=True, meter_provider=provider)
    svc, _ran = counting_service()
    async with run(svc) as kit, Client(kit.broker, owns_broker=False, telemetry=telemetry) as c:
        for _ in range(3):
            await c.call("catalog", "Catalog.Price", {"sku": "a"}, cache=10)
    totals: dict[str, int] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name.startswith("eventkit.rpc.cache."):
                    for point in metric.data.data_points:  # type: ignore[union-attr]
                        assert point.attributes == {"rpc.method": "catalog/Catalog.Price"}
                        totals[metric.name] = totals.get(metric.name, 0) + point.value  # type: ignore[union-attr]
    provider.shutdown()
    assert totals == {"eventkit.rpc.cache.hits": 2, "eventkit.rpc.cache.misses": 1}
