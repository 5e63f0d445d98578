"""The serving side of RPC: requests in, replies out, handlers cancelled at the deadline.

The server knows endpoints as plain values (:class:`Procedure`: a name, the codec of its
request, the function to run), so it is independent of how a service reads its handlers'
signatures. Wire details are in :mod:`._protocol`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pydantic_core
from pydantic import ValidationError

from ..auth import Guard, Identity
from ..brokers.base import (
    Broker,
    DeliveryPolicy,
    MessageHandler,
    Subscription,
    being_cancelled,
    stop_all,
)
from ..wire import (
    BadRequest,
    DataCodec,
    DeadlineExceeded,
    InternalError,
    InvalidTopic,
    LogLimiter,
    Message,
    NotFound,
    PayloadTooLarge,
    RemoteError,
    loggable,
)
from ._context import Context, Publisher, current_message
from ._deadlines import Deadlines
from ._middleware import Invocation, Middleware, Next, compose
from ._protocol import (
    CALLER,
    DEADLINE,
    ENDPOINT,
    REPLY_TO,
    STREAM_WINDOW,
    TOKEN,
    endpoint_topic,
    error_reply,
    node_topic,
    service_topic,
)
from ._stream_server import StreamServer
from ._stream_state import StreamProcedure

__all__ = ["Procedure", "RequestObserver", "RpcServer"]

log = logging.getLogger("eventkit.rpc")


@dataclass(frozen=True, slots=True)
class Procedure:
    """An endpoint as the server runs it.

    ``call(request, ctx)`` runs the handler with the decoded request (and the Context, None
    when ``wants_context`` is false and no middleware needs one). ``codec`` reads the request
    body (None: the handler takes no request). ``guard`` checks the request's token before
    its body is read (:meth:`eventkit.auth.Auth.guard`; None: no check).
    """

    name: str
    codec: DataCodec | None
    call: Callable[[Any, Context | None], Awaitable[Any]]
    wants_context: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    guard: Guard | None = None


class RequestObserver(Protocol):
    """Telemetry around requests (:mod:`eventkit.observability`): ``wrap`` is called once
    at start with the request handler; ``failed`` with each error the server replies."""

    def wrap(self, handler: MessageHandler) -> MessageHandler: ...

    def failed(self, error: BaseException) -> None: ...


class _Served:
    """One endpoint, ready to call: decoding decided at start, middleware composed once."""

    __slots__ = (
        "codec",
        "guard",
        "invoke",
        "last_error",
        "num_errors",
        "num_requests",
        "procedure",
        "processing_ns",
        "wants_context",
    )

    def __init__(self, procedure: Procedure, chain: Callable[[Next], Next] | None) -> None:
        self.procedure = procedure
        self.codec = procedure.codec
        self.guard = procedure.guard
        # Counters for monitoring (NATS $SRV.STATS): a few integer updates per request.
        self.num_requests = 0
        self.num_errors = 0
        self.processing_ns = 0
        self.last_error = ""
        self.wants_context = procedure.wants_context
        direct = procedure.call

        async def final(invocation: Invocation) -> Any:
            return await direct(invocation.request, invocation.context)

        chained = chain(final) if chain is not None else None
        if chained is None:
            self.invoke: Callable[[Message, Context | None, Any], Awaitable[Any]] = (
                lambda message, ctx, request: direct(request, ctx)
            )
        else:
            name = procedure.name

            def invoke(message: Message, ctx: Context | None, request: Any) -> Awaitable[Any]:
                return chained(Invocation("endpoint", name, message, ctx, request))

            self.invoke = invoke


class RpcServer:
    """Serves one node's endpoints on its node topic and its service's queue group.

    With ``endpoint_topics`` (a broker that lists services natively, such as NATS), each
    endpoint is also served on its own topic (:func:`endpoint_topic`), in the service's queue
    group: a request there names its endpoint by where it was sent, so a client that knows
    nothing of eventkit (a NATS micro client, ``nats req``) sends only the JSON and a reply
    topic. The broker advertises these topics; it never needs to know what a request is for.
    """

    def __init__(
        self,
        broker: Broker,
        *,
        namespace: str,
        service: str,
        node_id: str,
        procedures: Sequence[Procedure | StreamProcedure],
        client: Publisher | None = None,
        middleware: Sequence[Middleware] = (),
        policy: DeliveryPolicy | None = None,
        observer: RequestObserver | None = None,
        endpoint_topics: bool = False,
    ) -> None:
        self.broker = broker
        self.endpoint_topics = endpoint_topics
        self.namespace = namespace
        self.service = service
        self.node_id = node_id
        self.client = client
        self.policy = policy
        self._observer = observer
        self._middleware = list(middleware)
        self._procedures = [p for p in procedures if isinstance(p, Procedure)]
        streaming = [p for p in procedures if isinstance(p, StreamProcedure)]
        self._streams = StreamServer(
            broker,
            namespace=namespace,
            service=service,
            node_id=node_id,
            procedures=streaming,
            client=client,
            middleware=middleware,
        )
        self._subscriptions: list[Subscription] = []
        self._served: dict[str, _Served] = {}
        self._deadlines: Deadlines[asyncio.Task[Any]] = Deadlines(self._expire)
        self._expired: set[asyncio.Task[Any]] = set()
        self._unanswerable = LogLimiter(log, "requests that could not be answered")

    def _expire(self, task: asyncio.Task[Any]) -> None:
        """A request's deadline passed while its handler ran: cancel the handler."""
        self._expired.add(task)
        task.cancel()

    async def start(self) -> None:
        """Subscribe (nothing when there are no endpoints); middleware is composed now."""
        if not self._procedures and not self._streams.procedures:
            return
        await self._streams.start()
        middleware = self._middleware

        def chain(final: Next) -> Next:
            return compose(middleware, final)

        self._served = {p.name: _Served(p, chain if middleware else None) for p in self._procedures}
        ns, name, broker, policy = self.namespace, self.service, self.broker, self.policy
        observer = self._observer
        handler = self._on_request if observer is None else observer.wrap(self._on_request)
        self._subscriptions = [
            await broker.subscribe(node_topic(ns, name, self.node_id), handler, policy=policy),
            await broker.subscribe(service_topic(ns, name), handler, queue=name, policy=policy),
        ]
        if self.endpoint_topics:
            for served in self._served.values():
                self._subscriptions.append(
                    await broker.subscribe(
                        endpoint_topic(ns, name, served.procedure.name),
                        self._by_topic(served),
                        queue=name,
                        policy=policy,
                    )
                )
            for procedure in self._streams.procedures.values():
                self._subscriptions.append(
                    await broker.subscribe(
                        endpoint_topic(ns, name, procedure.name),
                        self._streaming_by_topic(procedure),
                        queue=name,
                        policy=policy,
                    )
                )

    def _streaming_by_topic(
        self, procedure: StreamProcedure
    ) -> Callable[[Message], Awaitable[None]]:
        """A streaming endpoint's own topic: a plain request there cannot stream, so it is
        answered why (rather than left to time out)."""

        async def on_request(message: Message) -> None:
            reply_to = message.headers.get(REPLY_TO)
            if reply_to is not None:
                detail = (
                    f"{procedure.name} is a streaming endpoint ({procedure.kind}): a plain "
                    "request cannot stream; open it with eventkit (kit.stream, eventkit stream)"
                )
                await self._reply_error(reply_to, BadRequest(detail, id=self.service))

        return on_request

    def _by_topic(self, served: _Served) -> Callable[[Message], Awaitable[None]]:
        """The handler of one endpoint's own topic: the endpoint is the one it serves."""

        async def on_request(message: Message) -> None:
            await self._on_request(message, served)

        on_request._eventkit_guarded = True  # type: ignore[attr-defined]  # as _on_request
        return on_request

    async def stop(self) -> None:
        """Stop taking requests; in-flight calls complete (the subscriptions drain), and
        running streams are cut (their callers get a 503 and may reopen elsewhere)."""
        await stop_all(self._subscriptions)
        self._subscriptions.clear()
        self._deadlines.close()
        await self._streams.stop()

    async def _on_request(self, message: Message, by_topic: _Served | None = None) -> None:
        headers = message.headers
        reply_to = headers.get(REPLY_TO)
        if reply_to is None:
            self._unanswerable.warning(
                "dropping a request on %s without a reply topic", loggable(message.topic)
            )
            return
        service = self.service
        if by_topic is None:
            name = headers.get(ENDPOINT, "")
            served = self._served.get(name)
        else:
            served, name = by_topic, by_topic.procedure.name
        if served is None:
            await self._not_unary(message, reply_to, name)
            return
        identity: Identity | None = None
        guard = served.guard
        if guard is not None:  # before the body is read: a refused request is never decoded
            try:
                identity = guard(headers.get(TOKEN))
            except RemoteError as exc:
                served.num_errors += 1
                await self._reply_error(reply_to, exc)
                return
        read = self._read(served, message)
        if isinstance(read, RemoteError):
            await self._reply_error(reply_to, read)
            return
        time_left, request = read
        ctx = (
            Context(
                message,
                node_id=self.node_id,
                service=service,
                client=self.client,
                endpoint=name,
                identity=identity,
            )
            if served.wants_context or self._middleware
            else None
        )
        token = current_message.set(message)
        served.num_requests += 1
        started = time.perf_counter_ns()
        error: RemoteError | None = None
        task = asyncio.current_task()
        if time_left is not None and task is not None:
            # The handler is cancelled at the caller's deadline; all requests share one timer.
            self._deadlines.add(task, asyncio.get_running_loop().time() + time_left)
        try:
            result = await served.invoke(message, ctx, request)
        except asyncio.CancelledError:
            if task in self._expired:
                self._expired.discard(task)
                if task.uncancel() == 0:  # no other cancellation: only the deadline
                    log.warning("%s: cancelled at the caller's deadline", name)
                    error = DeadlineExceeded(
                        f"{name} did not finish within the caller's deadline", id=service
                    )
                else:
                    raise
            elif being_cancelled():
                raise  # this node is stopping: the caller fails over or times out
            else:
                log.error("%s failed: a task it awaited was cancelled", name)
                error = InternalError(f"{name} failed: cancelled inside the handler", id=service)
        except RemoteError as exc:
            if not exc.id:
                exc.id = service
            error = exc
        except Exception as exc:
            log.exception("%s failed (request from %s)", name, loggable(headers.get(CALLER)))
            error = InternalError(f"{name} failed: {type(exc).__name__}: {exc}", id=service)
        finally:
            if task is not None:
                self._deadlines.discard(task)
                if task in self._expired:  # the deadline passed as the handler returned
                    self._expired.discard(task)
                    task.uncancel()
            current_message.reset(token)
            served.processing_ns += time.perf_counter_ns() - started
        if error is not None:
            served.num_errors += 1
            served.last_error = str(error)
            await self._reply_error(reply_to, error)
            return
        try:
            body = pydantic_core.to_json(result)
        except pydantic_core.PydanticSerializationError as exc:
            log.error("%s returned a value that is not JSON-serializable: %s", name, exc)
            await self._reply_error(
                reply_to,
                InternalError(
                    f"{name} returned {type(result).__name__}, which is not JSON-serializable",
                    id=service,
                ),
            )
            return
        # A success needs no headers: no status means 200 (and no header block to parse).
        await self._send(Message(reply_to, body, {}))

    def _read(self, served: _Served, message: Message) -> tuple[float | None, Any] | RemoteError:
        """(time left, the decoded request), or the error that answers a request that cannot
        be read: a malformed deadline or body is a 400, a request past its deadline a 408."""
        name, service = served.procedure.name, self.service
        time_left = self._time_left(name, message)
        if isinstance(time_left, RemoteError):
            return time_left
        codec = served.codec
        if codec is None:
            return time_left, None
        try:
            return time_left, codec.from_body(message.body, True)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            return BadRequest(
                f"request to {name} is not valid: {exc.error_count()} error(s)",
                id=service,
                data=pydantic_core.to_jsonable_python(errors),
            )
        except Exception as exc:  # not UTF-8, not JSON, or anything else the codec refuses
            return BadRequest(
                f"request to {name} cannot be read: {loggable(exc, quote=False)}", id=service
            )

    def _time_left(self, name: str, message: Message) -> float | RemoteError | None:
        """Seconds left before the request's deadline (None: it has none), or the error that
        answers it: a deadline that is not a finite number is a 400, a past one a 408."""
        deadline_header = message.headers.get(DEADLINE)
        if not deadline_header:
            return None
        try:
            deadline = float(deadline_header)
        except ValueError:
            deadline = math.nan
        if not math.isfinite(deadline):
            return BadRequest(
                f"request to {name} has a bad {DEADLINE} header {loggable(deadline_header)}: "
                "seconds since the epoch expected",
                id=self.service,
            )
        time_left = deadline - time.time()
        if time_left <= 0:
            return DeadlineExceeded(
                f"request to {name} arrived after its deadline; it was not run", id=self.service
            )
        return time_left

    async def _not_unary(self, message: Message, reply_to: str, name: str) -> None:
        """A request for a streaming endpoint (opened here), or for none at all."""
        service = self.service
        procedure = self._streams.procedures.get(name)
        if procedure is None:
            known = ", ".join(sorted([*self._served, *self._streams.procedures])) or "none"
            await self._reply_error(
                reply_to,
                NotFound(
                    f"service {service!r} has no endpoint {loggable(name)}; it has: {known}",
                    id=service,
                ),
            )
            return
        if STREAM_WINDOW not in message.headers:
            await self._reply_error(
                reply_to,
                BadRequest(
                    f"{name} is a streaming endpoint ({procedure.kind}): open it with "
                    "kit.stream(), not kit.call()",
                    id=service,
                ),
            )
            return
        time_left = self._time_left(name, message)
        if isinstance(time_left, RemoteError):
            await self._reply_error(reply_to, time_left)
            return
        await self._streams.open(message, procedure, time_left)

    def endpoint_stats(self) -> list[dict[str, Any]]:
        """Per-endpoint counters: requests, errors, the last error, processing time (ns)."""
        unary = [
            {
                "name": name,
                "num_requests": served.num_requests,
                "num_errors": served.num_errors,
                "last_error": served.last_error,
                "processing_time": served.processing_ns,
                "average_processing_time": (
                    served.processing_ns // served.num_requests if served.num_requests else 0
                ),
            }
            for name, served in self._served.items()
        ]
        return unary + self._streams.stats()

    async def _reply_error(self, reply_to: str, error: RemoteError) -> None:
        if self._observer is not None:
            self._observer.failed(error)
        await self._send(error_reply(reply_to, error, self.node_id))

    async def _send(self, reply: Message) -> None:
        """Publish a reply; one the broker refuses (a reply topic that is not a topic, a
        reply over the payload limit) is logged, or answered with a short error."""
        try:
            await self.broker.publish(reply)
        except InvalidTopic:
            self._unanswerable.warning(
                "cannot reply to a request: its reply topic %s is not a topic",
                loggable(reply.topic),
            )
        except PayloadTooLarge as exc:
            error = InternalError(f"the reply is too large for the broker: {exc}", id=self.service)
            await self.broker.publish(error_reply(reply.topic, error, self.node_id))


# It turns every failure, an escaping cancellation included, into an error reply itself.
RpcServer._on_request._eventkit_guarded = True  # type: ignore[attr-defined]
