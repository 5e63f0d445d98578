"""The NATS service API (ADR-32): eventkit services as standard NATS tooling sees them.

Every answer to ``$SRV.PING``, ``$SRV.INFO`` and ``$SRV.STATS`` is validated against the
ADR's own JSON schemas (``tests/nats/adr32/``, copied from nats-io/jsm.go); each endpoint's
advertised subject takes a plain JSON request from a client that knows nothing of eventkit,
and a service written with nats-py's ``nats.micro`` calls an eventkit endpoint that way and
reads its errors from the ``Nats-Service-Error`` headers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import nats
import pytest
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import ServiceInfo, ServicePing, ServiceStats
from pydantic import BaseModel

from eventkit import Client, ConfigError, Service, Settings
from eventkit.brokers.nats import NatsBroker
from eventkit.brokers.nats._embedded import EmbeddedNats

pytestmark = pytest.mark.anyio

SCHEMAS = Path(__file__).parent / "adr32"


def schema(verb: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{verb}_response.json").read_text())
    return loaded


def validate(verb: str, answer: dict[str, Any]) -> None:
    """``answer`` against the ADR-32 schema of ``verb``, formats (RFC 3339 times) included."""
    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    jsonschema.validate(answer, schema(verb), format_checker=checker)


class Sum(BaseModel):
    a: int
    b: int


def make_service() -> Service:
    svc = Service(
        "adder",
        version="2.1.0",
        metadata={"team": "math"},
        description="adds numbers",
        namespace="srvapi",
    )

    @svc.endpoint("Adder.Add")
    async def add(req: Sum) -> int:
        return req.a + req.b

    @svc.endpoint("Adder.Fail")
    async def fail(req: dict[str, Any]) -> None:
        raise RuntimeError("nope")

    @svc.endpoint("ping")
    async def ping() -> str:
        return "pong"

    return svc


async def request(url: str, subject: str, body: bytes = b"") -> Any:
    nc = await nats.connect(url)
    try:
        reply = await nc.request(subject, body, timeout=2)
        return json.loads(reply.data)
    finally:
        await nc.close()


async def test_ping_info_and_stats_validate_against_the_adr_schemas(
    nats_server: EmbeddedNats,
) -> None:
    url = nats_server.url
    svc = make_service()
    await svc.start(broker=NatsBroker(url))
    try:
        settings = Settings(broker=url, namespace="srvapi")
        async with Client(settings=settings) as kit:
            assert await kit.call("adder", "Adder.Add", Sum(a=2, b=3)) == 5
            with pytest.raises(Exception, match="nope"):
                await kit.call("adder", "Adder.Fail", {})

        for subject in ("$SRV.PING", "$SRV.PING.adder", f"$SRV.PING.adder.{svc.node_id}"):
            validate("ping", await request(url, subject))
        ping = ServicePing.from_dict(await request(url, "$SRV.PING.adder"))
        assert (ping.name, ping.id, ping.version) == ("adder", svc.node_id, "2.1.0")
        assert ping.metadata == {"team": "math"}

        raw_info = await request(url, "$SRV.INFO.adder")
        validate("info", raw_info)
        info = ServiceInfo.from_dict(raw_info)
        assert info.description == "adds numbers"
        by_name = {e.name: e for e in info.endpoints}
        assert sorted(by_name) == ["Adder-Add", "Adder-Fail", "ping"]
        assert by_name["Adder-Add"].subject == "srvapi.srv.adder.Adder.Add"
        assert by_name["Adder-Add"].metadata == {"eventkit-endpoint": "Adder.Add"}
        assert by_name["ping"].subject == "srvapi.srv.adder.ping"
        assert {e.queue_group for e in info.endpoints} == {"adder"}

        raw_stats = await request(url, f"$SRV.STATS.adder.{svc.node_id}")
        validate("stats", raw_stats)
        stats = ServiceStats.from_dict(raw_stats)
        counted = {e.name: e for e in stats.endpoints}
        assert sorted(counted) == ["Adder-Add", "Adder-Fail", "ping"]
        assert counted["Adder-Add"].num_requests == 1
        assert counted["Adder-Add"].num_errors == 0
        assert counted["Adder-Fail"].num_errors == 1
        assert "nope" in (counted["Adder-Fail"].last_error or "")
        assert counted["Adder-Add"].processing_time > 0
        assert counted["ping"].num_requests == 0
        assert all(e.data == {} for e in stats.endpoints)
        assert counted["Adder-Add"].subject == "srvapi.srv.adder.Adder.Add"
    finally:
        await svc.stop()


async def test_the_schemas_refuse_what_eventkit_used_to_send() -> None:
    """The validation above can fail: what eventkit used to send (a dotted endpoint name, a
    two-part version), a dotted service name and a start time that is not RFC 3339 fail."""
    good = {"type": "io.nats.micro.v1.info_response", "name": "adder", "id": "n1"}
    good |= {"version": "1.0.0", "description": "", "endpoints": []}
    validate("info", good)
    for bad in (
        {**good, "endpoints": [{"name": "Adder.Add", "subject": "x"}]},
        {**good, "version": "1.0"},
        {**good, "name": "adder.v1"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate("info", bad)
    stats = {"type": "io.nats.micro.v1.stats_response", "name": "adder", "id": "n1"}
    stats |= {"version": "1.0.0", "started": "not a time", "endpoints": []}
    with pytest.raises(jsonschema.ValidationError):
        validate("stats", stats)


async def test_plain_json_on_an_endpoint_subject_gets_the_reply_and_errors_in_micro_headers(
    nats_server: EmbeddedNats,
) -> None:
    svc = make_service()
    await svc.start(broker=NatsBroker(nats_server.url))
    nc = await nats.connect(nats_server.url)
    try:
        reply = await nc.request("srvapi.srv.adder.Adder.Add", b'{"a": 20, "b": 22}', timeout=2)
        assert json.loads(reply.data) == 42
        assert not (reply.headers or {}).get("Nats-Service-Error-Code")
        assert json.loads((await nc.request("srvapi.srv.adder.ping", b"", timeout=2)).data) == (
            "pong"
        )

        failed = await nc.request("srvapi.srv.adder.Adder.Fail", b"{}", timeout=2)
        assert failed.headers is not None
        assert failed.headers["Nats-Service-Error-Code"] == "500"
        assert "nope" in failed.headers["Nats-Service-Error"]
        assert json.loads(failed.data)["code"] == 500  # the body is eventkit's error, as ever

        invalid = await nc.request("srvapi.srv.adder.Adder.Add", b'{"a": "x"}', timeout=2)
        assert invalid.headers is not None
        assert invalid.headers["Nats-Service-Error-Code"] == "400"
        assert "not valid" in invalid.headers["Nats-Service-Error"]
    finally:
        await nc.close()
        await svc.stop()


async def test_a_nats_micro_service_calls_an_eventkit_endpoint(nats_server: EmbeddedNats) -> None:
    """A service written with nats-py's micro framework finds the eventkit endpoint in
    ``$SRV.INFO`` and calls it with a plain request from inside its own handler."""
    svc = make_service()
    await svc.start(broker=NatsBroker(nats_server.url))
    nc = await nats.connect(nats_server.url)
    try:
        info = ServiceInfo.from_dict(await request(nats_server.url, "$SRV.INFO.adder"))
        subjects = {e.name: e.subject for e in info.endpoints}

        async def total(req: Request) -> None:
            numbers = json.loads(req.data)
            reply = await nc.request(
                subjects["Adder-Add"], json.dumps({"a": numbers[0], "b": numbers[1]}).encode()
            )
            error = (reply.headers or {}).get("Nats-Service-Error")
            if error:
                await req.respond_error(reply.headers["Nats-Service-Error-Code"], error)
            else:
                await req.respond(reply.data)

        micro = await add_service(nc, name="summer", version="0.1.0")
        await micro.add_endpoint(name="total", handler=total)
        try:
            reply = await nc.request("total", b"[1, 2]", timeout=2)
            assert json.loads(reply.data) == 3
            failed = await nc.request("total", b'["x", 2]', timeout=2)
            assert failed.headers is not None
            assert failed.headers["Nats-Service-Error-Code"] == "400"
        finally:
            await micro.stop()
    finally:
        await nc.close()
        await svc.stop()


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "1.0.0.0", "01.0.0", ""])
def test_a_version_that_is_not_semver_is_refused_at_definition(version: str) -> None:
    with pytest.raises(ConfigError, match="semantic version"):
        Service("adder", version=version)


@pytest.mark.parametrize("name", ["adder.v1", "adder:v1", "add$r", "a b", ""])
def test_a_service_name_the_adr_forbids_is_refused_at_definition(name: str) -> None:
    with pytest.raises(ConfigError, match="letters, digits"):
        Service(name, version="1.0.0")


@pytest.mark.parametrize("name", ["Greeter..Hello", ".Hello", "Greeter.*", "Greeter Hello", "a>"])
def test_an_endpoint_name_that_cannot_be_a_subject_is_refused_at_definition(name: str) -> None:
    svc = Service("adder", version="1.0.0")
    with pytest.raises(ConfigError, match="endpoint name"):

        @svc.endpoint(name)
        async def handler() -> None: ...


async def test_discovery_is_only_on_nats() -> None:
    svc = make_service()
    await svc.start(broker="memory://srv-api")
    try:
        topics = [s for s in svc.broker._hub.routes if s[0].startswith(("$SRV", "srvapi.srv"))]  # type: ignore[attr-defined]
        assert topics == []
    finally:
        await svc.stop()


async def test_streaming_endpoints_are_listed_with_how_they_stream(
    nats_server: EmbeddedNats,
) -> None:
    url = nats_server.url
    svc = make_service()

    @svc.endpoint("Adder.Running")
    async def running(numbers: AsyncIterator[int]) -> AsyncIterator[int]:
        total = 0
        async for number in numbers:
            total += number
            yield total

    @svc.endpoint("Adder.Count")
    async def count(n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    await svc.start(broker=NatsBroker(url))
    try:
        async with Client(settings=Settings(broker=url, namespace="srvapi")) as kit:
            assert [i async for i in kit.stream("adder", "Adder.Count", 3)] == [0, 1, 2]
            async with kit.stream("adder", "Adder.Running", response=int) as sums:
                for number in (1, 2, 3):
                    await sums.send(number)
                await sums.close_send()
                assert [total async for total in sums] == [1, 3, 6]

        raw_info = await request(url, "$SRV.INFO.adder")
        validate("info", raw_info)
        listed = {e.name: e for e in ServiceInfo.from_dict(raw_info).endpoints}
        assert (listed["Adder-Count"].metadata or {})["eventkit-stream"] == "server"
        assert (listed["Adder-Running"].metadata or {})["eventkit-stream"] == "bidi"
        assert "eventkit-stream" not in (listed["Adder-Add"].metadata or {})
        assert listed["Adder-Count"].subject == "srvapi.srv.adder.Adder.Count"

        # A plain request on a streaming endpoint's subject is told why it cannot stream.
        nc = await nats.connect(url)
        try:
            plain = await nc.request("srvapi.srv.adder.Adder.Count", b"3", timeout=2)
        finally:
            await nc.close()
        assert plain.headers["Nats-Service-Error-Code"] == "400"
        assert "streaming endpoint" in plain.headers["Nats-Service-Error"]

        raw_stats = await request(url, "$SRV.STATS.adder")
        validate("stats", raw_stats)
        by_name = {e.name: e for e in ServiceStats.from_dict(raw_stats).endpoints}
        assert by_name["Adder-Count"].num_requests == 1
        assert by_name["Adder-Running"].num_requests == 1
        assert by_name["Adder-Running"].num_errors == 0
    finally:
        await svc.stop()
