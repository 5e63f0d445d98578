"""The gossiped registry: its wire records, and the view every process folds them into.

There is no registry server; the broker carries the registry. Every node subscribes (fan-out)
to ``{ns}.registry``, announces its full :class:`NodeInfo` on start and on every heartbeat,
answers a query with the same announcement, and says leave on a graceful stop. A node not
heard from within its record's ``ttl`` is dropped.

This module is the pure part: the pydantic wire models and :class:`RegistryView`, a fold of
announce/leave events (and the passing of time) into ``service -> nodes``. It does no I/O, so
it is tested without an event loop. The part that talks to the broker, :class:`Registry` and
:class:`RegistryExtension`, lives in :mod:`eventkit.registry_node` and is re-exported here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .context import ADDRESS

if TYPE_CHECKING:
    from .registry_node import Registry, RegistryExtension
    from .router import Endpoint
    from .service import Service

__all__ = [
    "ANNOUNCE",
    "LEAVE",
    "QUERY",
    "EndpointInfo",
    "NodeInfo",
    "Registry",
    "RegistryChange",
    "RegistryExtension",
    "RegistryQuery",
    "RegistryView",
    "ServiceInfo",
    "SubscriptionInfo",
    "node_info",
    "registry_topic",
]

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
    """One RPC endpoint of a node: its name and the JSON Schema of request and response."""

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


# -- the pure view -------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    node: NodeInfo
    expires: float


class RegistryView:
    """``service -> nodes``, folded from announce/leave events; no I/O, no clock of its own.

    Times are passed in (``now``, seconds on the ``time.time()`` scale), so the view is a
    pure function of what it was told. A node that left is remembered until its TTL would have
    run out (a *tombstone*), so an announcement of it that was still in flight when it said
    leave does not bring it back; a restart of the same node id (a later ``started``) does.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._tombstones: dict[str, tuple[float, float]] = {}  # id -> (started, until)
        self._by_service: dict[str, list[NodeInfo]] = {}  # nodes() per service, until a change

    def __len__(self) -> int:
        return len(self._entries)

    def apply(self, kind: str, node: NodeInfo, now: float) -> RegistryChange | None:
        """Fold one ``"announce"`` or ``"leave"``; the change it made, or None if none."""
        if kind == "announce":
            tomb = self._tombstones.get(node.id)
            if tomb is not None:
                if node.started <= tomb[0] and now < tomb[1]:
                    return None  # a late announcement of a node that already left
                del self._tombstones[node.id]
            entry = self._entries.get(node.id)
            if entry is None:
                self._entries[node.id] = _Entry(node, now + node.ttl)
                self._by_service.clear()
                return RegistryChange(kind="added", node=node, reason="announce")
            entry.expires = now + node.ttl
            if entry.node == node:
                return None
            entry.node = node
            self._by_service.clear()
            return RegistryChange(kind="updated", node=node, reason="announce")
        if kind == "leave":
            self._tombstones[node.id] = (node.started, now + node.ttl)
            gone = self._entries.pop(node.id, None)
            if gone is None:
                return None
            self._by_service.clear()
            return RegistryChange(kind="removed", node=gone.node, reason="leave")
        raise ValueError(f"registry event kind must be 'announce' or 'leave', got {kind!r}")

    def expire(self, now: float) -> list[RegistryChange]:
        """Drop the nodes not heard from within their TTL; the removals, ordered by node id."""
        dead = sorted(nid for nid, entry in self._entries.items() if entry.expires <= now)
        if dead:
            self._by_service.clear()
        changes = [
            RegistryChange(kind="removed", node=self._entries.pop(nid).node, reason="expired")
            for nid in dead
        ]
        for nid in [nid for nid, (_, until) in self._tombstones.items() if until <= now]:
            del self._tombstones[nid]
        return changes

    def get(self, node_id: str) -> NodeInfo | None:
        entry = self._entries.get(node_id)
        return None if entry is None else entry.node

    def all(self) -> list[NodeInfo]:
        """Every live node, ordered by id."""
        return [self._entries[nid].node for nid in sorted(self._entries)]

    def nodes(
        self,
        service: str,
        *,
        version: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[NodeInfo]:
        """Live nodes of ``service``, ordered by id; ``version`` must match exactly and
        ``metadata`` must be a subset of the node's metadata, when given. The list is shared
        until the view changes (the RPC path asks on every call): do not modify it."""
        if version is None and not metadata:
            cached = self._by_service.get(service)
            if cached is None:
                cached = self._by_service[service] = self._filter(service, None, None)
            return cached
        return self._filter(service, version, metadata)

    def _filter(
        self, service: str, version: str | None, metadata: Mapping[str, str] | None
    ) -> list[NodeInfo]:
        found = []
        for nid in sorted(self._entries):
            node = self._entries[nid].node
            if node.service != service:
                continue
            if version is not None and node.version != version:
                continue
            if metadata and any(node.metadata.get(k) != v for k, v in metadata.items()):
                continue
            found.append(node)
        return found

    def known_services(self) -> list[str]:
        return sorted({entry.node.service for entry in self._entries.values()})

    def services(self) -> list[ServiceInfo]:
        """One :class:`ServiceInfo` per (name, version), ordered by name then version."""
        groups: dict[tuple[str, str], list[NodeInfo]] = {}
        for node in self.all():
            groups.setdefault((node.service, node.version), []).append(node)
        return [
            _service_info(name, version, groups[(name, version)])
            for name, version in sorted(groups, key=lambda k: (k[0], _version_key(k[1])))
        ]

    def describe(self, name: str) -> list[ServiceInfo]:
        """Every version of service ``name`` (an empty list when none is known)."""
        return [info for info in self.services() if info.name == name]


def _service_info(name: str, version: str, nodes: list[NodeInfo]) -> ServiceInfo:
    """Metadata shared by every node; endpoints as the most recently started node has them."""
    shared = dict(nodes[0].metadata)
    for node in nodes[1:]:
        shared = {k: v for k, v in shared.items() if node.metadata.get(k) == v}
    endpoints: dict[str, EndpointInfo] = {}
    for node in sorted(nodes, key=lambda n: n.started):
        for endpoint in node.endpoints:
            endpoints[endpoint.name] = endpoint
    return ServiceInfo(
        name=name,
        version=version,
        metadata=shared,
        endpoints=[endpoints[k] for k in sorted(endpoints)],
        nodes=nodes,
    )


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Orders ``1.10.0`` after ``1.9.0``: numeric parts as numbers, others as text."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part)
        for part in re.split(r"[.\-+]", version)
        if part
    )


# -- the record of a local service ---------------------------------------------------------


def node_info(service: Service) -> NodeInfo:
    """The record a started ``service`` announces: endpoints with their JSON Schemas,
    subscriptions, and the settings' TTL. Raises RuntimeError when it is not started."""
    settings = service.settings
    if settings is None:
        raise RuntimeError(f"service {service.name!r} is not started: it has no settings yet")
    return NodeInfo(
        id=service.node_id,
        service=service.name,
        version=service.version,
        address=ADDRESS,
        metadata=dict(service.metadata),
        endpoints=[_endpoint_info(endpoint) for endpoint in service.endpoints],
        subscriptions=[
            SubscriptionInfo(topic=sub.topic, queue=sub.queue, durable=sub.durable)
            for sub in service.subscribers
        ],
        ttl=settings.registry_ttl,
        started=time.time(),
    )


def _endpoint_info(endpoint: Endpoint) -> EndpointInfo:
    signature = endpoint.signature
    request = signature.codec.json_schema() if signature.codec is not None else {}
    metadata = dict(endpoint.metadata)
    if endpoint.idempotent:
        metadata["idempotent"] = "true"
    return EndpointInfo(
        name=endpoint.name,
        request=request,
        response=_schema_of(signature.returns),
        metadata=metadata,
    )


def _schema_of(tp: Any) -> dict[str, Any]:
    if tp is Any or tp is None or tp is type(None):
        return {}
    try:
        return TypeAdapter(tp).json_schema()
    except Exception:  # a type pydantic cannot describe still works; it just has no schema
        return {}


def __getattr__(name: str) -> Any:
    # The I/O half is imported on first use: it imports this module for the records.
    if name in ("Registry", "RegistryExtension"):
        from . import registry_node

        return getattr(registry_node, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
