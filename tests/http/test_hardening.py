"""What a hostile client sends the HTTP broker: every request answered, one warning each.

Malformed gossip is 400 (never 204, never taken in), a body is refused as soon as it passes
the limit even when it streams in chunks, oversized headers are aiohttp's 400 logged as one
warning (no ERROR, no traceback), and the ``Bearer`` scheme is read in any case.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import anyio
import anyio.lowlevel
import pytest

from tests.conformance.util import Recorder

from .conftest import NodeFactory

pytestmark = pytest.mark.anyio

EVENT = {
    "ce-id": "1",
    "ce-source": "/test",
    "ce-type": "test.event",
    "ce-specversion": "1.0",
    "content-type": "application/json",
}


@pytest.mark.parametrize(
    "body",
    [
        b"{}x",
        b'{"records": {}}',
        b'{"hello": "world"}',
        b'{"reply": "yes"}',
        b'{"records": [{"id": "n", "addr": "h:1", "started": 1e999, "seq": 1}]}',
        b'{"records": [{"id": "n", "addr": "h:1", "started": 1, "seq": 1e400}]}',
        b'{"records": [{"id": "n", "addr": "h:1", "started": 1, "seq": -1}]}',
        b'{"records": [{"id": "n", "addr": "nowhere", "started": 1, "seq": 1}]}',
        b'{"records": [{"id": "n", "addr": "h:1", "started": 1, "seq": 1,'
        b' "entries": [{"id": 1, "pattern": "a..b"}]}]}',
        b'{"records": [{"id": "n", "addr": "h:1", "started": 1, "seq": 1,'
        b' "entries": [{"id": 1, "pattern": "a", "sink": "file:///etc/passwd"}]}]}',
        b'{"durables": [{"name": "d", "pattern": "a.>", "max_attempts": "5",'
        b' "backoff_initial": 1, "backoff_max": 1, "stamp": 1}]}',
        b"[" * 100_000,
    ],
)
async def test_malformed_gossip_is_400(
    nodes: NodeFactory, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    node = await nodes()
    before = len(node.membership.peers())
    with caplog.at_level(logging.WARNING, logger="eventkit"):
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://{node.address}/_eventkit/gossip", data=body) as resp,
        ):
            assert resp.status == 400, await resp.text()
    assert len(node.membership.peers()) == before
    lines = [r for r in caplog.records if r.name.startswith("eventkit")]
    assert len(lines) == 1 and "\n" not in lines[0].getMessage()


async def _chunks(total: int, sent: list[int]) -> AsyncIterator[bytes]:
    for _ in range(total // 65536):
        sent.append(65536)
        yield bytes(65536)
        await anyio.lowlevel.checkpoint()


async def test_a_streamed_body_is_refused_once_it_passes_the_limit(nodes: NodeFactory) -> None:
    node = await nodes(max_payload=100_000)
    got = Recorder()
    await node.subscribe("hard.big", got)
    sent: list[int] = []
    async with aiohttp.ClientSession() as session:
        try:
            async with session.post(
                f"http://{node.address}/topics/hard.big",
                data=_chunks(64 * 1024 * 1024, sent),
                headers=EVENT,
            ) as resp:
                assert resp.status == 413
        except aiohttp.ClientError:
            pass  # the server may close the connection while the client still sends
    assert sum(sent) < 16 * 1024 * 1024  # refused long before the old 16 MiB read
    assert got.messages == []


async def test_oversized_headers_are_one_warning(
    nodes: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    node = await nodes()
    host, port = node.address.rsplit(":", 1)
    request = (
        b"POST /topics/hard.h HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"ce-huge: \x1b[31m" + b"h" * 20_000 + b"\r\n\r\n{}"
    )
    with caplog.at_level(logging.DEBUG):
        async with await anyio.connect_tcp(host, int(port)) as stream:
            await stream.send(request)
            answer = b""
            with anyio.fail_after(5):
                try:
                    while b"\r\n" not in answer:
                        answer += await stream.receive()
                except anyio.EndOfStream:
                    pass
    assert answer.split(b" ")[1] in (b"400", b"431"), answer[:200]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].exc_info is None and "\x1b" not in warnings[0].getMessage()
    assert len(warnings[0].getMessage()) < 1000


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
async def test_bearer_in_any_case(nodes: NodeFactory, scheme: str) -> None:
    node = await nodes(token="s3cret")
    got = Recorder()
    await node.subscribe("hard.auth", got)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://{node.address}/topics/hard.auth",
            data=b"{}",
            headers={**EVENT, "Authorization": f"{scheme} s3cret"},
        ) as resp,
    ):
        assert resp.status == 202
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://{node.address}/topics/hard.auth",
            data=b"{}",
            headers={**EVENT, "Authorization": "Basic s3cret"},
        ) as resp,
    ):
        assert resp.status == 401
    await got.wait_for(1)


async def test_a_refused_path_cannot_forge_a_log_line(
    nodes: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    node = await nodes(token="s3cret")
    with caplog.at_level(logging.WARNING, logger="eventkit"):
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://{node.address}/topics/a%0Afake%20line%1B%5B31m" + "p" * 50_000,
                data=b"{}",
            ) as resp,
        ):
            assert resp.status in (401, 400)
    for record in caplog.records:
        message = record.getMessage()
        assert "\n" not in message and "\x1b" not in message and len(message) < 1000
