"""A service's delayed publishes and stepped backoff, through the real code paths on memory://
(eventkit.testing): the decorator's ``backoff=`` reaches the broker, ``delay=`` the client."""

from __future__ import annotations

import time
from datetime import timedelta
from itertools import pairwise

import pytest
from pydantic import BaseModel

import eventkit.testing
from eventkit import Context, Service
from eventkit.wire import dead_letter_topic

pytestmark = pytest.mark.anyio


class Reminder(BaseModel):
    order_id: str


async def test_the_decorators_backoff_spaces_the_retries() -> None:
    svc = Service("billing")
    seen: list[tuple[int, float]] = []

    @svc.subscribe("shop.remind", durable="remind-backoff", max_attempts=3, backoff=[0.2, 0.4])
    async def remind(reminder: Reminder, ctx: Context) -> None:
        seen.append((ctx.attempt, time.monotonic()))
        raise RuntimeError("mail server down")

    async with eventkit.testing.run(svc) as kit:
        dead = await kit.record(dead_letter_topic("remind-backoff"), Reminder)
        await kit.publish("shop.remind", Reminder(order_id="o-1"))
        await kit.join()
    assert [attempt for attempt, _ in seen] == [1, 2, 3]
    gaps = [b - a for (_, a), (_, b) in pairwise(seen)]
    assert gaps[0] >= 0.2 - 0.02 and gaps[1] >= 0.4 - 0.02, gaps  # lower bounds only
    assert dead.data == [Reminder(order_id="o-1")]


async def test_a_service_publishes_for_later() -> None:
    svc = Service("shop")
    arrived: list[float] = []

    @svc.subscribe("shop.remind")
    async def remind(reminder: Reminder, ctx: Context) -> None:
        arrived.append(time.monotonic())
        await ctx.publish("shop.reminded", reminder, delay=0.1)  # ctx.publish takes it too

    async with eventkit.testing.run(svc) as kit:
        reminded = await kit.record("shop.reminded", Reminder)
        started = time.monotonic()
        await svc.publish("shop.remind", Reminder(order_id="o-1"), delay=timedelta(seconds=0.3))
        await kit.join()  # waits for delayed publishes too
    assert arrived[0] - started >= 0.3 - 0.02
    assert reminded.data == [Reminder(order_id="o-1")]
