"""The CloudEvents NATS protocol binding (1.0.3), exactly: header rules and content modes.

Checked against the binding's own examples (section 3.1.3.2's percent-encoding example, the
binary and structured messages of 3.1.4 and 3.2.1) and against the cloudevents SDK. The SDK
(2.x) has no NATS binding; its HTTP binding's header helpers apply the same percent-encoding
rule (HTTP binding 3.1.3.2 is word for word the NATS one), so ``ce-*`` values are compared
with what they produce and read back. The one difference between the two bindings,
``datacontenttype`` in ``ce-datacontenttype`` (NATS) instead of ``content-type`` (HTTP), is
moved by hand where the SDK's HTTP helper meets a NATS message.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import nats
import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from nats.aio.client import Client as Nats
from nats.aio.msg import Msg
from pydantic import BaseModel

from eventkit import Client, Event, InvalidEvent, Service
from eventkit.brokers.nats import NatsBroker
from eventkit.brokers.nats._embedded import EmbeddedNats
from eventkit.brokers.nats._headers import from_nats, to_nats
from eventkit.wire import Message, decode_event, decode_header_value, encode_header_value
from tests.conformance.util import settle, wait_until

pytestmark = pytest.mark.anyio

STRUCTURED = "application/cloudevents+json"


class Order(BaseModel):
    order_id: str


# -- the binding's own examples ------------------------------------------------------------


def test_the_percent_encoding_example_of_section_3_1_3_2() -> None:
    assert encode_header_value("Euro \u20ac \U0001f600") == "Euro%20%E2%82%AC%20%F0%9F%98%80"
    assert decode_header_value("Euro%20%E2%82%AC%20%F0%9F%98%80") == "Euro \u20ac \U0001f600"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("plain-ASCII_value/1.0:+~", "plain-ASCII_value/1.0:+~"),  # printable: unchanged
        ('say "hi"', "say%20%22hi%22"),  # space and double quote
        ("100%", "100%25"),  # percent itself
        ("tab\there\r\n", "tab%09here%0D%0A"),  # controls (recommended)
        ("\x7f\x9f", "%7F%C2%9F"),
    ],
)
def test_what_must_be_encoded(value: str, encoded: str) -> None:
    assert encode_header_value(value) == encoded
    assert decode_header_value(encoded) == value


def test_decoding_accepts_lower_case_and_needless_encoding_and_quoted_strings() -> None:
    assert decode_header_value("%e2%82%ac") == "\u20ac"
    assert decode_header_value("%41%42C") == "ABC"
    assert decode_header_value('"quoted \\"value\\""') == 'quoted "value"'
    assert decode_header_value('a "b c" d') == "a b c d"


@pytest.mark.parametrize("bad", ["%C0%A0", "%FF", "%E2%82"])  # overlong, not UTF-8, cut short
def test_bytes_that_are_not_utf8_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidEvent, match="not UTF-8"):
        decode_header_value(bad)
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}
    delivered = Message("t", b"{}", from_nats({**headers, "ce-subject": bad}))
    with pytest.raises(InvalidEvent, match="ce-subject"):
        decode_event(delivered)


def test_the_binary_example_of_section_3_1_4_is_read() -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-type": "com.example.someevent",
        "ce-time": "2018-04-05T03:56:24Z",
        "ce-id": "1234-1234-1234",
        "ce-source": "/mycontext/subcontext",
        "ce-datacontenttype": "application/json",
    }
    event = decode_event(Message("mySubject", b'{"a": 1}', from_nats(headers)))
    assert (event.type, event.id, event.source) == (
        "com.example.someevent",
        "1234-1234-1234",
        "/mycontext/subcontext",
    )
    assert event.datacontenttype == "application/json"  # the attribute, not an extension
    assert event.extensions == {}
    assert event.time == datetime(2018, 4, 5, 3, 56, 24, tzinfo=UTC)
    assert event.data == {"a": 1}


def test_the_structured_example_of_section_3_2_1_is_read() -> None:
    body = json.dumps(
        {"specversion": "1.0", "type": "com.example.someevent", "id": "1", "source": "/s"}
        | {"data": {"a": 1}}
    ).encode()
    for content_type in (STRUCTURED, "Application/CloudEvents+JSON; charset=utf-8"):
        event = decode_event(Message("mySubject", body, from_nats({"content-type": content_type})))
        assert event.type == "com.example.someevent" and event.data == {"a": 1}


def test_binary_headers_as_the_binding_writes_them() -> None:
    sent = {
        "ce-specversion": "1.0",
        "ce-id": "e-1",
        "ce-source": "/shop/checkout",
        "ce-type": "shop.order.placed",
        "ce-subject": "discount 100%41",
        "content-type": "application/json",
        "ce-tenant": "Zürich",
        "eventkit-md-trace": "x",
    }
    wire = to_nats(sent)
    assert wire == {
        "ce-specversion": "1.0",
        "ce-id": "e-1",
        "ce-source": "/shop/checkout",
        "ce-type": "shop.order.placed",
        "ce-subject": "discount%20100%2541",
        "ce-datacontenttype": "application/json",
        "ce-tenant": "Z%C3%BCrich",
        "eventkit-md-trace": "x",
    }
    assert sent["ce-subject"] == "discount 100%41"  # the message's own headers are left alone
    assert from_nats(dict(wire)) == sent  # and read back exactly


# -- against the cloudevents SDK -----------------------------------------------------------


def sdk_event() -> CloudEvent:
    return CloudEvent(
        attributes={
            "id": "sdk-1",
            "source": "/other/producer",
            "type": "shop.order.placed",
            "subject": "discount 100%41 \u20ac",
            "datacontenttype": "application/json",
            "time": datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
            "tenant": 'caf\u00e9 "noir"',
        },
        data={"order_id": "o-1"},
    )


def test_ce_values_are_those_of_the_sdks_binary_helper() -> None:
    sdk = ce_http.to_binary(sdk_event(), JSONFormat())
    ours = to_nats({k: decode_header_value(v) for k, v in sdk.headers.items()}) or {}
    for name, value in sdk.headers.items():
        if name.startswith("ce-"):
            assert ours[name] == value, name
    assert ours["ce-datacontenttype"] == sdk.headers["content-type"]


@pytest.fixture
async def raw(nats_server: EmbeddedNats) -> AsyncIterator[Nats]:
    nc = await nats.connect(nats_server.url)
    try:
        yield nc
    finally:
        await nc.close()


async def test_an_eventkit_binary_event_reaches_the_sdk_intact(
    nats_server: EmbeddedNats, raw: Nats
) -> None:
    seen: list[Msg] = []

    async def on_msg(msg: Msg) -> None:
        seen.append(msg)

    await raw.subscribe("binding.out", cb=on_msg)
    await raw.flush()
    async with Client(NatsBroker(nats_server.url, content_mode="binary")) as kit:
        await kit.publish(
            "binding.out",
            Order(order_id="o-1"),
            type="shop.order.placed",
            subject="discount 100%41",
            extensions={"tenant": "Zürich"},
        )
    await wait_until(lambda: len(seen) == 1, what="the event at nats-py")
    (msg,) = seen
    assert msg.headers is not None
    assert msg.headers["ce-subject"] == "discount%20100%2541"
    assert "content-type" not in msg.headers
    # The SDK's binary helper reads it once datacontenttype is where HTTP keeps it.
    headers = dict(msg.headers)
    headers["content-type"] = headers.pop("ce-datacontenttype")
    event = ce_http.from_binary(ce_http.HTTPMessage(headers, msg.data), JSONFormat())
    assert event.get_subject() == "discount 100%41"  # not "discount 100A"
    assert event.get_extension("tenant") == "Zürich"
    assert event.get_datacontenttype() == "application/json"
    assert event.get_data() == {"order_id": "o-1"}


async def test_an_sdk_event_in_binary_mode_reaches_a_subscriber_exactly(
    nats_server: EmbeddedNats, raw: Nats
) -> None:
    svc = Service("binding", namespace="binding")
    seen: list[Event[Order]] = []

    @svc.subscribe("binding.in")
    async def on_order(event: Event[Order]) -> None:
        seen.append(event)

    sdk = ce_http.to_binary(sdk_event(), JSONFormat())
    headers = dict(sdk.headers)
    headers["ce-datacontenttype"] = headers.pop("content-type")  # the NATS binding's place
    await svc.start(broker=NatsBroker(nats_server.url))
    try:
        async with NatsBroker(nats_server.url) as probe:
            await settle(probe, svc.broker)
        await raw.publish("binding.in", sdk.body, headers=headers)
        await raw.publish("binding.in", JSONFormat().write(sdk_event()), headers={})  # old way
        await raw.publish(
            "binding.in", JSONFormat().write(sdk_event()), headers={"content-type": STRUCTURED}
        )
        await raw.flush()
        await wait_until(lambda: len(seen) == 3, what="three events at the subscriber")
    finally:
        await svc.stop()
    for event in seen:
        assert event.subject == "discount 100%41 \u20ac"
        assert event.extensions == {"tenant": 'café "noir"'}
        assert event.datacontenttype == "application/json"
        assert event.data == Order(order_id="o-1")
        assert event.time == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


async def test_a_structured_event_is_marked_by_its_content_type(
    nats_server: EmbeddedNats, raw: Nats
) -> None:
    seen: list[Msg] = []

    async def on_msg(msg: Msg) -> None:
        seen.append(msg)

    await raw.subscribe("binding.structured", cb=on_msg)
    await raw.flush()
    async with Client(NatsBroker(nats_server.url)) as kit:
        await kit.publish("binding.structured", Order(order_id="o-1"), subject="a b")
    await wait_until(lambda: len(seen) == 1, what="the event at nats-py")
    (msg,) = seen
    # The binding's rule: content type application/cloudevents -> structured, else binary.
    assert msg.headers == {"content-type": STRUCTURED}
    event: Any = JSONFormat().read(None, msg.data)
    assert event.get_subject() == "a b" and event.get_data() == {"order_id": "o-1"}
