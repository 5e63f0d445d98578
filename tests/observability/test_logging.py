"""JSON logs with the service, node and trace in every record; structlog and loguru plug in.

The JSON format is checked on a real service run as a user runs it (``Service.run()`` with
``EVENTKIT_LOG_FORMAT=json`` in a process of its own); the structlog and loguru set-ups are
the ones docs/observability.md shows, each fed a record made inside a real span.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from loguru import logger as loguru_logger
from opentelemetry.sdk.trace import TracerProvider

from eventkit.observability import JsonFormatter, LogContext

ROOT = Path(__file__).resolve().parents[2]

SERVICE = textwrap.dedent(
    """
    import logging, os, signal
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from eventkit import Event, Service

    trace.set_tracer_provider(TracerProvider())
    svc = Service("logged", node_id="logged-1")
    log = logging.getLogger("logged")

    @svc.subscribe("logged.events")
    async def on_event(event: Event[dict[str, str]]) -> None:
        log.info("took %s", event.data["text"], extra={"order": "o-1"})
        if event.data["text"] == "fail":
            raise ValueError("a failing handler")
        os.kill(os.getpid(), signal.SIGTERM)

    @svc.after_start
    async def go() -> None:
        await svc.publish("logged.events", {"text": "fail"})
        await svc.publish("logged.events", {"text": "line one\\nline two"})

    svc.run([])
    """
)


def test_a_service_logs_json_lines_with_service_node_and_trace(tmp_path: Path) -> None:
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    done = subprocess.run(
        [sys.executable, str(script)],
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "EVENTKIT_LOG_FORMAT": "json",
            "EVENTKIT_TRACING": "1",
            "EVENTKIT_BROKER": "memory://",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON
    assert all(r["service"] == "logged" and r["node"] == "logged-1" for r in records)
    started = next(r for r in records if "started" in r["message"])
    assert started["trace_id"] == "" and started["logger"] == "eventkit.service"
    took = [r for r in records if r["logger"] == "logged"]
    assert [r["message"] for r in took] == ["took fail", "took line one\nline two"]
    assert all(len(r["trace_id"]) == 32 and len(r["span_id"]) == 16 for r in took)
    assert took[0]["trace_id"] != took[1]["trace_id"]  # one trace per published event
    assert took[0]["order"] == "o-1"  # extra= fields are written out
    failed = next(r for r in records if r["level"] == "ERROR")
    assert failed["trace_id"] == took[0]["trace_id"] and failed["span_id"] == took[0]["span_id"]
    assert "ValueError: a failing handler" in failed["exception"]


@pytest.fixture
def span() -> Iterator[Any]:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as current:
        yield current.get_span_context()


def isolated(handler: logging.Handler) -> logging.Logger:
    log = logging.getLogger(f"tests.observability.{id(handler)}")
    log.propagate = False
    log.handlers = [handler]
    log.setLevel(logging.INFO)
    return log


def test_the_json_formatter_with_the_context_filter(span: Any) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(LogContext("billing", "billing-1"))
    handler.setFormatter(JsonFormatter())
    isolated(handler).warning("charged %d cents", 250)
    record = json.loads(out.getvalue())
    assert record["message"] == "charged 250 cents" and record["level"] == "WARNING"
    assert record["trace_id"] == f"{span.trace_id:032x}"
    assert record["span_id"] == f"{span.span_id:016x}"
    assert (record["service"], record["node"]) == ("billing", "billing-1")


def context_fields(logger: Any, name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    record = event_dict.get("_record")
    if record is not None:
        for key in ("service", "node", "trace_id", "span_id"):
            event_dict[key] = getattr(record, key, "")
    return event_dict


def test_structlog_renders_the_context_fields(span: Any) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(LogContext("billing", "billing-1"))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_log_level, context_fields],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    isolated(handler).info("charged")
    record = json.loads(out.getvalue())
    assert record["event"] == "charged" and record["level"] == "info"
    assert record["trace_id"] == f"{span.trace_id:032x}" and record["service"] == "billing"


class ToLoguru(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        fields = {k: getattr(record, k, "") for k in ("service", "node", "trace_id", "span_id")}
        loguru_logger.bind(**fields).opt(exception=record.exc_info).log(
            record.levelname, record.getMessage()
        )


def test_loguru_receives_the_context_fields(span: Any) -> None:
    out = io.StringIO()
    sink = loguru_logger.add(out, serialize=True)
    try:
        handler = ToLoguru()
        handler.addFilter(LogContext("billing", "billing-1"))
        isolated(handler).info("charged")
    finally:
        loguru_logger.remove(sink)
    record = json.loads(out.getvalue())["record"]
    assert record["message"] == "charged"
    assert record["extra"]["trace_id"] == f"{span.trace_id:032x}"
    assert record["extra"]["node"] == "billing-1"
