"""shipping: ships every order once, whatever the number of shipping replicas (queue group)."""

from __future__ import annotations

import logging
import uuid

from eventkit import Event, Service

from .models import ORDER_PLACED, OrderPlaced, Shipped

log = logging.getLogger(__name__)

svc = Service("shipping", version="1.0.0", metadata={"shop": "shipping"})


@svc.subscribe(ORDER_PLACED, queue="shipping")
async def ship(event: Event[OrderPlaced]) -> None:
    order = event.data
    tracking = f"t-{uuid.uuid4().hex[:8]}"
    items = sum(line.quantity for line in order.lines)
    log.info("shipping order %s: %d item(s), tracking %s", order.order_id, items, tracking)
    await svc.publish(
        "shop.shipment.created",
        Shipped(order_id=order.order_id, tracking_id=tracking),
        subject=order.order_id,
    )
