"""Dapr's CloudEvents over HTTP, both directions, on eventkit's HTTP broker.

No Dapr sidecar runs here (daprd is a Go binary this machine cannot install); the tests send
and check what Dapr's documentation says crosses the wire:

- Dapr to an app: a subscription route gets a POST with ``Content-Type:
  application/cloudevents+json`` and the envelope Dapr makes (the example of "Publishing &
  subscribing messages with CloudEvents": ``topic``, ``pubsubname``, ``traceid``,
  ``traceparent``, ``tracestate`` beside the core attributes), and takes any 2xx answer
  with an empty body as SUCCESS. Point the route at ``/topics/{topic}`` of an eventkit node.
- An app to Dapr: ``POST /v1.0/publish/{pubsub}/{topic}`` with ``Content-Type:
  application/cloudevents+json`` publishes the app's own CloudEvent as it is. An eventkit
  sink on that URL, fed with events published ``structured=True``, does exactly that.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from cloudevents.core.bindings import http as ce_http
from pydantic import BaseModel, Field

from eventkit import Client, Event, Service
from eventkit.brokers.http import HttpBroker
from tests.conformance.util import wait_until
from tests.servers import free_port

pytestmark = pytest.mark.anyio

STRUCTURED = "application/cloudevents+json"

# Dapr's own example of the envelope it delivers (docs: pubsub-cloudevents, "Dapr-generated
# CloudEvents example").
DAPR_EVENT: dict[str, Any] = {
    "topic": "orders",
    "pubsubname": "order_pub_sub",
    "traceid": "00-113ad9c4e42b27583ae98ba698d54255-e3743e35ff56f219-01",
    "tracestate": "",
    "data": {"orderId": 1},
    "id": "5929aaac-a5e2-4ca1-859c-edfe73f11565",
    "specversion": "1.0",
    "datacontenttype": "application/json; charset=utf-8",
    "source": "checkout",
    "type": "com.dapr.event.sent",
    "time": "2020-09-23T06:23:21Z",
    "traceparent": "00-113ad9c4e42b27583ae98ba698d54255-e3743e35ff56f219-01",
}


class DaprOrder(BaseModel):
    order_id: int = Field(alias="orderId")


async def test_a_dapr_subscription_delivers_to_an_eventkit_subscriber() -> None:
    svc = Service("dapr-in", namespace="dapr")
    seen: list[Event[DaprOrder]] = []

    @svc.subscribe("orders")
    async def on_order(event: Event[DaprOrder]) -> None:
        seen.append(event)

    broker = HttpBroker("http://127.0.0.1:0")
    await svc.start(broker=broker)
    try:
        headers = {
            "Content-Type": STRUCTURED,
            "traceparent": DAPR_EVENT["traceparent"],
            "pubsubname": "order_pub_sub",
        }
        async with aiohttp.ClientSession() as session:
            url = f"http://{broker.address}/topics/orders"
            async with session.post(url, data=json.dumps(DAPR_EVENT), headers=headers) as resp:
                assert 200 <= resp.status < 300  # Dapr: a 2xx with no body is SUCCESS
                assert await resp.read() == b""
        await wait_until(lambda: seen, what="the Dapr event at the subscriber")
    finally:
        await svc.stop()
    (event,) = seen
    assert event.data == DaprOrder(orderId=1)
    assert (event.id, event.source, event.type) == (
        DAPR_EVENT["id"],
        "checkout",
        "com.dapr.event.sent",
    )
    assert event.datacontenttype == "application/json; charset=utf-8"
    for name in ("topic", "pubsubname", "traceid", "traceparent", "tracestate"):
        assert event.extensions[name] == DAPR_EVENT[name]


async def test_a_sink_publishes_eventkit_events_through_daprs_publish_api() -> None:
    received: list[tuple[str, dict[str, str], bytes]] = []

    async def dapr_publish(request: web.Request) -> web.Response:
        """Dapr's publish endpoint as its API reference describes it."""
        received.append((request.path, dict(request.headers), await request.read()))
        return web.Response(status=204)  # "Message delivered"

    app = web.Application()
    app.router.add_post("/v1.0/publish/{pubsub}/{topic}", dapr_publish)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        sink = f"http://127.0.0.1:{port}/v1.0/publish/order_pub_sub/orders"
        broker = HttpBroker("http://127.0.0.1:0", sinks=[("shop.orders.>", sink)])
        async with Client(broker) as kit:
            with anyio.fail_after(10):
                while not received:  # the sink is in the node's table at once; retry anyway
                    await kit.publish(
                        "shop.orders.placed",
                        {"orderId": 1},
                        type="shop.order.placed",
                        structured=True,
                    )
                    await anyio.sleep(0.05)
    finally:
        await runner.cleanup()
    path, headers, body = received[0]
    assert path == "/v1.0/publish/order_pub_sub/orders"
    assert headers["Content-Type"] == STRUCTURED  # Dapr keeps such an event as it is
    event = ce_http.from_http_event(ce_http.HTTPMessage(headers=headers, body=body))
    assert event.get_type() == "shop.order.placed"
    assert event.get_source() == kit.source
    assert event.get_data() == {"orderId": 1}
