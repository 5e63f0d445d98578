"""Outside CloudEvents producers and consumers: the cloudevents SDK on both ends."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import aiohttp
import anyio
import pytest
from aiohttp import web
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.v1.event import CloudEvent

from eventkit.wire import Message, decode_attributes, to_message
from tests.conformance.util import Recorder, settle
from tests.servers import free_port

from .conftest import NodeFactory

pytestmark = pytest.mark.anyio


def _sdk_event() -> CloudEvent:
    return CloudEvent(
        attributes={
            "id": "evt-1",
            "source": "/shop/checkout",
            "type": "shop.order.placed",
            "subject": "order 17",
            "datacontenttype": "application/json",
            "time": datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
            "tenant": "acme",
        },
        data={"order_id": "o-17", "total_cents": 999, "note": "grüße"},
    )


@pytest.mark.parametrize("mode", ["binary", "structured"])
async def test_sdk_event_posted_from_outside_reaches_a_subscriber(
    nodes: NodeFactory, mode: str
) -> None:
    gateway = await nodes()
    receiver = await nodes(seeds=gateway.address)
    got = Recorder()
    await receiver.subscribe("shop.orders.placed", got)
    await settle(gateway, receiver)
    event = _sdk_event()
    sent = (
        ce_http.to_binary_event(event) if mode == "binary" else ce_http.to_structured_event(event)
    )
    async with aiohttp.ClientSession() as session:
        url = f"http://{gateway.address}/topics/shop.orders.placed"
        async with session.post(url, data=sent.body, headers=sent.headers) as resp:
            assert resp.status == 202, await resp.text()
    await got.wait_for(1)
    attrs, raw, _ = decode_attributes(got.messages[0])
    assert attrs["id"] == "evt-1"
    assert attrs["source"] == "/shop/checkout"
    assert attrs["type"] == "shop.order.placed"
    assert attrs["subject"] == "order 17"
    assert attrs["tenant"] == "acme"
    assert attrs["time"].startswith("2024-05-01T12:30:00")
    expected = event.get_data()
    if mode == "binary":
        assert json.loads(raw) == expected
    else:
        assert raw == expected


async def test_a_static_sink_gets_binary_mode_events_the_sdk_parses(nodes: NodeFactory) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        holder = await nodes(sinks=[("shop.orders.>", f"http://127.0.0.1:{port}/hook")])
        publisher = await nodes(seeds=holder.address)
        message = to_message(
            "shop.orders.placed",
            {"order_id": "o-1", "total_cents": 999, "note": "grüße 注文"},
            id="e-42",
            source="/services/shop/n1",
            type="shop.order.placed",
            time="2024-05-01T12:30:00Z",
            subject="order o-1",
            extensions={"tenant": "acme", "traceid": "abc 123"},
        )
        with anyio.fail_after(10):
            while not received:  # the sink spreads by gossip; publish until it arrives
                await publisher.publish(message)
                await anyio.sleep(0.05)
        await publisher.publish(Message("shop.other", b"{}", dict(message.headers)))
        await publisher.publish(Message("shop.orders.x", b"{}", {"x-id": "not an event"}))
        headers, body = received[0]
        event = ce_http.from_http_event(ce_http.HTTPMessage(headers=headers, body=body))
        assert event.get_id() == "e-42"
        assert event.get_source() == "/services/shop/n1"
        assert event.get_type() == "shop.order.placed"
        assert event.get_subject() == "order o-1"
        assert event.get_time() == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
        assert event.get_datacontenttype() == "application/json"
        assert event.get_extension("tenant") == "acme"
        assert event.get_extension("traceid") == "abc 123"
        assert event.get_data() == {"order_id": "o-1", "total_cents": 999, "note": "grüße 注文"}
        assert headers["eventkit-topic"] == "shop.orders.placed"
        assert "Authorization" not in headers
        assert all(h.get("eventkit-topic", "").startswith("shop.orders.") for h, _ in received)
    finally:
        await runner.cleanup()
