"""The second process of the tracing tests: ``python -m tests.observability.node SPANS PREFIX``.

A ``shipping`` service with ``EVENTKIT_TRACING=1`` and the real OpenTelemetry SDK, its spans
written to the file SPANS as JSON lines. On ``PREFIX.placed`` it calls ``billing`` twice
(the second call fails on the server) and publishes ``PREFIX.shipped``. The broker comes
from ``EVENTKIT_BROKER``; it prints ``ready`` once it serves, and flushes its spans when it
stops (SIGTERM).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from typing import IO

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import eventkit
from eventkit import Event, Service


class FileExporter(SpanExporter):
    """Each finished span as one JSON line (``ReadableSpan.to_json``), flushed at once."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            self.out.write(span.to_json(indent=None) + "\n")
        self.out.flush()
        return SpanExportResult.SUCCESS


def main(spans_path: str, prefix: str) -> None:
    with open(spans_path, "w") as out:
        serve(out, prefix)


def serve(out: IO[str], prefix: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "shipping"}))
    provider.add_span_processor(SimpleSpanProcessor(FileExporter(out)))
    trace.set_tracer_provider(provider)

    svc = Service("shipping")

    @svc.subscribe(f"{prefix}.placed", queue="shipping")
    async def on_placed(event: Event[dict[str, int]]) -> None:
        await svc.client.call("billing", "Billing.Charge", {"cents": event.data["cents"]})
        with contextlib.suppress(eventkit.InternalError):  # it fails on the server
            await svc.client.call("billing", "Billing.Charge", {"cents": -1})
        await svc.publish(f"{prefix}.shipped", {"cents": event.data["cents"]})

    @svc.after_start
    def ready() -> None:
        print("ready", svc.node_id, flush=True)

    @svc.after_stop
    def flush() -> None:
        provider.shutdown()

    svc.run([])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
