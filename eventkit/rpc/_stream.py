"""The caller's handle on one stream: iterate the items, send items, close, cancel.

``kit.stream(...)`` returns a :class:`Stream` at once; it opens on first use (the first
``__anext__``, ``send()`` or ``async with``). An item counts as taken when the reader comes
back for the next one, and taking grants the node more credit (once half the window was
taken), so a reader that stops, or is slow with each item, holds the node's handler to at
most one window ahead of it. A handle dropped while its stream runs (a ``break`` out of
``async for``) cancels the stream, so the node's handler never outlives the loop that read it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import anyio
from pydantic import ValidationError

from ..wire import RemoteError, StreamClosed
from ._stream_caller import StreamCaller
from ._stream_state import CallerStream, StreamSpec

__all__ = ["Stream"]

T = TypeVar("T")


class Stream(Generic[T]):
    """One stream of a streaming endpoint, as its caller holds it.

    - ``async for item in stream``: the node's items, in order, validated as ``response``.
      The iteration ends when the node ends the stream; a node's error is raised after the
      items it sent before it (a typed :class:`RemoteError`); a node that goes silent for
      three heartbeats raises :class:`ServiceUnavailable`; the deadline
      :class:`DeadlineExceeded`.
    - ``await stream.send(item)``: one item to a client or bidi stream; it waits while the
      node's credit is used up (so a slow handler slows the sender, and memory stays bounded).
    - ``await stream.close_send()``: no more items (the handler's iterator ends).
    - ``await stream.cancel()``: give up; the node cancels its handler. Leaving
      ``async with`` does it too when the stream has not ended.
    """

    __slots__ = (
        "_caller",
        "_decode",
        "_held",
        "_index",
        "_items",
        "_lock",
        "_send_closed",
        "_spec",
        "_state",
    )

    def __init__(self, caller: StreamCaller, spec: StreamSpec) -> None:
        self._caller = caller
        self._spec = spec
        self._state: CallerStream | None = None
        self._decode: Callable[[bytes], Any] = caller.validator(spec.response)
        self._items: list[Any] = []
        self._index = 0
        self._held = False
        """An item was handed out and not yet counted as taken (it is, on the next call)."""
        self._lock = anyio.Lock()
        self._send_closed = False

    @property
    def node(self) -> str | None:
        """The node serving the stream, once it is open."""
        return None if self._state is None else self._state.node_id

    async def open(self) -> Self:
        """Open the stream now (it also opens on first use)."""
        await self._open()
        return self

    async def _open(self) -> CallerStream:
        state = self._state
        if state is None:
            async with self._lock:
                state = self._state
                if state is None:
                    state = self._state = await self._caller.open(self._spec)
        return state

    # -- reading ---------------------------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        state = self._state
        if self._held:
            # The item handed out last time is done with now: it counts toward the credit.
            self._held = False
            assert state is not None
            inbound = state.inbound
            inbound.taken += 1
            if inbound.taken >= inbound.grant_at:
                grant = inbound.credit_due()
                if grant is not None:
                    await self._caller.grant(state, grant)
        index = self._index
        if index < len(self._items):
            assert state is not None
            if state.failure is not None:
                raise state.failure
            self._index = index + 1
            self._held = True
            item: T = self._items[index]
            return item
        return await self._next_batch()

    async def _next_batch(self) -> T:
        state = self._state or await self._open()
        inbound = state.inbound
        while True:
            if state.failure is not None:
                raise state.failure
            if inbound.batches:
                count, body = inbound.batches.popleft()
                try:
                    items = self._decode(body)
                except ValidationError:
                    await self._caller.cancel(state)
                    raise
                if not isinstance(items, list) or len(items) != count:
                    await self._caller.cancel(state)
                    raise RemoteError(
                        f"{state.service}/{state.endpoint}: a frame from node {state.node_id} "
                        f"does not hold the {count} items it says",
                        id=state.service,
                        code=502,
                    )
                self._items, self._index = items, 0
                return await self.__anext__()
            if inbound.complete:
                if state.error is not None:
                    raise state.error
                raise StopAsyncIteration
            if state.cancelled:
                raise StopAsyncIteration
            await state.wake.wait()

    # -- sending ---------------------------------------------------------------------------

    async def send(self, item: Any) -> None:
        """Send one item (a client or bidi stream); waits while the node's credit is used up.

        Raises :class:`StreamClosed` after ``close_send()`` or ``cancel()``, or once the node
        ended the stream (its error, if it failed).
        """
        state = self._state or await self._open()
        outbound = state.outbound
        while True:
            if self._send_closed:
                raise StreamClosed(
                    f"{state.endpoint}: close_send() was called; the stream takes no more items"
                )
            if state.failure is not None:
                raise state.failure
            if state.cancelled:
                raise StreamClosed(f"{state.endpoint}: the stream was cancelled")
            if state.kind == "server":
                raise StreamClosed(
                    f"{state.endpoint} streams to the caller only: it takes its one request "
                    "when the stream opens, not items"
                )
            if state.inbound.end is not None:
                if state.error is not None:
                    raise state.error
                raise StreamClosed(f"{state.endpoint} ended the stream; it takes no more items")
            if outbound.room():
                break
            await state.credit.wait()
        outbound.push(item)
        self._caller.start_pump(state)
        state.wake_pump.set()

    async def close_send(self) -> None:
        """No more items from this side: the handler's iterator of items ends."""
        state = self._state or await self._open()
        if self._send_closed or state.kind == "server":
            return
        self._send_closed = True
        state.outbound.finished = True
        self._caller.start_pump(state)
        state.wake_pump.set()

    # -- ending ----------------------------------------------------------------------------

    async def cancel(self) -> None:
        """Give up the stream: the node cancels its handler (whose ``finally`` runs), and
        iteration here ends (items already taken in are dropped)."""
        self._items, self._index, self._held = [], 0, False
        if self._state is not None:
            await self._caller.cancel(self._state)

    async def aclose(self) -> None:
        """Cancel the stream unless it ended."""
        await self.cancel()

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await self.aclose()

    def __del__(self) -> None:
        state = getattr(self, "_state", None)
        if state is not None and state.live:
            # Without an event loop any more, the node's keeper notices the silence instead.
            with contextlib.suppress(RuntimeError):
                self._caller.abandon(state)
