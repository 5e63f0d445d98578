"""Telemetry: eventkit's traces and metrics through OpenTelemetry, composed in at start.

A :class:`Telemetry` is made once per service or client (from ``EVENTKIT_TRACING`` and
``EVENTKIT_METRICS``/``EVENTKIT_METRICS_PORT``, or given in code) and hands out wrappers for
publish, call, deliveries and requests. Without one, nothing is wrapped: the hot paths run
the same code as a kit without the ``otel`` extra. This module imports OpenTelemetry only
when a Telemetry is made, so ``import eventkit`` never needs it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any
from urllib.parse import urlsplit

from ..brokers.base import MessageHandler
from ..wire import DriverMissing, Headers

__all__ = ["Observer", "Telemetry"]

MISSING = (
    "tracing and metrics need OpenTelemetry: pip install 'eventkit-micro[otel]' "
    "(or turn them off: unset EVENTKIT_TRACING and EVENTKIT_METRICS)"
)


class Observer:
    """Telemetry around one subscription's deliveries or one server's requests: ``wrap``
    the handler once; the handler reports failures it handles itself through ``failed``."""

    __slots__ = ("failed", "wrap")

    def __init__(
        self,
        wrap: Callable[[MessageHandler], MessageHandler],
        failed: Callable[[BaseException], None],
    ) -> None:
        self.wrap = wrap
        self.failed = failed


class Telemetry:
    """Traces (``tracing``) and metrics (``metrics``) through OpenTelemetry.

    ``tracer_provider`` and ``meter_provider`` default to the global ones (what
    ``opentelemetry-instrument`` or the application configured). Spans and metrics follow
    OpenTelemetry's messaging and RPC semantic conventions (docs/observability.md lists
    them). Raises :class:`DriverMissing` without the ``otel`` extra.
    """

    def __init__(
        self,
        *,
        tracing: bool = True,
        metrics: bool = True,
        tracer_provider: Any = None,
        meter_provider: Any = None,
    ) -> None:
        try:
            from opentelemetry import metrics as otel_metrics
            from opentelemetry import trace

            from ._instruments import instruments_for
            from ._observers import Observers
        except ImportError as exc:
            raise DriverMissing(MISSING) from exc
        self.tracing = tracing
        self.metrics = metrics
        tracer = trace.get_tracer("eventkit", tracer_provider=tracer_provider) if tracing else None
        instruments = None
        if metrics:
            provider = meter_provider or otel_metrics.get_meter_provider()
            instruments = instruments_for(provider, "")
        self._instruments = instruments
        self._observers = Observers(tracer, instruments)

    def publisher(
        self, publish: Callable[..., Awaitable[str]], *, system: str, client_id: str
    ) -> Callable[..., Awaitable[str]]:
        """``publish`` (a client's) with a PRODUCER span and the trace in the event."""
        return self._observers.publisher(publish, system=system, client_id=client_id)

    def caller(self, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """``call`` (a client's) with a CLIENT span and the call duration."""
        return self._observers.caller(call)

    def cache_counter(self) -> Callable[[str, str, bool], None] | None:
        """What a client's reply cache tells of each lookup (service, endpoint, hit): the
        ``eventkit.rpc.cache.hits`` / ``.misses`` counters by ``rpc.method``; None when
        metrics are off."""
        instruments = self._instruments
        if instruments is None:
            return None
        hits, misses = instruments.cache_hits, instruments.cache_misses
        from . import _semconv as sc

        def count(service: str, endpoint: str, hit: bool) -> None:
            attributes = {sc.RPC_METHOD: f"{service}/{endpoint}"}
            (hits if hit else misses).add(1, attributes)

        return count

    def request_headers(
        self, headers: Callable[[dict[str, str] | None], Headers]
    ) -> Callable[[dict[str, str] | None], Headers]:
        """``headers`` (what a request is sent with) plus the current trace context."""
        if not self.tracing:
            return headers
        from ._propagation import inject_headers

        def traced(metadata: dict[str, str] | None) -> Headers:
            return inject_headers(headers(metadata))

        return traced

    def deliveries(
        self,
        *,
        system: str,
        pattern: str,
        group: str | None,
        durable: bool,
        max_attempts: int,
    ) -> Observer:
        """A CONSUMER span and the subscriber metrics around each delivery."""
        observers = self._observers

        def wrap(handler: MessageHandler) -> MessageHandler:
            wrapped, _ = observers.consumer(
                handler,
                system=system,
                pattern=pattern,
                group=group,
                durable=durable,
                max_attempts=max_attempts,
            )
            return wrapped

        from ._observers import failed

        return Observer(wrap, failed)

    def requests(
        self, *, service: str, endpoints: Collection[str], endpoint_header: str
    ) -> Observer:
        """A SERVER span and the endpoint metrics around each request."""
        observers = self._observers

        def wrap(handler: MessageHandler) -> MessageHandler:
            wrapped, _ = observers.server(
                handler, service=service, endpoints=endpoints, endpoint_header=endpoint_header
            )
            return wrapped

        from ._observers import failed

        return Observer(wrap, failed)

    def watch_broker(
        self, system: str, url: str, link_up: Callable[[], bool]
    ) -> Callable[[], None]:
        """Report the broker link on the ``eventkit.broker.connected`` gauge; returns the
        function that stops it."""
        instruments = self._instruments
        if instruments is None:
            return lambda: None
        attributes = {"messaging.system": system, "server.address": _where(url)}
        key = instruments.watch_link(attributes, link_up)
        return lambda: instruments.unwatch_link(key)


def _where(url: str) -> str:
    """Host and port of a broker URL (the first server's), never its credentials."""
    try:
        parts = urlsplit(url.split(",", 1)[0])
        host = parts.hostname or ""
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return ""
