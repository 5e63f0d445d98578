"""Delivery to a subscriber: the broker-level handler a Service builds for each one at start.

Decoding is decided at definition (the subscriber's :class:`~eventkit.wire.Decoder`), the
middleware chain composed once; per message the handler decodes, runs the function (through
the chain, if any), counts, and turns every failure into a log line, and on a durable
subscription into a redelivery or a dead letter, so a handler's failure never ends the
subscription.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..auth import Guard
from ..brokers import MessageHandler
from ..brokers.base import being_cancelled
from ..rpc import TOKEN, Context, Invocation, Middleware, Publisher, compose, current_message
from ..wire import (
    DeadLetter,
    InvalidEvent,
    LogLimiter,
    Message,
    RemoteError,
    event_id_of,
    loggable,
)
from ._foreign import explain_invalid
from ._router import Subscriber

__all__ = ["ServiceStats", "subscriber_handler"]

log = logging.getLogger("eventkit.service")
_REASON_LIMIT = 1000  # characters of an invalid event's reason that are logged or sent on


@dataclass
class ServiceStats:
    """Counters of what the service's subscribers saw (cheap: one increment per message)."""

    received: int = 0
    handled: int = 0
    failed: int = 0
    invalid: int = 0
    refused: int = 0
    """Events whose sender's token was missing, bad or short of a scope (never handled)."""


def subscriber_handler(
    sub: Subscriber,
    *,
    decode: Callable[[Message], Any] | None,
    node_id: str,
    service: str,
    client: Publisher | None,
    middleware: Sequence[Middleware],
    stats: ServiceStats,
    failed: Callable[[BaseException], None] | None = None,
    invalid_log: LogLimiter | None = None,
    guard: Guard | None = None,
) -> MessageHandler:
    """The handler for ``sub``. ``decode`` reads a message into the handler's data (None:
    the handler takes none); ``failed`` (telemetry's, when on) hears of each failure the
    handler deals with itself.

    An invalid event is one log line through ``invalid_log`` (rate-limited: a flood is a
    count per interval), the values it quotes escaped and bounded; on a durable
    subscription that line is the broker's dead-letter line, and the reason (bounded: it
    travels in a header) goes with the dead letter.

    ``guard`` checks the sender's token before anything is decoded: a refused event is
    never given to the handler; it is counted (``stats.refused``) and logged the same way
    (the reason, never the token), and on a durable subscription dead-lettered at once
    (retrying cannot make a token valid; the dead letter keeps it for a replay)."""
    limiter = invalid_log or LogLimiter(log, "invalid events")
    refusals = LogLimiter(log, f"refused events on {sub.topic}")
    signature = sub.signature
    durable = sub.durable is not None
    wants_context = signature.context_param is not None or bool(middleware)
    func = signature.caller()
    arrange = signature.arrange
    chain = None
    if middleware:
        # Middleware sees the decoded data (or Event) as ``request``, as it does for
        # endpoints, and may replace it: the handler gets what the chain passes on.
        async def final(invocation: Invocation) -> Any:
            return await func(*arrange(invocation.request, invocation.context))

        chain = compose(middleware, final)

    name = service
    # The common handler takes the data (or Event) alone: decode straight into its one
    # argument, without the general arrangement of data and Context.
    data_only = signature.data_only

    async def on_message(message: Message) -> None:
        stats.received += 1
        identity = None
        if guard is not None:
            try:
                identity = guard(message.headers.get(TOKEN))
            except RemoteError as exc:
                stats.refused += 1
                if failed is not None:
                    failed(exc)
                reason = loggable(f"{exc.code} {exc.status}: {exc.detail}", quote=False)
                if durable:
                    raise DeadLetter(f"refused: {reason}") from None
                refusals.warning(
                    "%s: refused an event on %s: %s",
                    signature.name,
                    loggable(message.topic),
                    reason,
                )
                return
        ctx = (
            Context(message, node_id=node_id, service=name, client=client, identity=identity)
            if wants_context
            else None
        )
        try:
            data = decode(message) if decode is not None else None
        except InvalidEvent as exc:
            stats.invalid += 1
            why = explain_invalid(exc, message, sub.accept)
            reason = loggable(why, quote=False, limit=_REASON_LIMIT)
            if failed is not None:
                failed(exc)
            if durable:
                raise DeadLetter(f"invalid event: {reason}") from None
            limiter.warning(
                "%s: invalid event on %s: %s", signature.name, loggable(message.topic), reason
            )
            return
        token = current_message.set(message)
        try:
            if chain is not None:
                await chain(Invocation("subscriber", sub.topic, message, ctx, data))
            elif data_only:
                await func(data)
            else:
                await func(*arrange(data, ctx))
        except asyncio.CancelledError as exc:
            if being_cancelled():
                raise
            stats.failed += 1  # the handler's own cancelled await: a failure like any
            log.error(
                "%s failed on %s: a task it awaited was cancelled",
                signature.name,
                loggable(message.topic),
            )
            if failed is not None:
                failed(exc)
            if durable:
                raise RuntimeError("the handler was cancelled from inside") from exc
        except DeadLetter as exc:
            stats.failed += 1
            if failed is not None:
                failed(exc)
            raise
        except Exception as exc:
            stats.failed += 1
            if failed is not None:
                failed(exc)
            log.exception(
                "%s failed on %s (event %s, attempt %d)",
                signature.name,
                loggable(message.topic),
                loggable(event_id_of(message)),
                message.attempt,
            )
            if durable:
                raise
        else:
            stats.handled += 1
        finally:
            current_message.reset(token)

    on_message._eventkit_guarded = True  # type: ignore[attr-defined]  # it guards itself
    return on_message
