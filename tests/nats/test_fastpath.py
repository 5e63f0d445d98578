"""The faster header path gives exactly what nats-py's own gives."""

from __future__ import annotations

import pytest
from nats.aio.client import Client
from nats.errors import BadHeaderError

from eventkit.brokers.nats._compat import fast_client_supported, missing
from eventkit.brokers.nats._fastpath import FastHeaderClient

pytestmark = pytest.mark.anyio

BLOCKS = [
    b"ce-id: 1\r\nce-type: shop.order.placed\r\ncontent-type: application/json\r\n\r\n",
    b"x-text: gr\xc3\xbc\xc3\x9fe \xe6\xb3\xa8\xe6\x96\x87\r\nx-bad: \xff\xfe\r\n\r\n",
    b"Name:Value\r\nName2:\tTabbed \r\nno colon here\r\n\xffkey: v\r\nin side: x\r\n\r\n",
    b"empty:\r\n: novalue\r\n\r\n",
    b"ctl\x0bkey: v\r\nctl\x01key: w\r\n\r\n",
    b"x-nbsp: v\xc2\xa0\r\nx-cut: \xe6\xb3\r\nx-\xc3\xa9: non-ascii name\r\n\r\n",
]


def test_nats_py_still_has_what_is_overridden() -> None:
    assert fast_client_supported()
    assert missing() == []


@pytest.mark.parametrize("block", BLOCKS)
def test_parsing_matches_nats_py(block: bytes) -> None:
    assert FastHeaderClient._parse_header_lines(block) == Client._parse_header_lines(block)


async def _sent(client: Client, headers: dict[str, str]) -> bytes:
    sent: list[bytes] = []

    async def capture(cmd: bytes, priority: bool = False) -> None:
        sent.append(cmd)

    client._send_command = capture  # type: ignore[method-assign]
    client._flush_queue = None
    await client._send_publish("a.b", "", b"{}", 2, headers)
    return sent[0]


@pytest.mark.parametrize(
    "headers",
    [
        {"ce-id": "1", "ce-type": "t", "content-type": "application/json"},
        {" padded ": " v ", "x-lines": "a\r\nb", "": "skipped"},
        {"x-unicode": "grüße 注文"},
    ],
)
async def test_encoding_matches_nats_py(headers: dict[str, str]) -> None:
    assert await _sent(FastHeaderClient(), headers) == await _sent(Client(), headers)


async def test_bad_header_names_are_refused_like_nats_py() -> None:
    for client in (FastHeaderClient(), Client()):
        with pytest.raises(BadHeaderError):
            await _sent(client, {"bad name": "v"})
