"""Delayed publishes on the HTTP broker: held by the publisher, as everything it sends.

With no broker server, the publisher is where a delayed message waits. Its copies for the
durable names it matches go to the durable outbox at once, with the due time (wall clock)
kept beside them in ``eventkit-deliver-at``: the outbox offers a row only once it is due,
so they outlive a restart of the publisher (with an outbox file) like any durable message.
The copy for plain subscribers, queue groups and sinks waits on a timer in the publisher
and goes to whoever matches when it falls due; it is lost if the publisher closes or exits
first (``Capabilities.delay_kept`` is False).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import anyio

from ...wire import Message, loggable
from ._wire import encode_headers

if TYPE_CHECKING:
    from ._broker import HttpBroker

__all__ = ["DELIVER_AT", "hold", "take_due"]

DELIVER_AT = "eventkit-deliver-at"
log = logging.getLogger("eventkit.broker.http")


def take_due(message: Message) -> float:
    """Remove the due time a kept message carries; when it falls due, as a monotonic time
    (0 when it carries none: due now)."""
    deliver_at = message.headers.pop(DELIVER_AT, None)
    if deliver_at is None:
        return 0.0
    try:
        return time.monotonic() + float(deliver_at) - time.time()
    except ValueError:
        return 0.0


async def hold(broker: HttpBroker, message: Message, delay: float) -> None:
    """Keep ``message`` for the durables it matches (committed) and start its timer."""
    route = broker.membership.route(message.topic)
    durable = broker._durable
    if route.durables and durable is not None:
        kept = Message(message.topic, message.body, dict(message.headers))
        kept.headers[DELIVER_AT] = repr(time.time() + delay)
        await durable.add(route.durables, kept)
    live = Message(message.topic, bytes(message.body), dict(message.headers))
    broker._tasks.start_soon(_later, broker, live, delay)


async def _later(broker: HttpBroker, message: Message, delay: float) -> None:
    await anyio.sleep(delay)
    sender = broker._sender
    if sender is None or broker.closed:
        return
    route = broker.membership.route(message.topic)  # who matches now; durables had theirs
    try:
        await sender.send(message, route, encode_headers(message))
    except Exception as exc:  # a task of the broker's: a failure here must not end the broker
        log.warning(
            "delayed message to %s not sent: %s",
            loggable(message.topic),
            loggable(exc, quote=False),
        )
