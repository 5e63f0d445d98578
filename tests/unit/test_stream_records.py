"""Streaming endpoints in the registry record, the NATS listing and the checked-in schema."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from eventkit import Service
from eventkit.discovery import EndpointInfo, NodeInfo
from eventkit.service._parts import endpoint_info, node_info

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


class TailRequest(BaseModel):
    path: str


class Line(BaseModel):
    text: str


def logs() -> Service:
    svc = Service("logs")

    @svc.endpoint("Logs.Tail")
    async def tail(req: TailRequest) -> AsyncIterator[Line]:
        yield Line(text=req.path)

    @svc.endpoint("Logs.Upload")
    async def upload(lines: AsyncIterator[Line]) -> int:
        return len([line async for line in lines])

    @svc.endpoint("Logs.Count")
    async def count(req: TailRequest) -> int:
        return 0

    return svc


def test_records_mark_streams_with_the_schema_of_one_item() -> None:
    infos = {e.name: endpoint_info(e) for e in logs().endpoints}
    tail, upload, count = infos["Logs.Tail"], infos["Logs.Upload"], infos["Logs.Count"]
    assert tail.stream == "server"
    assert tail.request["properties"] == {"path": {"title": "Path", "type": "string"}}
    assert tail.response["properties"] == {"text": {"title": "Text", "type": "string"}}
    assert upload.stream == "client"
    assert upload.request["title"] == "Line"  # one item of the caller's stream
    assert upload.response == {"type": "integer"}
    assert count.stream is None


class OldEndpointInfo(BaseModel):
    """EndpointInfo as peers before streams have it."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    name: str
    request: dict[str, Any] = {}
    response: dict[str, Any] = {}
    metadata: dict[str, str] = {}


def test_old_and_new_peers_read_each_others_records() -> None:
    svc = logs()
    record = node_info(
        node_id="logs-1",
        service="logs",
        version="1",
        metadata={},
        endpoints=svc.endpoints,
        subscribers=[],
        ttl=10,
    )
    wire = record.model_dump_json()
    old = [OldEndpointInfo.model_validate(e) for e in json.loads(wire)["endpoints"]]
    assert [e.name for e in old] == ["Logs.Tail", "Logs.Upload", "Logs.Count"]
    before = json.loads(wire)
    for endpoint in before["endpoints"]:
        del endpoint["stream"]
    assert all(e.stream is None for e in NodeInfo.model_validate(before).endpoints)
    assert NodeInfo.model_validate_json(wire) == record


def test_the_published_schema_describes_the_stream_field() -> None:
    schema = json.loads((SCHEMAS / "registry-node.json").read_text())
    field = schema["$defs"]["EndpointInfo"]["properties"]["stream"]
    kinds = {v for option in field["anyOf"] for v in option.get("enum", [])}
    assert kinds == {"server", "client", "bidi"}
    assert "stream" not in schema["$defs"]["EndpointInfo"].get("required", [])
    assert set(EndpointInfo.model_fields) == set(schema["$defs"]["EndpointInfo"]["properties"])
