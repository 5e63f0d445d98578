"""Structured events as NATS delivers them: the JSON event format alone, no header block.

Every handler shape reads them (the one-pass envelope reader for the common shape, the general
path for the rest), attributes and extensions survive, and a bad event fails with the same
message whether or not the ``content-type`` header came along.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from eventkit.service import inspect_handler
from eventkit.wire import (
    EnvelopeReader,
    Event,
    InvalidEvent,
    Message,
    event_id_of,
    is_structured,
    to_message,
)

TOPIC = "shop.orders.placed"
STRUCTURED = {"content-type": "application/cloudevents+json"}
SCHEMA = "https://schemas.example/order.json"


class OrderPlaced(BaseModel):
    model_config = ConfigDict(json_schema_extra={"$id": SCHEMA})
    order_id: str
    total_cents: int


ORDER = OrderPlaced(order_id="o-1", total_cents=999)


async def wants_event(event: Event[OrderPlaced]) -> None: ...
async def wants_event_any(event: Event[Any]) -> None: ...
async def wants_optional_event(event: Event[OrderPlaced | None]) -> None: ...
async def wants_bytes_event(event: Event[bytes]) -> None: ...
async def wants_model(order: OrderPlaced) -> None: ...
async def wants_optional(order: OrderPlaced | None) -> None: ...
async def wants_dict(data: dict[str, Any]) -> None: ...
async def wants_any(data: Any) -> None: ...
async def untyped(data) -> None: ...  # type: ignore[no-untyped-def]
async def wants_int(n: int) -> None: ...
async def wants_list(ns: list[int]) -> None: ...
async def wants_str(text: str) -> None: ...
async def wants_bytes(raw: bytes) -> None: ...


def published(data: Any, **kw: Any) -> Message:
    """An event as ``to_message(structured=True)`` makes it: the body, and only content-type."""
    message = to_message(
        TOPIC,
        data,
        id="e-1",
        source="/services/shop/n1",
        type="shop.order.placed",
        time="2026-11-24T12:00:00.250Z",
        structured=True,
        **kw,
    )
    assert message.headers == STRUCTURED
    return message


def as_nats_delivers(message: Message) -> Message:
    """The header block dropped: NATS's binding carries the JSON event format alone."""
    return Message(message.topic, message.body, {})


def decode(handler: Any, message: Message) -> Any:
    return inspect_handler(handler).decode(message)


def event_body(**changes: Any) -> bytes:
    """A valid structured event's JSON, with attributes changed (None removes one)."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/services/shop/n1",
        "type": "shop.order.placed",
        "datacontenttype": "application/json",
        "data": {"order_id": "o-1", "total_cents": 999},
    }
    event.update(changes)
    return json.dumps({k: v for k, v in event.items() if v is not None}).encode()


# -- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extensions",
    [None, {"tenant": "acme", "priority": 3, "urgent": True}],
    ids=["common-shape", "extensions"],
)
def test_event_round_trip_keeps_every_attribute(extensions: dict[str, Any] | None) -> None:
    sent = published(ORDER, subject="o-1", extensions=extensions)
    event = decode(wants_event, as_nats_delivers(sent))
    assert isinstance(event, Event)
    # The content-type header, when it does come along, changes nothing.
    assert decode(wants_event, sent) == event
    assert event.data == ORDER and isinstance(event.data, OrderPlaced)
    assert (event.id, event.source, event.type, event.specversion) == (
        "e-1",
        "/services/shop/n1",
        "shop.order.placed",
        "1.0",
    )
    assert event.subject == "o-1"
    assert event.dataschema == SCHEMA  # from the model's $id
    assert event.datacontenttype == "application/json"
    assert event.time == datetime(2026, 11, 24, 12, 0, 0, 250_000, tzinfo=UTC)
    # Structured extensions keep their JSON types (binary mode would make them strings).
    assert event.extensions == (extensions or {})
    assert [type(v) for v in event.extensions.values()] == [
        type(v) for v in (extensions or {}).values()
    ]


def test_reading_time_leaves_the_time_attribute_as_it_came() -> None:
    event = decode(wants_event, as_nats_delivers(published(ORDER)))
    same = decode(wants_event, as_nats_delivers(published(ORDER)))
    assert event.time is not None
    assert event.attributes()["time"] == "2026-11-24T12:00:00.250Z"
    assert event == same


def test_dataschema_given_explicitly_is_kept() -> None:
    sent = published({"a": 1}, dataschema="https://schemas.example/other.json")
    event = decode(wants_event_any, as_nats_delivers(sent))
    assert event.dataschema == "https://schemas.example/other.json"
    assert event.data == {"a": 1}


@pytest.mark.parametrize(
    ("handler", "data", "expected"),
    [
        (wants_model, ORDER, ORDER),
        (wants_model, {"order_id": "o-1", "total_cents": 999}, ORDER),
        (wants_dict, {"a": 1, "b": [1, 2]}, {"a": 1, "b": [1, 2]}),
        (wants_any, {"a": {"b": None}}, {"a": {"b": None}}),
        (untyped, [1, "two", None], [1, "two", None]),
        (wants_int, 7, 7),
        (wants_list, [1, 2, 3], [1, 2, 3]),
        (wants_str, "grüße 注文", "grüße 注文"),
        (wants_bytes, bytes(range(256)), bytes(range(256))),
        (wants_any, b"\x00\xff", b"\x00\xff"),
        (wants_optional, None, None),
        (untyped, None, None),
    ],
    ids=[
        "model",
        "model-from-dict",
        "dict",
        "any",
        "unannotated",
        "int",
        "list-int",
        "str",
        "bytes",
        "any-bytes",
        "optional-model-no-data",
        "unannotated-no-data",
    ],
)
def test_every_handler_type_reads_headerless_structured_events(
    handler: Any, data: Any, expected: Any
) -> None:
    got = decode(handler, as_nats_delivers(published(data)))
    assert got == expected
    assert type(got) is type(expected)


def test_bytes_travel_as_data_base64() -> None:
    raw = bytes(range(256))
    sent = published(raw)
    body = json.loads(sent.body)
    assert "data" not in body
    assert base64.b64decode(body["data_base64"]) == raw
    assert body["datacontenttype"] == "application/octet-stream"
    event = decode(wants_bytes_event, as_nats_delivers(sent))
    assert event.data == raw
    assert event.datacontenttype == "application/octet-stream"
    assert event.id == "e-1" and event.extensions == {}


def test_an_event_without_data() -> None:
    sent = published(None)
    body = json.loads(sent.body)
    assert "data" not in body and "datacontenttype" not in body
    event = decode(wants_optional_event, as_nats_delivers(sent))
    assert event.data is None and event.datacontenttype is None
    assert event.id == "e-1" and event.type == "shop.order.placed"
    with pytest.raises(InvalidEvent, match="does not match OrderPlaced"):
        decode(wants_model, as_nats_delivers(sent))


def test_the_envelope_reader_reads_the_common_shape_in_one_pass() -> None:
    body = published(ORDER, extensions={"tenant": "acme", "n": 2}).body
    read = EnvelopeReader(OrderPlaced).read(body)
    assert read is not None
    attrs, data = read
    assert data == ORDER and isinstance(data, OrderPlaced)
    assert attrs["id"] == "e-1" and attrs["specversion"] == "1.0"
    assert attrs["tenant"] == "acme" and attrs["n"] == 2
    assert "data" not in attrs


def test_leading_whitespace_before_the_object_is_read() -> None:
    body = b" \r\n\t" + published(ORDER).body
    assert decode(wants_model, Message(TOPIC, body, {})) == ORDER


# -- invalid events ------------------------------------------------------------------------

_NOT_BASE64 = {"data": None, "data_base64": "***", "datacontenttype": "application/octet-stream"}

INVALID = [
    pytest.param(event_body(id=None), "missing id", id="missing-id"),
    pytest.param(event_body(id=""), "missing id", id="empty-id"),
    pytest.param(event_body(source=""), "missing source", id="empty-source"),
    pytest.param(event_body(type=None, source=None), "missing source, type", id="missing-two"),
    pytest.param(event_body(specversion=None), "missing specversion", id="missing-specversion"),
    pytest.param(event_body(specversion="0.3"), "specversion '0.3'", id="specversion-0.3"),
    pytest.param(b'{"specversion": "1.0", "id": ', "is not JSON", id="not-json"),
    pytest.param(
        event_body(data={"order_id": "o-1", "total_cents": "lots"}),
        r"does not match OrderPlaced: 1 error\(s\): total_cents",
        id="data-not-the-model",
    ),
    pytest.param(event_body(data={"order_id": "o-1"}), "total_cents: Field required", id="field"),
    pytest.param(event_body(**_NOT_BASE64), "data_base64 on .* is not base64", id="bad-base64"),
    pytest.param(event_body(id=5), "id must be string", id="id-not-a-string"),
    pytest.param(event_body(time=5), "time must be string", id="time-not-a-string"),
    pytest.param(event_body(subject=["a"]), "subject must be string", id="subject-a-list"),
]


@pytest.mark.parametrize(("body", "match"), INVALID)
def test_invalid_events_say_what_is_wrong_with_or_without_the_header(
    body: bytes, match: str
) -> None:
    with pytest.raises(InvalidEvent, match=match) as headerless:
        decode(wants_event, Message(TOPIC, body, {}))
    with pytest.raises(InvalidEvent) as with_header:
        decode(wants_event, Message(TOPIC, body, dict(STRUCTURED)))
    assert str(headerless.value) == str(with_header.value)
    assert repr(TOPIC) in str(headerless.value)


@pytest.mark.parametrize(("body", "match"), INVALID[:7])
@pytest.mark.parametrize("handler", [wants_model, wants_any, untyped, wants_int, wants_bytes])
def test_invalid_envelopes_fail_for_every_handler_type(
    handler: Any, body: bytes, match: str
) -> None:
    with pytest.raises(InvalidEvent, match=match):
        decode(handler, Message(TOPIC, body, {}))


@pytest.mark.parametrize(
    "body",
    [
        event_body(id=None),
        event_body(source=""),
        event_body(specversion="0.3"),
        event_body(data={"order_id": "o-1", "total_cents": "lots"}),
        event_body(data=None),  # no data: the general path decides
        event_body(data=None, data_base64=base64.b64encode(b"{}").decode()),
        event_body(subject=7),
        b'{"specversion": "1.0", "id": ',
        b"[1, 2]",
        b'"text"',
        b"not json",
        b"",
    ],
)
def test_the_envelope_reader_declines_rather_than_raises(body: bytes) -> None:
    assert EnvelopeReader(OrderPlaced).read(body) is None


@pytest.mark.parametrize(
    ("body", "with_header"),
    [
        (b"[1, 2]", "is not a JSON object"),
        (b"not json", "is not JSON"),
        (b"", "is not JSON"),
    ],
)
def test_a_headerless_body_that_is_not_an_object_is_not_taken_for_structured(
    body: bytes, with_header: str
) -> None:
    # Without headers only a JSON object is read as a structured event; anything else is a
    # message with no CloudEvents attributes at all, and says so.
    with pytest.raises(InvalidEvent, match="missing id, source, type, specversion"):
        decode(wants_event, Message(TOPIC, body, {}))
    with pytest.raises(InvalidEvent, match=with_header):
        decode(wants_event, Message(TOPIC, body, dict(STRUCTURED)))


# -- recognising the mode, and the id ------------------------------------------------------


def _binary() -> Message:
    return to_message(TOPIC, {"a": 1}, id="e-1", source="/s", type="t")


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({}, b'{"id": "e-1"}', True),
        ({}, b' \n\t{"id": "e-1"}', True),
        ({}, b"{not json", True),  # an object by its first byte; decoding says what is wrong
        (STRUCTURED, b"[]", True),
        ({"content-type": "application/cloudevents+json; charset=utf-8"}, b"{}", True),
        ({"eventkit-md-trace": "x"}, b'{"id": "e-1"}', True),
        ({"ce-specversion": "1.0"}, b'{"a": 1}', False),
        ({"content-type": "application/json"}, b'{"a": 1}', False),
        ({"content-type": "application/cloudevents-batch+json"}, b"[]", False),
        ({}, b"[1]", False),
        ({}, b'"text"', False),
        ({}, b"not json", False),
        ({}, b"", False),
    ],
)
def test_is_structured(headers: dict[str, str], body: bytes, expected: bool) -> None:
    assert is_structured(Message(TOPIC, body, dict(headers))) is expected


def test_binary_mode_messages_are_not_structured() -> None:
    binary = _binary()
    assert binary.body == b'{"a":1}'  # a JSON object body: the ce-* headers decide
    assert not is_structured(binary)


@pytest.mark.parametrize(
    "message",
    [
        _binary(),
        published(ORDER),
        as_nats_delivers(published(ORDER)),
        as_nats_delivers(published(ORDER, extensions={"tenant": "acme"})),
        as_nats_delivers(published(b"raw")),
        Message(TOPIC, b'  {"id": "e-1"}', {}),
    ],
    ids=["binary", "structured", "headerless", "extensions", "base64", "whitespace"],
)
def test_event_id_of_either_mode(message: Message) -> None:
    assert event_id_of(message) == "e-1"


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, b"not json"),
        ({}, b"{not json"),
        ({}, b"[1, 2]"),
        ({}, b"{}"),
        ({}, b'{"id": 5}'),
        ({}, b""),
        (STRUCTURED, b"{"),
        (STRUCTURED, b'["e-1"]'),
        ({"content-type": "application/json"}, b'{"id": "e-1"}'),
    ],
)
def test_event_id_of_garbage_is_none(headers: dict[str, str], body: bytes) -> None:
    assert event_id_of(Message(TOPIC, body, dict(headers))) is None
