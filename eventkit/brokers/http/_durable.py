"""Durable delivery from the publisher's outbox: retries, backoff, dead letters.

A durable message waits in the publisher's outbox (``http_outbox``) until a subscriber of its
durable name answers 2xx. The sender hands ready messages, oldest first, to the name's live
members, never more at once to one member than that member runs handlers (its advertised
``max_in_flight``), so a member with one handler sees the publisher's order. The answer
decides what happens next:

- 2xx: done, the row is deleted;
- handler failure (500): ``attempt`` rises and the message waits ``backoff(attempt)``; after
  ``max_attempts`` it is dead-lettered to ``eventkit.deadletter.{durable}`` with the reason;
- the handler raised DeadLetter (422): dead-lettered at once;
- no answer, or the subscription is gone (503): not an attempt; the message is offered again
  shortly, to whichever member is live then. With no member at all it simply waits.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio

from ...wire import BrokerClosed, Message, dead_letter_topic
from ..base import FailureLog
from ._delay import take_due
from ._gossip import Entry
from ._local import DEAD, FAILED, OK
from ._outbox import Outbox, Pending

if TYPE_CHECKING:
    from ..._tasks import TaskHost
    from ._gossip import Membership

__all__ = ["DurableSender"]

log = logging.getLogger("eventkit.broker.http")
_failures = FailureLog(log)

Send = Callable[[str, Entry, Pending], Awaitable[tuple[int, str]]]
RETRY_GONE = 0.05  # seconds before offering a message again after no answer / gone member


class DurableSender:
    """Owns the pending durable messages of one broker and the loop that delivers them."""

    def __init__(
        self,
        outbox: Outbox,
        membership: Membership,
        tasks: TaskHost,
        send: Send,
        publish: Callable[[Message], Awaitable[None]],
    ) -> None:
        self._outbox = outbox
        self._membership = membership
        self._tasks = tasks
        self._send = send
        self._publish = publish
        self._pending: dict[str, dict[int, Pending]] = {}
        self._busy: dict[tuple[str, int], int] = {}  # (node id, entry id) -> in flight
        self._turn: dict[str, int] = {}
        self._wake = anyio.Event()

    @property
    def count(self) -> int:
        return sum(len(rows) for rows in self._pending.values())

    def restore(self, rows: list[Pending]) -> None:
        for row in rows:
            row.due = take_due(row.message)  # a delayed message waits until it is due
            self._pending.setdefault(row.durable, {})[row.seq] = row
        self.wake()

    async def add(self, durables: list[str], message: Message) -> None:
        """Keep ``message`` for each durable name (committed before this returns)."""
        kept = Message(message.topic, message.body, dict(message.headers))
        seqs = await self._outbox.add(durables, kept)
        due = take_due(kept)  # a delayed message: kept with its due time, offered from then
        for name, seq in zip(durables, seqs, strict=True):
            self._pending.setdefault(name, {})[seq] = Pending(seq, name, kept, due)
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake = anyio.Event()
            next_due = self._dispatch(time.monotonic())
            delay = next_due - time.monotonic()
            if delay > 0:
                with anyio.move_on_after(min(delay, 3600.0)):
                    await self._wake.wait()

    def _dispatch(self, now: float) -> float:
        """Start every delivery that can start; returns when the next one falls due."""
        next_due = math.inf
        for name, rows in self._pending.items():
            if not rows:
                continue
            members = self._membership.durable_members(name)
            if not members:
                continue
            for row in rows.values():
                if row.sending:
                    continue
                if row.due > now:
                    next_due = min(next_due, row.due)
                    continue
                member = self._free_member(name, members)
                if member is None:
                    break
                row.sending = True
                key = (member[0], member[1].id)
                self._busy[key] = self._busy.get(key, 0) + 1
                self._tasks.start_soon(self._deliver, row, member[0], member[1])
        return next_due

    def _free_member(self, name: str, members: list[tuple[str, Entry]]) -> tuple[str, Entry] | None:
        turn = self._turn.get(name, 0)
        for i in range(len(members)):
            node_id, entry = members[(turn + i) % len(members)]
            if self._busy.get((node_id, entry.id), 0) < entry.max_in_flight:
                self._turn[name] = turn + i + 1
                return node_id, entry
        return None

    async def _deliver(self, row: Pending, node_id: str, entry: Entry) -> None:
        key = (node_id, entry.id)
        try:
            status, reason = await self._send(node_id, entry, row)
        finally:
            self._busy[key] -= 1
            if not self._busy[key]:
                del self._busy[key]
            row.sending = False
        try:
            await self._settle(row, status, reason)
        finally:
            self.wake()

    async def _settle(self, row: Pending, status: int, reason: str) -> None:
        spec = self._membership.durables.get(row.durable)
        max_attempts = spec.max_attempts if spec is not None else 5
        message = row.message
        if status == OK:
            self._forget(row)
            await self._outbox.done(row.seq)
        elif status == DEAD or (status == FAILED and message.attempt >= max_attempts):
            _failures.dead_lettered(message, reason, row.durable)
            dead = message.dead_lettered(reason, dead_letter_topic(row.durable))
            try:
                await self._publish(dead)
            except BrokerClosed:
                return  # closing: the row stays and is dead-lettered after a restart
            self._forget(row)
            await self._outbox.done(row.seq)
        elif status == FAILED:
            delay = spec.backoff(message.attempt) if spec is not None else 0.05
            row.message = dataclasses.replace(message, attempt=message.attempt + 1)
            row.due = time.monotonic() + delay
            await self._outbox.set_attempt(row.seq, row.message.attempt)
        else:
            row.due = time.monotonic() + RETRY_GONE

    def _forget(self, row: Pending) -> None:
        rows = self._pending.get(row.durable)
        if rows is not None:
            rows.pop(row.seq, None)
