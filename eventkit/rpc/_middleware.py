"""Middleware: wrappers around subscribers, endpoints and calls, composed once at start.

A middleware is ``async def mw(invocation, call_next) -> result``. It sees what is about to
run (kind, name, the message and context) and decides whether and how to call the rest of
the chain. Chains are built when the service starts (or on a client's first call), so a
message pays only for the middleware that exists: with none, nothing is added to the path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..wire import Message
from ._context import Context

__all__ = ["Invocation", "Middleware", "Next", "compose"]


@dataclass(slots=True)
class Invocation:
    """One handler run or one outgoing call, as middleware sees it.

    ``kind``: ``"subscriber"`` (a CloudEvent delivery), ``"endpoint"`` (an RPC being served),
    ``"call"`` (an RPC being made), ``"stream"`` (a streaming endpoint being served: the rest of
    the chain runs the whole stream and returns None; ``request`` is the request, or the
    iterator of the caller's items) or ``"stream_call"`` (a stream being opened: the rest of
    the chain returns once the node accepted it). ``name``: the topic pattern, endpoint or
    ``service/endpoint``. ``message``: the incoming message (None for calls). ``request``: the
    decoded data or request. ``metadata``: outgoing metadata for calls (middleware may add).
    ``options``: for calls, ``service``, ``endpoint``, ``deadline`` (epoch seconds),
    ``version``, ``node_metadata`` and ``retries``, which middleware may change.
    """

    kind: Literal["subscriber", "endpoint", "call", "stream", "stream_call"]
    name: str
    message: Message | None = None
    context: Context | None = None
    request: Any = None
    metadata: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


Next = Callable[[Invocation], Awaitable[Any]]
Middleware = Callable[[Invocation, Next], Awaitable[Any]]


def compose(middleware: Sequence[Middleware], final: Next) -> Next:
    """``middleware[0]`` runs first (outermost); ``final`` runs innermost."""
    chain = final
    for mw in reversed(middleware):
        chain = _bind(mw, chain)
    return chain


def _bind(mw: Middleware, call_next: Next) -> Next:
    async def run(invocation: Invocation) -> Any:
        return await mw(invocation, call_next)

    return run
