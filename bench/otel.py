"""Tracing and metrics on, as a production service has them, for the cost rows.

The real OpenTelemetry SDK: a tracer provider whose batch processor hands every span to an
exporter that drops it, and a meter provider whose periodic reader exports to one that drops
the data too, without exemplars (as the provider eventkit makes for ``/metrics``: the
Prometheus text format has no use for them). Everything up to the export runs (spans made
and ended, trace context written into every message and read back, histograms and counters
updated), and nothing leaves the process. Not global: the bench's other rows stay uninstrumented.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from eventkit.observability import Telemetry

__all__ = ["telemetry"]


class _DropSpans(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _DropMetrics(MetricExporter):
    def __init__(self) -> None:
        super().__init__(preferred_temporality={})

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


_made: Telemetry | None = None


def telemetry() -> Telemetry:
    """One Telemetry (SDK traces and metrics, exported to nowhere) for the whole run."""
    global _made
    if _made is None:
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(_DropSpans()))
        reader = PeriodicExportingMetricReader(_DropMetrics(), export_interval_millis=10_000)
        meter_provider = MeterProvider(
            metric_readers=[reader], exemplar_filter=AlwaysOffExemplarFilter()
        )
        _made = Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    return _made
