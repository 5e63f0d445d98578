"""The HTTP side of a node: routes, the shared token, the body limit, and bad input.

Routes (all need ``Authorization: Bearer <token>`` when the node has a token):

- ``POST /topics/{topic}``: an event for ``topic``. From an eventkit peer (it sends
  ``eventkit-http-from``) it goes to the subscription entries the peer named; from any other
  CloudEvents producer, binary or structured mode, it is published into the mesh from this
  node, as if this node had published it.
- ``POST /_eventkit/gossip``: membership records (JSON); answered with this node's view when
  asked.
- ``GET /_eventkit/members``: this node's view, for operators and tests.

Nothing a client sends can crash the node: a missing or wrong token is 401 and a log line, a
body over ``max_payload`` is 413, a request that is not a CloudEvent or not valid gossip is
400 with the reason.
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING, Any, Protocol

import pydantic_core
from aiohttp import web

from ...wire import Headers, InvalidTopic, validate_topic
from ._wire import decode_headers

if TYPE_CHECKING:
    from ._config import HttpSettings

__all__ = ["Node", "build_app"]

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


def build_app(node: Node) -> web.Application:
    settings = node.settings
    limit = settings.max_payload
    expected = f"Bearer {settings.token}".encode() if settings.token else None

    def authorized(request: web.Request) -> web.Response | None:
        if expected is None:
            return None
        given = request.headers.get("Authorization", "").encode()
        if hmac.compare_digest(given, expected):
            return None
        log.warning(
            "refused %s %s from %s: %s token",
            request.method,
            request.path,
            request.remote,
            "wrong" if given else "no",
        )
        return web.Response(
            status=401,
            text="a valid token is required: Authorization: Bearer <token>\n",
            headers={"WWW-Authenticate": 'Bearer realm="eventkit"'},
        )

    async def on_event(request: web.Request) -> web.StreamResponse:
        if (refused := authorized(request)) is not None:
            return refused
        topic = request.match_info["topic"]
        try:
            validate_topic(topic)
        except InvalidTopic as exc:
            return web.Response(status=400, text=f"{exc}\n")
        if request.content_length is not None and request.content_length > limit:
            return _too_large(request, request.content_length, limit)
        body = await request.read()
        if len(body) > limit:
            return _too_large(request, len(body), limit)
        headers, transport = decode_headers(request.headers)
        return await node.receive(topic, body, headers, transport)

    async def on_gossip(request: web.Request) -> web.Response:
        if (refused := authorized(request)) is not None:
            return refused
        try:
            obj = pydantic_core.from_json(await request.read())
            reply = node.receive_gossip(obj)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("bad gossip from %s: %s", request.remote, exc)
            return web.Response(status=400, text=f"bad gossip: {exc}\n")
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


def _too_large(request: web.Request, size: int, limit: int) -> web.Response:
    log.warning(
        "refused %d-byte body on %s from %s: over the %d-byte limit",
        size,
        request.path,
        request.remote,
        limit,
    )
    return web.Response(status=413, text=f"body of {size} bytes exceeds {limit} bytes\n")
