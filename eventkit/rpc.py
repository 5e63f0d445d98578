"""RPC over broker topics: the wire format and the serving side.

Each node subscribes to its own topic ``{ns}.rpc.{service}.{node_id}`` (where callers that
chose it through the selector send), and to ``{ns}.rpc.{service}`` in queue group
``{service}`` (for callers with no view of the registry). A request carries, in headers, the
endpoint, the reply topic (which ends with the call's correlation id), the deadline, the
caller and the propagated metadata; its body is the request's JSON. The reply's body is the
response's JSON, or on failure the error ``{id, code, detail, status}`` with its code in the
``eventkit-status`` header.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pydantic_core
from pydantic import ValidationError

from .brokers import Subscription
from .brokers.base import being_cancelled, stop_all
from .context import CALLER, DEADLINE, Context, current_message
from .deadlines import Deadlines
from .errors import BadRequest, ConfigError, DeadlineExceeded, InternalError, NotFound, RemoteError
from .message import REPLY_TO, Message
from .middleware import Invocation, Next, compose
from .router import Endpoint

if TYPE_CHECKING:
    from .service import Service

__all__ = ["RpcServer", "node_topic", "reply_topic", "service_topic"]

log = logging.getLogger("eventkit.rpc")

ENDPOINT = "eventkit-endpoint"
STATUS = "eventkit-status"
NODE = "eventkit-node"
JSON_HEADERS = "application/json"
OK = "200"


def service_topic(namespace: str, service: str) -> str:
    return f"{namespace}.rpc.{service}"


def node_topic(namespace: str, service: str, node_id: str) -> str:
    return f"{namespace}.rpc.{service}.{node_id}"


def reply_topic(namespace: str, node_id: str) -> str:
    """The caller's inbox prefix; each call appends its correlation id as the last token."""
    return f"{namespace}.reply.{node_id}"


def error_reply(reply_to: str, error: RemoteError, node_id: str) -> Message:
    body = pydantic_core.to_json(error.to_wire())
    return Message(reply_to, body, {STATUS: str(error.code), NODE: node_id})


class _Served:
    """One endpoint, ready to call: decoding decided at start, middleware composed once."""

    __slots__ = (
        "codec",
        "ctx_index",
        "endpoint",
        "invoke",
        "last_error",
        "num_errors",
        "num_requests",
        "processing_ns",
    )

    def __init__(self, endpoint: Endpoint, chain: Callable[[Next], Next] | None) -> None:
        signature = endpoint.signature
        if signature.wants_event:
            raise ConfigError(
                f"endpoint {endpoint.name!r}: an endpoint takes the request model (or JSON "
                "value) and optionally a Context, not Event[...]"
            )
        self.endpoint = endpoint
        self.codec = signature.codec
        # Counters for monitoring (NATS $SRV.STATS): a few integer updates per request.
        self.num_requests = 0
        self.num_errors = 0
        self.processing_ns = 0
        self.last_error = ""
        self.ctx_index = (
            signature.positional.index(signature.context_param) if signature.context_param else -1
        )
        func, arrange = signature.caller(), signature.arrange

        async def direct(request: Any, ctx: Context | None) -> Any:
            return await func(*arrange(request, ctx))

        async def final(invocation: Invocation) -> Any:
            return await direct(invocation.request, invocation.context)

        chained = chain(final) if chain is not None else None
        if chained is None:
            self.invoke: Callable[[Message, Context | None, Any], Awaitable[Any]] = (
                lambda message, ctx, request: direct(request, ctx)
            )
        else:
            name = endpoint.name

            def invoke(message: Message, ctx: Context | None, request: Any) -> Awaitable[Any]:
                return chained(Invocation("endpoint", name, message, ctx, request))

            self.invoke = invoke


class RpcServer:
    """Serves a service's endpoints; a Service extension (started after its subscribers)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._subscriptions: list[Subscription] = []
        self._served: dict[str, _Served] = {}
        self._deadlines: Deadlines[asyncio.Task[Any]] = Deadlines(self._expire)
        self._expired: set[asyncio.Task[Any]] = set()

    def _expire(self, task: asyncio.Task[Any]) -> None:
        """A request's deadline passed while its handler ran: cancel the handler."""
        self._expired.add(task)
        task.cancel()

    async def start(self, service: Service) -> None:
        if not service.endpoints:
            return
        settings = service.settings
        assert settings is not None
        middleware = list(service.middleware)

        def chain(final: Next) -> Next:
            return compose(middleware, final)

        self._served = {
            e.name: _Served(e, chain if middleware else None) for e in service.endpoints
        }
        ns, name, node_id = settings.namespace, service.name, service.node_id
        broker = service.broker
        policy = service.rpc_policy
        self._subscriptions = [
            await broker.subscribe(node_topic(ns, name, node_id), self._on_request, policy=policy),
            await broker.subscribe(
                service_topic(ns, name), self._on_request, queue=name, policy=policy
            ),
        ]

    async def stop(self, service: Service) -> None:
        """Stop taking requests; in-flight calls complete (the subscriptions drain)."""
        await stop_all(self._subscriptions)
        self._subscriptions.clear()
        self._deadlines.close()

    async def _on_request(self, message: Message) -> None:
        headers = message.headers
        reply_to = headers.get(REPLY_TO)
        if reply_to is None:
            log.warning("dropping a request on %r without a reply topic", message.topic)
            return
        service = self.service
        name = headers.get(ENDPOINT, "")
        served = self._served.get(name)
        if served is None:
            known = ", ".join(sorted(self._served)) or "none"
            await self._reply_error(
                reply_to,
                NotFound(
                    f"service {service.name!r} has no endpoint {name!r}; it has: {known}",
                    id=service.name,
                ),
            )
            return
        deadline_header = headers.get(DEADLINE)
        try:
            time_left = float(deadline_header) - time.time() if deadline_header else None
        except ValueError:
            await self._reply_error(
                reply_to,
                BadRequest(
                    f"request to {name} has a bad {DEADLINE} header {deadline_header!r}: "
                    "seconds since the epoch expected",
                    id=service.name,
                ),
            )
            return
        if time_left is not None and time_left <= 0:
            log.info("%s: request arrived after its deadline; not running it", name)
            return
        try:
            request = (
                served.codec.from_body(message.body, True) if served.codec is not None else None
            )
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False)
            await self._reply_error(
                reply_to,
                BadRequest(
                    f"request to {name} is not valid: {exc.error_count()} error(s)",
                    id=service.name,
                    data=pydantic_core.to_jsonable_python(errors),
                ),
            )
            return
        except ValueError as exc:
            await self._reply_error(
                reply_to, BadRequest(f"request to {name} is not JSON: {exc}", id=service.name)
            )
            return
        ctx = (
            Context(
                message,
                node_id=service.node_id,
                service=service.name,
                client=service.client,
                endpoint=name,
            )
            if served.ctx_index >= 0 or service.middleware
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
                        f"{name} did not finish within the caller's deadline", id=service.name
                    )
                else:
                    raise
            elif being_cancelled():
                raise  # this node is stopping: the caller fails over or times out
            else:
                log.error("%s failed: a task it awaited was cancelled", name)
                error = InternalError(
                    f"{name} failed: cancelled inside the handler", id=service.name
                )
        except RemoteError as exc:
            if not exc.id:
                exc.id = service.name
            error = exc
        except Exception as exc:
            log.exception("%s failed (request from %s)", name, headers.get(CALLER))
            error = InternalError(f"{name} failed: {type(exc).__name__}: {exc}", id=service.name)
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
                    id=service.name,
                ),
            )
            return
        # A success needs no headers: no status means 200 (and no header block to parse).
        await service.broker.publish(Message(reply_to, body, {}))

    def endpoint_stats(self) -> list[dict[str, Any]]:
        """Per-endpoint counters: requests, errors, the last error, processing time (ns)."""
        return [
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

    async def _reply_error(self, reply_to: str, error: RemoteError) -> None:
        await self.service.broker.publish(error_reply(reply_to, error, self.service.node_id))


# It turns every failure, an escaping cancellation included, into an error reply itself.
RpcServer._on_request._eventkit_guarded = True  # type: ignore[attr-defined]
