"""catalog: the products, over RPC (both endpoints idempotent, so callers may retry them)."""

from __future__ import annotations

from eventkit import NotFound, Service

from .models import Product, ProductRequest, Products

PRODUCTS = {
    p.id: p
    for p in (
        Product(id="mug", name="eventkit mug", price_cents=1200),
        Product(id="tshirt", name="eventkit t-shirt", price_cents=2500),
        Product(id="sticker", name="sticker pack", price_cents=300),
        Product(id="hoodie", name="hoodie", price_cents=4500),
    )
}

svc = Service("catalog", version="1.0.0", metadata={"shop": "catalog"})


@svc.endpoint("Catalog.ListProducts", idempotent=True)
async def list_products() -> Products:
    return Products(products=list(PRODUCTS.values()))


@svc.endpoint("Catalog.GetProduct", idempotent=True)
async def get_product(req: ProductRequest) -> Product:
    product = PRODUCTS.get(req.id)
    if product is None:
        raise NotFound(f"no product {req.id!r}; products: {', '.join(sorted(PRODUCTS))}")
    return product
