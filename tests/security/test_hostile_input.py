"""Values off the wire never forge or flood a log line, and every bad request is answered.

Each bad message carries newlines, ANSI escapes and 100 kB values in every field that is
logged; each must give exactly one log line, one physical line, escaped and bounded. A flood
is a count per interval. RPC requests that cannot be read get a 400 (a late one a 408).
"""

from __future__ import annotations

import logging
import time

import anyio
import pydantic
import pytest

import eventkit
from eventkit.brokers.memory import MemoryBroker
from eventkit.discovery import registry_topic
from eventkit.rpc import DEADLINE, ENDPOINT, REPLY_TO, STATUS
from eventkit.wire import LogLimiter, Message, loggable

pytestmark = pytest.mark.anyio

EVIL = "x\n2024-01-01 00:00:00 CRITICAL forged: \x1b[31mroot logged in\x1b[0m\r\u2028"
BIG = "y" * 100_000
MAX_LINE = 3000  # no log line may be longer than this (values are cut at 200, reasons 1000)


class Order(pydantic.BaseModel):
    order_id: str


def _bad_events(topic: str) -> list[Message]:
    """One message per way of being invalid, each with hostile values in what gets logged."""
    base = {
        "ce-specversion": "1.0",
        "ce-id": EVIL + BIG,
        "ce-source": "/s",
        "ce-type": "t",
        "content-type": "application/json",
    }
    return [
        Message(topic, b'{"order_id": 1}', dict(base)),  # data fails the model
        Message(topic, b"{}", {**base, "ce-time": EVIL + BIG}),  # time not RFC 3339
        Message(topic, b"{}", {**base, "ce-source": EVIL + BIG}),  # source not a URI-ref
        Message(topic, b"{}", {**base, "ce-dataschema": "rel/" + EVIL}),  # not a URI
        Message(topic, b"{}", {**base, "ce-Bad_Name": EVIL}),  # extension name
        Message(topic, b"{}", {**base, "ce-specversion": EVIL + BIG}),  # not 1.0
        Message(topic, (b'{"specversion": "1.0", "id": "' + BIG.encode() + b'"'), {}),  # cut
        Message(
            topic,
            b'{"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "ext": {"a": 1}}',
            {"content-type": "application/cloudevents+json"},
        ),
        Message(topic, ("\x1b]0;" + BIG).encode(), {"content-type": "application/json"}),
    ]


def _check_lines(records: list[logging.LogRecord], expected: int) -> None:
    assert len(records) == expected, [r.getMessage()[:300] for r in records]
    for record in records:
        text = record.getMessage()
        assert "\n" not in text and "\r" not in text and "\x1b" not in text, text[:500]
        assert "\u2028" not in text
        assert len(text) < MAX_LINE, len(text)
        assert BIG not in text


async def test_each_invalid_event_gives_one_safe_line(caplog: pytest.LogCaptureFixture) -> None:
    svc = eventkit.Service("hostile")
    got: list[Order] = []

    @svc.subscribe("hostile.orders." + "*")
    async def on_order(order: Order) -> None:
        got.append(order)

    broker = MemoryBroker()
    await svc.start(broker=broker)
    try:
        bad = _bad_events("hostile.orders." + "\x1b[2J" + "z" * 300)
        bad = [Message("hostile.orders.a", m.body, m.headers) for m in bad]
        with caplog.at_level(logging.WARNING, logger="eventkit"):
            for message in bad:
                await broker.publish(message)
            await broker.join()
    finally:
        await svc.stop()
    lines = [r for r in caplog.records if "invalid event" in r.getMessage()]
    _check_lines(lines, len(bad))
    assert svc.stats.invalid == len(bad) and got == []


async def test_invalid_events_on_a_durable_subscription_are_one_dead_letter_line_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    svc = eventkit.Service("hostiled")

    @svc.subscribe("hostiled.orders", durable="hostiled")
    async def on_order(order: Order) -> None: ...

    broker = MemoryBroker()
    dead: list[Message] = []

    async def keep(message: Message) -> None:
        dead.append(message)

    await svc.start(broker=broker)
    await broker.subscribe("eventkit.deadletter.hostiled", keep)
    try:
        bad = [Message("hostiled.orders", m.body, m.headers) for m in _bad_events("x")[:5]]
        with caplog.at_level(logging.WARNING, logger="eventkit"):
            for message in bad:
                await broker.publish(message)
            await broker.join()
    finally:
        await svc.stop()
    _check_lines([r for r in caplog.records if r.levelno >= logging.WARNING], len(bad))
    assert len(dead) == len(bad)
    for message in dead:  # the reason travels in a header: bounded and escaped too
        reason = message.headers["eventkit-deadletter-reason"]
        assert reason.startswith("invalid event") and len(reason) < 1500 and "\n" not in reason


async def test_malformed_registry_messages_give_one_safe_line_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = MemoryBroker()
    async with eventkit.connect(broker) as kit:
        await kit.get_registry()
        bad = _bad_events(registry_topic(kit.namespace))[1:]  # the first: a type it ignores
        announce = {
            "ce-specversion": "1.0",
            "ce-id": EVIL + BIG,
            "ce-source": "/s",
            "ce-type": "eventkit.registry.announce",
        }
        bad.append(
            Message(registry_topic(kit.namespace), b'{"id": "\\n' + b"q" * 9000 + b'"}', announce)
        )
        with caplog.at_level(logging.WARNING, logger="eventkit"):
            for message in bad:
                await broker.publish(message)
            await broker.join()
    _check_lines([r for r in caplog.records if "malformed registry" in r.getMessage()], len(bad))


async def test_a_flood_of_bad_messages_is_a_count_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("eventkit.test.flood")
    limiter = LogLimiter(log, "bad things", burst=3, interval=0.2)
    with caplog.at_level(logging.WARNING, logger="eventkit.test.flood"):
        for i in range(1000):
            limiter.warning("bad thing %d", i)
        assert len(caplog.records) == 3
        await anyio.sleep(0.4)  # the interval ends: its count is written by the timer
        assert caplog.records[-1].getMessage().startswith("997 more bad things")
        limiter.warning("after")
    assert [r.getMessage() for r in caplog.records][-1] == "after"
    assert len(caplog.records) == 5


async def test_a_flood_of_invalid_events_is_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    svc = eventkit.Service("flood")

    @svc.subscribe("flood.t")
    async def on(order: Order) -> None: ...

    broker = MemoryBroker()
    await svc.start(broker=broker)
    try:
        with caplog.at_level(logging.WARNING, logger="eventkit"):
            for _ in range(2000):
                await broker.publish(Message("flood.t", b"nope", {"ce-id": "1"}))
            await broker.join()
            svc._invalid_log.flush()  # the interval's end, without waiting 10 s for it
    finally:
        await svc.stop()
    lines = [r.getMessage() for r in caplog.records if "invalid event" in r.getMessage()]
    assert len(lines) == 11 and lines[-1].startswith("1990 more invalid events")
    assert svc.stats.invalid == 2000


def test_loggable() -> None:
    assert loggable("a\nb\x1b[0m") == "'a\\nb\\x1b[0m'"
    assert loggable("it's", quote=False) == "it's"
    assert loggable("x" * 1000).endswith("...(+800 chars)")
    assert loggable(b"\xff\n") == "'\\\\xff\\n'"
    assert len(loggable("\u202e" * 10_000)) < 300


# -- RPC: every request with a reply topic is answered ----------------------------------


async def _request(broker: MemoryBroker, headers: dict[str, str], body: bytes) -> Message:
    got: list[Message] = []
    done = anyio.Event()

    async def on_reply(message: Message) -> None:
        got.append(message)
        done.set()

    sub = await broker.subscribe("eventkit.reply.fuzz.*", on_reply)
    try:
        await broker.publish(
            Message("eventkit.rpc.rpcbad", body, {REPLY_TO: "eventkit.reply.fuzz.1", **headers})
        )
        with anyio.fail_after(5):
            await done.wait()
    finally:
        await sub.stop()
    return got[0]


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({ENDPOINT: "Bad.Echo"}, b"\xff\xfe not utf-8", "400"),
        ({ENDPOINT: "Bad.Echo"}, b"{not json", "400"),
        ({ENDPOINT: "Bad.Echo"}, b'{"order_id": 5}', "400"),
        ({ENDPOINT: "Bad.Echo", DEADLINE: "soon"}, b'{"order_id": "1"}', "400"),
        ({ENDPOINT: "Bad.Echo", DEADLINE: "nan"}, b'{"order_id": "1"}', "400"),
        ({ENDPOINT: "Bad.Echo", DEADLINE: "1e999"}, b'{"order_id": "1"}', "400"),
        ({ENDPOINT: "Bad.Echo", DEADLINE: str(time.time() - 5)}, b'{"order_id": "1"}', "408"),
        ({ENDPOINT: EVIL + BIG}, b"{}", "404"),
        ({}, b"{}", "404"),
    ],
)
async def test_unreadable_requests_are_answered(
    headers: dict[str, str], body: bytes, status: str
) -> None:
    svc = eventkit.Service("rpcbad")

    @svc.endpoint("Bad.Echo")
    async def echo(order: Order) -> Order:
        return order

    broker = MemoryBroker()
    await svc.start(broker=broker)
    try:
        reply = await _request(broker, headers, body)
    finally:
        await svc.stop()
    assert reply.headers[STATUS] == status, reply.body[:300]
    assert len(reply.body) < 5000


async def test_a_success_carries_no_headers() -> None:
    """No status means 200 (docs/rpc.md says why a success has no headers)."""
    svc = eventkit.Service("rpcok")

    @svc.endpoint("Bad.Echo")
    async def echo(order: Order) -> Order:
        return order

    broker = MemoryBroker()
    await svc.start(broker=broker)
    try:
        got: list[Message] = []
        done = anyio.Event()

        async def on_reply(message: Message) -> None:
            got.append(message)
            done.set()

        await broker.subscribe("eventkit.reply.ok.*", on_reply)
        await broker.publish(
            Message(
                "eventkit.rpc.rpcok",
                b'{"order_id": "1"}',
                {REPLY_TO: "eventkit.reply.ok.1", ENDPOINT: "Bad.Echo"},
            )
        )
        with anyio.fail_after(5):
            await done.wait()
    finally:
        await svc.stop()
    assert STATUS not in got[0].headers and b'"order_id":"1"' in got[0].body
