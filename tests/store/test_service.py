"""The store as a service and a client see it: ``svc.store``, ``kit.store``, and the choice
of backend (the broker's own, a store URL, or a clear error; never a silent fallback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

import eventkit.testing
from eventkit import ConfigError, Context, Service
from eventkit.brokers.nats import EmbeddedNats
from tests.servers import free_port

pytestmark = pytest.mark.anyio


class Cart(BaseModel):
    items: list[str] = []


class AddItem(BaseModel):
    user: str
    item: str


def cart_service(**options: object) -> Service:
    svc = Service("carts", **options)  # type: ignore[arg-type]
    carts = svc.store("carts", Cart)  # made before the service starts

    @svc.endpoint("Carts.Add")
    async def add(req: AddItem, ctx: Context) -> Cart:
        entry = await carts.update(req.user, lambda c: Cart(items=[*(c or Cart()).items, req.item]))
        return entry.value

    return svc


async def test_service_and_client_share_the_memory_store() -> None:
    svc = cart_service()
    async with eventkit.testing.run(svc) as kit:
        for item in ("mug", "tea"):
            await kit.call("carts", "Carts.Add", AddItem(user="ada", item=item), response=Cart)
        entry = await kit.store("carts", Cart).get("ada")
        assert entry is not None and entry.value == Cart(items=["mug", "tea"])
        assert svc.store.backend == "memory"


async def test_a_service_on_nats_keeps_its_store_in_jetstream_kv() -> None:
    async with EmbeddedNats() as server:
        svc = cart_service(broker=server.url)
        async with svc, eventkit.connect(server.url) as kit:
            await kit.call("carts", "Carts.Add", AddItem(user="bo", item="pen"), response=Cart)
            assert svc.store.backend == "nats"
            entry = await kit.store("carts", Cart).get("bo")
            assert entry is not None and entry.value == Cart(items=["pen"])
            kv = await kit.broker.key_value("carts")  # type: ignore[attr-defined]
            status = await kv.status()
            assert status.stream_info.config.storage == "file"
            assert status.stream_info.config.num_replicas == 1


async def test_http_broker_without_a_store_url_stops_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EVENTKIT_STORE", raising=False)
    svc = cart_service(broker=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ConfigError, match=r"cannot hold a key-value store.*store=.*EVENTKIT_STORE"):
        await svc.start()
    assert not svc.running


async def test_rabbitmq_client_without_a_store_url_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EVENTKIT_STORE", raising=False)
    kit = eventkit.connect("amqp://guest:guest@127.0.0.1:5672/")  # not connected: no I/O
    with pytest.raises(ConfigError, match="amqp:// broker cannot hold a key-value store"):
        await kit.store("carts").get("x")


async def test_store_url_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EVENTKIT_STORE", f"sqlite:///{tmp_path}/carts.db")
    svc = cart_service(broker=f"http://127.0.0.1:{free_port()}")
    async with svc:
        assert svc.store.backend == "sqlite"
        entry = await svc.store("carts", Cart).update("cy", lambda c: Cart(items=["cup"]))
        assert entry.revision == 1
    assert (tmp_path / "carts.db").exists()


async def test_unknown_store_url_and_missing_option_are_clear() -> None:
    kit = eventkit.connect("memory://", store="redis://127.0.0.1")
    with pytest.raises(ConfigError, match="unknown scheme"):
        await kit.store("carts").keys()
    with pytest.raises(ConfigError, match="sqlite:///relative"):
        await eventkit.connect("memory://", store="sqlite://").store("x").keys()
