"""How adapters run handlers: guarding against stray cancellations, inline handlers,
stopping subscriptions together, and the log of messages handlers failed on. Re-exported by
:mod:`eventkit.brokers.base`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import anyio

from ..wire import LogLimiter, Message, loggable

__all__ = [
    "FailureLog",
    "being_cancelled",
    "guarded",
    "inline",
    "is_inline",
    "run_inline",
    "stop_all",
]

log = logging.getLogger("eventkit.broker")

_Handler = Callable[[Message], Awaitable[None]]


class _Stoppable(Protocol):
    async def stop(self) -> None: ...


async def stop_all(subscriptions: Iterable[_Stoppable]) -> None:
    """Stop subscriptions concurrently (each drains), so their drain times do not add up."""
    async with anyio.create_task_group() as tg:
        for subscription in subscriptions:
            tg.start_soon(subscription.stop)


def being_cancelled() -> bool:
    """Whether the running task itself is being cancelled (a stop, a deadline), as opposed
    to a handler letting out a CancelledError of something it awaited."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def guarded(handler: _Handler) -> _Handler:
    """``handler``, with a CancelledError that escapes it turned into an ordinary failure.

    A handler that awaits something another task cancelled lets a CancelledError out. Left
    alone it would end the adapter's delivery task (the subscription, or the whole broker);
    as a failure it is logged, and a durable message is redelivered. A cancellation of the
    delivering task itself (a stop, a drain timeout) still passes through.
    """
    if getattr(handler, "_eventkit_guarded", False) or is_inline(handler):
        return handler  # guards itself, or never awaits anything that could be cancelled

    async def run(message: Message) -> None:
        try:
            await handler(message)
        except asyncio.CancelledError as exc:
            if being_cancelled():
                raise
            raise RuntimeError("the handler let a cancellation escape") from exc

    run._eventkit_guarded = True  # type: ignore[attr-defined]
    return run


def inline(handler: _Handler) -> _Handler:
    """Mark ``handler`` as one that never suspends and never raises (it only resolves a
    future, say), so that a broker may call it in its connection's read loop instead of
    handing the message to a task. eventkit's RPC reply inbox is one."""
    handler._eventkit_inline = True  # type: ignore[attr-defined]
    return handler


def is_inline(handler: _Handler) -> bool:
    return bool(getattr(handler, "_eventkit_inline", False))


def run_inline(handler: _Handler, message: Message) -> None:
    """Call an :func:`inline` handler to completion now, in the caller's task. One that
    breaks its promise (it suspends or raises) is logged, never the caller's failure."""
    coroutine: Any = handler(message)
    try:
        coroutine.send(None)
    except StopIteration:
        return
    except Exception as exc:
        log.error(
            "inline handler for %s failed: %s: %s",
            loggable(message.topic),
            type(exc).__name__,
            loggable(exc, quote=False),
        )
        return
    coroutine.close()
    log.error("inline handler for %s suspended; message dropped", loggable(message.topic))


class FailureLog:
    """An adapter's lines about messages its handlers failed on: one line per message, with
    the topic and reason escaped and bounded (a reason may quote what a sender wrote), and
    rate-limited, so a flood of bad messages is a count per interval, not a line each."""

    __slots__ = ("_dead", "_dropped")

    def __init__(self, logger: logging.Logger) -> None:
        self._dropped = LogLimiter(logger, "failed messages dropped")
        self._dead = LogLimiter(logger, "messages dead-lettered")

    def dropped(self, message: Message, reason: str) -> None:
        """A non-durable message whose handler failed (or dead-lettered it): gone."""
        self._dropped.warning(
            "handler for %s failed, message dropped: %s",
            loggable(message.topic),
            loggable(reason, quote=False),
        )

    def dead_lettered(self, message: Message, reason: str, durable: str | None = None) -> None:
        """A durable message moved to its dead-letter topic."""
        self._dead.warning(
            "dead-lettering message on %s%s after %d attempt(s): %s",
            loggable(message.topic),
            "" if durable is None else f" for durable {loggable(durable)}",
            message.attempt,
            loggable(reason, quote=False),
        )
