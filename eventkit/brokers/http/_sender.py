"""Delivery from this node to the others: one POST per node, sinks, durable deliveries.

A publish names, per node, the entries its message is for (every plain subscriber, one member
per queue group). A queue-group member that refuses (its subscription stopped, its node is
unreachable) is replaced by the next member, round robin, until one takes the message or the
group is exhausted. A request's reply may come back in the response to its POST
(:mod:`._answers`); it is then delivered here as if it had been POSTed.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import unquote

import aiohttp
from yarl import URL

from ...wire import Message, loggable, redact
from ._answers import read_answer, wants_answer
from ._config import HttpSettings
from ._errors import NET_ERRORS
from ._gossip import Entry, Membership, Route
from ._local import DEAD, FAILED, GONE, OK, LocalTable
from ._outbox import Pending
from ._wire import (
    ANSWER,
    ATTEMPT,
    DURABLE,
    FROM,
    REASON,
    REJECTED,
    REPLIES,
    TO,
    TOPIC,
    encode_headers,
)

__all__ = ["Sender", "parse_ids"]

log = logging.getLogger("eventkit.broker.http")


GroupPick = tuple[tuple[str, str], int]


class Sender:
    """Sends this node's messages to the nodes (and sinks) a route names."""

    def __init__(
        self,
        *,
        settings: HttpSettings,
        node_id: str,
        membership: Membership,
        session: aiohttp.ClientSession,
        auth: dict[str, str],
        table: LocalTable,
    ) -> None:
        self.settings = settings
        self.node_id = node_id
        self._membership = membership
        self._session = session
        self._auth = auth
        self._table = table
        self._turn: dict[tuple[str, str], int] = {}
        self._urls: dict[tuple[str, str], URL] = {}
        self._delivery_timeout = aiohttp.ClientTimeout(total=settings.delivery_timeout)
        # How long this node reads a reply in a request's response: within its request bound.
        self._reads_answers = f"{settings.publish_timeout * 0.8:g}"

    async def send(self, message: Message, route: Route, wire: dict[str, str]) -> bool:
        """Deliver ``message`` to the plain entries, queue groups and sinks of ``route``;
        True when anyone took it. ``wire``: its headers as the HTTP binding writes them."""
        targets: dict[str, list[int]] = {node: list(ids) for node, ids in route.plain.items()}
        picks: dict[str, list[GroupPick]] = {}
        for key, members in route.groups.items():
            chosen = self._pick(key, members, ())
            if chosen is not None:
                targets.setdefault(chosen[0], []).append(chosen[1])
                picks.setdefault(chosen[0], []).append((key, chosen[1]))
        sends = [
            self._send_node(node, ids, message, wire, picks.get(node, []), {node})
            for node, ids in targets.items()
        ]
        sends.extend(self._send_sink(url, message, wire) for url in route.sinks)
        if len(sends) == 1:
            return await sends[0]
        return any(await asyncio.gather(*sends))

    def _pick(
        self, key: tuple[str, str], members: list[tuple[str, int]], tried: set[str] | tuple[()]
    ) -> tuple[str, int] | None:
        turn = self._turn.get(key, 0)
        for i in range(len(members)):
            member = members[(turn + i) % len(members)]
            if member[0] not in tried:
                self._turn[key] = turn + i + 1
                return member
        return None

    async def _send_node(
        self,
        node_id: str,
        ids: list[int],
        message: Message,
        wire: dict[str, str],
        picks: list[GroupPick],
        tried: set[str],
    ) -> bool:
        """Deliver to entries of one node (moving queue-group picks on to another member
        when refused); True when at least one entry took the message."""
        rejected = await self._post(node_id, ids, message, wire)
        delivered = len(rejected) < len(ids)
        for key, entry_id in picks:
            if entry_id not in rejected:
                continue
            members = self._membership.route(message.topic).groups.get(key, [])
            chosen = self._pick(key, members, tried)
            if chosen is None:
                log.warning("no reachable member of queue group %r for %r", key[1], message.topic)
                continue
            tried.add(chosen[0])
            delivered |= await self._send_node(
                chosen[0], [chosen[1]], message, wire, [(key, chosen[1])], tried
            )
        return delivered

    async def _post(
        self, node_id: str, ids: list[int], message: Message, wire: dict[str, str]
    ) -> set[int]:
        """Deliver to entries of one node; returns the entry ids that did not take it."""
        if node_id == self.node_id:
            return self._table.accept(ids, message)
        addr = self._membership.addr_of(node_id)
        if addr is None:
            return set(ids)
        headers = {**wire, **self._auth, FROM: self.node_id, TO: ",".join(map(str, ids))}
        if wants_answer(message.headers):
            headers[REPLIES] = self._reads_answers
        try:
            async with self._session.post(
                self._url(addr, message.topic), data=message.body, headers=headers
            ) as resp:
                if resp.status == 202:
                    rejected = parse_ids(resp.headers.get(REJECTED))
                    if ANSWER in resp.headers:
                        await self._take_answer(resp, message.topic)
                    return rejected
                if resp.status != 503:
                    log.error(
                        "node %s refused a message on %s: %d %s",
                        loggable(addr),
                        loggable(message.topic),
                        resp.status,
                        loggable(await resp.text(), quote=False),
                    )
                self._membership.mark_unreachable(node_id)
        except NET_ERRORS as exc:
            log.warning(
                "node %s did not take a message on %s: %s",
                loggable(addr),
                loggable(message.topic),
                loggable(repr(exc), quote=False),
            )
            self._membership.mark_unreachable(node_id)
        return set(ids)

    async def _take_answer(self, resp: aiohttp.ClientResponse, topic: str) -> None:
        """The reply in a request's response, delivered here as if it had been POSTed.
        The request was taken either way: a body cut short only means no reply came in it."""
        try:
            answer = read_answer(await resp.read())
        except (*NET_ERRORS, ValueError, KeyError, TypeError) as exc:
            log.debug("no reply in the response to a request on %r: %r", topic, exc)
            return
        if answer is not None:
            self._table.accept(*answer)

    async def _send_sink(self, url: str, message: Message, wire: dict[str, str]) -> bool:
        headers = {**wire, TOPIC: message.topic}
        try:
            async with self._session.post(url, data=message.body, headers=headers) as resp:
                if resp.status >= 300:
                    log.warning(
                        "sink %s answered %d for %s",
                        redact(url),
                        resp.status,
                        loggable(message.topic),
                    )
                    return False
                return True
        except NET_ERRORS as exc:
            log.warning(
                "sink %s did not take a message on %s: %s",
                redact(url),
                loggable(message.topic),
                loggable(redact(repr(exc)), quote=False),
            )
            return False

    async def send_durable(self, node_id: str, entry: Entry, row: Pending) -> tuple[int, str]:
        """One durable delivery; never raises (but for cancellation)."""
        message = row.message
        if node_id == self.node_id:
            return await self._table.handle_durable(row.durable, message)
        addr = self._membership.addr_of(node_id)
        if addr is None:
            return GONE, "unknown node"
        headers = {
            **encode_headers(message),
            **self._auth,
            FROM: self.node_id,
            TO: str(entry.id),
            DURABLE: row.durable,
            ATTEMPT: str(message.attempt),
        }
        try:
            async with self._session.post(
                self._url(addr, message.topic),
                data=message.body,
                headers=headers,
                timeout=self._delivery_timeout,
            ) as resp:
                reason = unquote(resp.headers.get(REASON, ""))
                if resp.status in (200, 204):
                    return OK, ""
                if resp.status in (FAILED, DEAD, GONE):
                    return resp.status, reason
                log.error("node %s refused a durable delivery: %d", loggable(addr), resp.status)
                return GONE, f"refused: {resp.status}"
        except NET_ERRORS as exc:
            log.warning("node %s did not answer a durable delivery: %r", addr, exc)
            self._membership.mark_unreachable(node_id)
            return GONE, repr(exc)

    def _url(self, addr: str, topic: str) -> URL:
        key = (addr, topic)
        url = self._urls.get(key)
        if url is None:  # parsed once per destination, not per message
            if len(self._urls) > 4096:
                self._urls.clear()
            url = self._urls[key] = URL(f"{self.settings.scheme}://{addr}/topics/{topic}")
        return url


def parse_ids(header: str | None) -> set[int]:
    """Entry ids from a comma-separated header (what does not parse is skipped)."""
    if not header:
        return set()
    out = set()
    for part in header.split(","):
        try:
            out.add(int(part))
        except ValueError:
            continue
    return out
