"""NATS service discovery: eventkit services answer the NATS service API (``$SRV.*``).

On a NATS broker every service also answers ``$SRV.PING``, ``$SRV.INFO`` and ``$SRV.STATS``
(for all services, ``.{name}``, and ``.{name}.{node_id}``), so standard NATS tooling (the
``nats micro`` commands, the service clients of the NATS libraries) lists, describes and
monitors eventkit services next to native ones. The answers follow the
``io.nats.micro.v1.*_response`` schemas. eventkit's own registry stays the source of truth
for callers; this is a window for operators. On other brokers the extension does nothing.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pydantic_core

from .brokers import Subscription
from .brokers.base import stop_all
from .message import REPLY_TO, Message
from .rpc import RpcServer, service_topic

if TYPE_CHECKING:
    from .service import Service

__all__ = ["NatsDiscovery"]

log = logging.getLogger("eventkit.nats_discovery")

PING = "io.nats.micro.v1.ping_response"
INFO = "io.nats.micro.v1.info_response"
STATS = "io.nats.micro.v1.stats_response"
_VERBS = {"PING": PING, "INFO": INFO, "STATS": STATS}


def _rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class NatsDiscovery:
    """A Service extension: subscribes to the ``$SRV`` subjects when the broker is NATS."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self._started = 0.0
        self._service: Service | None = None

    @staticmethod
    def applies(service: Service) -> bool:
        return type(service.broker).__module__ == "eventkit.brokers.nats"

    async def start(self, service: Service) -> None:
        if not self.applies(service):
            return
        self._service = service
        self._started = time.time()
        broker = service.broker
        for verb in _VERBS:
            for subject in (
                f"$SRV.{verb}",
                f"$SRV.{verb}.{service.name}",
                f"$SRV.{verb}.{service.name}.{service.node_id}",
            ):
                self._subscriptions.append(await broker.subscribe(subject, self._on_request))

    async def stop(self, service: Service) -> None:
        await stop_all(self._subscriptions)
        self._subscriptions.clear()

    async def _on_request(self, message: Message) -> None:
        service = self._service
        reply_to = message.headers.get(REPLY_TO)
        if service is None or reply_to is None:
            return
        verb = message.topic.split(".")[1]
        answer = self.answer(verb)
        await service.broker.publish(Message(reply_to, pydantic_core.to_json(answer), {}))

    def answer(self, verb: str) -> dict[str, Any]:
        """The response to ``$SRV.{verb}`` (PING, INFO or STATS)."""
        service = self._service
        assert service is not None
        identity: dict[str, Any] = {
            "type": _VERBS[verb],
            "name": service.name,
            "id": service.node_id,
            "version": service.version,
            "metadata": dict(service.metadata),
        }
        settings = service.settings
        assert settings is not None
        subject = service_topic(settings.namespace, service.name)
        if verb == "INFO":
            identity["description"] = service.description
            identity["endpoints"] = [
                {
                    "name": endpoint.name,
                    "subject": subject,
                    "queue_group": service.name,
                    "metadata": {"eventkit-endpoint": endpoint.name, **endpoint.metadata},
                }
                for endpoint in service.endpoints
            ]
        elif verb == "STATS":
            identity["started"] = _rfc3339(self._started)
            rpc = next((e for e in service._extensions if isinstance(e, RpcServer)), None)
            stats = rpc.endpoint_stats() if rpc is not None else []
            identity["endpoints"] = [
                {"subject": subject, "queue_group": service.name, "data": None, **entry}
                for entry in stats
            ]
        return identity
