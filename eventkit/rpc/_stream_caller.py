"""The calling side of streams: open on a node, take frames, keep the stream alive.

A stream is bound to the node the selector picked: the open is a request to that node's
topic (so a node that is gone is known at once where the broker reports no responders, and
the stream moves to another one), and every frame after it goes to that node's stream topic.
Frames from the node come to the caller's one reply inbox, where :class:`~._caller.Caller`
hands them to the stream's :meth:`CallerStream.on_frame` (inline: it only updates state and
wakes a task). One keeper per caller sends heartbeats on idle streams and fails the streams
whose node went silent; the deadlines of all streams share one timer.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio
import pydantic_core
from pydantic import TypeAdapter

from .._tasks import TaskHost
from ..brokers.base import Broker
from ..discovery import NodeInfo, Selector
from ..wire import (
    BadRequest,
    BrokerClosed,
    ConfigError,
    DeadlineExceeded,
    EventKitError,
    Message,
    ServiceUnavailable,
)
from ._context import inherited_deadline, propagated_headers
from ._deadlines import Deadlines
from ._middleware import Invocation, Middleware, Next, compose
from ._protocol import (
    ADDRESS,
    CALLER,
    CALLER_ADDRESS,
    DEADLINE,
    ENDPOINT,
    REPLY_TO,
    STREAM_COUNT,
    STREAM_CREDIT,
    STREAM_FRAME,
    STREAM_HEARTBEAT,
    STREAM_ID,
    STREAM_SEQ,
    STREAM_WINDOW,
    Frame,
    node_topic,
    stream_topic,
)
from ._stream_io import Wakeup, pump
from ._stream_protocol import (
    MAX_HEARTBEAT,
    MAX_WINDOW,
    MIN_HEARTBEAT,
    SILENT_BEATS,
)
from ._stream_state import CallerStream, StreamSpec

__all__ = ["StreamCaller", "stream_spec"]

log = logging.getLogger("eventkit.calls")

ChooseNode = Callable[
    [str, str, str | None, Mapping[str, str] | None, set[str]], Awaitable[NodeInfo]
]
"""``(service, endpoint, version, node_metadata, tried) -> node``; raises ServiceUnavailable."""


class StreamCaller:
    """The streams of one caller (one client): opening, sending, the keeper, deadlines."""

    def __init__(
        self,
        broker: Broker,
        *,
        namespace: str,
        node_id: str,
        inbox_prefix: str,
        streams: dict[str, CallerStream],
        choose: ChooseNode,
        selector: Selector,
        open_timeout: float,
        middleware: Sequence[Middleware] = (),
        headers: Callable[[dict[str, str] | None], dict[str, str]] = propagated_headers,
    ) -> None:
        self.broker = broker
        self.namespace = namespace
        self.node_id = node_id
        self._inbox_prefix = inbox_prefix
        self._streams = streams
        self._choose = choose
        self._selector = selector
        self._open_timeout = open_timeout
        self._outgoing = headers  # what each open starts from (telemetry adds its trace)
        self._ids = itertools.count(1)
        self._prefix = "s" + os.urandom(4).hex()
        self._tasks = TaskHost("eventkit-caller-streams")
        self._started = False
        self._lock = anyio.Lock()
        self._deadlines: Deadlines[CallerStream] = Deadlines(self._expire)
        self._validators: dict[Any, Callable[[bytes], Any]] = {}
        self._changed = Wakeup()
        self._chain: Next | None = compose(middleware, self._open_final) if middleware else None

    async def _start(self) -> None:
        async with self._lock:
            if not self._started:
                await self._tasks.start()
                self._tasks.start_soon(self._keep)
                self._started = True

    async def close(self) -> None:
        """Fail every stream (BrokerClosed), tell their nodes, stop the keeper."""
        states = list(self._streams.values())
        for state in states:
            state.fail(BrokerClosed("the client closed while the stream was open"))
        with anyio.move_on_after(1):
            for state in states:
                await self._cancel_frame(state)
        self._deadlines.close()
        if self._started:
            await self._tasks.aclose()

    def validator(self, response: Any) -> Callable[[bytes], Any]:
        """Reads a frame's body (a JSON array) as a list of ``response`` items."""
        validate = self._validators.get(response)
        if validate is None:
            if response is None:
                validate = pydantic_core.from_json
            else:
                validate = TypeAdapter(list[response]).validator.validate_json
            self._validators[response] = validate
        return validate

    # -- opening ---------------------------------------------------------------------------

    async def open(self, spec: StreamSpec) -> CallerStream:
        """Open ``spec`` on a node (through the middleware); returns once a node accepted."""
        if not self._started:
            await self._start()
        if self._chain is None:
            return await self._open(spec, spec.request, dict(spec.metadata or {}))
        invocation = Invocation(
            "stream_call",
            f"{spec.service}/{spec.endpoint}",
            request=spec.request,
            metadata=dict(spec.metadata or {}),
            options={"spec": spec},
        )
        state: CallerStream = await self._chain(invocation)
        return state

    async def _open_final(self, invocation: Invocation) -> CallerStream:
        return await self._open(invocation.options["spec"], invocation.request, invocation.metadata)

    async def _open(self, spec: StreamSpec, request: Any, metadata: dict[str, str]) -> CallerStream:
        service, endpoint = spec.service, spec.endpoint
        if not 1 <= spec.window <= MAX_WINDOW:
            raise ConfigError(f"window must be from 1 to {MAX_WINDOW} items, got {spec.window}")
        body = pydantic_core.to_json(request)
        headers = self._outgoing(metadata or None)
        headers[ENDPOINT] = endpoint
        headers[CALLER] = self.node_id
        headers[CALLER_ADDRESS] = ADDRESS
        headers[STREAM_WINDOW] = str(spec.window)
        headers[STREAM_HEARTBEAT] = repr(spec.heartbeat)
        if spec.deadline is not None:
            headers[DEADLINE] = repr(spec.deadline)
        tried: set[str] = set()
        while True:
            node = await self._choose(service, endpoint, spec.version, spec.node_metadata, tried)
            for info in node.endpoints:
                if info.name == endpoint and info.stream is None:
                    raise BadRequest(
                        f"{service}/{endpoint} is not a streaming endpoint: call it with "
                        "kit.call()",
                        id=self.node_id,
                    )
            correlation = f"{self._prefix}{next(self._ids)}"
            reply_to = self._inbox_prefix + correlation
            topic = stream_topic(self.namespace, service, node.id)
            state = CallerStream(spec, node.id, reply_to, topic, self.forget)
            self._streams[correlation] = state
            self._selector.acquire(node.id)
            message = Message(
                node_topic(self.namespace, service, node.id), body, {**headers, REPLY_TO: reply_to}
            )
            try:
                await self._accepted(state, message, spec)
            except BaseException:
                self.forget(state)
                raise
            if state.no_responders:
                self.forget(state)
                self._selector.mark_failed(node.id, time.time())
                tried.add(node.id)
                log.debug("%s/%s: nobody took the stream on %s", service, endpoint, node.id)
                continue
            if state.error is not None and not state.accepted:
                raise state.error
            if state.failure is not None:
                raise state.failure
            if spec.deadline is not None and state.live:
                left = spec.deadline - time.time()
                loop_time = anyio.current_time()
                self._deadlines.add(state, loop_time + left)
            self._changed.set()
            return state

    async def _accepted(self, state: CallerStream, message: Message, spec: StreamSpec) -> None:
        """Send the open and wait for the node's first word (or a notice, or a refusal)."""
        bound = max(self._open_timeout, SILENT_BEATS * spec.heartbeat)
        if spec.deadline is not None:
            bound = min(bound, spec.deadline - time.time())
        with anyio.move_on_after(max(bound, 0.0)):
            await self.broker.publish(message)
            state.liveness.last_sent = time.monotonic()
            while not (state.accepted or state.no_responders or state.error or state.failure):
                await state.wake.wait()
            return
        await self._cancel_frame(state)  # it may have opened after all: do not leave it running
        raise DeadlineExceeded(
            f"{spec.service}/{spec.endpoint}: node {state.node_id} did not accept the stream "
            "in time",
            id=self.node_id,
        )

    # -- frames --------------------------------------------------------------------------

    async def frame(self, state: CallerStream, headers: dict[str, str], body: bytes = b"") -> None:
        headers[STREAM_ID] = state.reply_to
        await self.broker.publish(Message(state.topic, body, headers))
        state.liveness.last_sent = time.monotonic()

    async def grant(self, state: CallerStream, credit: int) -> None:
        if state.live:
            await self.frame(state, {STREAM_FRAME: Frame.CREDIT, STREAM_CREDIT: str(credit)})

    async def cancel(self, state: CallerStream) -> None:
        """Give up the stream: the node cancels its handler."""
        was_live = state.live
        state.cancel()
        if was_live:
            await self._cancel_frame(state)

    def abandon(self, state: CallerStream) -> None:
        """The caller's handle was dropped while the stream ran: cancel it in the background."""
        if not state.live:
            return
        state.cancel()
        if self._tasks.running:
            self._tasks.start_soon(self._cancel_frame, state)

    async def _cancel_frame(self, state: CallerStream) -> None:
        try:
            await self.frame(state, {STREAM_FRAME: Frame.CANCEL})
        except EventKitError as exc:
            log.debug("could not cancel stream %s: %s", state.reply_to, exc)

    def start_pump(self, state: CallerStream) -> None:
        if not state.pumping:
            state.pumping = True
            self._tasks.start_soon(self._pump, state)

    async def _pump(self, state: CallerStream) -> None:
        """Send the caller's items as credit allows, then the end (after close_send)."""

        async def send(first: int, count: int, body: bytes) -> None:
            headers = {STREAM_FRAME: Frame.ITEMS, STREAM_SEQ: str(first), STREAM_COUNT: str(count)}
            await self.frame(state, headers, body)

        try:
            limit = self.broker.capabilities.max_payload
            await pump(state.outbound, state.wake_pump, send, limit=limit)
            if state.live:
                await self.frame(
                    state, {STREAM_FRAME: Frame.END, STREAM_SEQ: str(state.outbound.sent)}
                )
        except EventKitError as exc:
            state.fail(exc)
            await self._cancel_frame(state)

    def forget(self, state: CallerStream) -> None:
        """The stream needs nothing more from the network (idempotent)."""
        correlation = state.reply_to.rpartition(".")[2]
        if self._streams.get(correlation) is state:
            del self._streams[correlation]
            self._selector.release(state.node_id)
            self._deadlines.discard(state)

    def node_lost(self, node_id: str, reason: str) -> None:
        """The registry dropped ``node_id`` (not a graceful leave): its streams are gone."""
        for state in list(self._streams.values()):
            if state.node_id == node_id and state.accepted:
                state.fail(
                    ServiceUnavailable(
                        f"{state.service}/{state.endpoint}: node {node_id} stopped answering "
                        f"({reason})",
                        id=self.node_id,
                    )
                )

    def _expire(self, state: CallerStream) -> None:
        if not state.live:
            return
        state.fail(
            DeadlineExceeded(
                f"{state.service}/{state.endpoint}: the stream did not end before its deadline",
                id=self.node_id,
            )
        )
        if self._tasks.running:
            self._tasks.start_soon(self._cancel_frame, state)

    async def _keep(self) -> None:
        """Heartbeats on idle streams; fail the streams whose node went silent."""
        while True:
            states = [s for s in self._streams.values() if s.accepted]
            if not states:
                await self._changed.wait()
                continue
            await anyio.sleep(min(s.liveness.interval for s in states) / 2)
            now = time.monotonic()
            for state in [s for s in self._streams.values() if s.accepted]:
                liveness = state.liveness
                if liveness.silent(now):
                    state.fail(
                        ServiceUnavailable(
                            f"{state.service}/{state.endpoint}: node {state.node_id} went "
                            f"silent (nothing for {SILENT_BEATS * liveness.interval:g}s)",
                            id=self.node_id,
                        )
                    )
                elif liveness.lost(state.inbound, now):
                    state.fail(
                        ServiceUnavailable(
                            f"{state.service}/{state.endpoint}: items from node "
                            f"{state.node_id} were lost on the way",
                            id=self.node_id,
                        )
                    )
                    await self._cancel_frame(state)
                elif liveness.beat_due(now):
                    headers = {
                        STREAM_FRAME: Frame.HEARTBEAT,
                        STREAM_SEQ: str(state.outbound.sent),
                        STREAM_CREDIT: str(state.inbound.granted),
                    }
                    try:
                        await self.frame(state, headers)
                    except EventKitError as exc:
                        log.info("heartbeat on %s failed: %s", state.reply_to, exc)


def stream_spec(
    service: str,
    endpoint: str,
    request: Any,
    response: Any,
    timeout: float | None,
    window: int,
    heartbeat: float,
    metadata: Mapping[str, str] | None,
    version: str | None,
    node_metadata: Mapping[str, str] | None,
) -> StreamSpec:
    """What a stream opens with, its options checked; its deadline is ``timeout`` from now,
    or the handled request's deadline when that is sooner."""
    if not 1 <= window <= MAX_WINDOW:
        raise ConfigError(f"window must be from 1 to {MAX_WINDOW} items, got {window}")
    if not MIN_HEARTBEAT <= heartbeat <= MAX_HEARTBEAT:
        raise ConfigError(
            f"heartbeat must be from {MIN_HEARTBEAT} to {MAX_HEARTBEAT} seconds, got {heartbeat}"
        )
    deadline = None if timeout is None else time.time() + timeout
    inherited = inherited_deadline()
    if inherited is not None and (deadline is None or inherited < deadline):
        deadline = inherited
    return StreamSpec(
        service,
        endpoint,
        request,
        response,
        deadline,
        window,
        heartbeat,
        metadata,
        version,
        node_metadata,
    )
