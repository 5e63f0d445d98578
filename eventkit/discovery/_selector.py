"""Node choice for RPC: a pure function of the live nodes, the strategy and recent failures.

The caller passes the nodes (from the registry view) and the time; the selector keeps only
small counters: a round-robin position per service, the calls in flight per node, and the
nodes blacklisted after a failure. No I/O, no clock of its own, so it is tested without a loop.

Strategies:

- ``round_robin`` (default): nodes in id order, one after the other, per service. Ordering by
  id makes the rotation independent of the order the registry lists nodes in.
- ``random``: uniform over the candidates.
- ``least_inflight``: the *power of two choices*: two random candidates, the one with fewer
  calls in flight wins. Nearly as good as scanning every node for the least loaded, without
  the herd that a strict minimum sends to one node that just became free.

A node that failed (timeout, gone) is skipped for ``blacklist_for`` seconds. When every
candidate is blacklisted the selector still picks one of them (by the strategy): trying a node
that failed recently is better than failing the call with nobody tried.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from typing import Literal, get_args

from ..wire import ConfigError
from ._records import NodeInfo

__all__ = ["STRATEGIES", "Selector", "Strategy"]

Strategy = Literal["random", "round_robin", "least_inflight"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)

_PURGE_ABOVE = 64  # blacklist entries kept before expired ones are swept


class Selector:
    """Chooses a node of a service for each call.

    ``acquire``/``release`` bracket a call on a node (they feed ``least_inflight``);
    ``mark_failed`` blacklists a node until ``now + blacklist_for``. ``rng`` makes the random
    strategies reproducible in tests.
    """

    def __init__(
        self,
        strategy: Strategy = "round_robin",
        *,
        blacklist_for: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ConfigError(
                f"selector strategy {strategy!r} is not one of {', '.join(STRATEGIES)}"
            )
        if blacklist_for < 0:
            raise ConfigError(f"blacklist_for must be >= 0 seconds, got {blacklist_for}")
        self.strategy: Strategy = strategy
        self.blacklist_for = blacklist_for
        self._rng = rng or random.Random()
        self._position: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}
        self._blacklist: dict[str, float] = {}  # node id -> until

    def select(
        self,
        service: str,
        nodes: Sequence[NodeInfo],
        *,
        exclude: Collection[str] = (),
        now: float,
    ) -> NodeInfo | None:
        """A node of ``nodes`` not in ``exclude`` (node ids), preferring ones not blacklisted;
        None when every node is excluded."""
        candidates = [node for node in nodes if node.id not in exclude]
        if not candidates:
            return None
        healthy = [node for node in candidates if not self.blacklisted(node.id, now)]
        pool = healthy or candidates
        if len(pool) == 1:
            return pool[0]
        if self.strategy == "round_robin":
            pool.sort(key=lambda node: node.id)
            position = self._position.get(service, 0)
            self._position[service] = position + 1
            return pool[position % len(pool)]
        if self.strategy == "random":
            return self._rng.choice(pool)
        first, second = self._rng.sample(pool, 2)
        if self.in_flight(second.id) < self.in_flight(first.id):
            return second
        return first

    def acquire(self, node_id: str) -> None:
        """A call to ``node_id`` starts."""
        self._in_flight[node_id] = self._in_flight.get(node_id, 0) + 1

    def release(self, node_id: str) -> None:
        """A call to ``node_id`` ended (however it ended)."""
        count = self._in_flight.get(node_id, 0) - 1
        if count > 0:
            self._in_flight[node_id] = count
        else:
            self._in_flight.pop(node_id, None)

    def in_flight(self, node_id: str) -> int:
        return self._in_flight.get(node_id, 0)

    def mark_failed(self, node_id: str, now: float) -> None:
        """Skip ``node_id`` until ``now + blacklist_for`` (while other nodes are available)."""
        if len(self._blacklist) >= _PURGE_ABOVE:
            for expired in [nid for nid, until in self._blacklist.items() if until <= now]:
                del self._blacklist[expired]
        self._blacklist[node_id] = now + self.blacklist_for

    def blacklisted(self, node_id: str, now: float) -> bool:
        until = self._blacklist.get(node_id)
        if until is None:
            return False
        if until <= now:
            del self._blacklist[node_id]
            return False
        return True
