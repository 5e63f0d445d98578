"""The HTTP side of a node: routes, the shared token, the body limit, and bad input.

Routes (all need ``Authorization: Bearer <token>`` when the node has a token):

- ``POST /topics/{topic}``: an event for ``topic``. From an eventkit peer (it sends
  ``eventkit-http-from``) it goes to the subscription entries the peer named; from any other
  CloudEvents producer, binary or structured mode, it is published into the mesh from this
  node, as if this node had published it.
- ``POST /_eventkit/gossip``: membership records (JSON); answered with this node's view when
  asked.
- ``GET /_eventkit/members``: this node's view, for operators and tests.

Nothing a client sends can crash the node: a missing or wrong token is 401 (the scheme
``Bearer`` is read in any case, the token compared in constant time), a body is refused with
413 as soon as it passes ``max_payload`` (declared or streamed), a request that is not a
CloudEvent or not valid gossip is 400 with the reason, and a request HTTP cannot parse
(oversized or malformed headers) is aiohttp's 400, logged as one warning rather than an error
with aiohttp's traceback. Every line about a refused request quotes what the client sent
through :func:`~eventkit.wire.loggable`, and a flood of them is a count per interval.
"""

from __future__ import annotations

import hmac
import logging
import sys
from typing import TYPE_CHECKING, Any, Protocol

import pydantic_core
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ...wire import Headers, InvalidTopic, LogLimiter, loggable, validate_topic
from ._wire import decode_headers

if TYPE_CHECKING:
    from ._config import HttpSettings

__all__ = ["Node", "ServerLog", "build_app"]

log = logging.getLogger("eventkit.broker.http")

GOSSIP_LIMIT = 16 * 1024 * 1024


class Node(Protocol):
    """What the server calls on its broker."""

    settings: HttpSettings

    async def receive(
        self, topic: str, body: bytes, headers: Headers, transport: dict[str, str]
    ) -> web.StreamResponse: ...

    def receive_gossip(self, obj: Any) -> dict[str, Any] | None: ...

    def view(self) -> dict[str, Any]: ...


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


def build_app(node: Node) -> web.Application:
    settings = node.settings
    limit = settings.max_payload
    token = settings.token.encode() if settings.token else None
    refusals = LogLimiter(log, "refused requests")

    def authorized(request: web.Request) -> web.Response | None:
        if token is None:
            return None
        given = request.headers.get("Authorization", "")
        scheme, _, credentials = given.strip().partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode("utf-8", "surrogateescape"), token
        ):
            return None
        refusals.warning(
            "refused %s %s from %s: %s token",
            loggable(request.method),
            loggable(request.path),
            request.remote,
            "wrong" if given else "no",
        )
        return web.Response(
            status=401,
            text="a valid token is required: Authorization: Bearer <token>\n",
            headers={"WWW-Authenticate": 'Bearer realm="eventkit"'},
        )

    def too_large(request: web.Request, size: int, cap: int) -> web.Response:
        refusals.warning(
            "refused a body of %s bytes on %s from %s: over the %d-byte limit",
            f"{size}" if request.content_length is not None else f"more than {cap}",
            loggable(request.path),
            request.remote,
            cap,
        )
        return web.Response(
            status=413, text=f"the body exceeds {cap} bytes\n", headers={"Connection": "close"}
        )

    async def on_event(request: web.Request) -> web.StreamResponse:
        if (refused := authorized(request)) is not None:
            return refused
        topic = request.match_info["topic"]
        try:
            validate_topic(topic)
        except InvalidTopic as exc:
            return web.Response(status=400, text=f"{loggable(exc, quote=False)}\n")
        try:
            body = await read_body(request, limit)
        except _TooLarge as exc:
            return too_large(request, exc.size, limit)
        headers, transport = decode_headers(request.headers)
        return await node.receive(topic, body, headers, transport)

    async def on_gossip(request: web.Request) -> web.Response:
        if (refused := authorized(request)) is not None:
            return refused
        try:
            obj = pydantic_core.from_json(await read_body(request, GOSSIP_LIMIT))
            reply = node.receive_gossip(obj)
        except _TooLarge as exc:
            return too_large(request, exc.size, GOSSIP_LIMIT)
        except (ValueError, RecursionError) as exc:
            reason = loggable(exc, quote=False)
            refusals.warning("bad gossip from %s: %s", request.remote, reason)
            return web.Response(status=400, text=f"bad gossip: {reason}\n")
        if reply is None:
            return web.Response(status=204)
        return web.Response(body=pydantic_core.to_json(reply), content_type="application/json")

    async def on_members(request: web.Request) -> web.Response:
        if (refused := authorized(request)) is not None:
            return refused
        return web.Response(
            body=pydantic_core.to_json(node.view()), content_type="application/json"
        )

    app = web.Application(client_max_size=max(limit, GOSSIP_LIMIT))
    app.router.add_post("/topics/{topic}", on_event)
    app.router.add_post("/_eventkit/gossip", on_gossip)
    app.router.add_get("/_eventkit/members", on_members)
    return app


async def read_body(request: web.Request, cap: int) -> bytes:
    """The request's body, refused (``_TooLarge``) as soon as it passes ``cap`` bytes: at
    once when the declared length is over, otherwise while it streams in, so a chunked upload
    is never read past the limit."""
    declared = request.content_length
    if declared is not None and declared > cap:
        raise _TooLarge(declared)
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(65536):
        size += len(chunk)
        if size > cap:
            raise _TooLarge(size)
        chunks.append(chunk)
    return b"".join(chunks)


class ServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server logger: a request HTTP cannot parse (oversized or malformed headers,
    a bad request line) is the client's fault, so it is one warning, escaped and
    rate-limited, not an ERROR with aiohttp's traceback; anything else is logged as it was."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})
        self._malformed = LogLimiter(logger, "malformed HTTP requests")

    def exception(self, msg: object, *args: Any, exc_info: Any = True, **kw: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError):
            self._malformed.warning(
                "refused a malformed HTTP request from %s: %d %s",
                loggable(args[0] if args else None),
                exc.code,
                loggable(exc.message, quote=False),
            )
            return
        self.logger.error(msg, *args, exc_info=exc_info, **kw)
