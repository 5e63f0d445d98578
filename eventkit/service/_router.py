"""Subscribers and endpoints as values, and the Router that collects them.

``Subscriber`` and ``Endpoint`` are the primitives: plain values that a Service turns into
broker subscriptions at start. Decorators are sugar that append one. The module-level
``@subscribe`` / ``@endpoint`` only mark a function (or method), so that
``service.include(module_or_object)`` can collect them: that is how handlers written in
another module, or as methods of a class, join a service.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal, TypeVar

from ..brokers.base import DeliveryPolicy, backoff_steps
from ..rpc import DEFAULT_WINDOW, StreamKind
from ..wire import ConfigError, validate_name, validate_pattern
from ._handlers import HandlerSignature, inspect_handler
from ._names import check_endpoint_name

__all__ = ["ACCEPTS", "Accept", "Endpoint", "Router", "Subscriber", "endpoint", "subscribe"]

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__eventkit_handlers__"


Accept = Literal["cloudevents", "any"]
ACCEPTS: tuple[Accept, ...] = ("cloudevents", "any")


@dataclass(frozen=True)
class Subscriber:
    """A CloudEvents handler on a topic pattern.

    ``queue``: share the work with other subscribers of the group (each event to one of
    them). ``durable``: at-least-once, redelivered on failure and dead-lettered after
    ``max_attempts``. ``backoff``: the seconds to wait before each retry of a durable event,
    such as ``[0.1, 1, 5]`` (the n-th for the n-th failure, the last one repeated); by default
    the broker's exponential backoff (:class:`~eventkit.DeliveryPolicy`).
    ``concurrency``: handlers running at once; 1 (the default) keeps order.
    ``accept``: ``"cloudevents"`` (the default) takes CloudEvents only and rejects anything
    else as invalid; ``"any"`` also takes messages that are not CloudEvents (from plain
    clients, FastStream, any producer): the body is the data of an Event whose attributes
    come from the transport (type: the topic; a fresh id; source: the broker).
    ``scopes``: what the sender's token must grant (None: the service's auth default; an
    empty tuple: any valid token); an event refused is never given to the handler.
    """

    topic: str
    handler: Callable[..., Any]
    queue: str | None = None
    durable: str | None = None
    concurrency: int = 1
    max_attempts: int = 5
    accept: Accept = "cloudevents"
    scopes: tuple[str, ...] | None = None
    backoff: Sequence[float] | None = None
    signature: HandlerSignature = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_pattern(self.topic)
        _check_accept(self.accept)
        if self.queue is not None:
            validate_name("queue group", self.queue)
        if self.durable is not None:
            validate_name("durable", self.durable)
        object.__setattr__(self, "scopes", check_scopes(self.scopes, f"subscriber {self.topic}"))
        object.__setattr__(self, "signature", inspect_handler(self.handler, what="subscriber"))
        if self.backoff is not None:
            object.__setattr__(self, "backoff", backoff_steps(self.backoff))
            if self.durable is None:
                raise ConfigError(
                    f"backoff= paces the retries of a durable subscription; {self.topic!r} "
                    "has no durable= (a failed event on it is not retried)"
                )
        self.policy  # noqa: B018  # validates concurrency and max_attempts now, not at start

    @property
    def policy(self) -> DeliveryPolicy:
        return DeliveryPolicy(
            max_in_flight=self.concurrency,
            max_attempts=self.max_attempts,
            backoff_steps=None if self.backoff is None else tuple(self.backoff),
        )


@dataclass(frozen=True)
class Endpoint:
    """An RPC endpoint: ``name`` like ``Greeter.Hello``, a handler taking the request.

    ``idempotent``: the caller may retry it on another node after a timeout (otherwise a call
    is retried only when it surely did not run). A handler that yields streams items to the
    caller, and one whose request parameter is an ``AsyncIterator[Item]`` takes the caller's
    items (``kind``); ``window`` is how many of the caller's items it takes in before the
    caller must wait. ``scopes``: what the caller's token must grant (None: the service's
    auth default; an empty tuple: any valid token). ``cache``: seconds callers may keep a
    successful reply when they do not say otherwise (a hint in the registry record).
    """

    name: str
    handler: Callable[..., Any]
    idempotent: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    window: int = DEFAULT_WINDOW
    scopes: tuple[str, ...] | None = None
    cache: float | None = None
    signature: HandlerSignature = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_endpoint_name(self.name)
        if not 1 <= self.window <= 65_536:
            raise ConfigError(f"endpoint {self.name!r}: window must be from 1 to 65536 items")
        object.__setattr__(self, "scopes", check_scopes(self.scopes, f"endpoint {self.name}"))
        if self.cache is not None and (not math.isfinite(self.cache) or self.cache < 0):
            raise ConfigError(f"endpoint {self.name!r}: cache must be seconds, 0 or more")
        signature = inspect_handler(self.handler, what="endpoint", streams=True)
        if signature.wants_event:
            raise ConfigError(
                f"endpoint {self.name!r}: an endpoint takes the request model (or JSON "
                "value) and optionally a Context, not Event[...]"
            )
        object.__setattr__(self, "signature", signature)

    @property
    def kind(self) -> StreamKind | None:
        """How the endpoint streams: ``server``, ``client``, ``bidi``, or None (unary)."""
        signature = self.signature
        if signature.streams_out:
            return "bidi" if signature.streams_in else "server"
        return "client" if signature.streams_in else None


class Router:
    """Collects subscribers and endpoints to include in a Service.

    ``prefix`` is put before every topic of the router (``Router(prefix="shop")`` makes
    ``orders.placed`` into ``shop.orders.placed``).
    """

    def __init__(self, *, prefix: str = "") -> None:
        if prefix:
            validate_pattern(prefix)
        self.prefix = prefix
        self.subscribers: list[Subscriber] = []
        self.endpoints: list[Endpoint] = []

    def _topic(self, topic: str) -> str:
        return f"{self.prefix}.{topic}" if self.prefix else topic

    def subscribe(
        self,
        topic: str,
        *,
        queue: str | None = None,
        durable: str | None = None,
        concurrency: int = 1,
        max_attempts: int = 5,
        accept: Accept = "cloudevents",
        scopes: Sequence[str] | None = None,
        backoff: Sequence[float] | None = None,
    ) -> Callable[[F], F]:
        """Decorator: handle CloudEvents on ``topic`` (``*`` and ``>`` wildcards allowed);
        with ``accept="any"``, any message (see :class:`Subscriber`)."""
        _check_accept(accept)
        steps = None if backoff is None else backoff_steps(backoff)

        def decorate(func: F) -> F:
            self.subscribers.append(
                Subscriber(
                    self._topic(topic),
                    func,
                    queue=queue,
                    durable=durable,
                    concurrency=concurrency,
                    max_attempts=max_attempts,
                    accept=accept,
                    scopes=_tuple(scopes),
                    backoff=steps,
                )
            )
            return func

        return decorate

    def endpoint(
        self,
        name: str | None = None,
        *,
        idempotent: bool = False,
        window: int = DEFAULT_WINDOW,
        scopes: Sequence[str] | None = None,
        cache: float | None = None,
    ) -> Callable[[F], F]:
        """Decorator: serve RPC calls to ``name`` (the function's name by default); an async
        generator streams (see :class:`Endpoint`)."""

        def decorate(func: F) -> F:
            self.endpoints.append(
                Endpoint(
                    name or func.__name__,
                    func,
                    idempotent=idempotent,
                    window=window,
                    scopes=_tuple(scopes),
                    cache=cache,
                )
            )
            return func

        return decorate

    def register(self, handler: object, *, name: str | None = None) -> None:
        """Serve every public ``async def`` method of ``handler`` as ``{Class}.{Method}``."""
        import inspect

        prefix = name or type(handler).__name__
        found = False
        for attr in dir(handler):
            if attr.startswith("_"):
                continue
            method = getattr(handler, attr)
            is_async = inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method)
            if inspect.ismethod(method) and is_async:
                marks = getattr(method, _MARK, ())
                if any(isinstance(m, _SubscribeMark) for m in marks):
                    continue  # a subscriber method, collected by include()
                mark = next((m for m in marks if isinstance(m, _EndpointMark)), None)
                self.endpoints.append(
                    Endpoint(
                        f"{prefix}.{attr}",
                        method,
                        idempotent=mark is not None and mark.idempotent,
                        window=DEFAULT_WINDOW if mark is None else mark.window,
                        scopes=None if mark is None else mark.scopes,
                        cache=None if mark is None else mark.cache,
                    )
                )
                found = True
        if not found:
            raise ConfigError(f"{type(handler).__name__} has no public async methods to register")

    def include(self, source: Router | ModuleType | object) -> None:
        """Add another router's handlers, or the marked functions of a module or object."""
        if isinstance(source, Router):
            for sub in source.subscribers:
                self.subscribers.append(_with_topic(sub, self._topic(sub.topic)))
            self.endpoints.extend(source.endpoints)
            return
        found = False
        for attr in dir(source):
            if attr.startswith("__"):
                continue
            value = getattr(source, attr, None)
            for mark in getattr(value, _MARK, ()):
                assert value is not None
                found = True
                if isinstance(mark, _SubscribeMark):
                    self.subscribers.append(
                        Subscriber(
                            self._topic(mark.topic),
                            value,
                            queue=mark.queue,
                            durable=mark.durable,
                            concurrency=mark.concurrency,
                            max_attempts=mark.max_attempts,
                            accept=mark.accept,
                            scopes=mark.scopes,
                            backoff=mark.backoff,
                        )
                    )
                else:
                    self.endpoints.append(
                        Endpoint(
                            mark.name or attr,
                            value,
                            idempotent=mark.idempotent,
                            window=mark.window,
                            scopes=mark.scopes,
                            cache=mark.cache,
                        )
                    )
        if not found:
            raise ConfigError(
                f"{source!r} has no handlers marked with @eventkit.subscribe or "
                "@eventkit.endpoint; pass a Router, a module or an object with marked methods"
            )

    def extend(self, items: Iterable[Subscriber | Endpoint]) -> None:
        for item in items:
            if isinstance(item, Subscriber):
                self.subscribers.append(item)
            else:
                self.endpoints.append(item)


def _with_topic(sub: Subscriber, topic: str) -> Subscriber:
    if topic == sub.topic:
        return sub
    return Subscriber(
        topic,
        sub.handler,
        queue=sub.queue,
        durable=sub.durable,
        concurrency=sub.concurrency,
        max_attempts=sub.max_attempts,
        accept=sub.accept,
        scopes=sub.scopes,
        backoff=sub.backoff,
    )


def _tuple(scopes: Sequence[str] | None) -> tuple[str, ...] | None:
    if isinstance(scopes, str):
        raise ConfigError(f"scopes={scopes!r}: give a list of scopes, e.g. [{scopes!r}]")
    return None if scopes is None else tuple(scopes)


def check_scopes(scopes: Sequence[str] | None, what: str) -> tuple[str, ...] | None:
    """``scopes`` as a tuple, each one a word (as a token's space-separated ``scope``)."""
    if scopes is None:
        return None
    found = _tuple(scopes)
    assert found is not None
    for scope in found:
        if not isinstance(scope, str) or not scope or any(c.isspace() for c in scope):
            raise ConfigError(f"{what}: scope {scope!r} must be one word, e.g. orders:write")
    return found


def _check_accept(accept: str) -> None:
    if accept not in ACCEPTS:
        raise ConfigError(
            f"accept={accept!r}: use 'cloudevents' (the default: CloudEvents only) or 'any' "
            "(also messages that are not CloudEvents)"
        )


@dataclass(frozen=True)
class _SubscribeMark:
    topic: str
    queue: str | None
    durable: str | None
    concurrency: int
    max_attempts: int
    accept: Accept = "cloudevents"
    scopes: tuple[str, ...] | None = None
    backoff: tuple[float, ...] | None = None


@dataclass(frozen=True)
class _EndpointMark:
    name: str | None
    idempotent: bool
    window: int = DEFAULT_WINDOW
    scopes: tuple[str, ...] | None = None
    cache: float | None = None


def _mark(func: Any, mark: _SubscribeMark | _EndpointMark) -> None:
    marks = getattr(func, _MARK, ())
    setattr(func, _MARK, (*marks, mark))


def subscribe(
    topic: str,
    *,
    queue: str | None = None,
    durable: str | None = None,
    concurrency: int = 1,
    max_attempts: int = 5,
    accept: Accept = "cloudevents",
    scopes: Sequence[str] | None = None,
    backoff: Sequence[float] | None = None,
) -> Callable[[F], F]:
    """Mark a function or method as a subscriber; a service collects it with ``include``.

    The signature is checked here, so a bad one fails at import.
    """
    validate_pattern(topic)
    _check_accept(accept)
    steps = None if backoff is None else backoff_steps(backoff)

    def decorate(func: F) -> F:
        inspect_handler(func, what="subscriber")
        mark = _SubscribeMark(
            topic, queue, durable, concurrency, max_attempts, accept, _tuple(scopes), steps
        )
        _mark(func, mark)
        return func

    return decorate


def endpoint(
    name: str | None = None,
    *,
    idempotent: bool = False,
    window: int = DEFAULT_WINDOW,
    scopes: Sequence[str] | None = None,
    cache: float | None = None,
) -> Callable[[F], F]:
    """Mark a function or method as an RPC endpoint; a service collects it with ``include``."""

    def decorate(func: F) -> F:
        inspect_handler(func, what="endpoint", streams=True)
        _mark(func, _EndpointMark(name, idempotent, window, _tuple(scopes), cache))
        return func

    return decorate
