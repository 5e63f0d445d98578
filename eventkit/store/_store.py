"""Store: the key-value store of a service or client, and the choice of its backend.

The store lives on the broker the service already uses wherever that broker can hold it: on
NATS, JetStream key-value buckets (through the broker's
:class:`~eventkit.brokers.base.KeyValueHolder` capability); on ``memory://``, buckets in the
process. RabbitMQ and the HTTP broker hold no key-value data, so there the store needs a URL
of its own (``store=`` / ``EVENTKIT_STORE``): ``sqlite:///path/to/file.db`` or
``postgresql://user@host/db``. Without one, using the store is a :class:`ConfigError` that
says so: never a silent in-memory store that would lose data on a restart.

Backends are loaded by name on first use, like brokers: ``import eventkit`` imports no driver.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar, overload
from urllib.parse import urlsplit

import anyio

from ..brokers.base import Broker, KeyValueHolder
from ..wire import ConfigError, DriverMissing, redact
from ._bucket import Bucket
from ._model import Backend, BucketOptions, RawBucket

__all__ = ["Store", "open_backend"]

T = TypeVar("T")

# scheme of a store URL -> (module, class, pip extra)
_URLS: dict[str, tuple[str, str, str | None]] = {
    "sqlite": ("eventkit.store._sqlite", "SqliteBackend", None),
    "postgresql": ("eventkit.store._postgres", "PostgresBackend", "postgres"),
    "postgres": ("eventkit.store._postgres", "PostgresBackend", "postgres"),
    "memory": ("eventkit.store._memory", "MemoryBackend", None),
}
_HOW = (
    "give the store a URL: Service(..., store='postgresql://user@host/db') or "
    "store='sqlite:///path/to/store.db', or set EVENTKIT_STORE"
)


def _load(module_name: str, class_name: str, extra: str | None, what: str) -> Any:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if extra is None or (exc.name or "").startswith("eventkit"):
            raise
        raise DriverMissing(
            f"the {what} store needs a driver that is not installed ({exc.name}); "
            f'run: pip install "eventkit-micro[{extra}]"'
        ) from exc
    return getattr(module, class_name)


def open_backend(url: str | None, broker: Broker) -> Backend:
    """The backend for a store URL, or (without one) for the broker itself."""
    if url:
        scheme = urlsplit(url).scheme.lower()
        if scheme not in _URLS:
            raise ConfigError(
                f"store URL {redact(url)!r} has an unknown scheme; use sqlite:///path, "
                "postgresql://user@host/db or memory://"
            )
        module_name, class_name, extra = _URLS[scheme]
        backend: Backend = _load(module_name, class_name, extra, scheme)(url)
        return backend
    scheme = urlsplit(broker.url).scheme.lower()
    if isinstance(broker, KeyValueHolder):
        cls = _load("eventkit.store._nats", "NatsKvBackend", "nats", "NATS key-value")
        nats: Backend = cls(broker, broker.url)
        return nats
    if scheme == "memory":
        memory: Backend = _load("eventkit.store._memory", "MemoryBackend", None, "memory")(
            broker.url
        )
        return memory
    raise ConfigError(
        f"the {scheme}:// broker cannot hold a key-value store; {_HOW} (NATS holds one in "
        "JetStream, memory:// in the process)"
    )


class Store:
    """The key-value store of a service (``svc.store``) or client (``kit.store``).

    Call it for a typed bucket: ``carts = svc.store("carts", Cart)``; without a model,
    values are any JSON value, and ``bytes`` stores bytes unchanged. A bucket can be made
    before the service starts; the backend opens on first use (a service that made buckets
    opens it at start, so a missing store URL stops the start with the reason).
    """

    def __init__(self, broker: Callable[[], Broker], url: Callable[[], str | None]) -> None:
        self._broker = broker
        self._url = url
        self._backend: Backend | None = None
        self._buckets: dict[str, RawBucket] = {}
        self._lock = anyio.Lock()
        self.declared: dict[str, Bucket[Any]] = {}
        """The buckets made so far, by name (the latest of each name)."""

    @overload
    def __call__(
        self, bucket: str, *, history: int = 1, replicas: int | None = None
    ) -> Bucket[Any]: ...
    @overload
    def __call__(
        self, bucket: str, model: type[T], *, history: int = 1, replicas: int | None = None
    ) -> Bucket[T]: ...
    def __call__(
        self, bucket: str, model: Any = Any, *, history: int = 1, replicas: int | None = None
    ) -> Bucket[Any]:
        """A bucket of ``model`` values. ``history``: revisions kept per key (1-64);
        ``replicas``: copies in a NATS cluster (the broker's ``replicas`` by default)."""
        made: Bucket[Any] = Bucket(bucket, model, BucketOptions(history, replicas), self._open)
        self.declared[bucket] = made
        return made

    @property
    def backend(self) -> str | None:
        """What the open store runs on (``nats``, ``memory``, ``sqlite``, ``postgresql``)."""
        return self._backend.name if self._backend is not None else None

    async def open(self) -> None:
        """Choose and open the backend now, and the buckets made so far."""
        for bucket in list(self.declared.values()):
            await self._open(bucket.name, bucket.options)
        if self._backend is None:
            async with self._lock:
                if self._backend is None:
                    self._backend = open_backend(self._url(), self._broker())

    async def _open(self, name: str, options: BucketOptions) -> RawBucket:
        raw = self._buckets.get(name)
        if raw is not None:
            return raw
        async with self._lock:
            if self._backend is None:
                self._backend = open_backend(self._url(), self._broker())
            raw = self._buckets.get(name)
            if raw is None:
                raw = self._buckets[name] = await self._backend.bucket(name, options)
        return raw

    async def close(self) -> None:
        """Close the backend (a later use opens it again)."""
        backend, self._backend = self._backend, None
        self._buckets.clear()
        if backend is not None:
            await backend.close()
