"""The store as a service and a client see it: ``svc.store``, ``kit.store``, and the choice
of backend (the broker's own, a store URL, or a clear error; never a silent fallback)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from pydantic import BaseModel

import eventkit.testing
from eventkit import ConfigError, Context, EventKitError, Service
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


async def test_ttl_on_a_bucket_without_message_ttl_is_refused() -> None:
    """A bucket made elsewhere without per-message TTL (or on nats-server before 2.11) would
    keep the key forever: a put with ttl= is refused, naming what is needed."""
    from nats.js.api import StreamConfig

    from eventkit import UnsupportedFeature

    async with EmbeddedNats() as server, eventkit.connect(server.url) as kit:
        kv = await kit.broker.key_value("made")  # type: ignore[attr-defined]
        js = kv._js
        await js.delete_key_value("made")
        await js.add_stream(
            StreamConfig(
                name="KV_old",
                subjects=["$KV.old.>"],
                max_msgs_per_subject=1,
                allow_rollup_hdrs=True,
                deny_delete=True,
            )
        )
        old = kit.store("old", int)
        await old.put("k", 1)  # an existing bucket is used as it is
        with pytest.raises(UnsupportedFeature, match=r"cannot expire keys.*2\.11"):
            await old.put("k", 2, ttl=5)
        assert (await old.get("k")).value == 1  # type: ignore[union-attr]
        kept = kit.store("kept", int, history=3)
        await kept.put("k", 1)
        with pytest.raises(UnsupportedFeature, match="uncover the one before it"):
            await kept.put("k", 2, ttl=5)


async def test_buckets_take_the_brokers_replicas_and_survive_a_lost_node() -> None:
    from eventkit.brokers.nats import EmbeddedNatsCluster, NatsBroker
    from eventkit.store import Store

    async with (
        EmbeddedNatsCluster(size=3) as cluster,
        NatsBroker(cluster.url, replicas=3, publish_timeout=10.0) as broker,
    ):
        store = Store(lambda: broker, lambda: None)
        counters = store("replicated", int)
        with anyio.fail_after(30):
            while True:  # the cluster elects its JetStream leader first
                try:
                    first = await counters.put("n", 1)
                    break
                except EventKitError:
                    await anyio.sleep(0.3)
        kv = await broker.key_value("replicated")
        assert (await kv.status()).stream_info.config.num_replicas == 3
        await cluster.kill(0)
        with anyio.fail_after(30):
            while True:  # a new leader if the killed node led the bucket
                try:
                    second = await counters.put("n", 2, revision=first)
                    break
                except EventKitError:
                    await anyio.sleep(0.3)
        entry = await counters.get("n")
        assert entry is not None and (entry.value, entry.revision) == (2, second)
        await store.close()
