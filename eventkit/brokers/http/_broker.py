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

import logging
import os
import ssl
import time
from typing import Any
from urllib.parse import quote

import aiohttp
import anyio
from aiohttp import web

from ..._tasks import TaskHost
from ...wire import BrokerClosed, ConfigError, Headers, InvalidEvent, Message
from ..base import (
    REPLY_TO,
    BaseBroker,
    Capabilities,
    DeliveryPolicy,
    MessageHandler,
    guarded,
    no_responders_reply,
)
from ._answers import AnswerResponse, Answers, linger_of
from ._config import HttpSettings, parse_settings
from ._delay import hold
from ._durable import DurableSender
from ._errors import listen_error
from ._gossip import DurableSpec, Entry, Membership, NodeRecord, parse_gossip
from ._local import GONE, HttpSubscription, LocalTable
from ._mesh import Mesh, view_body
from ._outbox import Outbox
from ._sender import Sender, parse_ids
from ._server import ServerLog, build_app
from ._wire import (
    ANSWER,
    ATTEMPT,
    DURABLE,
    FROM,
    REASON,
    REJECTED,
    REPLIES,
    TO,
    encode_headers,
    foreign_messages,
)

__all__ = ["HttpBroker", "HttpSubscription"]

log = logging.getLogger("eventkit.broker.http")

_DEFAULT_POLICY = DeliveryPolicy()


class HttpBroker(BaseBroker):
    """A node of an HTTP mesh. ``url`` is where it serves; options: see HttpSettings."""

    def __init__(self, url: str = "http://127.0.0.1:0", **options: Any) -> None:
        super().__init__()
        self.settings: HttpSettings = parse_settings(url, options)
        self.url = url
        self.capabilities = Capabilities(
            queue_groups=True,
            durable=True,
            ordered=True,
            max_payload=self.settings.max_payload,
            no_responders=True,
            delay=True,  # held by the publisher (._delay)
        )
        self.node_id = os.urandom(8).hex()
        self.drain_timeout = self.settings.drain_timeout
        self._table = LocalTable()
        self._tasks = TaskHost("eventkit-http-broker")
        self._outbox = Outbox(self.settings.outbox)
        self._membership = Membership(NodeRecord(self.node_id, "", time.time()))
        self._durable: DurableSender | None = None
        self._sender: Sender | None = None
        self._mesh: Mesh | None = None
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._answers = Answers()  # requests waiting here for their reply, to answer in place

    @property
    def address(self) -> str:
        """``host:port`` this node advertises (the real port once connected)."""
        return self._membership.own.addr

    @property
    def membership(self) -> Membership:
        return self._membership

    # --- lifecycle --------------------------------------------------------------------
    async def _open(self) -> None:
        s = self.settings
        auth = {"Authorization": f"Bearer {s.token}"} if s.token else {}
        await self._outbox.open()
        try:
            port = await self._serve()
        except (OSError, ssl.SSLError) as exc:
            await self._outbox.close()
            raise listen_error(exc, s.host, s.port) from exc
        own = NodeRecord(self.node_id, s.advertised(port), time.time())
        membership = self._membership = Membership(own)
        membership.merge([], await self._outbox.load_durables())
        client_ssl: ssl.SSLContext | None = None
        if s.scheme == "https":
            client_ssl = ssl.create_default_context(cafile=s.tls_ca)
        session = self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ssl=client_ssl if client_ssl else True),
            timeout=aiohttp.ClientTimeout(total=s.publish_timeout),
            skip_auto_headers=("User-Agent",),
        )
        self._sender = Sender(
            settings=s,
            node_id=self.node_id,
            membership=membership,
            session=session,
            auth=auth,
            table=self._table,
        )
        mesh = self._mesh = Mesh(
            settings=s, membership=membership, session=session, auth=auth, merge=self._merge
        )
        await self._tasks.start()
        self._durable = DurableSender(
            self._outbox, membership, self._tasks, self._sender.send_durable, self.publish
        )
        self._durable.restore(await self._outbox.load())
        # Connected before joining: what the join brings (durable messages for subscribers
        # here, peers' publishes) may arrive while it runs.
        self._state = "connected"
        membership.set_entries(self._advertised())
        with anyio.move_on_after(s.connect_timeout):
            await mesh.join()
        self._tasks.start_soon(mesh.run)
        self._tasks.start_soon(self._durable.run)
        log.info("http node %s serving on %s", self.node_id, own.addr)

    async def _serve(self) -> int:
        s = self.settings
        self._runner = web.AppRunner(
            build_app(self),
            handle_signals=False,
            access_log=None,
            shutdown_timeout=1.0,
            logger=ServerLog(log),
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

    async def _closing(self) -> None:
        """Say leave first: peers stop sending here while the subscriptions drain."""
        record = self._membership.leave()
        if self._mesh is not None:
            await self._mesh.push([p.addr for p in self._membership.peers()], [record])

    async def _shutdown(self) -> None:
        await self._tasks.aclose()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        await self._outbox.close()
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
        self.check_open("subscribe")
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
                backoff_steps=policy.backoff_steps,
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
        self._track(sub)
        sub.start(self._tasks)
        await self._announce()
        return sub

    async def _stopped(self, sub: HttpSubscription) -> None:
        self._untrack(sub)
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
        if self._mesh is not None:
            await self._mesh.push_own()

    def _advertised(self) -> tuple[Entry, ...]:
        sinks = tuple(
            Entry(id=-(i + 1), pattern=pattern, sink=url)
            for i, (pattern, url) in enumerate(self.settings.sinks)
        )
        return self._table.advertised() + sinks

    # --- publish ----------------------------------------------------------------------
    async def publish(self, message: Message) -> None:
        sender = self._sender
        if sender is None or self._state != "connected":
            raise BrokerClosed("publish on a broker that is not connected: call connect() first")
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
        delivered = await sender.send(message, route, encode_headers(message))
        if not delivered and not route.durables:
            await self._no_responders(message)

    async def _hold(self, message: Message, delay: float) -> None:
        """Hold ``message`` for ``delay`` seconds, in this publisher (see :mod:`._delay`)."""
        await hold(self, message, delay)

    async def _no_responders(self, message: Message) -> None:
        """A request that reached nobody: tell its reply topic (Capabilities.no_responders)."""
        notice = no_responders_reply(message)
        if notice is not None:
            await self.publish(notice)

    # --- receive ----------------------------------------------------------------------
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
            status, reason = await self._table.handle_durable(transport[DURABLE], message)
            return web.Response(status=status, headers={REASON: quote(reason)})
        offered = transport.get(REPLIES)
        linger = linger_of(headers, offered, time.time()) if offered else None
        reply_to = headers.get(REPLY_TO, "")
        waiter = None if linger is None else self._answers.expect(reply_to, transport[FROM])
        try:
            ids = parse_ids(transport.get(TO))
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
        """Fold a gossip body in (a ValueError says what is wrong with a malformed one)."""
        records, specs, reply = parse_gossip(obj)
        self._merge(records, specs)
        return view_body(self._membership) if reply else None

    def view(self) -> dict[str, Any]:
        return view_body(self._membership) | {"self": self.node_id}

    def _merge(self, records: list[NodeRecord], specs: list[DurableSpec]) -> None:
        before = dict(self._membership.durables)
        if self._membership.merge(records, specs) and self._durable is not None:
            self._durable.wake()
        if self._state == "connected":
            for spec in self._membership.durables.values():
                if before.get(spec.name) != spec:
                    self._tasks.start_soon(self._outbox.save_durable, spec)


def _int(value: str | None, default: int) -> int:
    try:
        return max(1, int(value)) if value is not None else default
    except ValueError:
        return default
