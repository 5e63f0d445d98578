"""The NATS service API (``$SRV.*``): eventkit services listed next to native NATS services.

On a NATS broker every service also answers ``$SRV.PING``, ``$SRV.INFO`` and ``$SRV.STATS``
(for all services, ``.{name}``, and ``.{name}.{node_id}``), so standard NATS tooling (the
``nats micro`` commands, the service clients of the NATS libraries) lists, describes and
monitors eventkit services. The answers follow ADR-32 and validate against its published
``io.nats.micro.v1.*_response`` JSON schemas (a test checks them):

- an endpoint name like ``Greeter.Hello`` is listed as ``Greeter-Hello`` (ADR-32 names are
  letters, digits, ``_`` and ``-``); its eventkit name is in the endpoint's metadata under
  ``eventkit-endpoint``, and its subject keeps the dots (``{ns}.srv.greeter.Greeter.Hello``);
- each endpoint is listed on its own subject, where a request that is only JSON reaches it;
- STATS lists every endpoint, with ``data`` an object (eventkit has no custom stats: ``{}``).

The service hands its description over as plain values (:class:`ServiceDescription`): the
subjects it lists are served by the layers above (eventkit's RPC server subscribes to them),
so this module knows nothing of eventkit's RPC.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pydantic_core

from ...wire import Message
from ..base import REPLY_TO, ServiceDescription, Subscription, stop_all

if TYPE_CHECKING:
    from ._broker import NatsBroker

__all__ = ["EVENTKIT_ENDPOINT", "ServiceApi", "micro_name"]

EVENTKIT_ENDPOINT = "eventkit-endpoint"
"""Endpoint metadata: the endpoint's eventkit name (and the mark of an eventkit service)."""
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_-]")


def micro_name(name: str) -> str:
    """An endpoint name as ADR-32 allows it: ``Greeter.Hello`` -> ``Greeter-Hello``."""
    return _NOT_IN_NAME.sub("-", name)


PING = "io.nats.micro.v1.ping_response"
INFO = "io.nats.micro.v1.info_response"
STATS = "io.nats.micro.v1.stats_response"
_VERBS = {"PING": PING, "INFO": INFO, "STATS": STATS}


def _rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class ServiceApi:
    """The ``$SRV`` subscriptions of one service; ``stop()`` ends them."""

    def __init__(self, broker: NatsBroker, service: ServiceDescription) -> None:
        self.broker = broker
        self.service = service
        self.topic = f"$SRV.*.{service.name}"
        self.queue: str | None = None
        self.durable: str | None = None
        self._subscriptions: list[Subscription] = []
        self._started = time.time()

    async def start(self) -> None:
        name, node_id = self.service.name, self.service.node_id
        for verb in _VERBS:
            for subject in (f"$SRV.{verb}", f"$SRV.{verb}.{name}", f"$SRV.{verb}.{name}.{node_id}"):
                self._subscriptions.append(await self.broker.subscribe(subject, self._on_request))

    async def stop(self) -> None:
        subscriptions, self._subscriptions = self._subscriptions, []
        await stop_all(subscriptions)

    async def _on_request(self, message: Message) -> None:
        reply_to = message.headers.get(REPLY_TO)
        if reply_to is None:
            return
        verb = message.topic.split(".")[1]
        answer = self.answer(verb)
        await self.broker.publish(Message(reply_to, pydantic_core.to_json(answer), {}))

    def answer(self, verb: str) -> dict[str, Any]:
        """The response to ``$SRV.{verb}`` (PING, INFO or STATS)."""
        service = self.service
        identity: dict[str, Any] = {
            "type": _VERBS[verb],
            "name": service.name,
            "id": service.node_id,
            "version": service.version,
            "metadata": dict(service.metadata),
        }
        if verb == "INFO":
            identity["description"] = service.description
            identity["endpoints"] = [
                {
                    "name": micro_name(endpoint.name),
                    "subject": endpoint.subject,
                    "queue_group": endpoint.queue_group,
                    "metadata": {**endpoint.metadata, EVENTKIT_ENDPOINT: endpoint.name},
                }
                for endpoint in service.endpoints
            ]
        elif verb == "STATS":
            identity["started"] = _rfc3339(self._started)
            counters = {entry["name"]: entry for entry in service.stats()}
            identity["endpoints"] = [
                _endpoint_stats(endpoint.name, counters.get(endpoint.name, {}))
                | {"subject": endpoint.subject, "queue_group": endpoint.queue_group}
                for endpoint in service.endpoints
            ]
        return identity


def _endpoint_stats(name: str, counters: dict[str, Any]) -> dict[str, Any]:
    """One endpoint's STATS entry: every counter ADR-32 names (0 where none was kept)."""
    return {
        "name": micro_name(name),
        "num_requests": int(counters.get("num_requests", 0)),
        "num_errors": int(counters.get("num_errors", 0)),
        "last_error": str(counters.get("last_error") or ""),
        "processing_time": int(counters.get("processing_time", 0)),
        "average_processing_time": int(counters.get("average_processing_time", 0)),
        "data": {},
    }
