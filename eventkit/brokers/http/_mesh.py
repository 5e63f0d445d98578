"""Gossip with the other nodes: join through the seeds, push-pull rounds, pushes of news.

The membership itself (records, entries, durable specs, what is reachable) is the pure part in
:mod:`._gossip`; this is its I/O. A join exchanges views with every seed and then tells
everyone learned about this node; every ``gossip_interval`` (with jitter) the node exchanges
views with a few peers and any seed not yet known; a change of this node's entries, or its
leave, is pushed to every peer at once, bounded in time.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

import aiohttp
import anyio

from ...wire import loggable
from ._config import HttpSettings
from ._errors import NET_ERRORS
from ._gossip import DurableSpec, Membership, NodeRecord, parse_gossip

__all__ = ["Mesh", "view_body"]

# Its own generator: the process-wide one is the application's (seeded in its tests, say).
_rng = random.Random()

log = logging.getLogger("eventkit.broker.http")

_FANOUT = 3  # peers gossiped with per round, besides seeds not yet in the view

Merge = Callable[[list[NodeRecord], list[DurableSpec]], None]


def view_body(membership: Membership, *, reply: bool = False) -> dict[str, Any]:
    """A node's whole view, as gossip carries it (``reply``: the receiver answers with its own)."""
    return {
        "records": [r.to_json() for r in membership.records()],
        "durables": [d.to_json() for d in membership.durables.values()],
        "reply": reply,
    }


class Mesh:
    """The gossip exchanges of one node. ``merge`` folds what peers say into the membership
    (and saves new durable specs); the node owns the loop's task."""

    def __init__(
        self,
        *,
        settings: HttpSettings,
        membership: Membership,
        session: aiohttp.ClientSession,
        auth: dict[str, str],
        merge: Merge,
    ) -> None:
        self.settings = settings
        self._membership = membership
        self._session = session
        self._auth = auth
        self._merge = merge
        self._push_timeout = min(settings.publish_timeout, 2.0)

    def body(self, *, reply: bool = False) -> dict[str, Any]:
        return view_body(self._membership, reply=reply)

    async def join(self) -> None:
        """Learn the mesh from the seeds, then tell everyone learned about this node."""
        own = self._membership.own.addr
        seeds = [addr for addr in self.settings.seeds if addr != own]
        async with anyio.create_task_group() as tg:
            for addr in seeds:
                tg.start_soon(self.exchange, addr)
        peers = [p.addr for p in self._membership.peers() if p.addr not in seeds]
        await self.push(peers, [self._membership.own])

    async def exchange(self, addr: str) -> None:
        """Push-pull gossip with one node: send the whole view, merge the answer."""
        try:
            async with self._session.post(
                self._gossip_url(addr), json=self.body(reply=True), headers=self._auth
            ) as resp:
                if resp.status != 200:
                    log.warning("gossip with %s refused: %d", loggable(addr), resp.status)
                    return
                answer = await resp.json()
            records, specs, _ = parse_gossip(answer)
        except (*NET_ERRORS, ValueError) as exc:
            log.debug("gossip with %s failed: %s", loggable(addr), loggable(repr(exc)))
            return
        self._merge(records, specs)

    async def push(self, addrs: list[str], records: list[NodeRecord]) -> None:
        """Send records to nodes without waiting for their views; bounded in time."""
        if not addrs:
            return
        body = {
            "records": [r.to_json() for r in records],
            "durables": [d.to_json() for d in self._membership.durables.values()],
        }

        async def push(addr: str) -> None:
            try:
                async with self._session.post(
                    self._gossip_url(addr), json=body, headers=self._auth
                ):
                    pass
            except NET_ERRORS as exc:
                log.debug("push to %s failed: %s", loggable(addr), loggable(repr(exc)))

        with anyio.move_on_after(self._push_timeout):
            async with anyio.create_task_group() as tg:
                for addr in addrs:
                    tg.start_soon(push, addr)

    async def push_own(self) -> None:
        """Tell every peer this node's record now, rather than at the next round."""
        await self.push([p.addr for p in self._membership.peers()], [self._membership.own])

    async def run(self) -> None:
        """Gossip rounds until cancelled; peers not heard from for ``dead_after`` are dropped."""
        s = self.settings
        while True:
            await anyio.sleep(s.gossip_interval * _rng.uniform(0.8, 1.2))
            self._membership.heartbeat()
            peers = self._membership.peers(reachable_only=False)
            known = {p.addr for p in peers} | {self._membership.own.addr}
            chosen = [p.addr for p in _rng.sample(peers, min(_FANOUT, len(peers)))]
            chosen += [addr for addr in s.seeds if addr not in known]
            with anyio.move_on_after(s.publish_timeout):
                async with anyio.create_task_group() as tg:
                    for addr in chosen:
                        tg.start_soon(self.exchange, addr)
            for record in self._membership.expire(s.dead_after):
                log.warning(
                    "node %s at %s stopped answering; dropped",
                    loggable(record.id),
                    loggable(record.addr),
                )

    def _gossip_url(self, addr: str) -> str:
        return f"{self.settings.scheme}://{addr}/_eventkit/gossip"
