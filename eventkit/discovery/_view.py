"""The registry view: a pure fold of announce/leave events into ``service -> nodes``.

No I/O and no clock of its own: times are passed in, so the view is a function of what it was
told, and it is tested without an event loop. :class:`~._registry.Registry` feeds it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ._records import EndpointInfo, NodeInfo, RegistryChange, ServiceInfo

__all__ = ["RegistryView"]


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
        """One :class:`ServiceInfo` per (name, version, kind), ordered by name then version."""
        groups: dict[tuple[str, str, str], list[NodeInfo]] = {}
        for node in self.all():
            groups.setdefault((node.service, node.version, node.kind), []).append(node)
        return [
            _service_info(name, version, groups[(name, version, kind)])
            for name, version, kind in sorted(
                groups, key=lambda k: (k[0], _version_key(k[1]), k[2])
            )
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
        kind=nodes[0].kind,
    )


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Orders ``1.10.0`` after ``1.9.0``: numeric parts as numbers, others as text."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part)
        for part in re.split(r"[.\-+]", version)
        if part
    )
