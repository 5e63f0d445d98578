"""The four places telemetry wraps, each composed once (at start, like middleware).

A publish gets a PRODUCER span whose context travels in the event; a delivery a CONSUMER
span under it; a call a CLIENT span whose context travels in the request's headers; a
request a SERVER span under it. Each also records its metrics. A subscriber or server
reports failures it handles itself (and so never raises) through the ``failed`` callback
that comes with its wrapper: the outcome of the delivery that is current in this task.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.trace import (
    Link,
    Span,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
    get_current_span,
    set_span_in_context,
)

from ..brokers.base import MessageHandler, being_cancelled
from ..wire import DeadLetter, Message, RemoteError, is_pattern
from . import _semconv as sc
from ._instruments import Instruments
from ._propagation import event_context, event_extensions, extract_headers

__all__ = ["Failed", "Observers"]

Failed = Callable[[BaseException], None]
"""Called by a subscriber or server with the failure it handled itself."""


class _Outcome:
    __slots__ = ("error", "span")

    def __init__(self, span: Span | None) -> None:
        self.span = span
        self.error: BaseException | None = None


_current: ContextVar[_Outcome | None] = ContextVar("eventkit_delivery_outcome", default=None)


def failed(error: BaseException) -> None:
    """Mark the delivery or request current in this task as failed with ``error``."""
    outcome = _current.get()
    if outcome is not None and outcome.error is None:
        outcome.error = error
        _record(outcome.span, error)


def _record(span: Span | None, error: BaseException) -> None:
    if span is not None and span.is_recording():
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:500]))
        span.set_attribute(sc.ERROR_TYPE, error_type(error))


def error_type(error: BaseException) -> str:
    """``error.type``: an RPC error's status code, or the exception's class name."""
    if isinstance(error, RemoteError):
        return str(error.code)
    return type(error).__qualname__


def _mark(guarded: Any, handler: Any) -> Any:
    """Carry the adapter-facing marks over (the wrapped handler guards itself too)."""
    guarded._eventkit_guarded = getattr(handler, "_eventkit_guarded", False)
    return guarded


class Observers:
    """Makes the wrappers; ``tracer`` None: metrics only; ``instruments`` None: traces only."""

    def __init__(self, tracer: Tracer | None, instruments: Instruments | None) -> None:
        self.tracer = tracer
        self.instruments = instruments

    # -- events --------------------------------------------------------------------------

    def publisher(
        self, publish: Callable[..., Awaitable[str]], *, system: str, client_id: str
    ) -> Callable[..., Awaitable[str]]:
        tracer, inst = self.tracer, self.instruments

        async def traced_publish(
            topic: str, data: Any = None, *, extensions: Any = None, **options: Any
        ) -> str:
            attrs = {
                sc.MESSAGING_SYSTEM: system,
                sc.DESTINATION: topic,
                sc.OPERATION_NAME: "publish",
                sc.OPERATION_TYPE: "send",
            }
            span = token = None
            if tracer is not None:
                span = tracer.start_span(
                    f"publish {topic}",
                    kind=SpanKind.PRODUCER,
                    attributes={**attrs, sc.CLIENT_ID: client_id},
                )
                token = otel_context.attach(set_span_in_context(span))
                extensions = event_extensions(dict(extensions) if extensions else {})
            started = time.perf_counter()
            try:
                event_id = await publish(topic, data, extensions=extensions, **options)
            except BaseException as exc:
                if span is not None:
                    _record(span, exc)
                if inst is not None:
                    attrs[sc.ERROR_TYPE] = error_type(exc)
                raise
            else:
                if span is not None:
                    span.set_attribute(sc.MESSAGE_ID, event_id)
                return event_id
            finally:
                if inst is not None:
                    inst.sent.add(1, attrs)
                    inst.send_duration.record(time.perf_counter() - started, attrs)
                if span is not None:
                    span.end()
                    otel_context.detach(token)  # type: ignore[arg-type]

        return traced_publish

    def consumer(
        self,
        handler: MessageHandler,
        *,
        system: str,
        pattern: str,
        group: str | None,
        durable: bool,
        max_attempts: int,
    ) -> tuple[MessageHandler, Failed]:
        tracer, inst = self.tracer, self.instruments
        attrs = {
            sc.MESSAGING_SYSTEM: system,
            sc.DESTINATION: pattern,
            sc.OPERATION_NAME: "process",
            sc.OPERATION_TYPE: "process",
        }
        if group is not None:
            attrs[sc.CONSUMER_GROUP] = group
        name = f"process {pattern}"
        wildcard = is_pattern(pattern)
        busy = inst.in_flight(attrs) if inst is not None else [0]

        async def traced_delivery(message: Message) -> None:
            span = token = None
            if tracer is not None:
                parent, event_id = event_context(message)
                span_attrs: dict[str, Any] = {**attrs, sc.DESTINATION: message.topic}
                if wildcard:
                    span_attrs[sc.DESTINATION_TEMPLATE] = pattern
                if event_id is not None:
                    span_attrs[sc.MESSAGE_ID] = event_id
                if message.attempt > 1:
                    span_attrs[sc.DELIVERY_ATTEMPT] = message.attempt
                links = None
                if parent is not None:
                    creation = _span_context(parent)
                    links = [Link(creation)] if creation is not None else None
                span = tracer.start_span(
                    name, context=parent, kind=SpanKind.CONSUMER, attributes=span_attrs, links=links
                )
                token = otel_context.attach(set_span_in_context(span))
            outcome = _Outcome(span)
            mark = _current.set(outcome)
            busy[0] += 1
            if inst is not None and message.attempt > 1:
                inst.redeliveries.add(1, attrs)
            started = time.perf_counter()
            try:
                await handler(message)
            except BaseException as exc:
                if not (isinstance(exc, asyncio.CancelledError) and being_cancelled()):
                    failed(exc)
                raise
            finally:
                _current.reset(mark)
                busy[0] -= 1
                error = outcome.error
                if inst is not None:
                    done = attrs if error is None else {**attrs, sc.ERROR_TYPE: error_type(error)}
                    inst.consumed.add(1, done)
                    inst.process_duration.record(time.perf_counter() - started, done)
                    if (
                        error is not None
                        and durable
                        and (isinstance(error, DeadLetter) or message.attempt >= max_attempts)
                    ):
                        inst.dead_letters.add(1, attrs)
                if span is not None:
                    span.end()
                    otel_context.detach(token)  # type: ignore[arg-type]

        return _mark(traced_delivery, handler), failed

    # -- RPC -----------------------------------------------------------------------------

    def caller(self, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        tracer, inst = self.tracer, self.instruments

        async def traced_call(service: str, endpoint: str, request: Any = None, **kw: Any) -> Any:
            method = f"{service}/{endpoint}"
            attrs = {
                sc.RPC_SYSTEM_NAME: sc.RPC_SYSTEM_VALUE,
                sc.RPC_METHOD: method,
            }
            span = token = None
            if tracer is not None:
                span = tracer.start_span(
                    method,
                    kind=SpanKind.CLIENT,
                    attributes={
                        **attrs,
                        sc.RPC_SYSTEM: sc.RPC_SYSTEM_VALUE,
                        sc.RPC_SERVICE: service,
                    },
                )
                token = otel_context.attach(set_span_in_context(span))
            started = time.perf_counter()
            status: str | None = sc.OK_STATUS
            try:
                return await call(service, endpoint, request, **kw)
            except BaseException as exc:
                status = str(exc.code) if isinstance(exc, RemoteError) else None
                _record(span, exc)
                attrs[sc.ERROR_TYPE] = error_type(exc)
                raise
            finally:
                if status is not None:
                    attrs[sc.RPC_STATUS] = status
                if inst is not None:
                    inst.client_duration.record(time.perf_counter() - started, attrs)
                if span is not None:
                    if status is not None:
                        span.set_attribute(sc.RPC_STATUS, status)
                    span.end()
                    otel_context.detach(token)  # type: ignore[arg-type]

        return traced_call

    def server(
        self,
        handler: MessageHandler,
        *,
        service: str,
        endpoints: Collection[str],
        endpoint_header: str,
    ) -> tuple[MessageHandler, Failed]:
        tracer, inst = self.tracer, self.instruments
        known = frozenset(endpoints)
        serving: dict[str, list[int]] = {}  # rpc.method -> its in-flight counter

        async def traced_request(message: Message) -> None:
            headers = message.headers
            endpoint = headers.get(endpoint_header, "")
            method = f"{service}/{endpoint}" if endpoint in known else sc.OTHER_METHOD
            attrs = {sc.RPC_SYSTEM_NAME: sc.RPC_SYSTEM_VALUE, sc.RPC_METHOD: method}
            span = token = None
            if tracer is not None:
                span_attrs: dict[str, Any] = {
                    **attrs,
                    sc.RPC_SYSTEM: sc.RPC_SYSTEM_VALUE,
                    sc.RPC_SERVICE: service,
                }
                if method == sc.OTHER_METHOD:
                    span_attrs[sc.RPC_METHOD_ORIGINAL] = f"{service}/{endpoint}"
                span = tracer.start_span(
                    method if method != sc.OTHER_METHOD else sc.RPC_SYSTEM_VALUE,
                    context=extract_headers(headers),
                    kind=SpanKind.SERVER,
                    attributes=span_attrs,
                )
                token = otel_context.attach(set_span_in_context(span))
            outcome = _Outcome(span)
            mark = _current.set(outcome)
            busy = serving.get(method)
            if busy is None:
                busy = serving[method] = inst.in_flight(attrs, server=True) if inst else [0]
            busy[0] += 1
            started = time.perf_counter()
            try:
                await handler(message)
            except BaseException as exc:
                if not (isinstance(exc, asyncio.CancelledError) and being_cancelled()):
                    failed(exc)
                raise
            finally:
                _current.reset(mark)
                busy[0] -= 1
                error = outcome.error
                status = sc.OK_STATUS if error is None else error_type(error)
                if inst is not None:
                    done = {**attrs, sc.RPC_STATUS: status}
                    if error is not None:
                        done[sc.ERROR_TYPE] = status
                    inst.server_duration.record(time.perf_counter() - started, done)
                if span is not None:
                    span.set_attribute(sc.RPC_STATUS, status)
                    span.end()
                    otel_context.detach(token)  # type: ignore[arg-type]

        return _mark(traced_request, handler), failed


def _span_context(parent: otel_context.Context) -> Any:
    context = get_current_span(parent).get_span_context()
    return context if context.is_valid else None
