"""Content modes on the machine's NATS: what other NATS clients see, and what eventkit reads.

By default an event is the CloudEvents NATS binding's structured form: the JSON event format
as the whole payload, marked by ``content-type: application/cloudevents+json`` (the binding's
1.0.3 rule for telling the modes apart). ``content_mode=binary`` (or ``structured=False`` on
one publish) sends ``ce-*`` headers, ``ce-datacontenttype`` among them, and the bare data
instead. Subscribers read both, and events without headers from older producers.

Needs NATS with JetStream at 127.0.0.1:4222 (skipped without it, a failure under CI). Topics
start with a token of their own, so parallel runs never see each other; the durable consumer
and stream a test makes are deleted at its end.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import nats
import pytest
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from nats.aio.msg import Msg
from pydantic import BaseModel

from eventkit import Client, Context, Event, Service
from eventkit.brokers.nats import NatsBroker
from tests.conformance.util import settle, wait_until
from tests.nats.util import TrackingNatsBroker, delete_durables
from tests.servers import require_server

pytestmark = pytest.mark.anyio

URL = os.environ.get("EVENTKIT_TEST_NATS_URL", "nats://127.0.0.1:4222")
STRUCTURED = "application/cloudevents+json"


class OrderPlaced(BaseModel):
    order_id: str
    total_cents: int


ORDER = OrderPlaced(order_id="o-1", total_cents=999)


@pytest.fixture(autouse=True)
def machine_nats() -> None:
    require_server("127.0.0.1", 4222, "NATS (nats-server -js)")


@pytest.fixture
def topic() -> str:
    """A topic whose first token is this test's own (so is the stream of a durable on it)."""
    return f"ct{uuid.uuid4().hex[:10]}.orders.placed"


class Raw:
    """What a plain nats-py subscriber sees on the wire."""

    def __init__(self) -> None:
        self.msgs: list[Msg] = []

    async def on_msg(self, msg: Msg) -> None:
        self.msgs.append(msg)

    async def wait_for(self, count: int) -> list[Msg]:
        await wait_until(
            lambda: len(self.msgs) >= count,
            what=f"{count} message(s) at the nats-py subscriber (got {len(self.msgs)})",
        )
        return self.msgs


@asynccontextmanager
async def raw_subscriber(topic: str) -> AsyncIterator[Raw]:
    nc = await nats.connect(URL)
    try:
        raw = Raw()
        await nc.subscribe(topic, cb=raw.on_msg)
        await nc.flush()  # the server has the SUB: what is published from now on reaches it
        yield raw
    finally:
        await nc.close()


@asynccontextmanager
async def running(svc: Service, broker: NatsBroker | None = None) -> AsyncIterator[Service]:
    """``svc`` started on NATS, its subscriptions live on the server."""
    await svc.start(broker=broker or NatsBroker(URL))
    try:
        async with NatsBroker(URL) as probe:
            await settle(probe, svc.broker)
        yield svc
    finally:
        await svc.stop()


def new_service() -> Service:
    return Service("contentmode", namespace=f"ct{uuid.uuid4().hex[:10]}")


def binary_attributes(msg: Msg) -> dict[str, str]:
    return {k: v for k, v in (msg.headers or {}).items() if k.startswith("ce-")}


# -- what other NATS clients see -----------------------------------------------------------


async def test_an_event_is_the_json_event_format_marked_by_its_content_type(topic: str) -> None:
    async with raw_subscriber(topic) as raw, Client(NatsBroker(URL)) as kit:
        assert kit.broker.capabilities.structured_events
        event_id = await kit.publish(topic, ORDER, type="shop.order.placed", subject="o-1")
        (msg,) = await raw.wait_for(1)
    assert msg.headers == {"content-type": STRUCTURED}  # the binding's mark, nothing else
    event = json.loads(msg.data)
    assert isinstance(event, dict)
    assert event["specversion"] == "1.0"
    assert event["id"] == event_id
    assert event["source"] == kit.source
    assert event["type"] == "shop.order.placed"
    assert event["subject"] == "o-1"
    assert event["datacontenttype"] == "application/json"
    assert datetime.fromisoformat(event["time"]).tzinfo is not None
    assert event["data"] == ORDER.model_dump()
    assert not any(key.startswith("ce-") for key in event)

    parsed = JSONFormat().read(None, msg.data)
    assert parsed.get_specversion() == "1.0"
    assert (parsed.get_id(), parsed.get_source(), parsed.get_type()) == (
        event_id,
        kit.source,
        "shop.order.placed",
    )
    assert parsed.get_subject() == "o-1"
    assert parsed.get_datacontenttype() == "application/json"
    assert isinstance(parsed.get_time(), datetime)
    assert parsed.get_data() == ORDER.model_dump()


@pytest.mark.parametrize("how", ["url", "keyword"])
async def test_content_mode_binary_sends_ce_headers_and_the_bare_data(topic: str, how: str) -> None:
    broker = (
        NatsBroker(URL + "?content_mode=binary")
        if how == "url"
        else NatsBroker(URL, content_mode="binary")
    )
    assert not broker.capabilities.structured_events
    async with raw_subscriber(topic) as raw, Client(broker) as kit:
        assert not kit.broker.capabilities.structured_events  # connecting keeps it
        event_id = await kit.publish(topic, ORDER, type="shop.order.placed")
        (msg,) = await raw.wait_for(1)
    attrs = binary_attributes(msg)
    assert attrs["ce-id"] == event_id
    assert attrs["ce-source"] == kit.source
    assert attrs["ce-type"] == "shop.order.placed"
    assert attrs["ce-specversion"] == "1.0"
    assert "ce-time" in attrs
    assert attrs["ce-datacontenttype"] == "application/json"  # the attribute, as the binding has it
    assert msg.headers is not None and "content-type" not in msg.headers
    assert json.loads(msg.data) == ORDER.model_dump()  # the data alone


async def test_structured_per_publish_overrides_the_brokers_mode(topic: str) -> None:
    async with (
        raw_subscriber(topic) as raw,
        Client(NatsBroker(URL)) as structured_kit,
        Client(NatsBroker(URL, content_mode="binary")) as binary_kit,
    ):
        forced_binary = await structured_kit.publish(topic, ORDER, structured=False)
        forced_structured = await binary_kit.publish(topic, ORDER, structured=True)
        first, second = await raw.wait_for(2)
    assert binary_attributes(first)["ce-id"] == forced_binary
    assert json.loads(first.data) == ORDER.model_dump()
    assert second.headers == {"content-type": STRUCTURED}
    event = json.loads(second.data)
    assert event["id"] == forced_structured and event["data"] == ORDER.model_dump()


# -- what eventkit reads -------------------------------------------------------------------


async def test_a_headerless_event_from_another_producer_reaches_a_typed_subscriber(
    topic: str,
) -> None:
    svc = new_service()
    seen: list[Event[OrderPlaced]] = []

    @svc.subscribe(topic)
    async def on_order(event: Event[OrderPlaced]) -> None:
        seen.append(event)

    sdk_event = CloudEvent(
        attributes={
            "id": "sdk-1",
            "source": "/other/producer",
            "type": "shop.order.placed",
            "specversion": "1.0",
            "datacontenttype": "application/json",
            "subject": "o-1",
            "time": datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
            "tenant": "acme",
        },
        data=ORDER.model_dump(),
    )
    by_hand: dict[str, Any] = {
        "specversion": "1.0",
        "id": "hand-1",
        "source": "/other/producer",
        "type": "shop.order.placed",
        "data": {"order_id": "o-2", "total_cents": 5},
    }
    async with running(svc):
        nc = await nats.connect(URL)
        try:
            await nc.publish(topic, JSONFormat().write(sdk_event))  # no headers
            await nc.publish(topic, json.dumps(by_hand).encode())
            await nc.flush()
        finally:
            await nc.close()
        await wait_until(lambda: len(seen) >= 2, what="both events at the subscriber")
    sdk, hand = seen
    assert (sdk.id, sdk.source, sdk.type, sdk.specversion) == (
        "sdk-1",
        "/other/producer",
        "shop.order.placed",
        "1.0",
    )
    assert sdk.subject == "o-1" and sdk.datacontenttype == "application/json"
    assert sdk.time == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert sdk.extensions == {"tenant": "acme"}
    assert sdk.data == ORDER and isinstance(sdk.data, OrderPlaced)
    assert hand.id == "hand-1" and hand.datacontenttype is None and hand.time is None
    assert hand.data == OrderPlaced(order_id="o-2", total_cents=5)


async def test_one_subscriber_reads_both_modes(topic: str) -> None:
    svc = new_service()
    seen: list[Event[OrderPlaced]] = []

    @svc.subscribe(topic)
    async def on_order(event: Event[OrderPlaced]) -> None:
        seen.append(event)

    async with (
        running(svc),
        Client(NatsBroker(URL)) as kit,
        Client(NatsBroker(URL, content_mode="binary")) as binary_kit,
    ):
        ids = [
            await kit.publish(topic, ORDER, subject="s"),
            await kit.publish(topic, ORDER, subject="s", structured=False),
            await binary_kit.publish(topic, ORDER, subject="s"),
        ]
        await wait_until(lambda: len(seen) >= 3, what="three events at the subscriber")
    assert sorted(e.id for e in seen) == sorted(ids)
    for event in seen:
        assert event.data == ORDER and isinstance(event.data, OrderPlaced)
        assert event.type == topic and event.subject == "s"
        assert event.datacontenttype == "application/json"
        assert event.source in (kit.source, binary_kit.source)
        assert event.time is not None


async def test_metadata_keeps_the_header_block_and_reaches_the_context(topic: str) -> None:
    relayed = f"{topic}.relayed"
    svc = new_service()
    seen: list[tuple[Event[OrderPlaced], dict[str, str]]] = []

    @svc.subscribe(topic)
    async def on_order(event: Event[OrderPlaced], ctx: Context) -> None:
        seen.append((event, ctx.metadata))
        await ctx.publish(relayed, {"order_id": event.data.order_id})

    async with (
        running(svc),
        raw_subscriber(f"{topic}.>") as raw_relayed,
        raw_subscriber(topic) as raw,
        Client(NatsBroker(URL)) as kit,
    ):
        event_id = await kit.publish(topic, ORDER, metadata={"trace": "x"})
        (msg,) = await raw.wait_for(1)
        (relay,) = await raw_relayed.wait_for(1)
    assert msg.headers == {"content-type": STRUCTURED, "eventkit-md-trace": "x"}
    assert json.loads(msg.data)["id"] == event_id
    ((event, metadata),) = seen
    assert event.id == event_id and event.data == ORDER
    assert metadata == {"trace": "x"}
    # Propagated from the handler's context: still structured, headers beside it.
    assert relay.headers == {"content-type": STRUCTURED, "eventkit-md-trace": "x"}
    assert json.loads(relay.data)["data"] == {"order_id": "o-1"}


# -- durable (JetStream) -------------------------------------------------------------------


async def test_durable_subscription_gets_structured_events_once_per_id(topic: str) -> None:
    made: set[tuple[str, str]] = set()
    svc = new_service()
    durable = f"d{uuid.uuid4().hex[:10]}"
    seen: list[Event[OrderPlaced]] = []

    @svc.subscribe(topic, durable=durable)
    async def on_order(event: Event[OrderPlaced]) -> None:
        seen.append(event)

    try:
        async with running(svc, TrackingNatsBroker(URL, made)):
            assert made == {(f"eventkit-{topic.split('.')[0]}", durable)}
            # A broker made after the stream exists, so it publishes through JetStream.
            async with Client(NatsBroker(URL)) as kit:
                await kit.publish(topic, ORDER, id="same-id")
                await kit.publish(topic, OrderPlaced(order_id="o-2", total_cents=1), id="same-id")
                await kit.publish(topic, OrderPlaced(order_id="o-3", total_cents=1), id="last")
            # A durable consumer delivers in stream order: once "last" is here, anything
            # stored before it has been delivered too.
            await wait_until(lambda: any(e.id == "last" for e in seen), what="the last event")
    finally:
        await delete_durables(URL, made)
    assert [e.id for e in seen] == ["same-id", "last"]  # the second "same-id" was dropped
    assert seen[0].data == ORDER and seen[0].source == kit.source
    assert seen[1].data == OrderPlaced(order_id="o-3", total_cents=1)
