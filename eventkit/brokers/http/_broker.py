"""``http://``: peer-to-peer pub/sub over the CloudEvents HTTP binding; no broker server.

Each node serves HTTP on its address and learns the others from seeds; membership and every
node's subscription entries spread by gossip (``http_gossip``). Publishing POSTs the message
in CloudEvents binary mode to ``/topics/{topic}`` on each node with a matching entry: every
plain subscriber, and one member per queue group, chosen by the publisher round robin,
skipping members that do not answer. Durable messages go through the publisher's outbox
(``http_outbox``, ``http_durable``). Any CloudEvents HTTP producer can POST into the mesh
(``http_server``), and static sinks receive matching events. See docs/http.md.

Order: ``publish`` returns once every chosen node has accepted the message into its queue,
so one publisher's messages reach a subscriber in publish order (``ordered=True``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import ssl
import time
from typing import Any
from urllib.parse import quote, unquote

import aiohttp
import anyio
from aiohttp import web
from yarl import URL

from ..._tasks import TaskHost
from ...wire import BrokerClosed, ConfigError, ConnectionLost, Headers, InvalidEvent, Message
from ..base import (
    REPLY_TO,
    BaseBroker,
    Capabilities,
    DeliveryPolicy,
    MessageHandler,
    guarded,
    no_responders_reply,
)
from ._answers import AnswerResponse, Answers, linger_of, read_answer, wants_answer
from ._config import HttpSettings, parse_settings
from ._durable import DurableSender
from ._gossip import DurableSpec, Entry, Membership, NodeRecord
from ._local import DEAD, FAILED, GONE, OK, HttpSubscription, LocalTable, Outcome
from ._outbox import Outbox, Pending
from ._server import build_app
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
    foreign_messages,
)

__all__ = ["HttpBroker", "HttpSubscription"]

log = logging.getLogger("eventkit.broker.http")

_DEFAULT_POLICY = DeliveryPolicy()
_FANOUT = 3  # peers gossiped with per round, besides seeds not yet in the view
_NET_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


class HttpBroker(BaseBroker):
    """A node of an HTTP mesh. ``url`` is where it serves; options: see HttpSettings."""

    def __init__(self, url: str = "http://127.0.0.1:0", **options: Any) -> None:
        self.settings: HttpSettings = parse_settings(url, options)
        self.url = url
        self.capabilities = Capabilities(
            queue_groups=True,
            durable=True,
            ordered=True,
            max_payload=self.settings.max_payload,
            no_responders=True,
        )
        self.node_id = os.urandom(8).hex()
        self.drain_timeout = self.settings.drain_timeout
        self._table = LocalTable()
        self._tasks = TaskHost("eventkit-http-broker")
        self._outbox = Outbox(self.settings.outbox)
        self._membership = Membership(NodeRecord(self.node_id, "", time.time()))
        self._durable: DurableSender | None = None
        self._subs: list[HttpSubscription] = []
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._auth: dict[str, str] = {}
        self._turn: dict[tuple[str, str], int] = {}
        self._urls: dict[tuple[str, str], URL] = {}
        self._state = "new"
        s = self.settings
        self._request_timeout = aiohttp.ClientTimeout(total=s.request_timeout)
        self._delivery_timeout = aiohttp.ClientTimeout(total=s.delivery_timeout)
        self._push_timeout = min(s.request_timeout, 2.0)
        self._answers = Answers()  # requests waiting here for their reply, to answer in place
        # How long this node reads a reply in a request's response: within its request bound.
        self._reads_answers = f"{s.request_timeout * 0.8:g}"

    @property
    def address(self) -> str:
        """``host:port`` this node advertises (the real port once connected)."""
        return self._membership.own.addr

    @property
    def membership(self) -> Membership:
        return self._membership

    # --- lifecycle --------------------------------------------------------------------
    async def connect(self) -> None:
        if self._state == "connected":
            return
        if self._state != "new":
            raise BrokerClosed("this HttpBroker was closed; make a new one")
        s = self.settings
        if s.token:
            self._auth = {"Authorization": f"Bearer {s.token}"}
        await self._outbox.open()
        try:
            port = await self._serve()
        except OSError as exc:
            await self._outbox.close()
            raise ConnectionLost(f"cannot listen on {s.host}:{s.port}: {exc}") from exc
        own = NodeRecord(self.node_id, s.advertised(port), time.time())
        self._membership = Membership(own)
        self._membership.merge([], await self._outbox.load_durables())
        client_ssl: ssl.SSLContext | None = None
        if s.scheme == "https":
            client_ssl = ssl.create_default_context(cafile=s.tls_ca)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ssl=client_ssl if client_ssl else True),
            timeout=self._request_timeout,
            skip_auto_headers=("User-Agent",),
        )
        await self._tasks.start()
        self._durable = DurableSender(
            self._outbox, self._membership, self._tasks, self._send_durable, self.publish
        )
        self._durable.restore(await self._outbox.load())
        self._state = "connected"
        self._membership.set_entries(self._advertised())
        with anyio.move_on_after(s.request_timeout):
            await self._join()
        self._tasks.start_soon(self._gossip_loop)
        self._tasks.start_soon(self._durable.run)
        log.info("http node %s serving on %s", self.node_id, own.addr)

    async def _serve(self) -> int:
        s = self.settings
        self._runner = web.AppRunner(
            build_app(self), handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        server_ssl: ssl.SSLContext | None = None
        if s.scheme == "https" and s.tls_cert and s.tls_key:
            server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_ssl.load_cert_chain(s.tls_cert, s.tls_key)
        site = web.TCPSite(self._runner, s.host, s.port, ssl_context=server_ssl)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            raise
        return int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._state in ("closing", "closed"):
            return
        connected = self._state == "connected"
        self._state = "closing"
        if not connected:
            self._state = "closed"
            return
        with anyio.CancelScope(shield=True):
            record = self._membership.leave()
            await self._push([p.addr for p in self._membership.peers()], [record])
            async with anyio.create_task_group() as tg:
                for sub in list(self._subs):
                    tg.start_soon(sub.stop)
            await self._tasks.aclose()
            if self._runner is not None:
                await self._runner.cleanup()
            if self._session is not None:
                await self._session.close()
            await self._outbox.close()
            self._state = "closed"
            log.info("http node %s left", self.node_id)

    # --- subscribe --------------------------------------------------------------------
    async def subscribe(
        self,
        topic: str,
        handler: MessageHandler,
        *,
        queue: str | None = None,
        durable: str | None = None,
        policy: DeliveryPolicy | None = None,
    ) -> HttpSubscription:
        self._check_open("subscribe")
        self.check_subscribe(topic, queue, durable)
        policy = policy or _DEFAULT_POLICY
        if durable is not None:
            known = self._membership.durables.get(durable)
            if known is not None and known.pattern != topic:
                raise ConfigError(
                    f"durable {durable!r} already subscribes to {known.pattern!r}; a durable "
                    f"name keeps one topic, so pick another name for {topic!r}"
                )
            spec = DurableSpec(
                durable,
                topic,
                policy.max_attempts,
                policy.backoff_initial,
                policy.backoff_max,
                stamp=time.time(),
            )
            self._membership.merge([], [spec])
            await self._outbox.save_durable(spec)
        entry = self._table.join(topic, queue, durable)
        sub = HttpSubscription(
            self._table,
            entry,
            guarded(handler),
            topic,
            queue,
            durable,
            policy,
            self.drain_timeout,
            lambda: self._stopped(sub),
        )
        self._subs.append(sub)
        sub.start(self._tasks)
        await self._announce()
        return sub

    async def _stopped(self, sub: HttpSubscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
        for item in list(sub.entry.items) if not sub.entry.open else ():
            if item[1] is not None:
                item[1].set(GONE, "the subscription stopped")
        if self._state == "connected":
            await self._announce()

    async def _announce(self) -> None:
        """Tell every peer about this node's entries now, rather than at the next round."""
        self._membership.set_entries(self._advertised())
        if self._durable is not None:
            self._durable.wake()
        await self._push([p.addr for p in self._membership.peers()], [self._membership.own])

    def _advertised(self) -> tuple[Entry, ...]:
        sinks = tuple(
            Entry(id=-(i + 1), pattern=pattern, sink=url)
            for i, (pattern, url) in enumerate(self.settings.sinks)
        )
        return self._table.advertised() + sinks

    def _check_open(self, what: str) -> None:
        if self._state != "connected":
            raise BrokerClosed(f"{what} on a broker that is not connected: call connect() first")

    # --- publish ----------------------------------------------------------------------
    async def publish(self, message: Message) -> None:
        self._check_open("publish")
        self.check_publish(message)
        route = self._membership.route(message.topic)
        if self._answers and self._answers.take(message, route):
            return  # a reply, carried back in the response to its request
        if route.durables and self._durable is not None:
            await self._durable.add(route.durables, message)
        if not route.plain and not route.groups and not route.sinks:
            if not route.durables:
                await self._no_responders(message)
            return
        targets: dict[str, list[int]] = {node: list(ids) for node, ids in route.plain.items()}
        picks: dict[str, list[tuple[tuple[str, str], int]]] = {}
        for key, members in route.groups.items():
            chosen = self._pick(key, members, ())
            if chosen is not None:
                targets.setdefault(chosen[0], []).append(chosen[1])
                picks.setdefault(chosen[0], []).append((key, chosen[1]))
        wire = encode_headers(message)
        sends = [
            self._send_node(node, ids, message, wire, picks.get(node, []), {node})
            for node, ids in targets.items()
        ]
        sends.extend(self._send_sink(url, message, wire) for url in route.sinks)
        if len(sends) == 1:
            delivered = [await sends[0]]
        else:
            delivered = await asyncio.gather(*sends)
        if not any(delivered) and not route.durables:
            await self._no_responders(message)

    async def _no_responders(self, message: Message) -> None:
        """A request that reached nobody: tell its reply topic (Capabilities.no_responders)."""
        notice = no_responders_reply(message)
        if notice is not None:
            await self.publish(notice)

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
        picks: list[tuple[tuple[str, str], int]],
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
            return self._accept(ids, message)
        addr = self._membership.addr_of(node_id)
        if addr is None or self._session is None:
            return set(ids)
        headers = {**wire, **self._auth, FROM: self.node_id, TO: ",".join(map(str, ids))}
        if wants_answer(message.headers):
            headers[REPLIES] = self._reads_answers
        try:
            async with self._session.post(
                self._url(addr, message.topic), data=message.body, headers=headers
            ) as resp:
                if resp.status == 202:
                    rejected = _ids(resp.headers.get(REJECTED))
                    if ANSWER in resp.headers:
                        await self._take_answer(resp, message.topic)
                    return rejected
                if resp.status != 503:
                    log.error(
                        "node %s refused a message on %r: %d %s",
                        addr,
                        message.topic,
                        resp.status,
                        (await resp.text())[:200],
                    )
                self._membership.mark_unreachable(node_id)
        except _NET_ERRORS as exc:
            log.warning("node %s did not take a message on %r: %r", addr, message.topic, exc)
            self._membership.mark_unreachable(node_id)
        return set(ids)

    async def _take_answer(self, resp: aiohttp.ClientResponse, topic: str) -> None:
        """The reply in a request's response, delivered here as if it had been POSTed.
        The request was taken either way: a body cut short only means no reply came in it."""
        try:
            answer = read_answer(await resp.read())
        except (*_NET_ERRORS, ValueError, KeyError, TypeError) as exc:
            log.debug("no reply in the response to a request on %r: %r", topic, exc)
            return
        if answer is not None:
            self._accept(*answer)

    async def _send_sink(self, url: str, message: Message, wire: dict[str, str]) -> bool:
        if self._session is None:
            return False
        headers = {**wire, TOPIC: message.topic}
        try:
            async with self._session.post(url, data=message.body, headers=headers) as resp:
                if resp.status >= 300:
                    log.warning("sink %s answered %d for %r", url, resp.status, message.topic)
                    return False
                return True
        except _NET_ERRORS as exc:
            log.warning("sink %s did not take a message on %r: %r", url, message.topic, exc)
            return False

    async def _send_durable(self, node_id: str, entry: Entry, row: Pending) -> tuple[int, str]:
        """One durable delivery; never raises (but for cancellation)."""
        message = row.message
        if node_id == self.node_id:
            return await self._handle_durable(row.durable, message)
        addr = self._membership.addr_of(node_id)
        if addr is None or self._session is None:
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
                log.error("node %s refused a durable delivery: %d", addr, resp.status)
                return GONE, f"refused: {resp.status}"
        except _NET_ERRORS as exc:
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

    # --- receive ----------------------------------------------------------------------
    def _accept(self, ids: list[int], message: Message) -> set[int]:
        rejected = set()
        for entry_id in ids:
            entry = self._table.entries.get(entry_id)
            if entry is None or not entry.open or entry.durable is not None:
                rejected.add(entry_id)
            else:
                entry.put(message)
        return rejected

    async def _handle_durable(self, name: str, message: Message) -> tuple[int, str]:
        entry = self._table.durable_entry(name)
        if entry is None or not entry.open:
            return GONE, f"no subscriber of durable {name!r} here"
        outcome = Outcome()
        entry.put(message, outcome)
        await outcome.done.wait()
        return outcome.status, outcome.reason

    async def receive(
        self, topic: str, body: bytes, headers: Headers, transport: dict[str, str]
    ) -> web.StreamResponse:
        """An event POSTed to this node (called by the HTTP server)."""
        if self._state != "connected":
            return web.Response(status=503, text="this node is leaving\n")
        if FROM not in transport:
            return await self._receive_foreign(topic, body, headers)
        if DURABLE in transport:
            attempt = _int(transport.get(ATTEMPT), 1)
            message = Message(topic, body, headers, attempt)
            status, reason = await self._handle_durable(transport[DURABLE], message)
            return web.Response(status=status, headers={REASON: quote(reason)})
        offered = transport.get(REPLIES)
        linger = linger_of(headers, offered, time.time()) if offered else None
        reply_to = headers.get(REPLY_TO, "")
        waiter = None if linger is None else self._answers.expect(reply_to, transport[FROM])
        try:
            ids = _ids(transport.get(TO))
            rejected = set()
            message = Message(topic, body, headers)
            for entry_id in ids:
                entry = self._table.entries.get(entry_id)
                if entry is not None and entry.open:
                    await entry.wait_room()
                if entry is None or not entry.open or entry.durable is not None:
                    rejected.add(entry_id)
                else:
                    entry.put(message)
        except BaseException:
            if waiter is not None:
                self._answers.forget(reply_to, waiter)
            raise
        answer = {REJECTED: ",".join(map(str, rejected))} if rejected else {}
        if waiter is not None:
            if linger and len(rejected) < len(ids):
                answer[ANSWER] = "1"
                return AnswerResponse(self._answers, reply_to, waiter, linger, answer)
            self._answers.forget(reply_to, waiter)
        return web.Response(status=202, headers=answer)

    async def _receive_foreign(self, topic: str, body: bytes, headers: Headers) -> web.Response:
        try:
            messages = foreign_messages(topic, body, headers)
        except InvalidEvent as exc:
            return web.Response(status=400, text=f"{exc}\n")
        for message in messages:
            try:
                await self.publish(message)
            except BrokerClosed:
                return web.Response(status=503, text="this node is leaving\n")
        return web.Response(status=202)

    # --- gossip -----------------------------------------------------------------------
    def receive_gossip(self, obj: Any) -> dict[str, Any] | None:
        if not isinstance(obj, dict):
            raise TypeError("gossip must be a JSON object")
        records = [NodeRecord.from_json(r) for r in obj.get("records", ())]
        specs = [DurableSpec.from_json(d) for d in obj.get("durables", ())]
        self._merge(records, specs)
        return self._gossip_body() if obj.get("reply") else None

    def view(self) -> dict[str, Any]:
        return self._gossip_body() | {"self": self.node_id}

    def _gossip_body(self, *, reply: bool = False) -> dict[str, Any]:
        return {
            "records": [r.to_json() for r in self._membership.records()],
            "durables": [d.to_json() for d in self._membership.durables.values()],
            "reply": reply,
        }

    def _merge(self, records: list[NodeRecord], specs: list[DurableSpec]) -> None:
        before = dict(self._membership.durables)
        if self._membership.merge(records, specs) and self._durable is not None:
            self._durable.wake()
        if self._state == "connected":
            for spec in self._membership.durables.values():
                if before.get(spec.name) != spec:
                    self._tasks.start_soon(self._outbox.save_durable, spec)

    async def _join(self) -> None:
        """Learn the mesh from the seeds, then tell everyone learned about this node."""
        own = self._membership.own.addr
        seeds = [addr for addr in self.settings.seeds if addr != own]
        async with anyio.create_task_group() as tg:
            for addr in seeds:
                tg.start_soon(self._exchange, addr)
        peers = [p.addr for p in self._membership.peers() if p.addr not in seeds]
        await self._push(peers, [self._membership.own])

    async def _exchange(self, addr: str) -> None:
        """Push-pull gossip with one node: send the whole view, merge the answer."""
        if self._session is None:
            return
        body = self._gossip_body(reply=True)
        try:
            async with self._session.post(
                f"{self.settings.scheme}://{addr}/_eventkit/gossip", json=body, headers=self._auth
            ) as resp:
                if resp.status != 200:
                    log.warning("gossip with %s refused: %d", addr, resp.status)
                    return
                answer = await resp.json()
            records = [NodeRecord.from_json(r) for r in answer.get("records", ())]
            specs = [DurableSpec.from_json(d) for d in answer.get("durables", ())]
        except (*_NET_ERRORS, ValueError, KeyError, TypeError) as exc:
            log.debug("gossip with %s failed: %r", addr, exc)
            return
        self._merge(records, specs)

    async def _push(self, addrs: list[str], records: list[NodeRecord]) -> None:
        """Send records to nodes without waiting for their views; bounded in time."""
        if not addrs or self._session is None:
            return
        body = {
            "records": [r.to_json() for r in records],
            "durables": [d.to_json() for d in self._membership.durables.values()],
        }
        session = self._session

        async def push(addr: str) -> None:
            try:
                async with session.post(
                    f"{self.settings.scheme}://{addr}/_eventkit/gossip",
                    json=body,
                    headers=self._auth,
                ):
                    pass
            except _NET_ERRORS as exc:
                log.debug("push to %s failed: %r", addr, exc)

        with anyio.move_on_after(self._push_timeout):
            async with anyio.create_task_group() as tg:
                for addr in addrs:
                    tg.start_soon(push, addr)

    async def _gossip_loop(self) -> None:
        s = self.settings
        while True:
            await anyio.sleep(s.gossip_interval * random.uniform(0.8, 1.2))
            self._membership.heartbeat()
            peers = self._membership.peers(reachable_only=False)
            known = {p.addr for p in peers} | {self._membership.own.addr}
            chosen = [p.addr for p in random.sample(peers, min(_FANOUT, len(peers)))]
            chosen += [addr for addr in s.seeds if addr not in known]
            with anyio.move_on_after(s.request_timeout):
                async with anyio.create_task_group() as tg:
                    for addr in chosen:
                        tg.start_soon(self._exchange, addr)
            for record in self._membership.expire(s.dead_after):
                log.warning("node %s at %s stopped answering; dropped", record.id, record.addr)


def _ids(header: str | None) -> set[int]:
    if not header:
        return set()
    out = set()
    for part in header.split(","):
        try:
            out.add(int(part))
        except ValueError:
            continue
    return out


def _int(value: str | None, default: int) -> int:
    try:
        return max(1, int(value)) if value is not None else default
    except ValueError:
        return default
