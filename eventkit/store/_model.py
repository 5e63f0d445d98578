"""What a store holds and what a backend implements, in plain values.

A backend (NATS JetStream KV, memory, SQLite, PostgreSQL) deals in bytes: a :class:`Record`
per key, a :class:`RawChange` per change, and revisions that grow per bucket. The typed
facade (:mod:`._bucket`) turns bytes into the bucket's model and back, so every backend
implements only :class:`Backend` and :class:`RawBucket` and passes ``tests/store/``.

Revisions: every change to a bucket gets the next revision number of that bucket (NATS: the
stream sequence), so a revision says both "which version of this key" and "in which order the
bucket changed". Compare-and-set: a write given ``expect=N`` happens only if the key's
current revision is ``N``; ``expect=0`` means "only if the key is absent" (never written,
deleted or expired).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar

from ..wire import ConfigError, EventKitError

__all__ = [
    "Backend",
    "BucketOptions",
    "Change",
    "Entry",
    "RawBucket",
    "RawChange",
    "Record",
    "RevisionConflict",
    "StoreError",
    "validate_bucket",
    "validate_key",
    "validate_prefix",
]

T = TypeVar("T")

_KEY = re.compile(r"^[-/_=.a-zA-Z0-9]+$")
_BUCKET = re.compile(r"^[a-zA-Z0-9_-]+$")
MAX_KEY = 1024


class StoreError(EventKitError):
    """A store operation failed (the backend refused it or could not be reached)."""


class RevisionConflict(StoreError):
    """A compare-and-set write found another revision than the one it expected: someone else
    wrote first. Read the key again and retry (``Bucket.update`` does this for you)."""

    def __init__(self, bucket: str, key: str, expected: int) -> None:
        what = "absent" if expected == 0 else f"at revision {expected}"
        super().__init__(
            f"{bucket}/{key} is no longer {what}: another writer changed it; read it again "
            "and retry with the revision you read"
        )
        self.bucket = bucket
        self.key = key
        self.expected = expected


def validate_bucket(name: str) -> str:
    """A bucket name: letters, digits, ``_`` and ``-`` (what JetStream allows everywhere)."""
    if not isinstance(name, str) or not _BUCKET.match(name) or len(name) > 64:
        raise ConfigError(
            f"bucket name {name!r} is not valid: use 1-64 letters, digits, '_' and '-'"
        )
    return name


def validate_key(key: str) -> str:
    """A key: letters, digits and ``-/_=.``, not starting or ending with a dot. The same rule
    on every backend (it is NATS KV's), so data moves between backends unchanged."""
    if (
        not isinstance(key, str)
        or not _KEY.match(key)
        or key[0] == "."
        or key[-1] == "."
        or ".." in key
        or len(key) > MAX_KEY
    ):
        raise ConfigError(
            f"key {key!r} is not valid: use letters, digits and - / _ = . (dots separate "
            f"tokens: not first, last or doubled), at most {MAX_KEY} characters"
        )
    return key


def validate_prefix(prefix: str) -> str:
    """A key prefix for ``keys()`` and ``watch()``: empty (everything) or the start of a key."""
    if prefix == "":
        return prefix
    if not isinstance(prefix, str) or not _KEY.match(prefix) or prefix[0] == "." or ".." in prefix:
        raise ConfigError(
            f"key prefix {prefix!r} is not valid: use the start of a key (letters, digits, "
            "- / _ = and single dots), or '' for every key"
        )
    return prefix


@dataclass(frozen=True, slots=True)
class BucketOptions:
    """How a bucket is made when it does not exist yet.

    ``history``: revisions kept per key (1-64; NATS KV's history, which also lets a slow
    watcher still read changes it has not seen). ``replicas``: copies of the bucket in a
    cluster (NATS: stream replicas; None: the broker's own ``replicas`` setting).
    """

    history: int = 1
    replicas: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.history <= 64:
            raise ConfigError(f"history must be between 1 and 64, got {self.history}")
        if self.replicas is not None and not 1 <= self.replicas <= 5:
            raise ConfigError(f"replicas must be between 1 and 5, got {self.replicas}")


@dataclass(frozen=True, slots=True)
class Record:
    """A key's current value as a backend returns it."""

    key: str
    value: bytes
    revision: int


@dataclass(frozen=True, slots=True)
class RawChange:
    """One change to a bucket: a put (with the value) or a delete (value empty)."""

    key: str
    op: Literal["put", "delete"]
    value: bytes
    revision: int


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    """A key's value (of the bucket's model), its revision, and where it lives."""

    bucket: str
    key: str
    value: T
    revision: int


@dataclass(frozen=True, slots=True)
class Change(Generic[T]):
    """A change seen by ``watch()``: ``op`` is ``"put"`` (``value`` set) or ``"delete"``
    (``value`` None). Changes arrive in revision order."""

    bucket: str
    key: str
    op: Literal["put", "delete"]
    value: T | None
    revision: int


class RawBucket(Protocol):
    """One bucket of a backend, in bytes."""

    async def get(self, key: str) -> Record | None:
        """The key's current value, or None when it is absent (never put, deleted, expired)."""
        ...

    async def put(self, key: str, value: bytes, *, ttl: float | None, expect: int | None) -> int:
        """Store ``value``; return its revision once the backend made it durable.

        ``ttl``: seconds after which the key reads as absent. ``expect``: compare-and-set
        (see the module docs); a mismatch raises :class:`RevisionConflict`.
        """
        ...

    async def delete(self, key: str, *, expect: int | None) -> int:
        """Delete the key (absent keys too; a watcher sees the delete); return the delete's
        revision. ``expect`` as in put."""
        ...

    async def keys(self, prefix: str) -> list[str]:
        """The present keys that start with ``prefix``, sorted."""
        ...

    def watch(
        self, prefix: str, *, initial: bool
    ) -> AbstractAsyncContextManager[AsyncIterator[RawChange]]:
        """Changes to keys starting with ``prefix`` made after entering, in revision order;
        with ``initial`` first the present keys' values (as puts)."""
        ...


class Backend(Protocol):
    """Where buckets live; made once per Store, closed with it."""

    name: str
    """What the store runs on, for messages: ``nats``, ``memory``, ``sqlite``, ``postgresql``."""

    async def bucket(self, name: str, options: BucketOptions) -> RawBucket:
        """The bucket ``name``, made with ``options`` if it does not exist yet."""
        ...

    async def close(self) -> None:
        """Release connections (a watch of a SQL backend ends; others end with their block)."""
        ...
