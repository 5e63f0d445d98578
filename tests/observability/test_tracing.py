"""One trace across two processes, on NATS, RabbitMQ and HTTP, with the real OpenTelemetry SDK.

This process (``billing``: an endpoint, and a subscriber) publishes ``placed``; the other
(``shipping``, :mod:`tests.observability.node`, with ``EVENTKIT_TRACING=1``) takes it, calls
``Billing.Charge`` twice (the second fails on the server) and publishes ``shipped``, which
comes back here. Every span, from both processes, must be in one trace, each under the
right parent, named and attributed by the semantic conventions, the failure recorded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from eventkit import Event, Service
from eventkit.observability import Telemetry
from tests.servers import free_port, require_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BROKERS = {
    "nats": ("nats://127.0.0.1:4222", 4222, "NATS", "nats"),
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672/", 5672, "RabbitMQ", "rabbitmq"),
    "http": ("http://127.0.0.1:{port}", 0, "HTTP", "eventkit_http"),
}


@pytest.fixture(params=sorted(BROKERS))
def broker(request: pytest.FixtureRequest) -> tuple[str, str]:
    url, port, what, system = BROKERS[request.param]
    if port == 0:
        return url.format(port=free_port()), system
    require_server("127.0.0.1", port, what)
    return url, system


def child_url(url: str) -> str:
    if url.startswith("http://"):  # its own port, seeded by this process's node
        return f"http://127.0.0.1:0?seeds={url.removeprefix('http://')}"
    return url


def start_child(spans_file: Path, prefix: str, url: str, ns: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.observability.node", str(spans_file), prefix],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "EVENTKIT_BROKER": url,
            "EVENTKIT_NAMESPACE": ns,
            "EVENTKIT_TRACING": "1",
        },
        stdout=subprocess.PIPE,
        text=True,
    )


def spans_of(lines: list[str]) -> list[dict[str, Any]]:
    out = []
    for line in lines:
        span = json.loads(line)
        out.append(
            {
                "name": span["name"],
                "kind": span["kind"].removeprefix("SpanKind."),
                "trace": span["context"]["trace_id"],
                "id": span["context"]["span_id"],
                "parent": span["parent_id"],
                "status": span["status"]["status_code"],
                "attributes": span["attributes"],
                "events": [e["name"] for e in span["events"]],
                "links": [link["context"]["span_id"] for link in span["links"]],
            }
        )
    return out


def one(spans: list[dict[str, Any]], kind: str, name: str, status: str | None = None) -> Any:
    found = [
        s
        for s in spans
        if s["kind"] == kind and s["name"] == name and (status is None or s["status"] == status)
    ]
    assert len(found) == 1, (kind, name, status, spans)
    return found[0]


async def test_one_trace_spans_publisher_broker_subscriber_and_calls(
    broker: tuple[str, str], tmp_path: Path
) -> None:
    url, system = broker
    ns, prefix = f"obs{uuid.uuid4().hex[:8]}", f"obs{uuid.uuid4().hex[:8]}"
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    billing = Service(
        "billing", namespace=ns, telemetry=Telemetry(tracer_provider=provider, metrics=False)
    )
    shipped = anyio.Event()

    @billing.endpoint("Billing.Charge")
    async def charge(req: dict[str, int]) -> dict[str, bool]:
        if req["cents"] < 0:
            raise ValueError("a negative amount")
        return {"charged": True}

    @billing.subscribe(f"{prefix}.shipped")
    async def on_shipped(event: Event[dict[str, int]]) -> None:
        shipped.set()

    spans_file = tmp_path / "spans.jsonl"
    await billing.start(broker=url)
    child = start_child(spans_file, prefix, child_url(url), ns)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().split()[:1] == ["ready"]
        membership = getattr(billing.broker, "membership", None)
        with anyio.fail_after(15):  # HTTP: the subscription spreads by gossip
            while membership is not None and not membership.route(f"{prefix}.placed").groups:
                await anyio.sleep(0.05)
        await billing.publish(f"{prefix}.placed", {"cents": 250})
        with anyio.fail_after(20):
            await shipped.wait()
    finally:
        child.send_signal(signal.SIGTERM)
        with anyio.fail_after(30):  # this loop keeps serving while the child leaves
            await anyio.to_thread.run_sync(child.wait)
        if child.stdout is not None:
            child.stdout.close()
        await billing.stop()
    assert child.returncode == 0
    here = spans_of([s.to_json(indent=None) for s in exporter.get_finished_spans()])
    there = spans_of(spans_file.read_text().splitlines())

    placed = one(here, "PRODUCER", f"publish {prefix}.placed")
    charged = one(here, "SERVER", "billing/Billing.Charge", "UNSET")
    refused = one(here, "SERVER", "billing/Billing.Charge", "ERROR")
    back = one(here, "CONSUMER", f"process {prefix}.shipped")
    taken = one(there, "CONSUMER", f"process {prefix}.placed")
    call_ok = one(there, "CLIENT", "billing/Billing.Charge", "UNSET")
    call_failed = one(there, "CLIENT", "billing/Billing.Charge", "ERROR")
    ships = one(there, "PRODUCER", f"publish {prefix}.shipped")

    every = [placed, charged, refused, back, taken, call_ok, call_failed, ships]
    assert {s["trace"] for s in every} == {placed["trace"]}  # one trace, two processes
    assert placed["parent"] is None
    assert taken["parent"] == placed["id"] and taken["links"] == [placed["id"]]
    assert call_ok["parent"] == taken["id"] and call_failed["parent"] == taken["id"]
    assert charged["parent"] == call_ok["id"] and refused["parent"] == call_failed["id"]
    assert ships["parent"] == taken["id"]
    assert back["parent"] == ships["id"]

    assert placed["attributes"] == {
        "messaging.system": system,
        "messaging.destination.name": f"{prefix}.placed",
        "messaging.operation.name": "publish",
        "messaging.operation.type": "send",
        "messaging.client.id": billing.node_id,
        "messaging.message.id": taken["attributes"]["messaging.message.id"],
    }
    assert taken["attributes"]["messaging.operation.type"] == "process"
    assert taken["attributes"]["messaging.consumer.group.name"] == "shipping"
    assert taken["attributes"]["messaging.destination.name"] == f"{prefix}.placed"
    for span in (charged, call_ok):
        assert span["attributes"]["rpc.system.name"] == "eventkit"
        assert span["attributes"]["rpc.method"] == "billing/Billing.Charge"
        assert span["attributes"]["rpc.service"] == "billing"
        assert span["attributes"]["rpc.status_code"] == "200"
    for span in (refused, call_failed):
        assert span["attributes"]["rpc.status_code"] == "500"
        assert span["attributes"]["error.type"] == "500"
        assert "exception" in span["events"]
