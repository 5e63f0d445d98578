"""The NATS service API (``$SRV.*``): eventkit services listed next to native NATS services.

On a NATS broker every service also answers ``$SRV.PING``, ``$SRV.INFO`` and ``$SRV.STATS``
(for all services, ``.{name}``, and ``.{name}.{node_id}``), so standard NATS tooling (the
``nats micro`` commands, the service clients of the NATS libraries) lists, describes and
monitors eventkit services. The answers follow the ``io.nats.micro.v1.*_response`` schemas.
The service hands its description over as plain values (:class:`ServiceDescription`), so
this module knows nothing of eventkit's RPC.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pydantic_core

from ...wire import Message
from ..base import REPLY_TO, ServiceDescription, Subscription, stop_all

if TYPE_CHECKING:
    from ._broker import NatsBroker

__all__ = ["ServiceApi"]

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
                    "name": endpoint.name,
                    "subject": endpoint.subject,
                    "queue_group": endpoint.queue_group,
                    "metadata": {"eventkit-endpoint": endpoint.name, **endpoint.metadata},
                }
                for endpoint in service.endpoints
            ]
        elif verb == "STATS":
            identity["started"] = _rfc3339(self._started)
            subjects = {e.name: e for e in service.endpoints}
            identity["endpoints"] = [
                {
                    "subject": subjects[entry["name"]].subject,
                    "queue_group": subjects[entry["name"]].queue_group,
                    "data": None,
                    **entry,
                }
                for entry in service.stats()
                if entry["name"] in subjects
            ]
        return identity
