"""The serving side of streams: open, run the handler under credit, watch the caller.

:class:`RpcServer` hands a request for a streaming endpoint to :meth:`StreamServer.open`,
which answers with an ``accept`` and runs the stream in a task of its own (a stream does not
hold one of the node's request slots). Each stream runs two tasks: the handler's iterator,
resumed only while the caller's credit allows another item, and :func:`~._stream_io.pump`,
which sends what the handler produced. Frames from callers arrive on the node's stream topic,
in an inline handler that only updates state. A keeper sends heartbeats on idle streams and
cancels the handler of a caller that went silent; the deadline cancels it too, and so does a
``cancel`` frame. A cancelled handler's generator is closed, so its ``finally`` runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.lowlevel
import pydantic_core
from pydantic import ValidationError

from .._tasks import TaskHost
from ..brokers.base import Broker, Subscription, being_cancelled, inline
from ..wire import (
    BadRequest,
    DataCodec,
    DeadlineExceeded,
    InternalError,
    Message,
    PayloadTooLarge,
    RemoteError,
    ServiceUnavailable,
    loggable,
)
from ._context import Context, Publisher, current_message
from ._deadlines import Deadlines
from ._middleware import Invocation, Middleware, compose
from ._protocol import (
    CALLER,
    NODE,
    REPLY_TO,
    STREAM_COUNT,
    STREAM_CREDIT,
    STREAM_FRAME,
    STREAM_HEARTBEAT,
    STREAM_ID,
    STREAM_KIND,
    STREAM_SEQ,
    STREAM_WINDOW,
    TOKEN,
    Frame,
    error_reply,
    stream_topic,
)
from ._stream_io import Wakeup, pump
from ._stream_protocol import (
    DEFAULT_HEARTBEAT,
    MAX_BATCH,
    MAX_HEARTBEAT,
    MAX_WINDOW,
    MIN_HEARTBEAT,
    header_int,
)
from ._stream_state import RequestItems, ServedStream, StreamProcedure

__all__ = ["StreamServer"]

log = logging.getLogger("eventkit.rpc")

FLUSH_AFTER = 0.002
"""Seconds a handler may produce items without a pause before they are sent anyway."""


class _Counters:
    __slots__ = ("last_error", "num_errors", "num_requests", "processing_ns")

    def __init__(self) -> None:
        self.num_requests = 0
        self.num_errors = 0
        self.processing_ns = 0
        self.last_error = ""


class StreamServer:
    """Serves one node's streaming endpoints (frames on ``{ns}.rpc.{service}.{node}.stream``)."""

    def __init__(
        self,
        broker: Broker,
        *,
        namespace: str,
        service: str,
        node_id: str,
        procedures: Sequence[StreamProcedure],
        client: Publisher | None = None,
        middleware: Sequence[Middleware] = (),
    ) -> None:
        self.broker = broker
        self.service = service
        self.node_id = node_id
        self.client = client
        self.topic = stream_topic(namespace, service, node_id)
        self.procedures = {p.name: p for p in procedures}
        self._middleware = list(middleware)
        self._items_codec = {p.name: items_codec(p.codec) for p in procedures if p.kind != "server"}
        self._counters = {p.name: _Counters() for p in procedures}
        self._streams: dict[str, ServedStream] = {}
        self._tasks = TaskHost("eventkit-streams")
        self._subscription: Subscription | None = None
        self._deadlines: Deadlines[ServedStream] = Deadlines(lambda s: s.stop("deadline"))
        self._changed = Wakeup()
        self._closing = False

    async def start(self) -> None:
        """Take frames on the node's stream topic and start the keeper (nothing without
        streaming endpoints)."""
        if not self.procedures:
            return
        await self._tasks.start()
        self._subscription = await self.broker.subscribe(self.topic, self._on_frame)
        self._tasks.start_soon(self._keep)

    async def stop(self) -> None:
        """Cut every stream (its caller gets a 503 and may reopen elsewhere), then stop."""
        self._closing = True
        for stream in list(self._streams.values()):
            stream.stop("stopping")
        with anyio.move_on_after(5):
            while self._streams:
                await self._changed.wait()
        if self._subscription is not None:
            await self._subscription.stop()
            self._subscription = None
        self._deadlines.close()
        await self._tasks.aclose()

    def stats(self) -> list[dict[str, Any]]:
        """Per-endpoint counters: streams opened, failed, the last error, time streaming."""
        return [
            {
                "name": name,
                "num_requests": c.num_requests,
                "num_errors": c.num_errors,
                "last_error": c.last_error,
                "processing_time": c.processing_ns,
                "average_processing_time": (
                    c.processing_ns // c.num_requests if c.num_requests else 0
                ),
            }
            for name, c in self._counters.items()
        ]

    # -- opening ---------------------------------------------------------------------------

    async def open(
        self, message: Message, procedure: StreamProcedure, time_left: float | None
    ) -> None:
        """Accept a stream (or answer why not) and start it; returns at once.
        ``time_left``: seconds to the stream's deadline, if it has one."""
        headers = message.headers
        reply_to = headers[REPLY_TO]
        name = procedure.name
        identity = None
        if procedure.guard is not None:  # before anything of the request is read
            try:
                identity = procedure.guard(headers.get(TOKEN))
            except RemoteError as exc:
                await self._refuse(reply_to, exc)
                return
        window = header_int(headers, STREAM_WINDOW)
        if window is None or not 1 <= window <= MAX_WINDOW:
            await self._refuse(
                reply_to,
                BadRequest(
                    f"stream open for {name} has a bad {STREAM_WINDOW} header "
                    f"{headers.get(STREAM_WINDOW)!r}: a number of items from 1 to {MAX_WINDOW}",
                    id=self.service,
                ),
            )
            return
        try:
            heartbeat = float(headers.get(STREAM_HEARTBEAT, DEFAULT_HEARTBEAT))
        except ValueError:
            heartbeat = DEFAULT_HEARTBEAT
        heartbeat = min(max(heartbeat, MIN_HEARTBEAT), MAX_HEARTBEAT)
        if self._closing:
            await self._refuse(
                reply_to, ServiceUnavailable(f"node {self.node_id} is stopping", id=self.service)
            )
            return
        if reply_to in self._streams:
            await self._refuse(
                reply_to, BadRequest(f"stream {reply_to} is already open", id=self.service)
            )
            return
        try:
            request = self._request(procedure, message.body)
        except RemoteError as exc:
            await self._refuse(reply_to, exc)
            return
        stream = ServedStream(procedure, message, reply_to, window, heartbeat, request)
        if procedure.wants_context or self._middleware:
            stream.ctx = Context(
                message,
                node_id=self.node_id,
                service=self.service,
                client=self.client,
                endpoint=name,
                identity=identity,
            )
        accept = {
            STREAM_FRAME: Frame.ACCEPT,
            STREAM_KIND: procedure.kind,
            STREAM_HEARTBEAT: repr(heartbeat),
            NODE: self.node_id,
        }
        if stream.inbound is not None:
            accept[STREAM_CREDIT] = str(stream.inbound.granted)
        self._streams[reply_to] = stream
        self._counters[name].num_requests += 1
        if time_left is not None:
            self._deadlines.add(stream, asyncio.get_running_loop().time() + time_left)
        try:
            await self._send(stream, Message(reply_to, b"", accept))
        except BaseException:
            self._forget(stream)
            raise
        self._tasks.start_soon(self._run, stream)
        self._changed.set()

    def _request(self, procedure: StreamProcedure, body: bytes) -> Any:
        name = procedure.name
        if procedure.kind != "server":
            if body.strip() not in (b"", b"null"):
                raise BadRequest(
                    f"{name} takes its requests as items: open the stream without a request "
                    "and send() them",
                    id=self.service,
                )
            return None
        if procedure.codec is None:
            return None
        try:
            return procedure.codec.from_body(body, True)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False)
            raise BadRequest(
                f"request to {name} is not valid: {exc.error_count()} error(s)",
                id=self.service,
                data=pydantic_core.to_jsonable_python(errors),
            ) from None
        except ValueError as exc:
            raise BadRequest(f"request to {name} is not JSON: {exc}", id=self.service) from None

    async def _refuse(self, reply_to: str, error: RemoteError) -> None:
        await self.broker.publish(error_reply(reply_to, error, self.node_id))

    # -- running ---------------------------------------------------------------------------

    async def _run(self, stream: ServedStream) -> None:
        procedure = stream.procedure
        counters = self._counters[procedure.name]
        started = time.perf_counter_ns()
        error: RemoteError | None = None
        token = current_message.set(stream.message)
        try:
            with stream.scope:
                try:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self._pump, stream)
                        error = await self._handle(stream)
                        stream.outbound.finished = True
                        stream.wake_pump.set()
                except Exception as exc:  # the pump's: a publish or an item that failed
                    error = error or self._send_failure(procedure.name, exc)
                await self._finish(stream, error)
        except Exception as exc:
            log.warning(
                "%s: stream to %s ended: %s", procedure.name, loggable(stream.reply_to), exc
            )
        finally:
            current_message.reset(token)
            reason = stream.reason
            if reason in ("deadline", "stopping", "lost") and not stream.closed:
                error = self._cut_error(stream, reason)
                with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                    try:
                        await self._finish(stream, error)
                    except Exception as exc:
                        log.info("%s: could not tell the caller (%s)", procedure.name, exc)
            elif reason is not None:
                log.info("%s: stream to %s %s", procedure.name, loggable(stream.reply_to), reason)
            counters.processing_ns += time.perf_counter_ns() - started
            if error is not None:
                counters.num_errors += 1
                counters.last_error = str(error)
            self._forget(stream)

    async def _handle(self, stream: ServedStream) -> RemoteError | None:
        """Run the handler (through the middleware) until its items are all produced."""
        procedure = stream.procedure
        name = procedure.name
        request: Any = stream.request
        if stream.inbound is not None:
            request = RequestItems(stream, self._items_codec[name], self.grant)
        try:
            if self._middleware:

                async def final(invocation: Invocation) -> None:
                    await self._produce(stream, invocation.request, invocation.context)

                chain = compose(self._middleware, final)
                await chain(Invocation("stream", name, stream.message, stream.ctx, request))
            else:
                await self._produce(stream, request, stream.ctx)
        except RemoteError as exc:
            if not exc.id:
                exc.id = self.service
            return exc
        except asyncio.CancelledError:
            if being_cancelled():
                raise
            log.error("%s failed: a task it awaited was cancelled", name)
            return InternalError(f"{name} failed: cancelled inside the handler", id=self.service)
        except Exception as exc:
            caller = stream.message.headers.get(CALLER)
            log.exception("%s failed (stream to %s)", name, caller)
            return InternalError(f"{name} failed: {type(exc).__name__}: {exc}", id=self.service)
        return None

    async def _produce(self, stream: ServedStream, request: Any, ctx: Context | None) -> None:
        """Resume the handler for each item only while the caller's credit allows one."""
        iterator = stream.procedure.open(request, ctx)
        next_item = iterator.__anext__
        outbound, credit, wake_pump = stream.outbound, stream.credit, stream.wake_pump
        pending = outbound.pending
        clock = time.monotonic
        burst = 0.0
        try:
            while True:
                while outbound.produced >= outbound.granted:
                    await credit.wait()
                try:
                    item = await next_item()
                except StopAsyncIteration:
                    return
                if not pending:  # the pump waits only on an empty queue: wake it once
                    wake_pump.set()
                    burst = clock()
                pending.append(item)
                outbound.produced += 1
                # A handler that produces without pausing lets the pump send now and then.
                if len(pending) >= MAX_BATCH or clock() - burst > FLUSH_AFTER:
                    await anyio.lowlevel.checkpoint()
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _pump(self, stream: ServedStream) -> None:
        reply_to = stream.reply_to

        async def send(first: int, count: int, body: bytes) -> None:
            headers = {STREAM_FRAME: Frame.ITEMS, STREAM_SEQ: str(first), STREAM_COUNT: str(count)}
            await self._send(stream, Message(reply_to, body, headers))

        limit = self.broker.capabilities.max_payload
        await pump(stream.outbound, stream.wake_pump, send, limit=limit)

    async def _finish(self, stream: ServedStream, error: RemoteError | None) -> None:
        """The last frame: ``end`` after every item, or ``error`` with the items sent."""
        last = str(stream.outbound.sent)
        if error is None:
            message = Message(stream.reply_to, b"", {STREAM_FRAME: Frame.END, STREAM_SEQ: last})
        else:
            message = error_reply(stream.reply_to, error, self.node_id)
            message.headers[STREAM_FRAME] = Frame.ERROR
            message.headers[STREAM_SEQ] = last
        await self._send(stream, message)
        stream.closed = True

    def _send_failure(self, name: str, exc: Exception) -> RemoteError:
        leaf: BaseException = exc
        while isinstance(leaf, BaseExceptionGroup) and leaf.exceptions:
            leaf = leaf.exceptions[0]
        if isinstance(leaf, pydantic_core.PydanticSerializationError):
            log.error("%s yielded an item that is not JSON-serializable: %s", name, leaf)
            return InternalError(f"{name} yielded an item that is not JSON-serializable")
        if isinstance(leaf, PayloadTooLarge):
            log.error("%s: %s", name, leaf)
            return InternalError(f"{name} yielded an item too large for the broker: {leaf}")
        raise exc  # the broker failed: nothing more can reach the caller

    def _cut_error(self, stream: ServedStream, reason: str) -> RemoteError:
        name = stream.procedure.name
        if reason == "deadline":
            log.warning("%s: stream cut at the caller's deadline", name)
            return DeadlineExceeded(f"{name} did not finish within the caller's deadline")
        if reason == "lost":
            return ServiceUnavailable(f"{name}: request items were lost on the way")
        return ServiceUnavailable(f"node {self.node_id} stopped while {name} streamed")

    def _forget(self, stream: ServedStream) -> None:
        if self._streams.get(stream.reply_to) is stream:
            del self._streams[stream.reply_to]
        self._deadlines.discard(stream)
        self._changed.set()

    async def _send(self, stream: ServedStream, message: Message) -> None:
        await self.broker.publish(message)
        stream.liveness.last_sent = time.monotonic()

    async def grant(self, stream: ServedStream, credit: int) -> None:
        """Tell the caller it may send items up to ``credit``."""
        headers = {STREAM_FRAME: Frame.CREDIT, STREAM_CREDIT: str(credit)}
        await self._send(stream, Message(stream.reply_to, b"", headers))

    # -- frames from callers, and the keeper -------------------------------------------

    async def _on_frame(self, message: Message) -> None:
        headers = message.headers
        stream = self._streams.get(headers.get(STREAM_ID, ""))
        if stream is None:
            return  # a stream that ended (or never was): nothing to do
        stream.liveness.last_heard = time.monotonic()
        credit = header_int(headers, STREAM_CREDIT)
        if credit is not None and stream.outbound.grant(credit):
            stream.credit.set()
        kind = headers.get(STREAM_FRAME)
        inbound = stream.inbound
        seq = header_int(headers, STREAM_SEQ)
        if kind == Frame.ITEMS and inbound is not None and seq is not None:
            count = header_int(headers, STREAM_COUNT) or 0
            if inbound.add(seq, count, message.body):
                stream.items.set()
            elif inbound.refused == 1 and count:
                log.warning("%s: caller sent items beyond its credit", stream.procedure.name)
        elif kind == Frame.END and inbound is not None and seq is not None:
            inbound.finish(seq)
            stream.items.set()
        elif kind == Frame.HEARTBEAT and inbound is not None and seq is not None:
            inbound.sender_at(seq)
        elif kind == Frame.CANCEL:
            stream.stop("cancelled")

    async def _keep(self) -> None:
        """Heartbeats on idle streams; cut streams whose caller went silent."""
        while True:
            streams = list(self._streams.values())
            if not streams:
                await self._changed.wait()
                continue
            await anyio.sleep(min(s.liveness.interval for s in streams) / 2)
            now = time.monotonic()
            for stream in list(self._streams.values()):
                if stream.reason is not None:
                    continue
                liveness = stream.liveness
                if liveness.silent(now):
                    stream.stop("caller-gone")
                elif liveness.lost(stream.inbound, now):
                    stream.stop("lost")
                elif liveness.beat_due(now):
                    headers = {STREAM_FRAME: Frame.HEARTBEAT, STREAM_SEQ: str(stream.outbound.sent)}
                    if stream.inbound is not None:
                        headers[STREAM_CREDIT] = str(stream.inbound.granted)
                    try:
                        await self._send(stream, Message(stream.reply_to, b"", headers))
                    except Exception as exc:
                        log.info("heartbeat to %s failed: %s", loggable(stream.reply_to), exc)


def items_codec(codec: DataCodec | None) -> DataCodec:
    """Reads a frame's body, a JSON array, as a list of what ``codec`` reads."""
    item_type: Any = Any if codec is None else codec.type
    return DataCodec(list[item_type])


# It only updates state and wakes tasks: it never suspends and never raises.
inline(StreamServer._on_frame)  # type: ignore[arg-type]
