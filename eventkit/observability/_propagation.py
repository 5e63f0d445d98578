"""Trace context on the wire: W3C ``traceparent``/``tracestate`` on events and requests.

Events carry it as the CloudEvents distributed-tracing extension (``traceparent`` and
``tracestate`` attributes: ``ce-traceparent`` headers in binary mode, members of the JSON
event in structured mode), so it travels with the event on every broker and in either
content mode. RPC requests carry it as headers, written and read by the globally configured
OpenTelemetry propagator (W3C trace context and baggage by default).
"""

from __future__ import annotations

from typing import Any

import pydantic_core
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ..wire import Message, is_structured

__all__ = ["event_context", "event_extensions", "extract_headers", "inject_headers"]

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_W3C = TraceContextTextMapPropagator()
_NEEDLE = b'"traceparent"'


def event_extensions(extensions: dict[str, Any]) -> dict[str, Any]:
    """``extensions`` with the current span's trace context added as the CloudEvents
    distributed-tracing extension (left alone when the publisher set its own)."""
    if TRACEPARENT not in extensions:
        _W3C.inject(extensions)
    return extensions


def event_context(message: Message) -> tuple[Context | None, str | None]:
    """The creation context an event carries, and its id where that costs no parse.

    A ``traceparent`` transport header (another instrumented producer's) comes first, then
    the extension: a ``ce-traceparent`` header in binary mode, or the member of a structured
    event, which is parsed only when it holds one.
    """
    headers = message.headers
    if TRACEPARENT in headers:
        return propagate.extract(headers), headers.get("ce-id")
    parent = headers.get("ce-traceparent")
    if parent is not None:
        carrier = {TRACEPARENT: parent, TRACESTATE: headers.get("ce-tracestate", "")}
        return _W3C.extract(carrier), headers.get("ce-id")
    if _NEEDLE in message.body and is_structured(message):
        try:
            event = pydantic_core.from_json(message.body)
        except ValueError:
            return None, None
        if isinstance(event, dict) and isinstance(event.get(TRACEPARENT), str):
            carrier = {TRACEPARENT: event[TRACEPARENT], TRACESTATE: event.get(TRACESTATE, "")}
            event_id = event.get("id")
            return _W3C.extract(carrier), event_id if isinstance(event_id, str) else None
    return None, headers.get("ce-id")


def inject_headers(headers: dict[str, str]) -> dict[str, str]:
    """Write the current trace context into request ``headers`` (and return them)."""
    propagate.inject(headers)
    return headers


def extract_headers(headers: dict[str, str]) -> Context:
    return propagate.extract(headers)
