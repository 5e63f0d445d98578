"""The metrics eventkit records, as OpenTelemetry instruments made once per meter.

Counts, errors (the same counters with ``error.type``), durations as histograms (seconds,
with the conventions' buckets), what is in flight, redeliveries, dead letters, and the
broker link as a gauge: per subscription (its topic pattern and group) and per endpoint
(``rpc.method``). With the Prometheus reader they read, for example, as
``messaging_process_duration_seconds_bucket{messaging_destination_name="orders.*"}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation

from . import _semconv as sc

__all__ = ["Instruments"]


class Instruments:
    """Every instrument, from one meter; the broker gauge reads each watched link."""

    def __init__(self, meter: Meter) -> None:
        buckets = sc.DURATION_BUCKETS
        self.sent = meter.create_counter(sc.SENT, "{message}", "Events published")
        self.send_duration = meter.create_histogram(
            sc.SEND_DURATION,
            "s",
            "Time to publish an event (until the broker accepted it)",
            explicit_bucket_boundaries_advisory=buckets,
        )
        self.consumed = meter.create_counter(
            sc.CONSUMED, "{message}", "Events delivered to a subscriber (error.type: it failed)"
        )
        self.process_duration = meter.create_histogram(
            sc.PROCESS_DURATION,
            "s",
            "Time a subscriber took with one delivery",
            explicit_bucket_boundaries_advisory=buckets,
        )
        self.redeliveries = meter.create_counter(
            sc.REDELIVERIES, "{message}", "Deliveries that were not the first attempt"
        )
        self.dead_letters = meter.create_counter(
            sc.DEAD_LETTERS, "{message}", "Events given up on and moved to a dead-letter topic"
        )
        self.server_duration = meter.create_histogram(
            sc.SERVER_DURATION,
            "s",
            "Time an endpoint took with one request, reply included",
            explicit_bucket_boundaries_advisory=buckets,
        )
        self.client_duration = meter.create_histogram(
            sc.CLIENT_DURATION,
            "s",
            "Time an RPC call took, retries included",
            explicit_bucket_boundaries_advisory=buckets,
        )
        self.cache_hits = meter.create_counter(
            sc.CACHE_HITS, "{call}", "Calls answered from the caller's reply cache"
        )
        self.cache_misses = meter.create_counter(
            sc.CACHE_MISSES, "{call}", "Cached calls that found no reply kept and were sent"
        )
        self._links: dict[int, tuple[dict[str, str], Callable[[], bool]]] = {}
        self._next = 0
        # What is in flight is counted in plain integers (one per subscription or endpoint)
        # and read when metrics are collected, not recorded twice per delivery.
        self._in_flight: list[tuple[dict[str, str], list[int]]] = []
        self._server_in_flight: list[tuple[dict[str, str], list[int]]] = []

        def links(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(1 if up() else 0, a) for a, up in list(self._links.values())]

        def deliveries(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(cell[0], attrs) for attrs, cell in self._in_flight]

        def requests(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(cell[0], attrs) for attrs, cell in self._server_in_flight]

        meter.create_observable_gauge(
            sc.BROKER_CONNECTED,
            [links],
            "1",
            "1 while the broker connection is up, 0 while it is down or reconnecting",
        )
        meter.create_observable_up_down_counter(
            sc.IN_FLIGHT, [deliveries], "{message}", "Deliveries a subscriber is handling now"
        )
        meter.create_observable_up_down_counter(
            sc.SERVER_IN_FLIGHT, [requests], "{request}", "Requests an endpoint is handling now"
        )

    def in_flight(self, attributes: dict[str, str], *, server: bool = False) -> list[int]:
        """The counter of one subscription's (or endpoint's) work in progress."""
        cell = [0]
        (self._server_in_flight if server else self._in_flight).append((attributes, cell))
        return cell

    def watch_link(self, attributes: dict[str, str], link_up: Callable[[], bool]) -> int:
        """Report ``link_up()`` on the broker gauge until :meth:`unwatch_link`."""
        self._next += 1
        self._links[self._next] = (attributes, link_up)
        return self._next

    def unwatch_link(self, key: int) -> None:
        self._links.pop(key, None)


_by_meter: dict[int, tuple[MeterProvider, Instruments]] = {}


def instruments_for(provider: MeterProvider, version: str) -> Instruments:
    """One set of instruments per meter provider (several services in one process share
    it, and an instrument is made once, as OpenTelemetry expects)."""
    entry = _by_meter.get(id(provider))
    if entry is None or entry[0] is not provider:
        entry = (provider, Instruments(provider.get_meter("eventkit", version)))
        _by_meter[id(provider)] = entry
    return entry[1]
