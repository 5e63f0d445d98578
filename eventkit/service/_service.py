"""Service: a named node that owns a broker connection, its handlers and its lifecycle.

``start()`` connects, subscribes every subscriber (and, with the RPC layer, serves endpoints
and joins the registry); ``stop()`` stops new deliveries, lets in-flight handlers finish within
the drain timeout, and closes the broker. ``run()`` does both around SIGINT/SIGTERM.
"""

from __future__ import annotations

import inspect
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

import anyio

from ..auth import Auth, Guard
from ..brokers import Broker, DeliveryPolicy, MessageHandler, Subscription, from_url
from ..brokers.base import ServiceAdvertiser, stop_all
from ..discovery import Registry
from ..observability import Telemetry, configure_logging, messaging_system
from ..rpc import Middleware, RpcServer
from ..store import Store
from ..wire import ConfigError, LogLimiter
from ._client import Client, new_node_id
from ._delivery import ServiceStats, subscriber_handler
from ._foreign import decoder_of
from ._meeting import BROKER_UNREACHABLE, broker_chosen, cannot_start, say_started, warn_if_alone
from ._names import check_service_name, check_version
from ._observing import Observing
from ._parts import node_info, procedure, service_description
from ._router import Endpoint, Router, Subscriber
from ._settings import Settings

__all__ = ["Service", "ServiceStats"]

log = logging.getLogger("eventkit.service")

Hook = Callable[[], Any]


class Service(Router):
    """A microservice: subscribers (and endpoints) under a name, run on one broker.

    ``broker``: a URL or a Broker; the ``EVENTKIT_BROKER`` environment variable and the
    ``--broker`` flag of ``run()`` override a URL given here (see :class:`Settings`).
    ``store``: the key-value store's URL where the broker holds none (``EVENTKIT_STORE``).
    ``telemetry``: OpenTelemetry traces and metrics (:class:`eventkit.observability.Telemetry`);
    by default made from ``EVENTKIT_TRACING`` / ``EVENTKIT_METRICS`` / ``EVENTKIT_METRICS_PORT``.
    ``auth``: verifies the tokens of calls and events before handlers run (endpoints' and
    subscribers' ``scopes``, else ``auth.default``); by default made from
    ``EVENTKIT_AUTH_KEY`` / ``EVENTKIT_AUTH_KEY_FILE``, and none without them.
    ``token``: what this service sends with its own calls and events (``EVENTKIT_TOKEN``).
    """

    def __init__(
        self,
        name: str,
        *,
        version: str = "0.0.0",
        metadata: dict[str, str] | None = None,
        description: str = "",
        broker: Broker | str | None = None,
        namespace: str | None = None,
        node_id: str | None = None,
        drain_timeout: float | None = None,
        registry_ttl: float | None = None,
        heartbeat: float | None = None,
        subscribers: Sequence[Subscriber] = (),
        endpoints: Sequence[Endpoint] = (),
        middleware: Sequence[Middleware] = (),
        rpc_concurrency: int = 256,
        store: str | None = None,
        telemetry: Telemetry | None = None,
        auth: Auth | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__()
        self.name, self.version = check_service_name(name), check_version(version)
        self.description = description
        self.metadata = dict(metadata or {})
        self._broker_arg = broker
        self._args: dict[str, Any] = {
            "broker": broker if isinstance(broker, str) else None,
            "namespace": namespace,
            "node_id": node_id,
            "drain_timeout": drain_timeout,
            "registry_ttl": registry_ttl,
            "heartbeat": heartbeat,
            "store": store,
            "token": token,
        }
        self.auth = auth
        """The service's Auth while it runs (given here, or from the settings at start)."""
        self.middleware: list[Middleware] = list(middleware)
        self.rpc_policy = DeliveryPolicy(max_in_flight=rpc_concurrency)
        self.extend(subscribers)
        self.extend(endpoints)
        self.stats = ServiceStats()
        self._invalid_log = LogLimiter(log, "invalid events")
        self.settings: Settings | None = None
        self.node_id: str = node_id or new_node_id(name)
        self._client: Client | None = None
        self._subscriptions: list[Subscription] = []
        self._hooks: dict[str, list[Hook]] = {
            "before_start": [],
            "after_start": [],
            "before_stop": [],
            "after_stop": [],
        }
        self._argv: Sequence[str] | None = None
        self._running = False
        self.registry: Registry | None = None
        """This node's registry membership and view, while the service runs."""
        self._rpc: RpcServer | None = None
        self._advertised: Subscription | None = None
        self.store = Store(
            lambda: self.broker, lambda: self.settings.store if self.settings else None
        )
        """The key-value store: ``carts = svc.store("carts", Cart)`` (see docs/store.md)."""
        self.telemetry = telemetry
        self.observing: Observing | None = None
        """Health, probes and telemetry, while the service runs."""

    def use(self, middleware: Middleware) -> Middleware:
        """Add a middleware around this service's subscribers, endpoints and calls."""
        self.middleware.append(middleware)
        return middleware

    # -- hooks ---------------------------------------------------------------------------

    def before_start(self, fn: Hook) -> Hook:
        """Run ``fn`` (sync or async) before the broker connects."""
        self._hooks["before_start"].append(fn)
        return fn

    def after_start(self, fn: Hook) -> Hook:
        """Run ``fn`` once every subscription is live."""
        self._hooks["after_start"].append(fn)
        return fn

    def before_stop(self, fn: Hook) -> Hook:
        """Run ``fn`` while the service still receives, before it drains."""
        self._hooks["before_stop"].append(fn)
        return fn

    def after_stop(self, fn: Hook) -> Hook:
        """Run ``fn`` after the broker closed."""
        self._hooks["after_stop"].append(fn)
        return fn

    async def _run_hooks(self, stage: str, *, keep_going: bool = False) -> None:
        for fn in self._hooks[stage]:
            try:
                result = fn()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                if not keep_going:
                    raise
                log.exception("service %s: %s hook %r failed", self.name, stage, fn)

    # -- properties ----------------------------------------------------------------------

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError(f"service {self.name!r} is not started")
        return self._client

    @property
    def broker(self) -> Broker:
        return self.client.broker

    @property
    def source(self) -> str:
        return f"/services/{self.name}/{self.node_id}"

    @property
    def running(self) -> bool:
        return self._running

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, *, broker: Broker | str | None = None) -> None:
        """Connect and subscribe. ``broker`` overrides every other setting (used by tests)."""
        if self._running:
            return
        settings = Settings.load(self._args, argv=self._argv)
        if isinstance(broker, str):
            settings = settings.with_(broker=broker)
        self.settings = settings
        if settings.node_id:
            self.node_id = settings.node_id
        if self.auth is None:
            self.auth = Auth.from_settings(
                settings.auth_key, settings.auth_key_file, settings.auth_default
            )
        self._check_scopes_have_auth()
        observing = self.observing = Observing.of(self, settings)
        await observing.start()
        try:
            await self._start(broker, settings, observing)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await observing.stop()
            raise

    async def _start(
        self, broker: Broker | str | None, settings: Settings, observing: Observing
    ) -> None:
        await self._run_hooks("before_start")
        instance = broker if broker is not None and not isinstance(broker, str) else None
        if instance is None and not isinstance(self._broker_arg, str | None):
            instance = self._broker_arg
        if instance is None:
            instance = from_url(settings.broker, drain_timeout=settings.drain_timeout)
        self._client = Client(
            instance,
            settings=settings,
            node_id=self.node_id,
            source=self.source,
            owns_broker=False,
            telemetry=observing.telemetry,
        )
        self._client.middleware = self.middleware
        self._client.store = self.store  # closed with the client, after the handlers drained
        await instance.connect()
        observing.connected(instance)
        system = messaging_system(instance.url)
        try:
            for sub in self.subscribers:
                observer = observing.subscriber(sub, system)
                handler = self._message_handler(sub, observer.failed if observer else None)
                self._subscriptions.append(
                    await instance.subscribe(
                        sub.topic,
                        observer.wrap(handler) if observer else handler,
                        queue=sub.queue,
                        durable=sub.durable,
                        policy=sub.policy,
                    )
                )
            await self._start_parts(instance, settings)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._stop_parts()
                await self._client.close()
                await instance.close()
            self._subscriptions.clear()
            raise
        self._running = True
        observing.health.registered = True
        say_started(log, f"{self.name} {self.version}", self.node_id, instance.url, settings)
        warn_if_alone(log, self.name, instance.url, bool(self.endpoints))
        try:
            await self._run_hooks("after_start")
        except BaseException:
            await self.stop()  # a start that fails leaves nothing running
            raise

    def _check_scopes_have_auth(self) -> None:
        """Scopes with no key to check them would leave a handler open: refuse to start."""
        if self.auth is not None:
            return
        scoped = [e.name for e in self.endpoints if e.scopes is not None]
        scoped += [s.topic for s in self.subscribers if s.scopes is not None]
        if scoped:
            raise ConfigError(
                f"service {self.name!r}: {', '.join(scoped)} require(s) scopes, but the service "
                "has no key to check tokens with: set EVENTKIT_AUTH_KEY or "
                "EVENTKIT_AUTH_KEY_FILE, or give Service(auth=Auth(key=...))"
            )

    def _guard(self, scopes: Sequence[str] | None, name: str) -> Guard | None:
        """The check of one handler's token, or None when the service verifies none."""
        if self.auth is None:
            return None
        return self.auth.guard(scopes, service=self.name, name=name)

    async def stop(self) -> None:
        """Stop receiving, let in-flight handlers finish (within the drain timeout), close."""
        if not self._running:
            return
        self._running = False
        assert self._client is not None
        assert self.settings is not None
        if self.observing is not None:  # not ready from the first moment of the drain
            self.observing.health.draining = True
        with anyio.CancelScope(shield=True):
            # A failing hook or extension is logged and the stop goes on: a service that
            # cannot be stopped is worse than a hook that did not finish.
            await self._run_hooks("before_stop", keep_going=True)
            await self._stop_parts()
            with anyio.move_on_after(self.settings.drain_timeout + 1):
                await stop_all(self._subscriptions)
            self._subscriptions.clear()
            await self._client.close()
            await self._client.broker.close()
            log.info("service %s (%s) stopped", self.name, self.node_id)
            await self._run_hooks("after_stop", keep_going=True)
            if self.observing is not None:
                await self.observing.stop()

    async def _start_parts(self, broker: Broker, settings: Settings) -> None:
        """Serve the endpoints, list the service where the broker has a discovery of its own,
        then join the registry: it announces once the node serves, and on a stop it leaves
        before the RPC subscriptions drain."""
        client = self.client
        if self.store.declared:  # a store without a backend stops the start, with the reason
            await self.store.open()
        observing = self.observing
        rpc = self._rpc = RpcServer(
            broker,
            namespace=settings.namespace,
            service=self.name,
            node_id=self.node_id,
            procedures=[procedure(e, self._guard(e.scopes, e.name)) for e in self.endpoints],
            client=client,
            middleware=self.middleware,
            policy=self.rpc_policy,
            observer=observing.requests(self.name, self.endpoints) if observing else None,
            endpoint_topics=isinstance(broker, ServiceAdvertiser),
        )
        await rpc.start()
        if isinstance(broker, ServiceAdvertiser):
            description = service_description(
                namespace=settings.namespace,
                service=self.name,
                node_id=self.node_id,
                version=self.version,
                description=self.description,
                metadata=self.metadata,
                endpoints=self.endpoints,
                rpc=rpc,
            )
            self._advertised = await broker.advertise(description)
        # The record is made once: endpoints and subscriptions are fixed by now, so every
        # heartbeat repeats the same record and peers see no change.
        record = node_info(
            node_id=self.node_id,
            service=self.name,
            version=self.version,
            metadata=self.metadata,
            endpoints=self.endpoints,
            subscribers=self.subscribers,
            ttl=settings.registry_ttl,
        )
        registry = Registry(
            broker,
            source=self.source,
            namespace=settings.namespace,
            ttl=settings.registry_ttl,
            heartbeat=settings.heartbeat,
            local=lambda: record,
        )
        await registry.start()
        self.registry = registry
        if client._registry is None:  # the service's own calls use this view, not a second one
            client._registry = registry

    async def _stop_parts(self) -> None:
        """Leave the registry, stop being listed, stop serving; a failure of one is logged
        and the others still stop (a service that cannot be stopped is worse)."""
        registry, self.registry = self.registry, None
        if registry is not None and self._client is not None and self._client._registry is registry:
            self._client._registry = None
        advertised, self._advertised = self._advertised, None
        rpc, self._rpc = self._rpc, None
        for part in (registry, advertised, rpc):
            if part is None:
                continue
            try:
                await part.stop()
            except Exception:
                log.exception("service %s: stopping %s failed", self.name, type(part).__name__)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def serve(self) -> None:
        """Start, run until SIGINT or SIGTERM, then stop gracefully."""
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with self:
                async for signum in signals:
                    log.info("received %s: draining and stopping", signal.Signals(signum).name)
                    break

    def run(self, argv: Sequence[str] | None = None) -> None:
        """Run the service until SIGINT/SIGTERM. Reads ``--broker`` etc. from ``argv``
        (the command line by default). A bad setting exits with status 2 and says why."""
        self._argv = sys.argv[1:] if argv is None else list(argv)
        try:
            settings = Settings.load(self._args, argv=self._argv)
        except ConfigError as exc:
            print(f"eventkit: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        configure_logging(
            level=settings.log_level,
            format="json" if settings.log_format == "json" else "text",
            service=self.name,
            node=settings.node_id or self.node_id,
        )
        try:
            anyio.run(self.serve, backend_options={"use_uvloop": settings.uvloop})
        except ConfigError as exc:
            print(f"eventkit: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except BROKER_UNREACHABLE as exc:
            chosen = broker_chosen(self._broker_arg, self._argv)
            print(cannot_start(self.name, exc, chosen), file=sys.stderr)
            raise SystemExit(1) from None

    # -- publishing ----------------------------------------------------------------------

    async def publish(self, topic: str, data: Any = None, **kwargs: Any) -> str:
        """Publish a CloudEvent from this service (source ``/services/{name}/{node_id}``)."""
        return await self.client.publish(topic, data, **kwargs)

    def _message_handler(
        self, sub: Subscriber, failed: Callable[[BaseException], None] | None = None
    ) -> MessageHandler:
        """The broker-level handler for one subscriber, built once at start. ``failed``
        (telemetry's, when on) hears of each failure the handler deals with itself."""
        return subscriber_handler(
            sub,
            decode=decoder_of(sub, self.broker),
            node_id=self.node_id,
            service=self.name,
            client=self._client,
            middleware=self.middleware,
            stats=self.stats,
            failed=failed,
            invalid_log=self._invalid_log,
            guard=self._guard(sub.scopes, sub.topic),
        )
