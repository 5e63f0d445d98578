r"""The state of one stream at each end, updated by frames and read by the tasks around it.

A caller keeps a :class:`CallerStream` per stream it opened (what it asked for is a
:class:`StreamSpec`); a server keeps a :class:`ServedStream` per stream it runs, whose
handler is a :class:`StreamProcedure` and iterates the caller's items as
:class:`RequestItems`. Frames update the state without suspending (they arrive in a broker's
read loop); the tasks that wait on it are woken through :class:`~._stream_io.Wakeup`\ s.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import pydantic_core
from pydantic import ValidationError

from ..auth import Guard
from ..wire import BadRequest, DataCodec, Message, RemoteError
from ._context import Context
from ._protocol import (
    NO_RESPONDERS,
    STREAM_COUNT,
    STREAM_CREDIT,
    STREAM_FRAME,
    STREAM_HEARTBEAT,
    STREAM_KIND,
    STREAM_SEQ,
    Frame,
    read_error,
)
from ._stream_io import Wakeup
from ._stream_protocol import (
    DEFAULT_WINDOW,
    MAX_HEARTBEAT,
    MIN_HEARTBEAT,
    Inbound,
    Liveness,
    Outbound,
    StreamKind,
    header_int,
)

__all__ = ["CallerStream", "RequestItems", "ServedStream", "StreamProcedure", "StreamSpec"]


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """What a caller asked for: the endpoint, the request, the item type and the options."""

    service: str
    endpoint: str
    request: Any
    response: Any
    deadline: float | None
    window: int
    heartbeat: float
    metadata: Mapping[str, str] | None = None
    version: str | None = None
    node_metadata: Mapping[str, str] | None = None


class CallerStream:
    """One open stream as its caller keeps it: numbering, credit, liveness, the outcome."""

    __slots__ = (
        "accepted",
        "cancelled",
        "credit",
        "endpoint",
        "error",
        "failure",
        "forget",
        "inbound",
        "kind",
        "liveness",
        "no_responders",
        "node_id",
        "outbound",
        "pumping",
        "reply_to",
        "service",
        "topic",
        "wake",
        "wake_pump",
    )

    def __init__(
        self,
        spec: StreamSpec,
        node_id: str,
        reply_to: str,
        topic: str,
        forget: Callable[[CallerStream], None],
    ) -> None:
        self.forget = forget
        """Called when the stream needs nothing more from the network."""
        self.service = spec.service
        self.endpoint = spec.endpoint
        self.node_id = node_id
        self.reply_to = reply_to
        self.topic = topic
        self.inbound = Inbound(spec.window)
        self.outbound = Outbound()
        self.liveness = Liveness(spec.heartbeat, time.monotonic())
        self.wake = Wakeup()
        """The reader (and the opener): items, the end, an error, a failure."""
        self.credit = Wakeup()
        """Senders: credit, or anything that ends sending."""
        self.wake_pump = Wakeup()
        self.pumping = False
        self.kind: str | None = None
        self.accepted = False
        self.no_responders = False
        self.error: RemoteError | None = None
        """The server's error: raised once the items sent before it were taken."""
        self.failure: BaseException | None = None
        """A local failure (deadline, silence, closed client): raised at once."""
        self.cancelled = False

    @property
    def live(self) -> bool:
        """The other side may still send or expect something."""
        return self.failure is None and not self.cancelled and not self.inbound.complete

    def on_frame(self, message: Message) -> None:
        """A message on the stream's reply topic (called inline by the caller's inbox)."""
        headers = message.headers
        self.liveness.last_heard = time.monotonic()
        inbound = self.inbound
        kind = headers.get(STREAM_FRAME)
        if kind is None:  # a plain reply to the open: a no-responders notice, or a refusal
            if headers.get(NO_RESPONDERS):
                self.no_responders = True
            else:
                self.error = read_error(message)
                inbound.finish(0)
                self.forget(self)
            self.wake.set()
            return
        if not self.accepted:
            self.accepted = True
            self.wake.set()
        credit = header_int(headers, STREAM_CREDIT)
        if credit is not None and self.outbound.grant(credit):
            self.credit.set()
        seq = header_int(headers, STREAM_SEQ)
        if kind == Frame.ITEMS:
            count = header_int(headers, STREAM_COUNT) or 0
            if seq is not None and inbound.add(seq, count, bytes(message.body)):
                self.wake.set()
        elif kind == Frame.ACCEPT:
            self.kind = headers.get(STREAM_KIND)
            try:
                interval = float(headers.get(STREAM_HEARTBEAT, ""))
                self.liveness.interval = min(max(interval, MIN_HEARTBEAT), MAX_HEARTBEAT)
            except ValueError:
                pass
            self.credit.set()
        elif kind == Frame.END or kind == Frame.ERROR:
            if kind == Frame.ERROR:
                self.error = read_error(message)
            inbound.finish(seq or 0)
            self.wake.set()
            self.credit.set()
        elif kind == Frame.HEARTBEAT and seq is not None:
            inbound.sender_at(seq)
        if inbound.end is not None and inbound.complete:
            self.forget(self)  # the server is done with it: no more heartbeats

    def fail(self, failure: BaseException) -> None:
        """End the stream here with ``failure`` (the reader and senders raise it)."""
        if self.failure is None and not self.cancelled:
            self.failure = failure
        self._stop()

    def cancel(self) -> None:
        self.cancelled = True
        self._stop()

    def _stop(self) -> None:
        self.outbound.finished = True
        self.outbound.pending.clear()
        self.forget(self)
        self.wake.set()
        self.credit.set()
        self.wake_pump.set()


@dataclass(frozen=True, slots=True)
class StreamProcedure:
    """A streaming endpoint as the server runs it.

    ``open(request, ctx)`` returns the iterator of response items: for a ``server`` stream
    ``request`` is the decoded request, for ``client`` and ``bidi`` streams it is the async
    iterator of the caller's items (a ``client`` stream yields its one reply). ``codec``
    reads the request, or each request item (None: the handler takes no request).
    ``window``: how many request items the server takes in before the caller must wait.
    ``guard`` checks the opening request's token before anything is read (None: no check).
    """

    name: str
    kind: StreamKind
    codec: DataCodec | None
    open: Callable[[Any, Context | None], AsyncIterator[Any]]
    wants_context: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    window: int = DEFAULT_WINDOW
    guard: Guard | None = None


class ServedStream:
    """One stream as the server runs it: the caller's credit, the request items, the reason
    it was cut."""

    __slots__ = (
        "closed",
        "credit",
        "ctx",
        "inbound",
        "items",
        "liveness",
        "message",
        "outbound",
        "procedure",
        "reason",
        "reply_to",
        "request",
        "scope",
        "wake_pump",
    )

    def __init__(
        self,
        procedure: StreamProcedure,
        message: Message,
        reply_to: str,
        window: int,
        heartbeat: float,
        request: Any,
    ) -> None:
        self.procedure = procedure
        self.message = message
        self.reply_to = reply_to
        self.request = request
        self.ctx: Context | None = None
        self.outbound = Outbound(window)
        self.inbound = Inbound(procedure.window) if procedure.kind != "server" else None
        self.liveness = Liveness(heartbeat, time.monotonic())
        self.credit = Wakeup()
        self.items = Wakeup()
        self.wake_pump = Wakeup()
        self.scope = anyio.CancelScope()
        self.closed = False
        """The last frame (end or error) was sent."""
        self.reason: str | None = None
        """Why the stream was cut: ``cancelled``, ``caller-gone``, ``lost``, ``deadline``,
        ``stopping`` (None while it runs on its own)."""

    def stop(self, reason: str) -> None:
        if self.reason is None and not self.closed:
            self.reason = reason
            self.scope.cancel()


class RequestItems:
    """The items a caller sends on a client or bidi stream, as its handler iterates them.

    An item counts as taken when the handler comes back for the next one; once half the
    window was taken, the server grants the caller more credit. Items that fail the
    endpoint's model raise :class:`BadRequest`.
    """

    __slots__ = ("_codec", "_grant", "_held", "_index", "_items", "_stream")

    def __init__(
        self,
        stream: ServedStream,
        codec: DataCodec,
        grant: Callable[[ServedStream, int], Awaitable[None]],
    ) -> None:
        self._grant = grant
        self._stream = stream
        self._codec = codec
        self._items: list[Any] = []
        self._index = 0
        self._held = False

    def __aiter__(self) -> RequestItems:
        return self

    async def __anext__(self) -> Any:
        stream = self._stream
        inbound = stream.inbound
        assert inbound is not None
        if self._held:  # the item handed out last time is done with: it counts as taken
            self._held = False
            inbound.taken += 1
            grant = inbound.credit_due()
            if grant is not None:
                await self._grant(stream, grant)
        while self._index >= len(self._items):
            if inbound.batches:
                count, body = inbound.batches.popleft()
                self._items, self._index = self._decode(body, count), 0
            elif inbound.complete:
                raise StopAsyncIteration
            else:
                await stream.items.wait()
        item = self._items[self._index]
        self._index += 1
        self._held = True
        return item

    def _decode(self, body: bytes, count: int) -> list[Any]:
        name = self._stream.procedure.name
        try:
            items = self._codec.from_body(body, True)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False)
            raise BadRequest(
                f"request items to {name} are not valid: {exc.error_count()} error(s)",
                data=pydantic_core.to_jsonable_python(errors),
            ) from None
        except ValueError as exc:
            raise BadRequest(f"request items to {name} are not JSON: {exc}") from None
        if not isinstance(items, list) or len(items) != count:
            raise BadRequest(f"a frame of request items to {name} does not hold {count} items")
        return items
