"""What a service composes from eventkit.observability at start: telemetry, health, probes.

Made from the settings (``EVENTKIT_TRACING``, ``EVENTKIT_METRICS``, ``EVENTKIT_METRICS_PORT``)
or a :class:`~eventkit.observability.Telemetry` given in code. With everything off it wraps
nothing: subscribers, endpoints, publishes and calls run exactly the code they run without
the ``otel`` extra. The probe server, when asked for, starts before the broker connects (so
``/healthz`` answers while the service starts) and stops last.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from ..brokers import Broker, DeliveryPolicy
from ..observability import (
    Health,
    Observer,
    ProbeServer,
    Telemetry,
    messaging_system,
    prometheus_exposition,
    prometheus_meter_provider,
)
from ..rpc import ENDPOINT
from ..wire import DriverMissing
from ._router import Endpoint, Subscriber
from ._settings import Settings

__all__ = ["Observing"]

log = logging.getLogger("eventkit.service")


class _Node(Protocol):
    name: str
    node_id: str
    version: str
    telemetry: Telemetry | None


class Observing:
    """A running service's telemetry (None when off), health state and probe server."""

    def __init__(
        self,
        *,
        service: str,
        node_id: str,
        version: str,
        settings: Settings,
        telemetry: Telemetry | None,
    ) -> None:
        self.health = Health(service, node_id)
        self.telemetry = telemetry
        self.settings = settings
        self.probes: ProbeServer | None = None
        self._unwatch: Callable[[], None] | None = None
        serve_metrics = settings.metrics_port is not None
        if telemetry is None and settings.observed:
            try:
                meter_provider = None
                if serve_metrics:
                    meter_provider = prometheus_meter_provider(
                        service=service, node_id=node_id, version=version
                    )
                self.telemetry = Telemetry(
                    tracing=settings.tracing,
                    metrics=settings.metrics or serve_metrics,
                    meter_provider=meter_provider,
                )
            except DriverMissing:
                if settings.tracing or settings.metrics:
                    raise
                log.warning(
                    "EVENTKIT_METRICS_PORT is set but the otel extra is not installed: serving "
                    "/healthz and /readyz only (pip install 'eventkit-micro[otel]' for /metrics)"
                )
        if serve_metrics:
            assert settings.metrics_port is not None
            metrics_on = self.telemetry is not None and self.telemetry.metrics
            self.probes = ProbeServer(
                self.health,
                host=settings.metrics_host,
                port=settings.metrics_port,
                metrics=prometheus_exposition if metrics_on else None,
            )

    @classmethod
    def of(cls, service: _Node, settings: Settings) -> Observing:
        """What ``service`` (a Service about to start) observes with ``settings``."""
        return cls(
            service=service.name,
            node_id=service.node_id,
            version=service.version,
            settings=settings,
            telemetry=service.telemetry,
        )

    async def start(self) -> None:
        if self.probes is not None:
            await self.probes.start()

    def connected(self, broker: Broker) -> None:
        """Watch the broker's link (for readiness and the connection gauge)."""
        up = _link_reader(broker)
        self.health.watch_link(up)
        if self.telemetry is not None:
            self._unwatch = self.telemetry.watch_broker(
                messaging_system(broker.url), broker.url, up
            )

    def subscriber(self, sub: Subscriber, system: str) -> Observer | None:
        if self.telemetry is None:
            return None
        return self.telemetry.deliveries(
            system=system,
            pattern=sub.topic,
            group=sub.queue or sub.durable,
            durable=sub.durable is not None,
            max_attempts=(sub.policy or DeliveryPolicy()).max_attempts,
        )

    def requests(self, service: str, endpoints: Sequence[Endpoint]) -> Observer | None:
        if self.telemetry is None:
            return None
        return self.telemetry.requests(
            service=service,
            endpoints=[endpoint.name for endpoint in endpoints],
            endpoint_header=ENDPOINT,
        )

    async def stop(self) -> None:
        self.health.registered = False
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        if self.probes is not None:
            await self.probes.stop()


def _link_reader(broker: Broker) -> Callable[[], bool]:
    """``broker.link_up`` read afresh each time (BaseBroker's adapters have it: False while
    they reconnect); a broker without it counts as connected while the service runs."""

    def link_up() -> bool:
        value = getattr(broker, "link_up", None)
        return True if value is None else bool(value)

    return link_up
