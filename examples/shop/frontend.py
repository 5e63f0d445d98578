"""frontend: the shop's HTTP front (Starlette on uvicorn); every route is RPC behind.

    GET  /products                 catalog  Catalog.ListProducts
    GET  /cart/{user}              cart     Cart.GetCart
    POST /cart/{user}              cart     Cart.AddItem      body {"product_id", "quantity"}
    POST /orders                   checkout Checkout.PlaceOrder
                                   body {"user", "email", "items": [{"product_id", "quantity"}]}
                                   (without items: the user's cart)

Settings: SHOP_HTTP_HOST (default 127.0.0.1; 0.0.0.0 in a container), SHOP_HTTP_PORT (8080).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from eventkit import RemoteError, Service

from ..http import serve_http
from .models import AddItemRequest, CartRequest, Item, PlaceOrderRequest

svc = Service("frontend", version="1.0.0", metadata={"shop": "frontend", "kind": "http"})


async def _call(service: str, endpoint: str, body: Any, status: int = 200) -> JSONResponse:
    try:
        reply = await svc.client.call(service, endpoint, body, timeout=5.0)
    except RemoteError as exc:
        return JSONResponse(exc.to_wire(), status_code=exc.code)
    return JSONResponse(reply, status_code=status)


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


def _bad(exc: ValidationError) -> JSONResponse:
    errors = exc.errors(include_url=False, include_context=False)
    return JSONResponse({"code": 400, "detail": "invalid request", "errors": errors}, 400)


async def products(request: Request) -> JSONResponse:
    return await _call("catalog", "Catalog.ListProducts", None)


async def get_cart(request: Request) -> JSONResponse:
    return await _call("cart", "Cart.GetCart", CartRequest(user=request.path_params["user"]))


async def add_to_cart(request: Request) -> JSONResponse:
    try:
        item = Item.model_validate(await _json(request))
    except ValidationError as exc:
        return _bad(exc)
    req = AddItemRequest(user=request.path_params["user"], item=item)
    return await _call("cart", "Cart.AddItem", req)


async def place_order(request: Request) -> JSONResponse:
    try:
        req = PlaceOrderRequest.model_validate(await _json(request))
    except ValidationError as exc:
        return _bad(exc)
    return await _call("checkout", "Checkout.PlaceOrder", req, status=201)


app = Starlette(
    routes=[
        Route("/products", products),
        Route("/cart/{user}", get_cart),
        Route("/cart/{user}", add_to_cart, methods=["POST"]),
        Route("/orders", place_order, methods=["POST"]),
    ]
)

serve_http(svc, app, port_env="SHOP_HTTP_PORT", host_env="SHOP_HTTP_HOST", port=8080)
