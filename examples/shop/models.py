"""The shop's messages: RPC requests and replies, and the events on `shop.*` topics."""

from __future__ import annotations

from pydantic import BaseModel, Field

ORDER_PLACED = "shop.order.placed"
"""Topic (and CloudEvents type) of an order, published by checkout."""


class Product(BaseModel):
    id: str
    name: str
    price_cents: int = Field(ge=0)


class ProductRequest(BaseModel):
    id: str


class Products(BaseModel):
    products: list[Product]


class Item(BaseModel):
    product_id: str
    quantity: int = Field(default=1, ge=1, le=100)


class AddItemRequest(BaseModel):
    user: str = Field(min_length=1)
    item: Item


class CartRequest(BaseModel):
    user: str = Field(min_length=1)


class Cart(BaseModel):
    user: str
    items: list[Item]


class PlaceOrderRequest(BaseModel):
    """Items to buy; without them, what is in the user's cart."""

    user: str = Field(min_length=1)
    email: str = Field(min_length=3)
    items: list[Item] = Field(default_factory=list)


class OrderLine(BaseModel):
    product: Product
    quantity: int


class Order(BaseModel):
    order_id: str
    user: str
    email: str
    lines: list[OrderLine]
    total_cents: int


class OrderPlaced(Order):
    """The data of a `shop.order.placed` event."""


class Charged(BaseModel):
    order_id: str
    amount_cents: int


class Shipped(BaseModel):
    order_id: str
    tracking_id: str


class Emailed(BaseModel):
    order_id: str
    to: str
