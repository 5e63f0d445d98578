"""Client: publish CloudEvents (and, with the RPC layer, make calls) over one broker.

``eventkit.connect(url)`` gives a client for scripts and other processes; every Service has
one for its own publishes. The publish path is one encode of the data and one broker publish.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, cast, overload

import anyio

from ..brokers import Broker, from_url
from ..brokers.base import DelayedPublisher, delay_seconds
from ..discovery import STRATEGIES, Registry, ServiceInfo, Strategy
from ..observability import Telemetry, messaging_system
from ..rpc import (
    DEFAULT_CACHE_SIZE,
    DEFAULT_HEARTBEAT,
    DEFAULT_WINDOW,
    TOKEN,
    Caller,
    Middleware,
    ReplyCache,
    Stream,
    propagated_headers,
)
from ..store import Store
from ..wire import (
    ConfigError,
    EventIds,
    Headers,
    Message,
    UnsupportedFeature,
    check_extensions,
    now_iso,
    to_message,
)
from ._settings import Settings

__all__ = ["Client", "EndpointClient", "ServiceClient", "connect"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")


def new_node_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:12]}"


class Client:
    """Publishes (and calls) over a broker; ``async with`` connects and closes it.

    ``broker`` is a URL or a Broker instance; by default ``EVENTKIT_BROKER``, else the local
    NATS (:data:`DEFAULT_BROKER`), where services started without a broker meet.
    ``source`` is the CloudEvents source of what this client publishes. ``selector`` picks
    the node of each call: ``round_robin``, ``random`` or ``least_inflight``.
    ``telemetry``: OpenTelemetry traces and metrics of publishes and calls; by default made
    from ``EVENTKIT_TRACING`` / ``EVENTKIT_METRICS``.
    ``token``: sent with every call, stream and event (``EVENTKIT_TOKEN``; docs/security.md).
    ``cache_size``: how many replies the call cache keeps (``call(..., cache=seconds)``).
    """

    def __init__(
        self,
        broker: Broker | str | None = None,
        *,
        settings: Settings | None = None,
        node_id: str | None = None,
        source: str | None = None,
        owns_broker: bool = True,
        selector: str = "round_robin",
        store: str | None = None,
        telemetry: Telemetry | None = None,
        token: str | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        **broker_options: Any,
    ) -> None:
        if settings is None:
            settings = Settings.load()
            if isinstance(broker, str):  # a URL named in code is the caller's explicit choice
                settings = settings.with_(broker=broker)
            if store is not None:
                settings = settings.with_(store=store)
        if token is not None:
            settings = settings.with_(token=token)
        self.settings = settings
        self.node_id = node_id or settings.node_id or new_node_id("client")
        self.namespace = settings.namespace
        self.source = source or f"/clients/{self.node_id}"
        if broker is None or isinstance(broker, str):
            broker_options.setdefault("drain_timeout", settings.drain_timeout)
            self.broker: Broker = from_url(settings.broker, **broker_options)
        else:
            self.broker = broker
        self._owns_broker = owns_broker
        self._ids = EventIds()
        self._connected = False
        self.middleware: list[Middleware] = []
        if selector not in STRATEGIES:
            raise ConfigError(f"selector {selector!r} is not one of {', '.join(STRATEGIES)}")
        self._strategy = cast(Strategy, selector)
        self._registry: Registry | None = None
        self._registry_lock = anyio.Lock()
        self._owns_registry = False
        self._caller: Caller | None = None
        self.store = Store(lambda: self.broker, lambda: self.settings.store)
        """The key-value store: ``kit.store("carts", Cart)`` is a typed bucket."""
        self._request_headers: Callable[[dict[str, str] | None], Headers] = propagated_headers
        self.token = settings.token or None
        self.cache = ReplyCache(cache_size)
        """Replies kept by calls made with ``cache=`` (or to endpoints with a cache hint)."""
        if telemetry is None and (settings.tracing or settings.metrics):
            telemetry = Telemetry(tracing=settings.tracing, metrics=settings.metrics)
        if telemetry is not None:
            self._compose(telemetry)

    def _compose(self, telemetry: Telemetry) -> None:
        """Telemetry is composed in once, like middleware: this client's publish and call
        become the traced ones. Without it the class's own methods run, unchanged."""
        system = messaging_system(self.broker.url)
        self.publish = telemetry.publisher(  # type: ignore[method-assign,assignment]
            self.publish, system=system, client_id=self.node_id
        )
        self.call = telemetry.caller(self.call)  # type: ignore[method-assign,assignment]
        self._request_headers = telemetry.request_headers(propagated_headers)
        self.cache.counter = telemetry.cache_counter()

    async def connect(self) -> None:
        if self._owns_broker:
            await self.broker.connect()
        self._connected = True

    async def close(self) -> None:
        self._connected = False
        await self.store.close()
        if self._caller is not None:
            await self._caller.close()
            self._caller = None
        if self._registry is not None and self._owns_registry:
            await self._registry.stop()
            self._registry = None
        if self._owns_broker:
            await self.broker.close()

    def use(self, middleware: Middleware) -> Middleware:
        """Add a middleware around this client's calls (before the first call)."""
        self.middleware.append(middleware)
        return middleware

    # -- registry ------------------------------------------------------------------------

    async def get_registry(self) -> Registry:
        """This client's view of the registry, joined on first use (one query round trip)."""
        if self._registry is None:
            async with self._registry_lock:  # concurrent first users share one registry
                if self._registry is None:
                    registry = Registry(
                        self.broker,
                        source=self.source,
                        namespace=self.namespace,
                        ttl=self.settings.registry_ttl,
                        heartbeat=self.settings.heartbeat,
                    )
                    await registry.start()  # kept only once it runs: a failure can be retried
                    self._registry, self._owns_registry = registry, True
        return self._registry

    async def services(self, *, wait: float = 0.5) -> list[ServiceInfo]:
        """Every live service (one entry per name, version and kind), after a registry query.

        On NATS this includes the NATS micro services that answer ``$SRV.INFO`` (kind
        ``"nats-micro"``), which :meth:`call` reaches on the subjects they advertise."""
        registry = await self.get_registry()
        await registry.query(wait=wait)
        return registry.view.services()

    async def describe(self, service: str, *, wait: float = 0.5) -> list[ServiceInfo]:
        """``service`` as go-micro describes it: name, version, metadata, endpoints with
        request/response schemas, nodes (one entry per version; empty when unknown)."""
        registry = await self.get_registry()
        if not registry.view.nodes(service):
            await registry.query(service, wait=wait)
        return registry.view.describe(service)

    # -- calls ---------------------------------------------------------------------------

    @overload
    async def call(
        self,
        service: str,
        endpoint: str,
        request: Any = None,
        *,
        response: type[Resp],
        timeout: float | None = None,
        metadata: Mapping[str, str] | None = None,
        version: str | None = None,
        node_metadata: Mapping[str, str] | None = None,
        retries: int = 1,
        cache: float | None = None,
    ) -> Resp: ...
    @overload
    async def call(
        self,
        service: str,
        endpoint: str,
        request: Any = None,
        *,
        response: None = None,
        timeout: float | None = None,
        metadata: Mapping[str, str] | None = None,
        version: str | None = None,
        node_metadata: Mapping[str, str] | None = None,
        retries: int = 1,
        cache: float | None = None,
    ) -> Any: ...
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
        """Call ``endpoint`` of ``service`` with ``request``; return the reply as ``response``.

        ``timeout`` (5 s by default) is the whole call's deadline, shortened to the deadline
        of the request being handled, if any. ``version`` and ``node_metadata`` filter the
        nodes. Raises a :class:`RemoteError` subclass: BadRequest (400), NotFound (404),
        DeadlineExceeded (408), InternalError (500), ServiceUnavailable (503), or the
        handler's own (Unauthorized, 401, and Forbidden, 403, from a service that checks
        tokens). ``cache``: seconds a successful reply is kept and returned again for the
        same request (by this client, with its token); None follows the endpoint's hint, 0
        never caches (docs/rpc.md, "Caching replies").
        """
        return await self._get_caller().call(
            service,
            endpoint,
            request,
            response=response,
            timeout=timeout,
            metadata=metadata,
            version=version,
            node_metadata=node_metadata,
            retries=retries,
            cache=cache,
        )

    def _get_caller(self) -> Caller:
        if self._caller is None:
            self._caller = Caller(
                self.broker,
                namespace=self.namespace,
                node_id=self.node_id,
                registry=self.get_registry,
                strategy=self._strategy,
                middleware=self.middleware,
                headers=self._request_headers,
                token=self.token,
                cache=self.cache,
            )
        return self._caller

    @overload
    def stream(
        self,
        service: str,
        endpoint: str,
        request: Any = None,
        *,
        response: type[Resp],
        timeout: float | None = None,
        metadata: Mapping[str, str] | None = None,
        version: str | None = None,
        node_metadata: Mapping[str, str] | None = None,
        window: int = DEFAULT_WINDOW,
        heartbeat: float = DEFAULT_HEARTBEAT,
    ) -> Stream[Resp]: ...
    @overload
    def stream(
        self,
        service: str,
        endpoint: str,
        request: Any = None,
        *,
        response: None = None,
        timeout: float | None = None,
        metadata: Mapping[str, str] | None = None,
        version: str | None = None,
        node_metadata: Mapping[str, str] | None = None,
        window: int = DEFAULT_WINDOW,
        heartbeat: float = DEFAULT_HEARTBEAT,
    ) -> Stream[Any]: ...
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
        """A stream of a streaming endpoint of ``service``, bound to one node.

        ``async for line in kit.stream("logs", "Logs.Tail", TailRequest(...), response=Line)``
        reads a server stream; for client and bidi streams, ``async with kit.stream(...) as s``
        then ``await s.send(item)``, ``await s.close_send()`` and ``async for reply in s``.
        ``request`` is the opening request of a server stream (client and bidi streams take
        items instead). ``timeout``: the whole stream's deadline (none by default; the
        deadline of the request being handled, if any, applies). ``window``: items this side
        takes in before the node must wait for credit. ``heartbeat``: seconds between frames
        on an idle stream; either side takes the other for gone after 3 silent intervals.
        The stream opens on first use; see :class:`eventkit.rpc.Stream`.
        """
        return self._get_caller().stream(
            service,
            endpoint,
            request,
            response=response,
            timeout=timeout,
            metadata=metadata,
            version=version,
            node_metadata=node_metadata,
            window=window,
            heartbeat=heartbeat,
        )

    def service(self, name: str, **options: Any) -> ServiceClient:
        """A client bound to one service: ``await kit.service("greeter").call("Greeter.Hello")``."""
        return ServiceClient(self, name, **options)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def publish(
        self,
        topic: str,
        data: Any = None,
        *,
        type: str | None = None,
        subject: str | None = None,
        extensions: Mapping[str, Any] | None = None,
        dataschema: str | None = None,
        metadata: Mapping[str, str] | None = None,
        structured: bool | None = None,
        id: str | None = None,
        delay: float | timedelta | None = None,
    ) -> str:
        """Publish ``data`` (a pydantic model, a JSON value or bytes) as a CloudEvent.

        ``type`` defaults to the topic. ``structured``: the whole event as JSON in the body
        (True) or attributes in ``ce-*`` headers (False); by default, what the broker's binding
        prefers (structured on NATS, binary elsewhere).
        ``delay`` (seconds or a timedelta): the event reaches subscribers no earlier than
        that after this call, as a publish at that moment would (docs/delivery.md says where
        each broker keeps it meanwhile); a broker that cannot hold it raises
        :class:`UnsupportedFeature`.
        Metadata of the message being handled, if any, propagates. Returns the event id.
        """
        if extensions:
            check_extensions(extensions)
        event_id = id or self._ids()
        headers = propagated_headers(dict(metadata)) if metadata else propagated_headers()
        if self.token:
            headers[TOKEN] = self.token
        message = to_message(
            topic,
            data,
            id=event_id,
            source=self.source,
            type=type or topic,
            time=now_iso(),
            subject=subject,
            dataschema=dataschema,
            extensions=extensions,
            headers=headers,
            structured=self.broker.capabilities.structured_events
            if structured is None
            else structured,
        )
        if delay is None:
            await self.broker.publish(message)
        else:
            await publish_later(self.broker, message, delay)
        return event_id


async def publish_later(broker: Broker, message: Message, delay: float | timedelta) -> None:
    """Hand ``message`` to a broker that holds it for ``delay``, or say it cannot."""
    if not isinstance(broker, DelayedPublisher):
        raise UnsupportedFeature(
            f"{type(broker).__name__} cannot hold a message (delay=): publish without delay, "
            "or use a broker that can (docs/delivery.md)"
        )
    await broker.publish_later(message, delay_seconds(delay))


def connect(broker: str | None = None, **options: Any) -> Client:
    """A client for ``broker`` (a URL; ``EVENTKIT_BROKER``, else the local NATS, by default).

    Use it as ``async with eventkit.connect("nats://127.0.0.1:4222") as kit: ...``.
    """
    return Client(broker, **options)


class EndpointClient(Generic[Req, Resp]):
    """A typed handle on one endpoint: ``await hello(HelloRequest(name="x"))``."""

    def __init__(
        self,
        client: Client,
        service: str,
        endpoint: str,
        response: type[Resp],
        **options: Any,
    ) -> None:
        self._client = client
        self.service = service
        self.endpoint = endpoint
        self._response = response
        self._options = options

    async def __call__(self, request: Req, **options: Any) -> Resp:
        merged = {**self._options, **options}
        result: Resp = await self._client.call(
            self.service, self.endpoint, request, response=self._response, **merged
        )
        return result


class ServiceClient:
    """Calls to one service: ``greeter = kit.service("greeter"); await greeter.call(...)``."""

    def __init__(self, client: Client, service: str, **options: Any) -> None:
        self._client = client
        self.service = service
        self._options = options

    @overload
    async def call(
        self, endpoint: str, request: Any = None, *, response: type[Resp], **options: Any
    ) -> Resp: ...
    @overload
    async def call(
        self, endpoint: str, request: Any = None, *, response: None = None, **options: Any
    ) -> Any: ...
    async def call(
        self, endpoint: str, request: Any = None, *, response: Any = None, **options: Any
    ) -> Any:
        merged = {**self._options, **options}
        return await self._client.call(self.service, endpoint, request, response=response, **merged)

    def endpoint(
        self, name: str, request: type[Req], response: type[Resp]
    ) -> EndpointClient[Req, Resp]:
        del request  # only for the type checker: it fixes Req
        return EndpointClient(self._client, self.service, name, response, **self._options)
