"""CloudEvents encoding and decoding: both content modes, round trips, SDK interop, bad input."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel, ConfigDict

from eventkit import wire
from eventkit.service import inspect_handler
from eventkit.wire import (
    Event,
    EventIds,
    InvalidEvent,
    Message,
    check_extensions,
    decode_attributes,
    to_message,
)


class OrderPlaced(BaseModel):
    model_config = ConfigDict(json_schema_extra={"$id": "https://schemas.example/order.json"})
    order_id: str
    total_cents: int


def encode(data: Any, **kw: Any) -> Message:
    return to_message(
        "shop.orders.placed",
        data,
        id="e-1",
        source="/services/shop/n1",
        type="shop.order.placed",
        time="2026-11-24T12:00:00Z",
        **kw,
    )


async def _event_handler(event: Event[OrderPlaced]) -> None: ...


def decode_event(message: Message) -> Event[OrderPlaced]:
    (event,) = inspect_handler(_event_handler).build_args(message, None)
    assert isinstance(event, Event)
    return event


def test_binary_mode_puts_attributes_in_headers_and_data_in_body() -> None:
    msg = encode(
        OrderPlaced(order_id="o-1", total_cents=999),
        subject="o-1",
        extensions={"traceparent": "00-abc", "priority": 3},
    )
    assert msg.headers["ce-id"] == "e-1"
    assert msg.headers["ce-specversion"] == "1.0"
    assert msg.headers["ce-source"] == "/services/shop/n1"
    assert msg.headers["ce-type"] == "shop.order.placed"
    assert msg.headers["ce-subject"] == "o-1"
    assert msg.headers["ce-time"] == "2026-11-24T12:00:00Z"
    assert msg.headers["ce-dataschema"] == "https://schemas.example/order.json"
    assert msg.headers["ce-priority"] == "3"
    assert msg.headers["content-type"] == "application/json"
    assert json.loads(msg.body) == {"order_id": "o-1", "total_cents": 999}


@pytest.mark.parametrize("structured", [False, True])
def test_round_trip_both_modes(structured: bool) -> None:
    msg = encode(
        OrderPlaced(order_id="o-1", total_cents=5),
        subject="s",
        extensions={"tenant": "acme"},
        structured=structured,
    )
    event = decode_event(msg)
    assert event.data == OrderPlaced(order_id="o-1", total_cents=5)
    assert (event.id, event.type, event.subject) == ("e-1", "shop.order.placed", "s")
    assert event.extensions == {"tenant": "acme"}
    assert event.dataschema == "https://schemas.example/order.json"
    assert event.time is not None and event.time.year == 2026


def test_structured_mode_is_one_json_object() -> None:
    msg = encode({"a": 1}, structured=True)
    assert msg.headers["content-type"] == "application/cloudevents+json"
    body = json.loads(msg.body)
    assert body["data"] == {"a": 1}
    assert body["specversion"] == "1.0"
    assert body["datacontenttype"] == "application/json"


def test_bytes_data_binary_and_base64_in_structured() -> None:
    raw = bytes(range(256))
    msg = encode(raw)
    assert msg.body == raw and msg.headers["content-type"] == "application/octet-stream"
    smsg = encode(raw, structured=True)
    assert base64.b64decode(json.loads(smsg.body)["data_base64"]) == raw
    attrs, data, _ = decode_attributes(smsg)
    assert data == raw and attrs["id"] == "e-1"


def test_sdk_http_binary_event_is_read() -> None:
    sdk = CloudEvent(
        attributes={
            "id": "x1",
            "source": "/sdk",
            "type": "shop.order.placed",
            "specversion": "1.0",
            "datacontenttype": "application/json",
        },
        data={"order_id": "o-9", "total_cents": 1},
    )
    http = ce_http.to_binary_event(sdk)
    headers = {k.lower(): v for k, v in http.headers.items()}
    event = decode_event(Message("shop.orders.placed", http.body, headers))
    assert event.data.order_id == "o-9" and event.source == "/sdk"


def test_sdk_http_structured_event_is_read() -> None:
    sdk = CloudEvent(
        attributes={
            "id": "x2",
            "source": "/sdk",
            "type": "t",
            "specversion": "1.0",
            "datacontenttype": "application/json",
        },
        data={"order_id": "o-8", "total_cents": 2},
    )
    http = ce_http.to_structured_event(sdk)
    headers = {k.lower(): v for k, v in http.headers.items()}
    event = decode_event(Message("shop.orders.placed", http.body, headers))
    assert event.data.total_cents == 2


def test_our_binary_event_is_read_by_the_sdk() -> None:
    msg = encode(OrderPlaced(order_id="o-1", total_cents=999), extensions={"tenant": "a"})
    sdk = ce_http.from_binary_event(ce_http.HTTPMessage(headers=msg.headers, body=msg.body))
    assert sdk.get_id() == "e-1"
    assert sdk.get_type() == "shop.order.placed"
    assert sdk.get_extension("tenant") == "a"
    assert sdk.get_data() == {"order_id": "o-1", "total_cents": 999}


@pytest.mark.parametrize(
    ("headers", "body", "why"),
    [
        ({}, b"{}", "missing id, source, type, specversion"),
        (
            {"ce-id": "1", "ce-source": "s", "ce-type": "t", "ce-specversion": "0.3"},
            b"{}",
            "specversion",
        ),
        ({"content-type": "application/cloudevents+json"}, b"not json", "not JSON"),
        ({"content-type": "application/cloudevents+json"}, b"[1,2]", "not a JSON object"),
        ({"content-type": "application/cloudevents+json"}, b'{"id":"1"}', "missing source"),
    ],
)
def test_invalid_events_are_a_clear_error(headers: dict[str, str], body: bytes, why: str) -> None:
    with pytest.raises(InvalidEvent, match=why):
        decode_attributes(Message("a.b", body, headers))


def test_data_that_fails_the_model_names_the_fields() -> None:
    msg = encode({"order_id": 1})
    with pytest.raises(InvalidEvent, match="total_cents"):
        decode_event(msg)


def test_malformed_json_body() -> None:
    msg = encode({"order_id": "x", "total_cents": 1})
    msg.body = b"{not json"
    with pytest.raises(InvalidEvent):
        decode_event(msg)


def test_extension_names_are_checked() -> None:
    check_extensions({"tenant": 1})
    for bad in ("Tenant", "has-dash", "id", "x" * 21):
        with pytest.raises(InvalidEvent):
            check_extensions({bad: 1})


def test_event_ids_are_unique() -> None:
    ids, other = EventIds(), EventIds()
    seen = {ids() for _ in range(1000)} | {other() for _ in range(1000)}
    assert len(seen) == 2000


def test_non_serializable_data_is_a_clear_error() -> None:
    with pytest.raises(InvalidEvent, match="not JSON-serializable"):
        encode(object())


def test_binary_headers_follow_each_events_data_and_are_its_own() -> None:
    """Events from one publisher, in a row, each with headers for its own data and id."""
    order = OrderPlaced(order_id="o-1", total_cents=1)
    schema = {"ce-dataschema": "https://schemas.example/order.json"}
    base = {"ce-specversion": "1.0", "ce-source": "/services/shop/n1", "ce-type": "t"}
    cases: list[tuple[Any, dict[str, str]]] = [
        (order, {"content-type": "application/json", **schema}),
        (None, {}),
        (b"\x00raw", {"content-type": "application/octet-stream"}),
        ({"a": 1}, {"content-type": "application/json"}),
        (order, {"content-type": "application/json", **schema}),
    ]
    for round_ in range(2):
        for i, (data, expected) in enumerate(cases):
            eid, metadata = f"e-{round_}-{i}", {"eventkit-md-user": "u1"} if i % 2 else {}
            message = to_message(
                "shop.orders", data, id=eid, source=base["ce-source"], type="t", time="z",
                headers=dict(metadata),
            )  # fmt: skip
            want = {**metadata, **base, "ce-id": eid, "ce-time": "z", **expected}
            assert message.headers == want
            assert list(message.headers) == [
                *metadata, "ce-specversion", "ce-id", "ce-source", "ce-type", "ce-time",
                *(k for k in ("content-type", "ce-dataschema") if k in expected),
            ]  # fmt: skip
            message.headers["ce-type"] = "edited"  # reaches no later event
    untimed = to_message("shop.orders", order, id="e-9", source="/s", type="t")
    assert "ce-time" not in untimed.headers


def test_non_serializable_data_is_an_invalid_event_every_time() -> None:
    for _ in range(2):  # the second time, the headers for its class are already known
        with pytest.raises(InvalidEvent, match="not JSON-serializable"):
            encode(object())


def test_ce_datacontenttype_is_the_attribute_wherever_it_comes_from() -> None:
    """The NATS binding's header for datacontenttype, met on any transport, is the core
    attribute (it decides how the data is read), never an extension."""
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}
    headers |= {"ce-datacontenttype": "text/plain", "ce-tenant": "acme"}
    event = wire.decode_event(Message("t", b"hello", headers), str)
    assert event.datacontenttype == "text/plain"
    assert event.extensions == {"tenant": "acme"}
    assert event.data == "hello"
    with pytest.raises(InvalidEvent, match="not JSON"):
        wire.decode_event(Message("t", b"hello", headers), dict)
