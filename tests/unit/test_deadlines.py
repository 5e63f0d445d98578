"""Many deadlines on one timer: each expires once, in time, and only if not discarded."""

from __future__ import annotations

import asyncio

import pytest

from eventkit.rpc._deadlines import Deadlines

pytestmark = pytest.mark.anyio


async def test_each_deadline_expires_once_in_order_unless_discarded() -> None:
    loop = asyncio.get_running_loop()
    expired: list[tuple[str, float]] = []
    deadlines: Deadlines[str] = Deadlines(lambda key: expired.append((key, loop.time())))
    now = loop.time()
    deadlines.add("late", now + 0.15)
    deadlines.add("early", now + 0.05)  # earlier than the timer: the timer moves
    deadlines.add("gone", now + 0.02)
    deadlines.add("later", now + 0.2)
    deadlines.discard("gone")
    await asyncio.sleep(0.3)  # time passes on the loop's clock: the timers are the point
    assert [key for key, _ in expired] == ["early", "late", "later"]
    for (key, at), due in zip(expired, (0.05, 0.15, 0.2), strict=True):
        assert at >= now + due, key  # never before its deadline
    assert len(deadlines) == 0


async def test_a_timer_left_for_a_discarded_deadline_fires_harmlessly() -> None:
    expired: list[str] = []
    deadlines: Deadlines[str] = Deadlines(expired.append)
    loop = asyncio.get_running_loop()
    deadlines.add("done", loop.time() + 0.02)
    deadlines.discard("done")  # the call ended; the timer stays armed
    deadlines.add("next", loop.time() + 0.08)  # later than the armed timer: no new timer
    await asyncio.sleep(0.04)
    assert expired == []  # the early firing found nothing due and re-armed for "next"
    await asyncio.sleep(0.08)
    assert expired == ["next"]


async def test_close_drops_every_deadline() -> None:
    expired: list[str] = []
    deadlines: Deadlines[str] = Deadlines(expired.append)
    deadlines.add("a", asyncio.get_running_loop().time() + 0.02)
    deadlines.close()
    await asyncio.sleep(0.05)
    assert expired == []
