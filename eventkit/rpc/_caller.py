"""The calling side of RPC: pick a node, send, match the reply, retry only when safe.

One inbox subscription per client (``{ns}.reply.{node_id}.*``) serves every call; a reply is
matched by the correlation id that ends its topic, so thousands of calls can be in flight on
one connection with no lock. The registry view and the selector choose a node; a call fails
over to another node only when it surely did not run (the broker said nobody received it, or
the registry saw the node leave), and after a timeout only when the endpoint is idempotent.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import pydantic_core
from pydantic import TypeAdapter

from ..brokers.base import Broker, DeliveryPolicy, Subscription, inline
from ..discovery import NodeInfo, Registry, RegistryChange, Selector, Strategy
from ..wire import (
    BrokerClosed,
    DeadlineExceeded,
    Headers,
    Message,
    ServiceUnavailable,
)
from ._cache import ReplyCache, check_ttl, endpoint_hints
from ._context import inherited_deadline, propagated_headers, with_token
from ._deadlines import Deadlines
from ._failover import Expired, NodeGone, NodeLost, expire
from ._middleware import Invocation, Middleware, Next, compose
from ._protocol import (
    ADDRESS,
    CALLER,
    CALLER_ADDRESS,
    DEADLINE,
    ENDPOINT,
    NO_RESPONDERS,
    OK,
    REPLY_TO,
    STATUS,
    read_error,
    reply_topic,
    request_topic,
)
from ._stream import Stream
from ._stream_caller import StreamCaller, stream_spec
from ._stream_protocol import (
    DEFAULT_HEARTBEAT,
    DEFAULT_WINDOW,
)
from ._stream_state import CallerStream
from ._unseen import no_node_detail

__all__ = ["DEFAULT_TIMEOUT", "Caller"]

log = logging.getLogger("eventkit.calls")

DEFAULT_TIMEOUT = 5.0


class Caller:
    """Makes RPC calls for one client: ``broker`` carries them, ``registry()`` gives the view
    of the nodes (joined on first use), ``node_id`` names the caller's inbox. ``token`` goes
    with every request and stream open; ``cache`` keeps the replies of cached calls."""

    def __init__(
        self,
        broker: Broker,
        *,
        namespace: str,
        node_id: str,
        registry: Callable[[], Awaitable[Registry]],
        strategy: Strategy = "round_robin",
        discovery_wait: float = 0.5,
        middleware: list[Middleware] | None = None,
        headers: Callable[[dict[str, str] | None], Headers] = propagated_headers,
        token: str | None = None,
        cache: ReplyCache | None = None,
    ) -> None:
        self.broker = broker
        self.namespace = namespace
        self.node_id = node_id
        self._get_registry = registry
        self.selector = Selector(strategy)
        self.discovery_wait = discovery_wait
        self.middleware = middleware if middleware is not None else []
        self._outgoing = headers  # what each request starts from (telemetry adds its trace)
        self.token = token
        if token:
            self._outgoing = with_token(headers, token)
        self.cache = ReplyCache() if cache is None else cache
        self._pending: dict[str, tuple[asyncio.Future[Message], str]] = {}
        self._ids = itertools.count(1)
        self._prefix = os.urandom(4).hex()
        self._inbox: Subscription | None = None
        self._ready = False
        self._lock = anyio.Lock()
        self._last_query: dict[str, float] = {}
        self._discovering: dict[str, anyio.Event] = {}
        self._validators: dict[Any, Callable[[bytes], Any]] = {}
        self._deadlines: Deadlines[asyncio.Future[Message]] = Deadlines(expire)
        self._chain: Next | None = None
        self._registry: Registry | None = None
        self._inbox_prefix = ""
        self._streams: dict[str, CallerStream] = {}
        self._stream_caller: StreamCaller | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def _start(self) -> None:
        async with self._lock:
            if self._ready:
                return
            registry = await self._get_registry()  # first: a failure leaves nothing behind
            inbox = reply_topic(self.namespace, self.node_id) + ".*"
            self._inbox = await self.broker.subscribe(
                inbox, self._on_reply, policy=DeliveryPolicy(max_in_flight=1)
            )
            registry.add_listener(self._on_registry_change)
            self._registry = registry
            self._inbox_prefix = f"{reply_topic(self.namespace, self.node_id)}."
            self._chain = compose(self.middleware, self._send) if self.middleware else None
            self._ready = True

    async def close(self) -> None:
        for future, _node in self._pending.values():
            if not future.done():
                future.set_exception(BrokerClosed("the client closed while the call was waiting"))
        self._pending.clear()
        self._deadlines.close()
        if self._stream_caller is not None:
            await self._stream_caller.close()
            self._stream_caller = None
        if self._inbox is not None:
            await self._inbox.stop()
            self._inbox = None
        self._ready = False

    async def _on_reply(self, message: Message) -> None:
        correlation = message.topic.rpartition(".")[2]
        entry = self._pending.get(correlation)
        if entry is None:
            stream = self._streams.get(correlation)
            if stream is not None:
                stream.on_frame(message)
            return  # else a late reply to a call that already gave up
        future = entry[0]
        if not future.done():
            future.set_result(message)

    def _on_registry_change(self, change: RegistryChange) -> None:
        # A node that leaves gracefully drains the calls it took, so they are left to finish;
        # one that expired is silent, so its callers stop waiting for it.
        if change.kind != "removed" or change.reason == "leave":
            return
        lost = change.node.id
        if self._stream_caller is not None:
            self._stream_caller.node_lost(lost, change.reason)
        for future, node_id in list(self._pending.values()):
            if node_id == lost and not future.done():
                future.set_exception(NodeLost(f"node {lost} stopped answering ({change.reason})"))

    # -- calls ---------------------------------------------------------------------------

    async def call(
        self,
        service: str,
        endpoint: str,
        request: Any = None,
        *,
        response: Any = None,
        timeout: float | None = None,
        metadata: Mapping[str, str] | None = None,
        version: str | None = None,
        node_metadata: Mapping[str, str] | None = None,
        retries: int = 1,
        cache: float | None = None,
    ) -> Any:
        if not self._ready:
            await self._start()
        if cache is not None:
            check_ttl(cache, "cache")
        now = time.time()
        deadline = now + (DEFAULT_TIMEOUT if timeout is None else timeout)
        inherited = inherited_deadline()
        if inherited is not None and inherited < deadline:
            deadline = inherited
        if self._chain is None:  # no middleware: no Invocation to build
            reply = await self._exchange(
                service,
                endpoint,
                request,
                metadata,
                deadline,
                version,
                node_metadata,
                retries,
                cache,
            )
        else:
            invocation = Invocation(
                "call",
                f"{service}/{endpoint}",
                request=request,
                metadata=dict(metadata) if metadata else {},
                options={
                    "service": service,
                    "endpoint": endpoint,
                    "deadline": deadline,
                    "version": version,
                    "node_metadata": node_metadata,
                    "retries": retries,
                    "cache": cache,
                },
            )
            reply = await self._chain(invocation)
        return self._decode(reply, response)

    def stream(
        self,
        service: str,
        endpoint: str,
        request: Any = None,
        *,
        response: Any = None,
        timeout: float | None = None,
        metadata: Mapping[str, str] | None = None,
        version: str | None = None,
        node_metadata: Mapping[str, str] | None = None,
        window: int = DEFAULT_WINDOW,
        heartbeat: float = DEFAULT_HEARTBEAT,
    ) -> Stream[Any]:
        """A stream of a streaming endpoint (opened on first use); see :class:`Stream`."""
        spec = stream_spec(
            service,
            endpoint,
            request,
            response,
            timeout,
            window,
            heartbeat,
            metadata,
            version,
            node_metadata,
        )
        if self._stream_caller is None:
            self._stream_caller = StreamCaller(
                self.broker,
                namespace=self.namespace,
                node_id=self.node_id,
                inbox_prefix=f"{reply_topic(self.namespace, self.node_id)}.",
                streams=self._streams,
                choose=self.choose_node,
                selector=self.selector,
                open_timeout=DEFAULT_TIMEOUT,
                middleware=self.middleware,
                headers=self._outgoing,
            )
        return Stream(self._stream_caller, spec)

    async def choose_node(
        self,
        service: str,
        endpoint: str,
        version: str | None,
        node_metadata: Mapping[str, str] | None,
        tried: set[str],
    ) -> NodeInfo:
        """A node of ``service`` for a stream (not one of ``tried``); ServiceUnavailable when
        none is known or every one failed."""
        if not self._ready:
            await self._start()
        registry = self._registry
        assert registry is not None
        nodes = registry.view.nodes(service, version=version, metadata=node_metadata)
        if not nodes:
            nodes = await self._discover(service, version, node_metadata)
        if not nodes:
            raise ServiceUnavailable(self._no_node_detail(service, version), id=self.node_id)
        node = self.selector.select(service, nodes, exclude=tried, now=time.time())
        if node is None or node.id in tried:
            raise ServiceUnavailable(
                f"{service}: every known node failed to take {endpoint} "
                f"(tried {', '.join(sorted(tried))})",
                id=self.node_id,
            )
        return node

    async def _send(self, invocation: Invocation) -> Message:
        """The innermost step of the middleware chain."""
        options = invocation.options
        return await self._exchange(
            options["service"],
            options["endpoint"],
            invocation.request,
            invocation.metadata,
            options["deadline"],
            options["version"],
            options["node_metadata"],
            options["retries"],
            options.get("cache"),
        )

    async def _exchange(
        self,
        service: str,
        endpoint: str,
        request: Any,
        metadata: Mapping[str, str] | None,
        deadline: float,
        version: str | None,
        node_metadata: Mapping[str, str] | None,
        retries: int,
        cache: float | None = None,
    ) -> Message:
        """Send the request to a node and return its reply, failing over when that is safe;
        a cached call's reply comes from the cache while it lasts (see :mod:`._cache`)."""
        caller_id = self.node_id
        registry = self._registry
        assert registry is not None
        body = pydantic_core.to_json(request)
        headers = self._outgoing(dict(metadata) if metadata else None)
        headers[ENDPOINT] = endpoint
        headers[DEADLINE] = repr(deadline)
        headers[CALLER] = caller_id
        headers[CALLER_ADDRESS] = ADDRESS
        tried: set[str] = set()
        timeouts_left = retries
        idempotent: bool | None = None
        ttl, key = 0.0, None
        while True:
            now = time.time()
            if now >= deadline:
                raise DeadlineExceeded(
                    f"{service}/{endpoint}: no reply before the deadline", id=caller_id
                )
            nodes = registry.view.nodes(service, version=version, metadata=node_metadata)
            if not nodes:
                nodes = await self._discover(service, version, node_metadata)
            if not nodes:
                raise ServiceUnavailable(self._no_node_detail(service, version), id=caller_id)
            node = self.selector.select(service, nodes, exclude=tried, now=now)
            if node is None or node.id in tried:
                raise ServiceUnavailable(
                    f"{service}: every known node failed to take {endpoint} "
                    f"(tried {', '.join(sorted(tried))})",
                    id=caller_id,
                )
            if idempotent is None:
                idempotent, hint = endpoint_hints(node, endpoint)
                ttl = hint if cache is None else cache
                if ttl:
                    key = (service, endpoint, body, self.token or "")
                    hit = self.cache.get(key, now)
                    if hit is not None:
                        return hit
            attempt_deadline = deadline
            if idempotent and timeouts_left > 0:
                attempt_deadline = now + (deadline - now) / (timeouts_left + 1)
            try:
                reply = await self._attempt(
                    service,
                    node.id,
                    body,
                    headers,
                    attempt_deadline,
                    deadline,
                    topic=request_topic(self.namespace, node, endpoint),
                )
            except NodeGone as exc:
                log.debug("%s/%s: %s; trying another node", service, endpoint, exc)
                self.selector.mark_failed(node.id, time.time())
                tried.add(node.id)
            except NodeLost as exc:
                self.selector.mark_failed(node.id, time.time())
                if not idempotent:
                    raise ServiceUnavailable(
                        f"{service}/{endpoint}: {exc}; the call may have run, and the endpoint "
                        "is not idempotent, so it is not retried",
                        id=caller_id,
                    ) from None
                tried.add(node.id)
            except DeadlineExceeded:
                self.selector.mark_failed(node.id, time.time())
                if time.time() >= deadline or not idempotent or timeouts_left <= 0:
                    raise
                timeouts_left -= 1
                tried.add(node.id)
            else:
                if key is not None and STATUS not in reply.headers:  # errors are not kept
                    self.cache.put(key, reply, ttl, time.time())
                return reply

    async def _attempt(
        self,
        service: str,
        node_id: str,
        body: bytes,
        headers: dict[str, str],
        attempt_deadline: float,
        deadline: float,
        *,
        topic: str,
    ) -> Message:
        caller_id = self.node_id
        correlation = f"{self._prefix}{next(self._ids)}"
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[correlation] = (future, node_id)
        self.selector.acquire(node_id)
        message = Message(
            topic,
            body,
            {**headers, REPLY_TO: self._inbox_prefix + correlation},
        )
        loop = asyncio.get_running_loop()
        # The deadline expires the future (no cancel scope), and all calls share one timer.
        self._deadlines.add(future, loop.time() + max(0.0, attempt_deadline - time.time()))
        try:
            await self.broker.publish(message)
            reply = await future
        except Expired:
            raise DeadlineExceeded(
                f"{service}/{headers[ENDPOINT]}: node {node_id} did not answer in time",
                id=caller_id,
            ) from None
        finally:
            self._deadlines.discard(future)
            self._pending.pop(correlation, None)
            self.selector.release(node_id)
        if reply.headers.get(NO_RESPONDERS):
            raise NodeGone(f"no subscriber on {message.topic}")
        return reply

    async def _discover(
        self, service: str, version: str | None, node_metadata: Mapping[str, str] | None
    ) -> list[NodeInfo]:
        """Ask the registry once (a query round trip) when no node of ``service`` is known.

        Concurrent calls share one query; a service that did not answer is not asked again
        for ``discovery_wait`` seconds, so calls to it fail at once meanwhile.
        """
        registry = await self._get_registry()
        running = self._discovering.get(service)
        if running is None:
            now = time.monotonic()
            if now - self._last_query.get(service, -1e9) < self.discovery_wait:
                return []
            self._last_query[service] = now
            running = self._discovering[service] = anyio.Event()
            try:
                await registry.query(service, wait=self.discovery_wait)
            finally:
                del self._discovering[service]
                running.set()
        else:
            await running.wait()
        return registry.view.nodes(service, version=version, metadata=node_metadata)

    def _no_node_detail(self, service: str, version: str | None) -> str:
        registry = self._registry
        known = registry.view.known_services() if registry is not None else []
        return no_node_detail(service, version, self.namespace, self.broker.url, known)

    def _decode(self, reply: Message, response: Any) -> Any:
        if reply.headers.get(STATUS, OK) != OK:
            raise read_error(reply)
        if response is None:
            return pydantic_core.from_json(reply.body) if reply.body else None
        validate = self._validators.get(response)
        if validate is None:  # the core validator's own method: no Python layer per call
            validate = self._validators[response] = TypeAdapter(response).validator.validate_json
        return validate(reply.body)


# It only resolves a future: nothing in it can let a cancellation escape, and it never
# suspends, so a broker may run it in its read loop (one hand-off less per reply).
Caller._on_reply._eventkit_guarded = True  # type: ignore[attr-defined]
inline(Caller._on_reply)  # type: ignore[arg-type]
