"""What both ends of a stream do the same way with I/O: wake a waiting task, pump items out.

A stream's producer (the handler's generator on a server, ``send()`` on a caller) hands items
to an :class:`~._stream_protocol.Outbound`; :func:`pump` takes whatever has piled up and sends
it as one frame. While a frame is on its way (a RabbitMQ confirm, an HTTP POST), the next
items pile up, so a fast producer fills frames and a slow one sends each item at once: the
batching adapts to the broker with no timer and no added latency.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from ._stream_protocol import BATCH_BYTES, MAX_BATCH, Outbound, encode_batches

__all__ = ["Wakeup", "pump"]


class Wakeup:
    """A wake-up that can be waited for again after it fired (an anyio Event per round).

    ``set()`` with nobody waiting costs an attribute read: producers call it per item.
    Waiters check their condition before :meth:`wait`, with no await in between, so no
    wake-up is lost.
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: anyio.Event | None = None

    def set(self) -> None:
        event = self._event
        if event is not None:
            self._event = None
            event.set()

    async def wait(self) -> None:
        event = self._event
        if event is None:
            event = self._event = anyio.Event()
        await event.wait()


async def pump(
    outbound: Outbound,
    wake: Wakeup,
    send: Callable[[int, int, bytes], Awaitable[None]],
    *,
    limit: int | None,
) -> None:
    """Send ``outbound``'s items as they come, batched, until it is finished and empty.

    ``send(first, count, body)`` publishes one frame; ``limit`` is the broker's largest body
    (a batch over it, or over :data:`BATCH_BYTES`, is split; one item over it fails in
    ``send`` with the broker's PayloadTooLarge).
    """
    bound = BATCH_BYTES if limit is None else min(limit, BATCH_BYTES)
    while True:
        if outbound.pending:
            first, items = outbound.take(MAX_BATCH)
            for count, body in encode_batches(items, bound):
                await send(first, count, body)
                first += count
        elif outbound.finished:
            return
        else:
            await wake.wait()
