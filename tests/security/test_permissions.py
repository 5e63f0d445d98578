"""The namespace permissions of docs/security.md, tested as shipped.

A nats-server runs brokers/nats/permissions.conf, and RabbitMQ gets the topic permissions of
brokers/rabbitmq/permissions.sh for a user and vhost made for the test: a producer without
the rights publishes to the registry, to an RPC topic and to a reply inbox, and none of it
reaches the service, while its own events still do.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

import eventkit
from eventkit.brokers.nats import EmbeddedNats, NatsBroker
from eventkit.brokers.rabbitmq import RabbitBroker
from eventkit.discovery import registry_topic
from eventkit.wire import EventKitError, Message, to_message

from .conftest import AmqpUser, rabbitmqctl

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
NATS_CONF = ROOT / "brokers" / "nats" / "permissions.conf"
RABBIT_SCRIPT = ROOT / "brokers" / "rabbitmq" / "permissions.sh"


def test_docs_show_the_tested_configs() -> None:
    docs = (ROOT / "docs" / "security.md").read_text()
    assert NATS_CONF.read_text().strip() in docs
    assert "set_topic_permissions" in docs and "brokers/rabbitmq/permissions.sh" in docs


def _forged_announce(ns: str) -> Message:
    record = {
        "id": "forged-1",
        "service": "victim",
        "version": "6.6.6",
        "address": "evil/1",
        "ttl": 30.0,
        "started": 1.0,
        "metadata": {},
        "endpoints": [],
        "subscriptions": [],
    }
    return to_message(
        registry_topic(ns),
        record,
        id="forged",
        source="/services/victim/forged-1",
        type="eventkit.registry.announce",
    )


async def _attack(attacker_url: str, service_url: str, ns: str, **options: object) -> None:
    """A service runs on ``service_url``; a producer on ``attacker_url`` tries to speak for
    the kit. Its own event arrives; nothing it forged does."""
    svc = eventkit.Service("victim", namespace=ns)
    events: list[object] = []
    requests: list[object] = []

    @svc.subscribe("shop.orders")
    async def on_order(data: dict[str, int]) -> None:
        events.append(data)

    @svc.endpoint("Victim.Do")
    async def do(req: dict[str, int]) -> dict[str, int]:
        requests.append(req)
        return req

    await svc.start(broker=service_url)
    try:
        async with eventkit.connect(service_url) as caller:
            assert await caller.call("victim", "Victim.Do", {"a": 1}) == {"a": 1}
            requests.clear()
            for forged in (
                _forged_announce(ns),
                Message(f"{ns}.rpc.victim", b'{"a": 2}', {"eventkit-endpoint": "Victim.Do"}),
                Message(f"{ns}.reply.{caller.node_id}.1", b'{"forged": true}', {}),
            ):
                # One connection per attempt: RabbitMQ closes the channel of a refused publish.
                async with _broker(attacker_url, **options) as attacker:
                    with contextlib.suppress(EventKitError):  # refused at once (RabbitMQ)
                        await attacker.publish(forged)
            async with _broker(attacker_url, **options) as attacker:
                own = to_message("shop.orders", {"n": 1}, id="1", source="/p", type="t")
                await attacker.publish(own)
            with anyio.fail_after(10):
                while not events:
                    await anyio.sleep(0.05)
            await anyio.sleep(0.5)  # time for anything forged to arrive, if it could
            registry = await caller.get_registry()
            assert "forged-1" not in _node_ids(registry)
            assert requests == []
            assert await caller.call("victim", "Victim.Do", {"a": 3}) == {"a": 3}
            # The control: the same forgery from a user with the rights is taken in.
            await caller.broker.publish(_forged_announce(ns))
            with anyio.fail_after(10):
                while "forged-1" not in _node_ids(registry):
                    await anyio.sleep(0.05)
    finally:
        await svc.stop()
    assert events == [{"n": 1}]


def _node_ids(registry: Any) -> set[str]:
    return {node.id for info in registry.view.services() for node in info.nodes}


def _broker(url: str, **options: object) -> NatsBroker | RabbitBroker:
    if url.startswith("nats"):
        return NatsBroker(url)
    return RabbitBroker(url, **options)  # type: ignore[arg-type]


async def test_nats_permissions_shut_a_producer_out_of_the_kit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with EmbeddedNats(extra_config=NATS_CONF.read_text()) as server:
        host = server.url.removeprefix("nats://")
        service_url = f"nats://service:service-secret-change-me@{host}"
        producer_url = f"nats://producer:producer-secret-change-me@{host}"
        with caplog.at_level(logging.WARNING, logger="eventkit.broker.nats"):
            await _attack(producer_url, service_url, "eventkit")
    refused = [r.getMessage() for r in caplog.records if "NATS refused" in r.getMessage()]
    assert any("eventkit.registry" in line for line in refused), refused
    assert any("eventkit.rpc.victim" in line for line in refused), refused
    assert "producer-secret" not in caplog.text


async def test_rabbitmq_topic_permissions_shut_a_producer_out_of_the_kit(
    amqp_user: AmqpUser,
) -> None:
    producer = f"ek-prod-{uuid.uuid4().hex[:8]}"
    password = f"prod-{uuid.uuid4().hex[:8]}"
    done = await anyio.run_process(
        ["sh", str(RABBIT_SCRIPT), amqp_user.vhost, producer, password], check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    try:
        await _attack(
            f"amqp://{producer}:{password}@127.0.0.1:5672/{amqp_user.vhost}",
            amqp_user.url,
            "eventkit",
        )
    finally:
        rabbitmqctl("delete_user", producer)
