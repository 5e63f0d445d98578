"""A task group that lives between ``connect()`` and ``close()``.

Brokers and services need background tasks (delivery workers, heartbeats, redelivery timers)
whose lifetime is an object's, not a ``with`` block's. Entering an anyio task group in
``connect()`` would tie it to the caller's cancel-scope stack (and break when two objects are
closed in another order than opened), so the group runs in one host task of its own,
started on ``start()`` and joined on ``aclose()``: nothing is left running or unawaited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.abc

__all__ = ["TaskHost"]


class TaskHost:
    """Owns a task group in a host task; ``start_soon`` spawns into it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._tg: anyio.abc.TaskGroup | None = None
        self._host: asyncio.Task[None] | None = None
        self._stop = anyio.Event()

    @property
    def running(self) -> bool:
        return self._tg is not None and not self._stop.is_set()

    async def start(self) -> None:
        ready = anyio.Event()

        async def host() -> None:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                ready.set()
                await self._stop.wait()
                tg.cancel_scope.cancel()

        self._host = asyncio.get_running_loop().create_task(host(), name=self._name)
        await ready.wait()

    def start_soon(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        if self._tg is None:
            raise RuntimeError(f"{self._name}: start() was not called")
        self._tg.start_soon(func, *args)

    async def aclose(self) -> None:
        """Cancel whatever still runs and wait for it to end."""
        self._stop.set()
        if self._host is not None:
            with anyio.CancelScope(shield=True):
                await asyncio.wait([self._host])
            if not self._host.cancelled() and (exc := self._host.exception()) is not None:
                raise exc
