"""cart: each user's cart, kept in this process (run one replica), over RPC."""

from __future__ import annotations

from eventkit import Service

from .models import AddItemRequest, Cart, CartRequest, Item

svc = Service("cart", version="1.0.0", metadata={"shop": "cart"})

carts: dict[str, list[Item]] = {}


@svc.endpoint("Cart.AddItem")
async def add_item(req: AddItemRequest) -> Cart:
    items = carts.setdefault(req.user, [])
    for i, item in enumerate(items):
        if item.product_id == req.item.product_id:
            items[i] = Item(product_id=item.product_id, quantity=item.quantity + req.item.quantity)
            break
    else:
        items.append(req.item)
    return Cart(user=req.user, items=items)


@svc.endpoint("Cart.GetCart", idempotent=True)
async def get_cart(req: CartRequest) -> Cart:
    return Cart(user=req.user, items=carts.get(req.user, []))


@svc.endpoint("Cart.EmptyCart", idempotent=True)
async def empty_cart(req: CartRequest) -> Cart:
    carts.pop(req.user, None)
    return Cart(user=req.user, items=[])
