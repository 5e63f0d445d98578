"""payment: charges every order, durably (at-least-once: an order placed while payment is down
is charged when it comes back; a failed charge is retried, then dead-lettered)."""

from __future__ import annotations

import logging

from eventkit import Event, Service

from .models import ORDER_PLACED, Charged, OrderPlaced

log = logging.getLogger(__name__)

svc = Service("payment", version="1.0.0", metadata={"shop": "payment"})


@svc.subscribe(ORDER_PLACED, durable="payment")
async def charge(event: Event[OrderPlaced]) -> None:
    order = event.data
    log.info("charged order %s: %d cents from %s", order.order_id, order.total_cents, order.user)
    await svc.publish(
        "shop.payment.charged",
        Charged(order_id=order.order_id, amount_cents=order.total_cents),
        subject=order.order_id,
    )
