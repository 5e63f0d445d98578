"""gateway: an HTTP front (Starlette on uvicorn) whose routes call services over RPC.

    GET /hello/{name}   -> helloworld  Helloworld.Call
    GET /greet/{name}   -> greeter     Greeter.Hello (query parameters become metadata)
    GET /services       -> the registry's view
    POST /call/{service}/{endpoint}   the JSON body as the request (a generic RPC gateway)

An RPC error becomes the HTTP status of its code, with `{id, code, detail, status}` as body.
Settings: GATEWAY_HTTP_HOST (127.0.0.1) and GATEWAY_HTTP_PORT (8081).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from eventkit import RemoteError, Service

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


app = Starlette(
    routes=[
        Route("/hello/{name}", hello),
        Route("/greet/{name}", greet),
        Route("/services", services),
        Route("/call/{service}/{endpoint}", call, methods=["POST"]),
    ]
)

serve_http(svc, app, port_env="GATEWAY_HTTP_PORT", host_env="GATEWAY_HTTP_HOST", port=8081)

if __name__ == "__main__":
    svc.run()
