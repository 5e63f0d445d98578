"""NATS micro services that eventkit did not start: found through ``$SRV.INFO``, listed by
``kit.services()`` and ``eventkit services`` as kind ``nats-micro``, called with ``kit.call``
on the subjects they advertise, their errors read from the ``Nats-Service-Error`` headers.

The outside service is written with nats-py's own ``nats.micro`` framework, on an embedded
``nats-server`` of this module's own (the machine's shared server may run others' services).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import Service as MicroService
from pydantic import BaseModel

from eventkit import Client, NotFound, RemoteError, Service, Settings
from eventkit.brokers.nats import NatsBroker
from eventkit.brokers.nats._embedded import EmbeddedNats

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


class Sum(BaseModel):
    a: int
    b: int


@pytest.fixture
async def micro(nats_server: EmbeddedNats) -> AsyncIterator[MicroService]:
    """A NATS micro service: ``add`` in group ``math`` (subject ``math.add``) and ``fail``."""
    nc = await nats.connect(nats_server.url)

    async def add(req: Request) -> None:
        numbers = json.loads(req.data)
        await req.respond(json.dumps(numbers["a"] + numbers["b"]).encode())

    async def fail(req: Request) -> None:
        await req.respond_error("422", "the numbers are too big")

    service = await add_service(
        nc, name="py-adder", version="1.2.0", description="adds", metadata={"lang": "py"}
    )
    await service.add_group(name="math").add_endpoint(name="add", handler=add)
    await service.add_endpoint(name="fail", handler=fail)
    try:
        yield service
    finally:
        await service.stop()
        await nc.close()


def client(url: str) -> Client:
    return Client(settings=Settings(broker=url, namespace="micro"))


async def test_kit_services_lists_a_nats_micro_service(
    nats_server: EmbeddedNats, micro: MicroService
) -> None:
    eventkit_svc = Service("eventkit-adder", version="1.0.0", namespace="micro")

    @eventkit_svc.endpoint("Adder.Add")
    async def add(req: Sum) -> int:
        return req.a + req.b

    await eventkit_svc.start(broker=NatsBroker(nats_server.url))
    try:
        async with client(nats_server.url) as kit:
            found = {info.name: info for info in await kit.services(wait=0.5)}
    finally:
        await eventkit_svc.stop()
    assert set(found) == {"py-adder", "eventkit-adder"}  # eventkit's own once, by gossip
    outside = found["py-adder"]
    assert (outside.kind, outside.version) == ("nats-micro", "1.2.0")
    assert outside.metadata == {"lang": "py"}
    assert {e.name: e.subject for e in outside.endpoints} == {"add": "math.add", "fail": "fail"}
    (node,) = outside.nodes
    assert node.id == micro.id and node.kind == "nats-micro"
    assert found["eventkit-adder"].kind == "eventkit"


async def test_kit_call_reaches_a_nats_micro_endpoint_and_reads_its_errors(
    nats_server: EmbeddedNats, micro: MicroService
) -> None:
    async with client(nats_server.url) as kit:
        assert await kit.call("py-adder", "add", Sum(a=40, b=2)) == 42  # found on first call
        assert await kit.call("py-adder", "add", {"a": 1, "b": 2}, response=int) == 3
        with pytest.raises(RemoteError) as failed:
            await kit.call("py-adder", "fail", {})
        assert failed.value.code == 422
        assert failed.value.detail == "the numbers are too big"
        with pytest.raises(NotFound, match=r"no endpoint 'nope'.*add, fail"):
            await kit.call("py-adder", "nope", {})


async def test_a_service_without_endpoints_is_not_listed(nats_server: EmbeddedNats) -> None:
    """An eventkit service of another namespace with no endpoints looks like that on $SRV."""
    nc = await nats.connect(nats_server.url)
    empty = await add_service(nc, name="empty", version="1.0.0")
    try:
        async with client(nats_server.url) as kit:
            assert [info.name for info in await kit.services(wait=0.3)] == []
    finally:
        await empty.stop()
        await nc.close()


def eventkit_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"EVENTKIT_BROKER": url, "EVENTKIT_NAMESPACE": "micro", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "eventkit.cli", *args],
        env={**_base_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("EVENTKIT_")}


async def test_the_cli_lists_and_calls_a_nats_micro_service(
    nats_server: EmbeddedNats, micro: MicroService
) -> None:
    import anyio

    listed = await anyio.to_thread.run_sync(
        eventkit_cli, nats_server.url, "services", "--format", "json", "--wait", "0.5"
    )
    assert listed.returncode == 0, listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert (entry["name"], entry["kind"]) == ("py-adder", "nats-micro")
    table = await anyio.to_thread.run_sync(eventkit_cli, nats_server.url, "services")
    assert "nats-micro" in table.stdout and "py-adder" in table.stdout

    called = await anyio.to_thread.run_sync(
        eventkit_cli, nats_server.url, "call", "py-adder", "add", '{"a": 2, "b": 5}'
    )
    assert called.returncode == 0, called.stderr
    result: Any = json.loads(called.stdout)
    assert result == 7
    failed = await anyio.to_thread.run_sync(
        eventkit_cli, nats_server.url, "call", "py-adder", "fail", "{}"
    )
    assert failed.returncode != 0
    assert "422" in failed.stderr and "too big" in failed.stderr
