"""The Prometheus side of metrics: a reader on the meter provider, and the page it serves.

When a service serves ``/metrics`` and the application configured no OpenTelemetry
metrics SDK, eventkit makes one (the resource names the service and node) with a
``PrometheusMetricReader`` and makes it global, so the application's own instruments show
on the same page. An application that configured its own SDK provider keeps it, and adds a
``PrometheusMetricReader`` to it for its metrics to show here. The page is
``prometheus_client``'s default registry, in its text format.
"""

from __future__ import annotations

from typing import Any

from ..wire import DriverMissing
from ._telemetry import MISSING

__all__ = ["prometheus_exposition", "prometheus_meter_provider"]


def prometheus_meter_provider(*, service: str, node_id: str, version: str) -> Any:
    """The global SDK meter provider, made (with a Prometheus reader) when there is none."""
    try:
        from opentelemetry import metrics
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
        from opentelemetry.sdk.resources import Resource
    except ImportError as exc:
        raise DriverMissing(MISSING) from exc
    current = metrics.get_meter_provider()
    if isinstance(current, MeterProvider):
        return current
    resource = Resource.create(
        {"service.name": service, "service.instance.id": node_id, "service.version": version}
    )
    # No exemplars: the Prometheus text format does not carry them, and sampling one for
    # every measurement made under a span costs more than the measurement.
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader()],
        resource=resource,
        exemplar_filter=AlwaysOffExemplarFilter(),
    )
    metrics.set_meter_provider(provider)
    return metrics.get_meter_provider()


def prometheus_exposition() -> tuple[str, bytes]:
    """(content type, body) of the Prometheus text page."""
    from prometheus_client import REGISTRY, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    return CONTENT_TYPE_LATEST, generate_latest(REGISTRY)
