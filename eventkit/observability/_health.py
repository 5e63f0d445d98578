"""Health: whether a node is alive and whether it is ready, as plain state.

Liveness is the event loop answering: whoever can ask (the probe server runs on that loop)
gets an answer, so a blocked or dead loop fails the probe by timing out. Readiness is the
service's own account: connected to the broker, every subscription and endpoint registered,
and not draining. The service sets the flags at its lifecycle points; ``/readyz``,
``/healthz`` and ``eventkit health`` all read :meth:`Health.report`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Health"]


class Health:
    """The readiness of one node: ``registered`` once its subscriptions and endpoints are
    live, ``draining`` from the first moment of a stop, and the broker link as the broker
    reports it (``link_up``: False while an adapter reconnects)."""

    __slots__ = ("_link", "draining", "node_id", "registered", "service")

    def __init__(self, service: str, node_id: str) -> None:
        self.service = service
        self.node_id = node_id
        self.registered = False
        self.draining = False
        self._link: Callable[[], bool] | None = None

    def watch_link(self, link_up: Callable[[], bool] | None) -> None:
        """Read the broker's connection state from ``link_up`` (None: not connected yet)."""
        self._link = link_up

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link()

    @property
    def ready(self) -> bool:
        return self.registered and not self.draining and self.connected

    def report(self) -> dict[str, Any]:
        """What the probes answer: the verdicts and each check behind readiness."""
        return {
            "service": self.service,
            "node": self.node_id,
            "live": True,
            "ready": self.ready,
            "checks": {
                "broker_connected": self.connected,
                "registered": self.registered,
                "draining": self.draining,
            },
        }
