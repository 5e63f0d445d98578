"""gateway: an HTTP front (Starlette on uvicorn) whose routes call services over RPC.

    GET /hello/{name}   -> helloworld  Helloworld.Call
    GET /greet/{name}   -> greeter     Greeter.Hello (query parameters become metadata)
    GET /services       -> the registry's view
    POST /call/{service}/{endpoint}   the JSON body as the request (a generic RPC gateway)
    GET /logs/{file}?lines=10&follow=true   -> logs  Logs.Tail, streamed
    POST /stream/{service}/{endpoint}       a streaming endpoint, the JSON body as the request

An RPC error becomes the HTTP status of its code, with `{id, code, detail, status}` as body.
Streams answer as server-sent events when the request accepts `text/event-stream` (an
`event: end` closes them; an error mid-stream is an `event: error` with the error as data),
else as JSON lines (`application/x-ndjson`, an error mid-stream as a last line
`{"error": {...}}`). A client that disconnects cancels the stream, and so the handler.
Settings: GATEWAY_HTTP_HOST (127.0.0.1) and GATEWAY_HTTP_PORT (8081).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from eventkit import RemoteError, Service, Stream

from ..http import serve_http

svc = Service("gateway", version="1.0.0", metadata={"kind": "http"})


async def _call(service: str, endpoint: str, body: Any, **options: Any) -> JSONResponse:
    try:
        reply = await svc.client.call(service, endpoint, body, timeout=5.0, **options)
    except RemoteError as exc:
        return JSONResponse(exc.to_wire(), status_code=exc.code)
    return JSONResponse(reply)


async def hello(request: Request) -> JSONResponse:
    return await _call("helloworld", "Helloworld.Call", {"name": request.path_params["name"]})


async def greet(request: Request) -> JSONResponse:
    metadata = dict(request.query_params)
    return await _call(
        "greeter", "Greeter.Hello", {"name": request.path_params["name"]}, metadata=metadata
    )


async def services(request: Request) -> JSONResponse:
    registry = await svc.client.get_registry()
    return JSONResponse(
        [
            {
                "name": s.name,
                "version": s.version,
                "nodes": len(s.nodes),
                "endpoints": [e.name for e in s.endpoints],
            }
            for s in registry.view.services()
        ]
    )


async def call(request: Request) -> JSONResponse:
    body = await request.json() if await request.body() else None
    return await _call(request.path_params["service"], request.path_params["endpoint"], body)


async def _stream(request: Request, service: str, endpoint: str, body: Any) -> Response:
    """A streaming endpoint as server-sent events or JSON lines, item by item."""
    sse = "text/event-stream" in request.headers.get("accept", "")
    stream = svc.client.stream(service, endpoint, body)
    try:
        await stream.open()  # a refusal (404, 400, 503) is still an HTTP status
    except RemoteError as exc:
        return JSONResponse(exc.to_wire(), status_code=exc.code)
    return StreamingResponse(
        _framed(stream, sse),
        media_type="text/event-stream" if sse else "application/x-ndjson",
        headers={"cache-control": "no-store"},
    )


async def _framed(stream: Stream[Any], sse: bool) -> AsyncIterator[str]:
    # Leaving this generator (the client went away: Starlette cancels it) cancels the stream.
    async with stream:
        try:
            async for item in stream:
                text = json.dumps(item, separators=(",", ":"))
                yield f"data: {text}\n\n" if sse else text + "\n"
        except RemoteError as exc:
            error = json.dumps(exc.to_wire())
            yield f"event: error\ndata: {error}\n\n" if sse else f'{{"error":{error}}}\n'
            return
    if sse:
        yield "event: end\ndata: {}\n\n"


async def logs(request: Request) -> Response:
    query = request.query_params
    tail = {
        "file": request.path_params["file"],
        "lines": int(query.get("lines", "10")),
        "follow": query.get("follow", "false").lower() in ("1", "true", "yes"),
    }
    return await _stream(request, "logs", "Logs.Tail", tail)


async def stream(request: Request) -> Response:
    body = await request.json() if await request.body() else None
    service, endpoint = request.path_params["service"], request.path_params["endpoint"]
    return await _stream(request, service, endpoint, body)


app = Starlette(
    routes=[
        Route("/hello/{name}", hello),
        Route("/greet/{name}", greet),
        Route("/services", services),
        Route("/call/{service}/{endpoint}", call, methods=["POST"]),
        Route("/logs/{file}", logs),
        Route("/stream/{service}/{endpoint}", stream, methods=["POST"]),
    ]
)

serve_http(svc, app, port_env="GATEWAY_HTTP_PORT", host_env="GATEWAY_HTTP_HOST", port=8081)

if __name__ == "__main__":
    svc.run()
