"""The subscriptions one HTTP node runs: entries, their queues, and the handler workers.

Each entry is what the node advertises (see ``http_gossip.Entry``): a plain subscription has
one of its own; the local members of a queue group or of a durable name share one, so they
compete for its messages. A publisher names the entries a request is for; an entry that has
gone (its subscription stopped) is reported back, so the publisher can pick another member.

A durable delivery carries an :class:`Outcome` that the request waits for: the handler's
success, failure or dead-letter verdict becomes the HTTP status the publisher's outbox acts on.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio

from ...wire import DeadLetter, Message, matches
from ..base import DeliveryPolicy, FailureLog, MessageHandler, is_inline, run_inline
from ._gossip import Entry

if TYPE_CHECKING:
    from ..._tasks import TaskHost

__all__ = ["DEAD", "FAILED", "GONE", "OK", "HttpSubscription", "LocalTable", "Outcome"]

log = logging.getLogger("eventkit.broker.http")
_failures = FailureLog(log)

OK, FAILED, DEAD, GONE = 200, 500, 422, 503
MAX_PENDING = 10_000  # queued messages per entry before remote publishers are slowed down


class Outcome:
    """The verdict on one durable delivery; GONE until a handler decides."""

    __slots__ = ("done", "reason", "status")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.status = GONE
        self.reason = "the subscription stopped before handling the message"

    def set(self, status: int, reason: str = "") -> None:
        if not self.done.is_set():
            self.status = status
            self.reason = reason
            self.done.set()


Item = tuple[Message, Outcome | None]


class LocalEntry:
    """A queue of deliveries shared by the workers of one or more local subscriptions."""

    __slots__ = (
        "durable",
        "id",
        "inline",
        "items",
        "members",
        "pattern",
        "queue",
        "room",
        "waiters",
    )

    def __init__(self, id: int, pattern: str, queue: str | None, durable: str | None) -> None:
        self.id = id
        self.pattern = pattern
        self.queue = queue
        self.durable = durable
        self.members: list[HttpSubscription] = []
        self.items: deque[Item] = deque()
        self.waiters: deque[anyio.Event] = deque()
        self.room: anyio.Event | None = None
        self.inline: MessageHandler | None = None  # an inline handler, called as messages come

    @property
    def open(self) -> bool:
        return bool(self.members)

    def put(self, message: Message, outcome: Outcome | None = None) -> None:
        copy = Message(message.topic, message.body, dict(message.headers), message.attempt)
        if self.inline is not None:  # the RPC reply inbox: no queue, no worker
            run_inline(self.inline, copy)
            return
        self.items.append((copy, outcome))
        if self.waiters:
            self.waiters.popleft().set()

    def take(self) -> Item:
        item = self.items.popleft()
        if self.room is not None and len(self.items) < MAX_PENDING:
            self.room.set()
            self.room = None
        return item

    async def wait_room(self) -> None:
        """Back-pressure for remote publishers: wait while the queue is long."""
        while len(self.items) >= MAX_PENDING and self.open:
            if self.room is None:
                self.room = anyio.Event()
            await self.room.wait()

    def wake_one(self) -> None:
        if self.items and self.waiters:
            self.waiters.popleft().set()

    def advertised(self) -> Entry:
        return Entry(
            id=self.id,
            pattern=self.pattern,
            queue=self.queue,
            durable=self.durable,
            max_in_flight=sum(m.policy.max_in_flight for m in self.members),
        )


class LocalTable:
    """Entries by id, and by queue group / durable name for joining."""

    def __init__(self) -> None:
        self.entries: dict[int, LocalEntry] = {}
        self._groups: dict[tuple[str, str], LocalEntry] = {}
        self._durables: dict[str, LocalEntry] = {}
        self._next_id = 0

    def join(self, topic: str, queue: str | None, durable: str | None) -> LocalEntry:
        if durable is not None:
            entry = self._durables.get(durable)
            if entry is None:
                entry = self._durables[durable] = self._new(topic, None, durable)
        elif queue is not None:
            entry = self._groups.get((topic, queue))
            if entry is None:
                entry = self._groups[(topic, queue)] = self._new(topic, queue, None)
        else:
            entry = self._new(topic, None, None)
        return entry

    def _new(self, pattern: str, queue: str | None, durable: str | None) -> LocalEntry:
        self._next_id += 1
        entry = LocalEntry(self._next_id, pattern, queue, durable)
        self.entries[entry.id] = entry
        return entry

    def leave(self, sub: HttpSubscription) -> None:
        entry = sub.entry
        if sub in entry.members:
            entry.members.remove(sub)
        if entry.members:
            return
        self.entries.pop(entry.id, None)
        if entry.durable is not None:
            self._durables.pop(entry.durable, None)
        elif entry.queue is not None:
            self._groups.pop((entry.pattern, entry.queue), None)
        if entry.room is not None:
            entry.room.set()

    def advertised(self) -> tuple[Entry, ...]:
        return tuple(e.advertised() for e in self.entries.values() if e.members)

    def durable_entry(self, name: str) -> LocalEntry | None:
        return self._durables.get(name)

    def matching(self, topic: str) -> list[LocalEntry]:
        return [e for e in self.entries.values() if e.members and matches(e.pattern, topic)]

    def accept(self, ids: list[int] | set[int], message: Message) -> set[int]:
        """Queue ``message`` on the plain entries ``ids``; the ids that did not take it."""
        rejected = set()
        for entry_id in ids:
            entry = self.entries.get(entry_id)
            if entry is None or not entry.open or entry.durable is not None:
                rejected.add(entry_id)
            else:
                entry.put(message)
        return rejected

    async def handle_durable(self, name: str, message: Message) -> tuple[int, str]:
        """Run one durable delivery here; its (status, reason) once a handler decided."""
        entry = self.durable_entry(name)
        if entry is None or not entry.open:
            return GONE, f"no subscriber of durable {name!r} here"
        outcome = Outcome()
        entry.put(message, outcome)
        await outcome.done.wait()
        return outcome.status, outcome.reason


class HttpSubscription:
    """A subscription on an HTTP node; ``stop()`` drains it and tells the mesh."""

    def __init__(
        self,
        table: LocalTable,
        entry: LocalEntry,
        handler: MessageHandler,
        topic: str,
        queue: str | None,
        durable: str | None,
        policy: DeliveryPolicy,
        drain_timeout: float,
        on_stopped: Callable[[], Awaitable[None]],
    ) -> None:
        self.topic = topic
        self.queue = queue
        self.durable = durable
        self.entry = entry
        self.policy = policy
        self._table = table
        self._handler = handler
        self._drain_timeout = drain_timeout
        self._on_stopped = on_stopped
        self._active = True
        self._waiting: set[anyio.Event] = set()
        self._started = 0
        self._done = anyio.Event()
        self._scopes: set[anyio.CancelScope] = set()

    def start(self, tasks: TaskHost) -> None:
        self.entry.members.append(self)
        if self.queue is None and self.durable is None and is_inline(self._handler):
            self.entry.inline = self._handler  # a plain entry: this is its only member
            self._done.set()
            return
        for _ in range(self.policy.max_in_flight):
            self._started += 1
            tasks.start_soon(self._work)

    async def _next(self) -> Item | None:
        entry = self.entry
        while True:
            if not self._active:
                if entry.members:  # other local members carry on with the queue
                    entry.wake_one()
                    return None
                if entry.items and entry.durable is None:
                    return entry.take()  # the last member drains what was accepted
                while entry.items:  # durable: not acked, so the publisher keeps it
                    _, outcome = entry.take()
                    if outcome is not None:
                        outcome.set(GONE, "the subscription stopped")
                return None
            if entry.items:
                return entry.take()
            event = anyio.Event()
            entry.waiters.append(event)
            self._waiting.add(event)
            try:
                await event.wait()
            finally:
                self._waiting.discard(event)

    async def _work(self) -> None:
        scope = anyio.CancelScope()
        self._scopes.add(scope)
        try:
            with scope:
                while (item := await self._next()) is not None:
                    await self._handle(*item)
        finally:
            self._scopes.discard(scope)
            self._started -= 1
            if self._started == 0:
                self._done.set()

    async def _handle(self, message: Message, outcome: Outcome | None) -> None:
        try:
            await self._handler(message)
        except DeadLetter as exc:
            if outcome is None:
                _failures.dropped(
                    message, f"DeadLetter on a non-durable subscription: {exc.reason}"
                )
            else:
                outcome.set(DEAD, exc.reason)
        except anyio.get_cancelled_exc_class():
            if outcome is not None:
                outcome.set(GONE, "the handler was cancelled (drain timeout)")
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if outcome is None:
                _failures.dropped(message, reason)
            else:
                outcome.set(FAILED, reason)
        else:
            if outcome is not None:
                outcome.set(OK)

    async def stop(self) -> None:
        if not self._active:
            await self._done.wait()
            return
        self._active = False
        self.entry.inline = None
        self._table.leave(self)
        for event in list(self._waiting):
            with contextlib.suppress(ValueError):
                self.entry.waiters.remove(event)
            event.set()
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self._drain_timeout):
                await self._done.wait()
            if not self._done.is_set():
                log.warning(
                    "subscription to %r did not drain within %.1fs; cancelling its handlers",
                    self.topic,
                    self._drain_timeout,
                )
                for scope in list(self._scopes):
                    scope.cancel()
                await self._done.wait()
            await self._on_stopped()
