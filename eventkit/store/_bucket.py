"""A typed bucket: values of one model in, values of that model out.

``Bucket[Cart]`` validates what it reads as ``Cart`` (pydantic, from the stored JSON) and
writes ``Cart`` as JSON; ``bytes`` buckets store bytes unchanged. Everything else is the
backend's (:class:`RawBucket`), opened on first use through the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

import pydantic
import pydantic_core
from pydantic import TypeAdapter

from ._model import (
    BucketOptions,
    Change,
    Entry,
    RawBucket,
    RawChange,
    RevisionConflict,
    StoreError,
    validate_bucket,
    validate_key,
    validate_prefix,
)

__all__ = ["Bucket", "InvalidValue"]

T = TypeVar("T")


class InvalidValue(StoreError, ValueError):
    """A value does not fit the bucket's model: on put nothing was written; on a read the
    stored bytes (written by someone else) do not validate as the model."""


class _Codec(Generic[T]):
    __slots__ = ("_adapter", "_raw", "model")

    def __init__(self, model: Any) -> None:
        self.model = model
        self._raw = model is bytes
        self._adapter: TypeAdapter[Any] = TypeAdapter(model)

    def dump(self, bucket: str, key: str, value: T) -> bytes:
        if self._raw:
            if not isinstance(value, bytes | bytearray | memoryview):
                raise InvalidValue(
                    f"{bucket}/{key}: a bytes bucket stores bytes, got {value!r:.80}"
                )
            return bytes(value)
        try:
            return self._adapter.dump_json(value, warnings="error")
        except (pydantic_core.PydanticSerializationError, ValueError, TypeError) as exc:
            raise InvalidValue(
                f"{bucket}/{key}: the value is not a {_name(self.model)}; nothing was written "
                f"({exc})"
            ) from None

    def load(self, bucket: str, key: str, data: bytes) -> T:
        if self._raw:
            return data  # type: ignore[return-value]  # T is bytes
        try:
            value: T = self._adapter.validate_json(data)
        except pydantic.ValidationError as exc:
            raise InvalidValue(
                f"{bucket}/{key}: the stored value is not a valid {_name(self.model)} "
                f"({exc.error_count()} error(s): {exc.errors()[0]['msg']})"
            ) from None
        return value


def _name(model: Any) -> str:
    return getattr(model, "__name__", None) or repr(model)


class Bucket(Generic[T]):
    """Keys to values of one model, in one bucket of the store.

    Made by ``svc.store("carts", Cart)`` or ``kit.store("carts", Cart)``; the backend is
    opened on first use. Every write returns the new revision; ``revision=`` on a write is a
    compare-and-set (``0``: only if absent), which raises :class:`RevisionConflict` when
    someone else wrote first.
    """

    def __init__(
        self,
        name: str,
        model: Any,
        options: BucketOptions,
        opener: Callable[[str, BucketOptions], Awaitable[RawBucket]],
    ) -> None:
        self.name = validate_bucket(name)
        self.model = model
        self.options = options
        self._codec: _Codec[T] = _Codec(model)
        self._opener = opener

    async def _raw(self) -> RawBucket:
        return await self._opener(self.name, self.options)

    async def get(self, key: str) -> Entry[T] | None:
        """The key's entry (value, revision), or None when it is absent or expired."""
        record = await (await self._raw()).get(validate_key(key))
        if record is None:
            return None
        value = self._codec.load(self.name, key, record.value)
        return Entry(self.name, key, value, record.revision)

    async def put(
        self, key: str, value: T, *, ttl: float | None = None, revision: int | None = None
    ) -> int:
        """Store ``value`` under ``key``; return the new revision.

        ``ttl``: seconds after which the key reads as absent (on NATS it needs
        nats-server 2.11 or later). ``revision``: write only if the key is at that revision
        (``0``: only if absent), else :class:`RevisionConflict`.
        """
        validate_key(key)
        _check_write(ttl, revision)
        data = self._codec.dump(self.name, key, value)
        return await (await self._raw()).put(key, data, ttl=ttl, expect=revision)

    async def create(self, key: str, value: T, *, ttl: float | None = None) -> int:
        """Store ``value`` only if ``key`` is absent (``put(..., revision=0)``)."""
        return await self.put(key, value, ttl=ttl, revision=0)

    async def delete(self, key: str, *, revision: int | None = None) -> int:
        """Delete ``key`` (an absent key too; watchers see a delete) and return the delete's
        revision; ``revision`` makes it a compare-and-set."""
        validate_key(key)
        _check_write(None, revision)
        return await (await self._raw()).delete(key, expect=revision)

    async def update(
        self,
        key: str,
        change: Callable[[T | None], T],
        *,
        ttl: float | None = None,
        attempts: int = 100,
    ) -> Entry[T]:
        """Read, change and write ``key`` with compare-and-set, again on a conflict, so that
        concurrent updates all land. ``change`` gets the current value (None if absent)
        and returns the new one; it may run more than once."""
        for _ in range(attempts):
            current = await self.get(key)
            new = change(current.value if current is not None else None)
            expected = current.revision if current is not None else 0
            try:
                revision = await self.put(key, new, ttl=ttl, revision=expected)
            except RevisionConflict:
                continue
            return Entry(self.name, key, new, revision)
        raise RevisionConflict(self.name, key, expected)

    async def keys(self, prefix: str = "") -> list[str]:
        """The present keys starting with ``prefix``, sorted."""
        return await (await self._raw()).keys(validate_prefix(prefix))

    @asynccontextmanager
    async def watch(
        self, prefix: str = "", *, initial: bool = False
    ) -> AsyncIterator[AsyncIterator[Change[T]]]:
        """Every change to keys starting with ``prefix`` made after entering, in order::

            async with carts.watch("user-1.") as changes:
                async for change in changes:
                    print(change.op, change.key, change.revision, change.value)

        ``initial=True`` first yields the present keys' values (as puts). Expiry (``ttl``)
        is not a change: an expired key reads as absent.
        """
        raw = await self._raw()
        async with raw.watch(validate_prefix(prefix), initial=initial) as changes:
            yield _Changes(self.name, self._codec, changes)

    def __repr__(self) -> str:
        return f"Bucket({self.name!r}, {_name(self.model)})"


class _Changes(Generic[T]):
    """The raw changes of a watch, read as the bucket's model (an iterator, not a
    generator: leaving the loop early leaves nothing to finalize)."""

    def __init__(self, bucket: str, codec: _Codec[T], raw: AsyncIterator[RawChange]) -> None:
        self._bucket, self._codec, self._raw = bucket, codec, raw

    def __aiter__(self) -> _Changes[T]:
        return self

    async def __anext__(self) -> Change[T]:
        change = await self._raw.__anext__()
        value = None
        if change.op == "put":
            value = self._codec.load(self._bucket, change.key, change.value)
        return Change(self._bucket, change.key, change.op, value, change.revision)


def _check_write(ttl: float | None, revision: int | None) -> None:
    if ttl is not None and not ttl > 0:
        raise InvalidValue(f"ttl must be a positive number of seconds, got {ttl!r}")
    if revision is not None and (not isinstance(revision, int) or revision < 0):
        raise InvalidValue(f"revision must be an int >= 0 (0: only if absent), got {revision!r}")
