"""Membership of the HTTP broker's mesh, and who gets a topic: pure state, no I/O.

Every node owns one :class:`NodeRecord` (address, subscription entries, status) and a counter
``seq`` it bumps on every change and on every gossip round (its heartbeat). Nodes exchange
records; a receiver keeps, per node, the record with the highest ``seq``, and remembers the
local time ``seq`` last rose. A node whose ``seq`` has not risen for ``dead_after`` seconds
is dropped; a node that leaves sends its record with ``status="left"``. A dropped or departed
node leaves a tombstone, so an older record still travelling cannot bring it back; a newer one
(a node that was only cut off) can. A restarted node is a new id on the same address: the
newer incarnation replaces the older one.

Durable names are cluster state that outlives their subscribers: once seen, every node keeps
the name's topic pattern and delivery policy, so a publisher keeps messages for a durable
whose subscribers are all away (see ``http_outbox``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from ...wire import loggable, matches, validate_name, validate_pattern

__all__ = ["DurableSpec", "Entry", "Membership", "NodeRecord", "Route", "parse_gossip"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One subscription entry a node advertises.

    A plain subscription is an entry of its own; the local members of a queue group
    (pattern, queue) or of a durable name share one. ``sink`` entries stand for an outside
    CloudEvents consumer at that URL. ``max_in_flight``: handlers the entry runs at once.
    """

    id: int
    pattern: str
    queue: str | None = None
    durable: str | None = None
    sink: str | None = None
    max_in_flight: int = 1

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "pattern": self.pattern, "n": self.max_in_flight}
        for key in ("queue", "durable", "sink"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Entry:
        _object(obj, "a subscription entry", ("id", "pattern", "n", "queue", "durable", "sink"))
        queue, durable, sink = _opt(obj, "queue"), _opt(obj, "durable"), _opt(obj, "sink")
        if queue is not None:
            validate_name("queue group", queue)
        if durable is not None:
            validate_name("durable", durable)
        if sink is not None and urlsplit(sink).scheme not in ("http", "https"):
            raise ValueError(f"sink {loggable(sink)} is not an http(s) URL")
        return cls(
            id=_int(obj, "id", low=-(2**31)),
            pattern=validate_pattern(_str(obj, "pattern")),
            queue=queue,
            durable=durable,
            sink=sink,
            max_in_flight=max(1, _int(obj, "n", 1)),
        )


@dataclass(frozen=True, slots=True)
class DurableSpec:
    """A durable name: its topic pattern and the redelivery policy its subscribers asked for.
    ``stamp`` (wall time of the subscribe that set it) decides between two versions."""

    name: str
    pattern: str
    max_attempts: int = 5
    backoff_initial: float = 0.05
    backoff_max: float = 5.0
    stamp: float = 0.0
    backoff_steps: tuple[float, ...] | None = None

    def backoff(self, attempt: int) -> float:
        steps = self.backoff_steps
        if steps:
            return steps[min(attempt, len(steps)) - 1]
        return float(min(self.backoff_max, self.backoff_initial * (2 ** (attempt - 1))))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pattern": self.pattern,
            "max_attempts": self.max_attempts,
            "backoff_initial": self.backoff_initial,
            "backoff_max": self.backoff_max,
            "stamp": self.stamp,
            # only when set: a peer of an older version refuses fields it does not know
            **({"backoff_steps": list(self.backoff_steps)} if self.backoff_steps else {}),
        }

    @classmethod
    def from_json(cls, obj: Any) -> DurableSpec:
        _object(obj, "a durable spec", cls.__dataclass_fields__)
        return cls(
            name=validate_name("durable", _str(obj, "name")),
            pattern=validate_pattern(_str(obj, "pattern")),
            max_attempts=max(1, _int(obj, "max_attempts")),
            backoff_initial=max(0.0, _float(obj, "backoff_initial")),
            backoff_max=max(0.0, _float(obj, "backoff_max")),
            stamp=_float(obj, "stamp"),
            backoff_steps=_steps(obj) if "backoff_steps" in obj else None,
        )


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """What a node says about itself. ``addr`` is ``host:port`` of its HTTP server."""

    id: str
    addr: str
    started: float
    seq: int = 0
    status: str = "alive"
    entries: tuple[Entry, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "addr": self.addr,
            "started": self.started,
            "seq": self.seq,
            "status": self.status,
            "entries": [e.to_json() for e in self.entries],
        }

    @classmethod
    def from_json(cls, obj: Any) -> NodeRecord:
        _object(obj, "a node record", cls.__dataclass_fields__)
        status = obj.get("status", "alive")
        if status not in ("alive", "left"):
            raise ValueError(f"unknown node status {loggable(status)}")
        addr = _str(obj, "addr")
        host, sep, port = addr.rpartition(":")
        if status == "alive" and (not sep or not host or not port.isdigit()):
            raise ValueError(f"node address {loggable(addr)} is not host:port")
        return cls(
            id=_str(obj, "id"),
            addr=addr,
            started=_float(obj, "started"),
            seq=_int(obj, "seq"),
            status=status,
            entries=tuple(Entry.from_json(e) for e in _list(obj, "entries")),
        )


def parse_gossip(obj: Any) -> tuple[list[NodeRecord], list[DurableSpec], bool]:
    """(records, durable specs, whether an answer is asked) from a gossip body; anything
    else than what :func:`view_body` writes is a ValueError saying what is wrong."""
    _object(obj, "gossip", ("records", "durables", "reply", "self"))
    reply = obj.get("reply", False)
    if not isinstance(reply, bool):
        raise ValueError("gossip: reply must be true or false")
    records = [NodeRecord.from_json(r) for r in _list(obj, "records")]
    specs = [DurableSpec.from_json(d) for d in _list(obj, "durables")]
    return records, specs, reply


# Reading gossip strictly: a peer (or anyone with the token) sends JSON; a value of the wrong
# type or out of range is refused with the reason, never taken in to fail later.


def _object(obj: Any, what: str, keys: Any) -> None:
    if not isinstance(obj, dict):
        raise ValueError(f"{what} must be a JSON object")
    unknown = [k for k in obj if k not in keys]
    if unknown:
        raise ValueError(f"{what} has unknown field(s) {loggable(', '.join(unknown))}")


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string")
    return value


def _opt(obj: dict[str, Any], key: str) -> str | None:
    return None if obj.get(key) is None else _str(obj, key)


def _int(obj: dict[str, Any], key: str, default: int | None = None, low: int = 0) -> int:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 2**63:
        raise ValueError(f"{key} must be an integer from {low} to 2**63-1")
    return value


def _float(obj: dict[str, Any], key: str) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number")
    return float(value)


def _steps(obj: dict[str, Any]) -> tuple[float, ...]:
    steps = _list(obj, "backoff_steps")
    if not 0 < len(steps) <= 100:
        raise ValueError("backoff_steps must list 1 to 100 delays")
    return tuple(max(0.0, _float({"step": step}, "step")) for step in steps)


def _list(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{key} must be a JSON array")
    return value


@dataclass(slots=True)
class Route:
    """Who gets a topic. ``plain``: node id -> entry ids that all get it. ``groups``: per
    queue group, the (node id, entry id) members to choose one from. ``sinks``: outside URLs.
    ``durables``: durable names whose pattern matches (delivered through the outbox)."""

    plain: dict[str, list[int]] = field(default_factory=dict)
    groups: dict[tuple[str, str], list[tuple[str, int]]] = field(default_factory=dict)
    sinks: list[str] = field(default_factory=list)
    durables: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Known:
    record: NodeRecord
    heard: float  # local monotonic time the record's seq last rose
    unreachable: bool = False


class Membership:
    """One node's view of the mesh: a fold of gossiped records into a table, plus routing."""

    def __init__(self, own: NodeRecord) -> None:
        self.own = own
        self.nodes: dict[str, _Known] = {}
        self.tombstones: dict[str, tuple[int, float]] = {}
        self.durables: dict[str, DurableSpec] = {}
        self.version = 0  # rises on every change that can alter routing
        self._routes: dict[str, Route] = {}

    # --- own record -------------------------------------------------------------------
    def set_entries(self, entries: tuple[Entry, ...]) -> None:
        self.own = replace(self.own, entries=entries, seq=self.own.seq + 1)
        self._changed()

    def heartbeat(self) -> None:
        self.own = replace(self.own, seq=self.own.seq + 1)

    def leave(self) -> NodeRecord:
        self.own = replace(self.own, status="left", entries=(), seq=self.own.seq + 1)
        self._changed()
        return self.own

    # --- merging ----------------------------------------------------------------------
    def merge(
        self, records: list[NodeRecord], durables: list[DurableSpec], now: float | None = None
    ) -> bool:
        """Fold records and durable specs in; True when routing may have changed."""
        now = time.monotonic() if now is None else now
        changed = False
        for spec in durables:
            known = self.durables.get(spec.name)
            if known is None or spec.stamp > known.stamp:
                self.durables[spec.name] = spec
                changed = True
        for record in records:
            if record.id == self.own.id:
                continue
            changed |= self._merge_one(record, now)
        if changed:
            self._changed()
        return changed

    def _merge_one(self, record: NodeRecord, now: float) -> bool:
        stone = self.tombstones.get(record.id)
        if stone is not None and record.seq <= stone[0]:
            return False
        known = self.nodes.get(record.id)
        if known is not None and record.seq <= known.record.seq:
            return False
        if record.status == "left":
            self.nodes.pop(record.id, None)
            self.tombstones[record.id] = (record.seq, now)
            return True
        if record.addr == self.own.addr:
            return False  # an older incarnation of this very node
        if known is not None and not known.unreachable and known.record.entries == record.entries:
            known.record = record  # a heartbeat: liveness only, routing unchanged
            known.heard = now
            return False
        for other_id, other in list(self.nodes.items()):  # one incarnation per address
            if other_id != record.id and other.record.addr == record.addr:
                if other.record.started > record.started:
                    return False
                del self.nodes[other_id]
                self.tombstones[other_id] = (other.record.seq, now)
        self.nodes[record.id] = _Known(record, now)
        self.tombstones.pop(record.id, None)
        return True

    def expire(self, dead_after: float, now: float | None = None) -> list[NodeRecord]:
        """Drop nodes not heard from within ``dead_after`` seconds; returns them."""
        now = time.monotonic() if now is None else now
        dropped = [k.record for k in self.nodes.values() if now - k.heard > dead_after]
        for record in dropped:
            del self.nodes[record.id]
            self.tombstones[record.id] = (record.seq, now)
        for node_id, (_, when) in list(self.tombstones.items()):
            if now - when > 20 * dead_after:
                del self.tombstones[node_id]
        if dropped:
            self._changed()
        return dropped

    def mark_unreachable(self, node_id: str) -> None:
        """Stop routing to a node that did not answer, until a newer record of it arrives."""
        known = self.nodes.get(node_id)
        if known is not None and not known.unreachable:
            known.unreachable = True
            self._changed()

    # --- reading ----------------------------------------------------------------------
    def records(self) -> list[NodeRecord]:
        return [self.own, *(k.record for k in self.nodes.values())]

    def peers(self, *, reachable_only: bool = True) -> list[NodeRecord]:
        return [k.record for k in self.nodes.values() if not (reachable_only and k.unreachable)]

    def addr_of(self, node_id: str) -> str | None:
        if node_id == self.own.id:
            return self.own.addr
        known = self.nodes.get(node_id)
        return None if known is None else known.record.addr

    def durable_members(self, name: str) -> list[tuple[str, Entry]]:
        """(node id, entry) of every reachable subscriber of a durable name."""
        return [
            (record.id, entry)
            for record in self._live()
            for entry in record.entries
            if entry.durable == name
        ]

    def route(self, topic: str) -> Route:
        found = self._routes.get(topic)
        if found is not None:
            return found
        route = Route()
        sinks: set[str] = set()
        for record in self._live():
            for entry in record.entries:
                if entry.durable is not None or not matches(entry.pattern, topic):
                    continue
                if entry.sink is not None:
                    if entry.sink not in sinks:
                        sinks.add(entry.sink)
                        route.sinks.append(entry.sink)
                elif entry.queue is not None:
                    key = (entry.pattern, entry.queue)
                    route.groups.setdefault(key, []).append((record.id, entry.id))
                else:
                    route.plain.setdefault(record.id, []).append(entry.id)
        route.durables = [
            name for name, spec in self.durables.items() if matches(spec.pattern, topic)
        ]
        if len(self._routes) > 4096:
            self._routes.clear()
        self._routes[topic] = route
        return route

    def _live(self) -> list[NodeRecord]:
        live = [k.record for k in self.nodes.values() if not k.unreachable]
        if self.own.status == "alive":
            live.append(self.own)
        return live

    def _changed(self) -> None:
        self.version += 1
        self._routes.clear()
