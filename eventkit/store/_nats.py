"""The store on NATS: JetStream key-value buckets, on the connection of the service's broker.

The broker finds or makes the bucket (:class:`~eventkit.brokers.base.KeyValueHolder`:
file storage, the broker's replicas); this module drives nats-py's ``KeyValue`` on it and
translates what nats-py raises. Revisions are the bucket stream's sequence numbers, so they
grow per bucket as the protocol of :mod:`._model` asks. Compare-and-set is JetStream's
``Nats-Expected-Last-Subject-Sequence``, checked by the server; a per-key TTL is JetStream's
per-message TTL (``Nats-TTL``: nats-server 2.11 or later, in whole seconds, rounded up).
Imported only when a store runs on a ``nats://`` broker.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from nats.errors import ConnectionClosedError, NoRespondersError
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import APIError, KeyNotFoundError
from nats.js.kv import KV_DEL, KV_OP, KV_PURGE, KeyValue

from ..brokers.base import KeyValueHolder
from ..wire import ConnectionLost, DriverMissing, EventKitError, UnsupportedFeature
from ._model import BucketOptions, RawChange, Record, RevisionConflict, StoreError

__all__ = ["NatsKvBackend", "NatsKvBucket"]

_WRONG_LAST = (10071, 10164)  # JetStream: the subject's last sequence is not the expected one
_EXPECT = "Nats-Expected-Last-Subject-Sequence"
_TTL = "Nats-TTL"
_DRIVER = (NatsError, OSError, TimeoutError)


def _jetstream(kv: KeyValue) -> Any:
    """The JetStream context a ``KeyValue`` publishes through (nats-py keeps it private;
    pyproject.toml bounds nats-py to the releases tested with it)."""
    js = getattr(kv, "_js", None)
    if js is None:
        raise DriverMissing("this nats-py release has no KeyValue._js; install nats-py<2.17")
    return js


def _error(exc: BaseException, doing: str, where: str) -> EventKitError:
    if isinstance(exc, EventKitError):
        return exc
    if isinstance(exc, NoRespondersError):
        return UnsupportedFeature(f"NATS at {where} has no JetStream ({doing})")
    if isinstance(exc, ConnectionClosedError | OSError):
        return ConnectionLost(f"lost NATS at {where} while {doing}")
    if isinstance(exc, NatsTimeout | TimeoutError):
        return ConnectionLost(f"NATS at {where} did not answer in time while {doing}")
    if isinstance(exc, APIError):
        return StoreError(f"NATS refused {doing}: {exc.description} (code {exc.err_code})")
    return StoreError(f"NATS failed while {doing}: {type(exc).__name__}: {exc}")


def subject_filter(prefix: str) -> str:
    """The narrowest NATS key filter that matches every key starting with ``prefix``; the
    rest is filtered here (``a.b`` can continue as ``a.bc``, so its filter is ``a.>``)."""
    head, dot, _ = prefix.rpartition(".")
    return f"{head}.>" if dot else ">"


class NatsKvBucket:
    """One JetStream KV bucket."""

    def __init__(self, kv: KeyValue, name: str, where: str) -> None:
        self._kv = kv
        self._js = _jetstream(kv)
        self._subject = f"$KV.{name}."
        self.name = name
        self._where = where
        self._ttl_checked = False

    async def get(self, key: str) -> Record | None:
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:
            return None
        except _DRIVER as exc:
            raise _error(exc, f"reading {self.name}/{key}", self._where) from exc
        return Record(key, entry.value or b"", entry.revision or 0)

    async def put(self, key: str, value: bytes, *, ttl: float | None, expect: int | None) -> int:
        headers: dict[str, str] = {}
        if ttl is not None:
            await self._check_ttl()
            headers[_TTL] = str(max(1, math.ceil(ttl)))
        return await self._write(key, value, headers, expect, f"writing {self.name}/{key}")

    async def delete(self, key: str, *, expect: int | None) -> int:
        return await self._write(key, b"", {KV_OP: KV_DEL}, expect, f"deleting {self.name}/{key}")

    async def _write(
        self, key: str, value: bytes, headers: dict[str, str], expect: int | None, doing: str
    ) -> int:
        if expect is not None:
            headers[_EXPECT] = str(expect)
        try:
            try:
                ack = await self._js.publish(self._subject + key, value, headers=headers or None)
            except APIError as exc:
                if exc.err_code not in _WRONG_LAST:
                    raise
                if expect != 0:
                    raise RevisionConflict(self.name, key, expect or 0) from None
                # "Only if absent" on a key whose last message is a delete marker: the
                # marker's revision is the one to expect (as nats-py's create() does).
                marker = await self._delete_marker(key)
                if marker is None:
                    raise RevisionConflict(self.name, key, 0) from None
                headers[_EXPECT] = str(marker)
                try:
                    ack = await self._js.publish(self._subject + key, value, headers=headers)
                except APIError as again:
                    if again.err_code in _WRONG_LAST:
                        raise RevisionConflict(self.name, key, 0) from None
                    raise
        except _DRIVER as exc:
            raise _error(exc, doing, self._where) from exc
        revision: int = ack.seq
        return revision

    async def _delete_marker(self, key: str) -> int | None:
        try:
            await self._kv.get(key)
        except KeyNotFoundError as exc:
            if exc.entry is not None and exc.op in (KV_DEL, KV_PURGE):
                return int(exc.entry.revision)
            return None
        return None  # a live value: a real conflict

    async def _check_ttl(self) -> None:
        """Per-key TTL needs a server and a bucket that honour Nats-TTL (nats-server 2.11+);
        an older server would keep the key forever, so it is refused instead. On a bucket
        with history, expiry would bring back the previous revision: refused too."""
        if self._ttl_checked:
            return
        try:
            status = await self._kv.status()
        except _DRIVER as exc:
            raise _error(exc, f"reading the settings of bucket {self.name}", self._where) from exc
        config = status.stream_info.config
        if (config.max_msgs_per_subject or 1) > 1:
            raise UnsupportedFeature(
                f"the NATS bucket {self.name!r} keeps {config.max_msgs_per_subject} revisions "
                "per key, so an expiring value would uncover the one before it: use ttl= on "
                "buckets with history=1"
            )
        if not getattr(config, "allow_msg_ttl", False):
            raise UnsupportedFeature(
                f"the NATS bucket {self.name!r} at {self._where} cannot expire keys (ttl=): it "
                "needs nats-server 2.11 or later and a bucket made with per-message TTL; "
                "upgrade the server, or store the expiry time in the value"
            )
        self._ttl_checked = True

    async def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        try:
            watcher = await self._kv.watch(
                subject_filter(prefix), ignore_deletes=True, meta_only=True
            )
            try:
                async for entry in watcher:
                    if entry is None:
                        break
                    if entry.key.startswith(prefix):
                        found.append(entry.key)
            finally:
                await watcher.stop()  # type: ignore[no-untyped-call]
        except _DRIVER as exc:
            raise _error(exc, f"listing the keys of {self.name}", self._where) from exc
        return sorted(found)

    @asynccontextmanager
    async def watch(self, prefix: str, *, initial: bool) -> AsyncIterator[AsyncIterator[RawChange]]:
        try:
            watcher = await self._kv.watch(subject_filter(prefix))
        except _DRIVER as exc:
            raise _error(exc, f"watching {self.name}", self._where) from exc
        try:
            # The last value of each key comes first, then a None: past it, every change is
            # new. The watch is open once that None arrived.
            first: list[RawChange] = []
            async for entry in watcher:
                if entry is None:
                    break
                change = _change(entry, prefix)
                if initial and change is not None and change.op == "put":
                    first.append(change)
            yield _Changes(watcher, prefix, first)
        finally:
            with contextlib.suppress(*_DRIVER):  # the connection gone: so is the consumer
                await watcher.stop()  # type: ignore[no-untyped-call]


def _change(entry: Any, prefix: str) -> RawChange | None:
    key: str = entry.key
    if not key.startswith(prefix):
        return None
    if entry.operation in (KV_DEL, KV_PURGE):
        return RawChange(key, "delete", b"", entry.revision)
    return RawChange(key, "put", entry.value or b"", entry.revision)


class _Changes:
    """The live changes of a nats-py watcher, after the present values (if asked for)."""

    def __init__(self, watcher: Any, prefix: str, first: list[RawChange]) -> None:
        self._watcher = watcher
        self._prefix = prefix
        self._first = first

    def __aiter__(self) -> _Changes:
        return self

    async def __anext__(self) -> RawChange:
        if self._first:
            return self._first.pop(0)
        while True:
            entry = await self._watcher.__anext__()  # StopAsyncIteration once stopped
            if entry is None:
                continue
            change = _change(entry, self._prefix)
            if change is not None:
                return change


class NatsKvBackend:
    """Buckets on the NATS server of a broker that holds them."""

    name = "nats"

    def __init__(self, broker: KeyValueHolder, where: str) -> None:
        self._broker = broker
        self._where = where

    async def bucket(self, name: str, options: BucketOptions) -> NatsKvBucket:
        kv = await self._broker.key_value(name, history=options.history, replicas=options.replicas)
        return NatsKvBucket(kv, name, self._where)

    async def close(self) -> None:
        """The connection is the broker's, closed with it; watches end when their block does."""
