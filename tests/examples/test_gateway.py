"""gateway: HTTP routes that call services over RPC (all in this process, on memory://)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import anyio.to_thread
import pytest

import eventkit.testing
from examples.gateway.service import svc as gateway
from examples.greeter.service import svc as greeter
from examples.helloworld.service import svc as helloworld
from tests.servers import free_port


def _get(url: str, data: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.anyio
async def test_routes_call_services(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("GATEWAY_HTTP_PORT", str(port))
    base = f"http://127.0.0.1:{port}"
    async with eventkit.testing.run(helloworld, greeter, gateway):
        assert await anyio.to_thread.run_sync(_get, f"{base}/hello/John") == (
            200,
            {"msg": "Hello John"},
        )
        status, greeted = await anyio.to_thread.run_sync(_get, f"{base}/greet/Ada?tenant=acme")
        assert status == 200 and greeted["metadata"] == {"tenant": "acme"}
        assert greeted["caller"] == gateway.node_id
        status, listed = await anyio.to_thread.run_sync(_get, f"{base}/services")
        assert {"gateway", "greeter", "helloworld"} <= {s["name"] for s in listed}
        status, reply = await anyio.to_thread.run_sync(
            _get, f"{base}/call/helloworld/Helloworld.Call", b'{"name": "Bo"}'
        )
        assert (status, reply) == (200, {"msg": "Hello Bo"})
        status, error = await anyio.to_thread.run_sync(
            _get, f"{base}/call/helloworld/Helloworld.Call", b'{"nom": 1}'
        )
        assert status == 400 and error["code"] == 400
