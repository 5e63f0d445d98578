"""The registry's wire records: what a node announces, and the events that carry it.

There is no registry server; the broker carries the registry. Every node subscribes (fan-out)
to ``{ns}.registry``, announces its full :class:`NodeInfo` on start and on every heartbeat,
answers a query with the same announcement, and says leave on a graceful stop. A node not
heard from within its record's ``ttl`` is dropped. The records are plain pydantic models,
made from plain values (:func:`node_record`); their JSON Schema is in ``schemas/``.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ADDRESS",
    "ANNOUNCE",
    "LEAVE",
    "QUERY",
    "EndpointInfo",
    "NodeInfo",
    "RegistryChange",
    "RegistryQuery",
    "ServiceInfo",
    "SubscriptionInfo",
    "node_record",
    "registry_topic",
]

ADDRESS = f"{socket.gethostname()}/{os.getpid()}"
"""This process's address as peers see it: host name and process id."""

ANNOUNCE = "eventkit.registry.announce"
"""CloudEvents type of a node's record: on start, every heartbeat, and in answer to a query."""
LEAVE = "eventkit.registry.leave"
"""CloudEvents type of a node's record on a graceful stop: peers drop it at once."""
QUERY = "eventkit.registry.query"
"""CloudEvents type of a question to every node (``{"service": name-or-null}``)."""

# Wire records accept unknown fields, so a node of a newer eventkit that adds one is still
# understood by older peers; they are frozen because one record is shared by every reader.
_WIRE = ConfigDict(frozen=True, extra="ignore")


def registry_topic(namespace: str) -> str:
    return f"{namespace}.registry"


class EndpointInfo(BaseModel):
    """One RPC endpoint of a node: its name and the JSON Schema of request and response.

    A streaming endpoint says which way items flow in ``stream``; its ``request`` (for
    ``client`` and ``bidi``) and ``response`` (for ``server`` and ``bidi``) are then the
    schema of one item. A peer that predates streams ignores the field.
    """

    model_config = _WIRE

    name: str = Field(min_length=1, description="Endpoint name, like Greeter.Hello")
    request: dict[str, Any] = Field(
        default_factory=dict, description="JSON Schema of the request ({} when untyped)"
    )
    response: dict[str, Any] = Field(
        default_factory=dict, description="JSON Schema of the response ({} when untyped)"
    )
    metadata: dict[str, str] = Field(
        default_factory=dict,
        description='Endpoint metadata; "idempotent": "true" lets callers retry on timeout',
    )
    subject: str | None = Field(
        default=None,
        description="Where a service eventkit did not start takes requests for it (its "
        "broker's own discovery says); eventkit nodes take them on their node topic",
    )
    stream: Literal["server", "client", "bidi"] | None = Field(
        default=None,
        description="A streaming endpoint: items flow to the caller (server), to the service "
        "(client, one reply) or both ways (bidi); request/response are then the schemas of one "
        "item. Absent for request/reply endpoints.",
    )


class SubscriptionInfo(BaseModel):
    """One CloudEvents subscription of a node (topic pattern, queue group, durable name)."""

    model_config = _WIRE

    topic: str = Field(min_length=1)
    queue: str | None = None
    durable: str | None = None


class NodeInfo(BaseModel):
    """The full record of one running node, as it announces itself."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        title="NodeInfo",
        json_schema_extra={"$id": "urn:eventkit:schema:registry-node"},
    )

    id: str = Field(min_length=1, description="Node id, unique per process")
    service: str = Field(min_length=1, description="Service name")
    version: str = Field(description="Service version")
    address: str = Field(description="Where the node runs: host name and process id")
    metadata: dict[str, str] = Field(default_factory=dict, description="Service metadata")
    endpoints: list[EndpointInfo] = Field(default_factory=list)
    subscriptions: list[SubscriptionInfo] = Field(default_factory=list)
    ttl: float = Field(gt=0, description="Seconds after the last announce the node is dropped")
    started: float = Field(description="When the node started, seconds since the epoch")
    kind: str = Field(
        default="eventkit",
        description='"eventkit", or a service eventkit did not start, found through the '
        'broker\'s own discovery ("nats-micro"); such records are never gossiped',
    )


class RegistryQuery(BaseModel):
    """The data of a query: every node of the named service (of all, when null) announces itself."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        title="RegistryQuery",
        json_schema_extra={"$id": "urn:eventkit:schema:registry-query"},
    )

    service: str | None = Field(default=None, description="Only nodes of this service answer")


class ServiceInfo(BaseModel):
    """One version of a service as the view sees it: what its nodes share, and the nodes."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    metadata: dict[str, str]
    endpoints: list[EndpointInfo]
    nodes: list[NodeInfo]
    kind: str = "eventkit"
    """Who runs it: "eventkit", or "nats-micro" for a NATS micro service (see NodeInfo)."""


class RegistryChange(BaseModel):
    """What changed in the view: a node added, updated or removed, and why.

    ``reason`` is ``"announce"`` (added/updated), ``"leave"`` (a graceful stop),
    ``"expired"`` (not heard from within its TTL) or ``"snapshot"`` (the current nodes a
    watcher asked to receive first).
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["added", "updated", "removed"]
    node: NodeInfo
    reason: str


def node_record(
    *,
    node_id: str,
    service: str,
    version: str,
    ttl: float,
    metadata: Mapping[str, str] | None = None,
    endpoints: Sequence[EndpointInfo] = (),
    subscriptions: Sequence[SubscriptionInfo] = (),
    started: float | None = None,
) -> NodeInfo:
    """The record a node announces, from plain values (``started``: now, by default)."""
    return NodeInfo(
        id=node_id,
        service=service,
        version=version,
        address=ADDRESS,
        metadata=dict(metadata or {}),
        endpoints=list(endpoints),
        subscriptions=list(subscriptions),
        ttl=ttl,
        started=time.time() if started is None else started,
    )
