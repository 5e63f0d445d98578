"""Fuzzing the decode paths with hypothesis: 10,000 generated inputs per path.

Hypothesis draws an input and a seed, and each example is that input and mutants of it (bytes
flipped, inserted and cut; header values swapped for hostile ones), so generating 10,000
inputs per path costs little next to running them. Most of the volume drives the pure
decode functions (binary and structured events, registry
records, the HTTP broker's header, event and gossip readers); a share goes through the real
parts: RPC requests to a running service (on memory:// and on a real nats-server) and
requests to a real HTTP node's routes. The properties: nothing raises but the documented
``InvalidEvent`` / ``ValueError``, every RPC request gets a reply with a status, every HTTP
request gets an answer below 500.
"""

from __future__ import annotations

import contextlib
import logging
import random
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import pydantic
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import eventkit
from eventkit.brokers.http import HttpBroker
from eventkit.brokers.memory import MemoryBroker
from eventkit.brokers.nats import EmbeddedNats
from eventkit.discovery import NodeInfo
from eventkit.rpc import DEADLINE, ENDPOINT, REPLY_TO
from eventkit.wire import DataCodec, Decoder, InvalidEvent, Message

VOLUME = 10_000  # inputs per path
SHARE = 500  # of them, per path, through a real broker or server
BATCH = 25  # inputs per hypothesis example: the example and BATCH - 1 mutants of it


def fuzz(inputs: int) -> Any:
    return settings(
        max_examples=inputs // BATCH,
        phases=[Phase.explicit, Phase.generate],  # a failure is reported as found, unshrunk
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


class Order(pydantic.BaseModel):
    order_id: str
    total_cents: int = 0


# -- strategies ---------------------------------------------------------------------------

hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["1.0", "", "/s", "2024-01-01T00:00:00Z", "\n", "\x1b[31m", "nan", "1e999", "-1", "a.b"]
    ),
)
ce_names = st.sampled_from(
    ["id", "source", "type", "specversion", "time", "subject", "dataschema", "ext", "Bad", ""]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=6,
)


@st.composite
def binary_events(draw: st.DrawFn) -> Message:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "1",
        "ce-source": "/s",
        "ce-type": "t",
        "content-type": "application/json",
    }
    for _ in range(draw(st.integers(0, 4))):
        name = draw(ce_names | hostile_text)
        key = name if name == "content-type" else "ce-" + name
        if draw(st.booleans()):
            headers[key] = draw(hostile_text)
        else:
            headers.pop(key, None)
    body = draw(st.binary(max_size=60) | json_values.map(_json_bytes))
    return Message("fuzz.t", body, headers)


@st.composite
def structured_events(draw: st.DrawFn) -> Message:
    event: dict[str, Any] = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
    for _ in range(draw(st.integers(0, 4))):
        name = draw(ce_names | st.sampled_from(["data", "data_base64", "datacontenttype"]))
        if draw(st.booleans()):
            event[name] = draw(json_values)
        else:
            event.pop(name, None)
    body = _json_bytes(event) if draw(st.integers(0, 9)) else draw(st.binary(max_size=60))
    content_type = draw(st.sampled_from([None, "application/cloudevents+json"]))
    return Message("fuzz.s", body, {} if content_type is None else {"content-type": content_type})


def _json_bytes(value: Any) -> bytes:
    try:
        return pydantic.TypeAdapter(Any).dump_json(value)
    except Exception:
        return b"null"


rpc_headers = st.fixed_dictionaries(
    {ENDPOINT: st.sampled_from(["Fuzz.Echo", "Fuzz.Nope", ""]) | hostile_text},
    optional={DEADLINE: hostile_text | st.floats().map(str), "eventkit-md-x": hostile_text},
)
rpc_bodies = st.binary(max_size=80) | json_values.map(_json_bytes)


# -- pure decode paths --------------------------------------------------------------------

_order_events = Decoder(DataCodec(Order), event=True)
_any_events = Decoder(DataCodec(Any), event=True)
_node_codec = DataCodec(NodeInfo)


HOSTILE = ["", "\n", "\x1b[31m", "\u2028", "nan", "1e999", "-0", "\x00", "%ff", "1.0", "x" * 5000]


def batch(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    """The drawn input and BATCH - 1 mutants of it (anything: a message, a tuple, a dict)."""
    return st.tuples(strategy, st.integers(0, 2**32)).map(
        lambda pair: _mutants(pair[0], random.Random(pair[1]))
    )


def _mutants(value: Any, rnd: random.Random) -> list[Any]:
    return [value] + [_mutate(value, rnd) for _ in range(BATCH - 1)]


def _mutate(value: Any, rnd: random.Random) -> Any:
    if isinstance(value, Message):
        if rnd.random() < 0.5:
            return Message(value.topic, _mutate(value.body, rnd), value.headers)
        return Message(value.topic, value.body, _mutate(value.headers, rnd))
    if isinstance(value, tuple):
        i = rnd.randrange(len(value)) if value else 0
        return tuple(_mutate(v, rnd) if j == i else v for j, v in enumerate(value))
    if isinstance(value, bytes):
        return _mutate_bytes(value, rnd)
    if isinstance(value, str):
        return rnd.choice(HOSTILE) if rnd.random() < 0.5 else value + rnd.choice(HOSTILE)
    if isinstance(value, dict):
        out = dict(value)
        if out and rnd.random() < 0.7:
            key = rnd.choice(list(out))
            out[key] = _mutate(out[key], rnd) if rnd.random() < 0.6 else rnd.choice(HOSTILE)
        else:
            out[rnd.choice(["ce-x", "ce-time", "ce-dataschema", "x"])] = rnd.choice(HOSTILE)
        return out
    if isinstance(value, list):
        return [_mutate(v, rnd) for v in value] if value else [rnd.choice(HOSTILE)]
    return rnd.choice([None, True, -1, 2**40, 1.5, float("inf"), rnd.choice(HOSTILE), [], {}])


def _mutate_bytes(data: bytes, rnd: random.Random) -> bytes:
    raw = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(4)
        at = rnd.randint(0, len(raw))
        if op == 0 and raw:
            raw[min(at, len(raw) - 1)] ^= 1 << rnd.randrange(8)
        elif op == 1:
            raw[at:at] = rnd.choice([b"\xff", b'"', b"{", b"}", b"\\u0000", b"\n", b"1e999"])
        elif op == 2:
            del raw[at : at + rnd.randint(1, 8)]
        else:
            raw[at:at] = rnd.choice(HOSTILE).encode()
    return bytes(raw)


def _decode(decoder: Decoder, message: Message) -> None:
    with contextlib.suppress(InvalidEvent):
        decoder(message)


@fuzz(VOLUME)
@given(batch(binary_events()))
def test_binary_mode_decoding(messages: list[Message]) -> None:
    for message in messages:
        _decode(_order_events, message)
        _decode(_any_events, message)


@fuzz(VOLUME)
@given(batch(structured_events()))
def test_structured_mode_decoding(messages: list[Message]) -> None:
    for message in messages:
        _decode(_order_events, message)
        _decode(_any_events, message)


@fuzz(VOLUME)
@given(batch(st.tuples(structured_events() | binary_events(), json_values)))
def test_registry_record_decoding(inputs: list[tuple[Message, Any]]) -> None:
    """The registry's path: the event, then its data as a NodeInfo (ValueErrors only)."""
    for message, record in inputs:
        with contextlib.suppress(ValueError):
            _node_codec.from_value(_any_events(message).data)
        with contextlib.suppress(ValueError):
            _node_codec.from_value(record)


@fuzz(VOLUME)
@given(
    batch(
        st.tuples(
            st.dictionaries(st.text(max_size=20), hostile_text, max_size=6),
            st.binary(max_size=80) | json_values.map(_json_bytes),
            json_values,
        )
    )
)
def test_http_readers(inputs: list[tuple[dict[str, str], bytes, Any]]) -> None:
    """What the HTTP routes run on a request: header decoding, the foreign-event check, the
    gossip parser. Only InvalidEvent / ValueError, each saying what is wrong."""
    from eventkit.brokers.http._gossip import parse_gossip
    from eventkit.brokers.http._wire import decode_headers, foreign_messages

    for headers, body, gossip in inputs:
        decoded, _ = decode_headers(headers)
        with contextlib.suppress(InvalidEvent):
            foreign_messages("fuzz.h", body, decoded)
        with contextlib.suppress(ValueError):
            parse_gossip(gossip)


# -- RPC requests to a running service -------------------------------------------------------


class _RpcTarget:
    """A service with one endpoint, run in a portal's event loop; ``ask`` sends one request
    and returns the reply's status (a reply that does not come is a test failure)."""

    def __init__(self, portal: BlockingPortal, url: str) -> None:
        self.portal = portal
        self.url = url
        self.ns = f"f{uuid.uuid4().hex[:8]}"
        self.sent = 0

    async def start(self) -> None:
        self.svc = eventkit.Service("fuzz", namespace=self.ns)

        @self.svc.endpoint("Fuzz.Echo")
        async def echo(order: Order) -> Order:
            return order

        broker = MemoryBroker() if self.url == "memory://" else self.url
        await self.svc.start(broker=broker)
        self.broker = self.svc.broker
        self.replies: dict[str, anyio.Event] = {}
        self.statuses: dict[str, str] = {}
        self.inbox = await self.broker.subscribe(f"{self.ns}.reply.fuzzer.*", self._on_reply)

    async def _on_reply(self, message: Message) -> None:
        key = message.topic.rpartition(".")[2]
        self.statuses[key] = message.headers.get("eventkit-status", "200")
        self.replies[key].set()

    async def ask(self, headers: dict[str, str], body: bytes) -> str:
        self.sent += 1
        key = str(self.sent)
        answered = self.replies[key] = anyio.Event()
        reply_to = f"{self.ns}.reply.fuzzer.{key}"
        await self.broker.publish(
            Message(f"{self.ns}.rpc.fuzz", body, {**headers, REPLY_TO: reply_to})
        )
        with anyio.fail_after(10):
            await answered.wait()
        del self.replies[key]
        return self.statuses.pop(key)

    async def stop(self) -> None:
        await self.inbox.stop()
        await self.svc.stop()


def _rpc_target(url: str) -> Iterator[_RpcTarget]:
    with start_blocking_portal() as portal:
        target = _RpcTarget(portal, url)
        portal.call(target.start)
        try:
            yield target
        finally:
            portal.call(target.stop)


@pytest.fixture(scope="module")
def memory_rpc() -> Iterator[_RpcTarget]:
    yield from _rpc_target("memory://")


@pytest.fixture(scope="module")
def nats_rpc() -> Iterator[_RpcTarget]:
    with EmbeddedNats() as server:
        yield from _rpc_target(server.url)


def _check_rpc(target: _RpcTarget, headers: dict[str, str], body: bytes) -> None:
    status = target.portal.call(target.ask, headers, body)
    assert status.isdigit(), status
    if status == "200":
        assert headers[ENDPOINT] == "Fuzz.Echo"


@fuzz(VOLUME)
@given(requests=batch(st.tuples(rpc_headers, rpc_bodies)))
def test_rpc_requests_on_memory_are_all_answered(
    memory_rpc: _RpcTarget,
    requests: list[tuple[dict[str, str], bytes]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for headers, body in requests:
        _check_rpc(memory_rpc, headers, body)
    _no_errors(caplog)


@fuzz(SHARE)
@given(requests=batch(st.tuples(rpc_headers, rpc_bodies)))
def test_rpc_requests_on_nats_are_all_answered(
    nats_rpc: _RpcTarget,
    requests: list[tuple[dict[str, str], bytes]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for headers, body in requests:
        _check_rpc(nats_rpc, headers, body)
    _no_errors(caplog)


def _no_errors(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing was logged as an error: no handler, server or adapter failed unhandled."""
    errors = [r.getMessage()[:300] for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


# -- the real HTTP routes -------------------------------------------------------------------


class _HttpTarget:
    """A real HTTP node; ``post`` writes a request as raw bytes (so a hostile path or header
    reaches the server as sent, not as a client library would clean it) and returns the
    status of the answer."""

    def __init__(self) -> None:
        self.node = HttpBroker("http://127.0.0.1:0?token=fuzz-token", gossip_interval=0.5)

    async def start(self) -> None:
        await self.node.connect()

        async def drop(message: Message) -> None:
            pass

        await self.node.subscribe("fuzz.>", drop)

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> int:
        host, port = self.node.address.rsplit(":", 1)
        lines = [f"POST {path} HTTP/1.1", "Host: fuzz", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body
        async with await anyio.connect_tcp(host, int(port)) as stream:
            await stream.send(request)
            answer = b""
            with anyio.fail_after(10):
                try:
                    while b"\r\n" not in answer:
                        answer += await stream.receive()
                except anyio.EndOfStream:
                    pass
        assert answer[:9] in (b"HTTP/1.1 ", b"HTTP/1.0 "), (request[:200], answer[:200])
        return int(answer[9:12])

    async def stop(self) -> None:
        await self.node.close()


@pytest.fixture(scope="module")
def http_node() -> Iterator[tuple[BlockingPortal, _HttpTarget]]:
    with start_blocking_portal() as portal:
        target = _HttpTarget()
        portal.call(target.start)
        try:
            yield portal, target
        finally:
            portal.call(target.stop)


printable_headers = st.dictionaries(
    st.sampled_from(
        ["ce-id", "ce-source", "ce-type", "ce-specversion", "ce-time", "content-type", "ce-x"]
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
    max_size=6,
)


@fuzz(SHARE)
@given(
    requests=batch(
        st.tuples(
            st.sampled_from(
                ["/topics/fuzz.h", "/topics/fuzz.a.b", "/_eventkit/gossip", "/topics/x..y"]
            ),
            printable_headers,
            rpc_bodies,
            st.sampled_from(["Bearer fuzz-token", "bearer fuzz-token", "Bearer nope", ""]),
        )
    )
)
def test_http_routes_answer_everything(
    http_node: tuple[BlockingPortal, _HttpTarget],
    requests: list[tuple[str, dict[str, str], bytes, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    portal, target = http_node
    for path, headers, body, auth in requests:
        sent = {**headers, "Authorization": auth} if auth else headers
        status = portal.call(target.post, path, sent, body)
        assert status < 500, (path, sent, body)
        if auth not in ("Bearer fuzz-token", "bearer fuzz-token"):
            assert status >= 400, (path, sent, body)  # nothing gets in without the token
    _no_errors(caplog)
