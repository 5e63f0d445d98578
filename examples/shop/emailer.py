"""email: a confirmation for every order (a plain fan-out subscriber: every replica sends).

The module is not called ``email`` so that it never shadows the standard library's."""

from __future__ import annotations

import logging

from eventkit import Event, Service

from .models import ORDER_PLACED, Emailed, OrderPlaced

log = logging.getLogger(__name__)

svc = Service("email", version="1.0.0", metadata={"shop": "email"})


@svc.subscribe(ORDER_PLACED)
async def confirm(event: Event[OrderPlaced]) -> None:
    order = event.data
    log.info("emailed %s: order %s confirmed", order.email, order.order_id)
    await svc.publish(
        "shop.email.sent", Emailed(order_id=order.order_id, to=order.email), subject=order.order_id
    )
