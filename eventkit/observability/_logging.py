"""Logs: plain ``logging`` as the interface, with the service, node and trace in every record.

:class:`LogContext` is a ``logging.Filter`` that puts ``service``, ``node``, ``trace_id`` and
``span_id`` on every record that reaches a handler (the ids of the OpenTelemetry span that
is current when the record is made, or empty strings without one or without the ``otel``
extra). Any handler or formatter can use those fields: :class:`JsonFormatter` writes one
JSON object per line; structlog's ``ProcessorFormatter`` or a loguru sink take them as they
take any ``extra`` (docs/observability.md shows both). :func:`configure_logging` is what
``Service.run()`` does with ``EVENTKIT_LOG_FORMAT``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, Literal

__all__ = ["JsonFormatter", "LogContext", "configure_logging"]

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# What every LogRecord has; anything else on a record came from ``extra=`` and is written out.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "service",
    "node",
    "trace_id",
    "span_id",
    "taskName",
}


class LogContext(logging.Filter):
    """Adds ``service``, ``node``, ``trace_id`` and ``span_id`` to each record (never drops
    one). Install it on a handler: ``handler.addFilter(LogContext("greeter", node_id))``."""

    def __init__(self, service: str = "", node: str = "") -> None:
        super().__init__()
        self.service = service
        self.node = node
        try:  # the trace ids come from OpenTelemetry where it is installed
            from opentelemetry.trace import get_current_span
        except ImportError:
            self._current_span: Callable[[], Any] | None = None
        else:
            self._current_span = get_current_span

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.node = self.node
        trace_id = span_id = ""
        if self._current_span is not None:
            context = self._current_span().get_span_context()
            if context.is_valid:
                trace_id = f"{context.trace_id:032x}"
                span_id = f"{context.span_id:016x}"
        record.trace_id = trace_id
        record.span_id = span_id
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, service,
    node, trace_id, span_id, the exception if any, and every ``extra`` field. JSON escapes
    whatever a message holds (control characters, newlines), so one record is one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": getattr(record, "service", ""),
            "node": getattr(record, "node", ""),
            "trace_id": getattr(record, "trace_id", ""),
            "span_id": getattr(record, "span_id", ""),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out:
                out[key] = value
        return json.dumps(out, default=str, ensure_ascii=False)


def _iso(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def configure_logging(
    *, level: str, format: LogFormat, service: str, node: str, stream: Any = None
) -> logging.Handler | None:
    """Log to stderr in ``format`` (``text`` or ``json``), each record with the service,
    node and trace. Does nothing when the root logger already has handlers: an application
    that set up its own logging (structlog, loguru, anything) keeps it."""
    root = logging.getLogger()
    if root.handlers:
        return None
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.addFilter(LogContext(service, node))
    handler.setFormatter(JsonFormatter() if format == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
