"""Tokens, the body limit and garbage: refused with the right status, logged, never fatal."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from eventkit.wire import Message, PayloadTooLarge
from tests.conformance.util import Recorder, settle

from .conftest import NodeFactory

pytestmark = pytest.mark.anyio

EVENT = {
    "ce-id": "1",
    "ce-source": "/test",
    "ce-type": "test.event",
    "ce-specversion": "1.0",
    "content-type": "application/json",
}


async def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as resp,
    ):
        return resp.status, await resp.text()


async def test_wrong_or_missing_token_is_401_and_logged(
    nodes: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    node = await nodes(token="s3cret")
    got = Recorder()
    await node.subscribe("sec.t", got)
    url = f"http://{node.address}/topics/sec.t"
    with caplog.at_level(logging.WARNING, logger="eventkit.broker.http"):
        status, _ = await _post(url, b"{}", EVENT)
        assert status == 401
        status, _ = await _post(url, b"{}", {**EVENT, "Authorization": "Bearer nope"})
        assert status == 401
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://{node.address}/_eventkit/members") as resp:
                assert resp.status == 401
            gossip = f"http://{node.address}/_eventkit/gossip"
            async with session.post(gossip, json={"records": []}) as resp:
                assert resp.status == 401
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 4
    assert any("wrong token" in r.getMessage() for r in refusals)
    assert got.messages == []
    # The node keeps serving: the right token gets through, and a peer with it too.
    status, _ = await _post(url, b"{}", {**EVENT, "Authorization": "Bearer s3cret"})
    assert status == 202
    peer = await nodes(seeds=node.address, token="s3cret")
    await settle(peer, node)
    await got.wait_for(1)


async def test_a_peer_with_another_token_cannot_join(
    nodes: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    node = await nodes(token="s3cret")
    got = Recorder()
    await node.subscribe("sec.join", got)
    with caplog.at_level(logging.WARNING, logger="eventkit.broker.http"):
        intruder = await nodes(seeds=node.address, token="guess")  # tries to join at start
    assert f"gossip with {node.address!r} refused: 401" in caplog.text
    assert node.node_id not in {p.id for p in intruder.membership.peers()}
    await intruder.publish(Message("sec.join", b"x"))  # no route: nothing sent, no crash
    assert intruder.node_id not in {p.id for p in node.membership.peers()}
    assert got.messages == []


async def test_oversized_bodies(nodes: NodeFactory) -> None:
    node = await nodes(max_payload=1024)
    assert node.capabilities.max_payload == 1024
    got = Recorder()
    await node.subscribe("sec.big", got)
    url = f"http://{node.address}/topics/sec.big"
    status, _ = await _post(url, bytes(2048), EVENT)
    assert status == 413
    with pytest.raises(PayloadTooLarge):
        await node.publish(Message("sec.big", bytes(1025)))
    status, _ = await _post(url, bytes(1024), EVENT)
    assert status == 202
    await got.wait_for(1)
    assert [len(m.body) for m in got.messages] == [1024]


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/topics/sec.g", b"\x00\xff garbage", {}),
        ("/topics/sec.g", b"{not json", {"content-type": "application/cloudevents+json"}),
        ("/topics/sec.g", b'{"id": "1"}', {"content-type": "application/cloudevents+json"}),
        ("/topics/sec.g", b"[1]", {"content-type": "application/cloudevents-batch+json"}),
        ("/topics/sec.g", b"{}", {**EVENT, "ce-specversion": "0.3"}),
        ("/topics/sec..g", b"{}", EVENT),
        ("/topics/sec.*", b"{}", EVENT),
        ("/_eventkit/gossip", b"\x00garbage", {}),
        ("/_eventkit/gossip", b'{"records": [{"id": 1}]}', {}),
        ("/_eventkit/gossip", b"[]", {}),
    ],
)
async def test_garbage_is_400_and_the_node_keeps_serving(
    nodes: NodeFactory, path: str, body: bytes, headers: dict[str, str]
) -> None:
    node = await nodes()
    got = Recorder()
    await node.subscribe("sec.g", got)
    status, text = await _post(f"http://{node.address}{path}", body, headers)
    assert status == 400, text
    status, _ = await _post(f"http://{node.address}/topics/sec.g", b"{}", EVENT)
    assert status == 202
    await got.wait_for(1)
    assert len(got.messages) == 1
