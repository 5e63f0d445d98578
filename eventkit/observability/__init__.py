"""Observability: traces, metrics, logs and health probes.

:class:`Telemetry` puts OpenTelemetry spans and metrics around publishes, deliveries, calls
and requests (the ``otel`` extra); :class:`Health` and :class:`ProbeServer` answer
``/healthz``, ``/readyz`` and ``/metrics``; :class:`LogContext` and :class:`JsonFormatter`
put the service, node and trace into every log record. The service layer composes them at
start; this package knows only the wire and the Broker protocol.
"""

from ._health import Health
from ._logging import JsonFormatter, LogContext, configure_logging
from ._probes import Exposition, ProbeServer
from ._prometheus import prometheus_exposition, prometheus_meter_provider
from ._semconv import messaging_system
from ._telemetry import Observer, Telemetry

__all__ = [
    "Exposition",
    "Health",
    "JsonFormatter",
    "LogContext",
    "Observer",
    "ProbeServer",
    "Telemetry",
    "configure_logging",
    "messaging_system",
    "prometheus_exposition",
    "prometheus_meter_provider",
]
