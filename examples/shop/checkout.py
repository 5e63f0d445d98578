"""checkout: prices an order with catalog, empties the cart, publishes `shop.order.placed`.

The event goes to every subscriber (payment, shipping, email); an unknown product is the
catalog's 404, passed on to the caller.
"""

from __future__ import annotations

import logging
import uuid

from eventkit import BadRequest, Context, Service

from .models import (
    ORDER_PLACED,
    Cart,
    CartRequest,
    Order,
    OrderLine,
    OrderPlaced,
    PlaceOrderRequest,
    Product,
    ProductRequest,
)

log = logging.getLogger(__name__)

svc = Service("checkout", version="1.0.0", metadata={"shop": "checkout"})


@svc.endpoint("Checkout.PlaceOrder")
async def place_order(req: PlaceOrderRequest, ctx: Context) -> Order:
    client = svc.client
    items = req.items
    if not items:
        cart = await client.call("cart", "Cart.GetCart", CartRequest(user=req.user), response=Cart)
        items = cart.items
    if not items:
        raise BadRequest(f"the cart of {req.user} is empty: add items first, or send items")
    lines = []
    for item in items:
        product = await client.call(
            "catalog", "Catalog.GetProduct", ProductRequest(id=item.product_id), response=Product
        )
        lines.append(OrderLine(product=product, quantity=item.quantity))
    order = Order(
        order_id=f"o-{uuid.uuid4().hex[:10]}",
        user=req.user,
        email=req.email,
        lines=lines,
        total_cents=sum(line.product.price_cents * line.quantity for line in lines),
    )
    await ctx.publish(ORDER_PLACED, OrderPlaced(**order.model_dump()), subject=order.order_id)
    if not req.items:
        await client.call("cart", "Cart.EmptyCart", CartRequest(user=req.user), response=Cart)
    log.info("placed order %s for %s: %d cents", order.order_id, order.user, order.total_cents)
    return order
