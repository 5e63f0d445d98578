"""Replies carried back in the response to the request's POST: one HTTP exchange per call.

Without this an RPC call on the HTTP broker is two POSTs, each paying a client request:
the request to the serving node, then the reply to the caller's node. Now a peer that
POSTs a request (a message with a reply topic and a deadline) says it takes the reply in
the response (``eventkit-http-replies``). The serving node accepts the request as before,
sends the response's headers at once (status 202, the entries that refused it, and
``eventkit-http-answer``), and keeps the body open until one of its handlers publishes to
the reply topic, or the request's deadline (at most :data:`MAX_LINGER`) passes. A reply
that only the requesting node subscribes to then goes into that body instead of a POST of
its own; any other reply, or one published after the body closed, is POSTed as before.

Because the headers go out before any handler runs, the requester knows its request was
taken even if the serving node dies while handling it: a lost body means no inline reply,
never "nobody received it", so a call is not retried elsewhere unless it is safe to.

The body is one JSON line (the reply's topic, the requester's entry ids, its headers)
followed by the reply's body bytes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pydantic_core
from aiohttp import web

from ...wire import Headers, Message
from ..base import REPLY_BY, REPLY_TO
from ._gossip import Route

__all__ = ["MAX_LINGER", "AnswerResponse", "Answers", "linger_of", "read_answer", "wants_answer"]

MAX_LINGER = 30.0
"""The longest a serving node keeps a response open for the reply (seconds)."""


def wants_answer(headers: Headers) -> bool:
    """Whether a message is a request whose reply can come in the response: it has a reply
    topic and a deadline (an RPC request)."""
    return REPLY_TO in headers and REPLY_BY in headers


def linger_of(headers: Headers, offered: str, now: float) -> float | None:
    """How long to keep the response open for the reply: until the request's deadline, at
    most as long as the requester said it reads (``offered``, seconds) and MAX_LINGER.
    None: not a request that can be answered so."""
    if REPLY_TO not in headers:
        return None
    try:
        deadline, reads = float(headers[REPLY_BY]), float(offered)
    except (KeyError, ValueError):
        return None
    return max(0.0, min(deadline - now, reads, MAX_LINGER))


class _Waiter:
    __slots__ = ("future", "node")

    def __init__(self, node: str) -> None:
        self.node = node
        self.future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()


class Answers:
    """The reply topics that requests are waiting on, on a serving node."""

    def __init__(self) -> None:
        self._waiting: dict[str, _Waiter] = {}

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def expect(self, reply_to: str, requester: str) -> _Waiter | None:
        """Wait for the reply on ``reply_to``, for node ``requester`` (None: one already is)."""
        if reply_to in self._waiting:
            return None
        waiter = self._waiting[reply_to] = _Waiter(requester)
        return waiter

    def forget(self, reply_to: str, waiter: _Waiter) -> None:
        if self._waiting.get(reply_to) is waiter:
            del self._waiting[reply_to]

    def take(self, message: Message, route: Route) -> bool:
        """Put ``message`` into a waiting response if it is a reply that only the
        requesting node subscribes to; False: publish it as usual."""
        waiter = self._waiting.get(message.topic)
        if waiter is None or waiter.future.done():
            return False
        ids = route.plain.get(waiter.node)
        if not ids or len(route.plain) != 1 or route.groups or route.sinks or route.durables:
            return False
        head = pydantic_core.to_json(
            {"topic": message.topic, "to": ids, "headers": message.headers}
        )
        waiter.future.set_result(head + b"\n" + bytes(message.body))
        return True


class AnswerResponse(web.StreamResponse):
    """A 202 whose headers go out at once and whose body is the reply, when one comes."""

    def __init__(
        self, answers: Answers, reply_to: str, waiter: _Waiter, linger: float, headers: Any
    ) -> None:
        super().__init__(status=202, headers=headers)
        self._answers = answers
        self._reply_to = reply_to
        self._waiter = waiter
        self._linger = linger

    async def prepare(self, request: web.BaseRequest) -> Any:
        try:
            return await super().prepare(request)
        except BaseException:  # the requester is gone: its reply goes by POST, if at all
            self._answers.forget(self._reply_to, self._waiter)
            raise

    async def write_eof(self, data: bytes = b"") -> None:
        body = b""
        try:
            with anyio.move_on_after(self._linger):
                body = await self._waiter.future
        finally:
            self._answers.forget(self._reply_to, self._waiter)
        await super().write_eof(body)


def read_answer(data: bytes) -> tuple[list[int], Message] | None:
    """The entry ids and the reply carried in a response body (None: no reply came)."""
    if not data:
        return None
    head, _, body = data.partition(b"\n")
    obj = pydantic_core.from_json(head)
    return [int(i) for i in obj["to"]], Message(str(obj["topic"]), body, dict(obj["headers"]))
