"""Core NATS deliveries handed from the connection's read loop to eventkit's handlers.

nats-py gives every message to a queue per subscription, read by a task per subscription,
which calls the callback with a ``Msg`` whose headers it has parsed into a dict. eventkit
then built its own :class:`Message` from that and, for concurrent handlers, started a task
per message: two hand-offs between tasks and two objects per delivery. Here the read loop
(:meth:`FastHeaderClient._process_msg`) builds the Message from the wire and gives it to the
subscription's :class:`Dispatcher`, which either

- runs the handler in a task, at most ``max_in_flight`` at once; a task that finishes takes
  the next waiting message itself, so a busy subscription costs no task per message and
  one with ``max_in_flight=1`` keeps the order of arrival; or
- for a handler marked :func:`~eventkit.brokers.base.inline` (the RPC reply inbox, which
  only resolves a future), calls it in the read loop itself: no hand-off at all.

Where nats-py does not allow the direct route, the same Dispatcher is nats-py's callback.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from nats.aio.msg import Msg
from nats.aio.subscription import DEFAULT_SUB_PENDING_BYTES_LIMIT, DEFAULT_SUB_PENDING_MSGS_LIMIT

from ...wire import DeadLetter, Message
from ..base import NO_RESPONDERS, REPLY_TO, FailureLog, MessageHandler, is_inline, run_inline
from ._headers import from_nats

__all__ = ["Dispatcher", "message_from_msg", "message_from_wire"]

log = logging.getLogger("eventkit.broker.nats")
_failures = FailureLog(log)

STATUS = "Status"  # the key nats-py gives an inline status line ("NATS/1.0 503")


def _message(subject: str, reply: str, data: bytes, headers: dict[str, str] | None) -> Message:
    if not headers:
        message = Message(subject, data, {})
    elif not data and headers.get(STATUS) == "503":  # NATS's no-responders notice
        return Message(subject, b"", {NO_RESPONDERS: "1"})
    else:
        message = Message(subject, data, from_nats(headers))
    if reply:  # a request: its reply topic came as the NATS reply subject
        message.headers[REPLY_TO] = reply
    return message


def message_from_wire(
    subject: bytes, reply: bytes, data: bytes, headers: dict[str, str] | None
) -> Message:
    """The Message of a MSG/HMSG as the parser hands it over (headers already a dict)."""
    return _message(subject.decode(), reply.decode() if reply else "", data, headers)


def message_from_msg(msg: Msg) -> Message:
    """The Message of a nats-py ``Msg`` (the callback route)."""
    return _message(msg.subject, msg.reply, msg.data, msg.headers)


class Dispatcher:
    """Runs one subscription's handler for each delivered message.

    ``deliver`` never blocks: the read loop must go on. Messages beyond ``max_in_flight``
    running handlers wait here, bounded as nats-py bounds a subscription's queue (a slow
    consumer's excess is dropped with a warning, as core NATS does).
    """

    __slots__ = (
        "_handler",
        "_idle",
        "_inline",
        "_limit",
        "_running",
        "_tasks",
        "_topic",
        "_waiting",
        "_waiting_bytes",
    )

    def __init__(self, topic: str, handler: MessageHandler, max_in_flight: int) -> None:
        self._topic = topic
        self._handler = handler
        self._inline = is_inline(handler)
        self._limit = max_in_flight
        self._waiting: deque[Message] = deque()
        self._waiting_bytes = 0
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    # -- from the read loop ----------------------------------------------------------------

    def deliver(self, message: Message) -> None:
        if self._inline:
            run_inline(self._handler, message)
        elif self._running < self._limit:
            self._running += 1
            self._idle.clear()
            task = asyncio.get_running_loop().create_task(self._run(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif (
            len(self._waiting) >= DEFAULT_SUB_PENDING_MSGS_LIMIT
            or self._waiting_bytes >= DEFAULT_SUB_PENDING_BYTES_LIMIT
        ):
            log.warning(
                "NATS slow consumer on %r: message dropped (%d waiting; handlers too slow)",
                self._topic,
                len(self._waiting),
            )
        else:
            self._waiting.append(message)
            self._waiting_bytes += len(message.body)

    async def deliver_msg(self, msg: Msg) -> None:
        """nats-py's callback: the route when the read loop cannot hand over directly."""
        self.deliver(message_from_msg(msg))

    # -- handler tasks ---------------------------------------------------------------------

    async def _run(self, message: Message) -> None:
        try:
            while True:
                await self._handle(message)
                if not self._waiting:
                    return
                message = self._waiting.popleft()
                self._waiting_bytes -= len(message.body)
        finally:
            self._running -= 1
            if self._running == 0:
                self._idle.set()

    async def _handle(self, message: Message) -> None:
        try:
            await self._handler(message)
        except DeadLetter as exc:
            _failures.dropped(message, f"DeadLetter on a non-durable subscription: {exc.reason}")
        except Exception as exc:
            _failures.dropped(message, f"{type(exc).__name__}: {exc}")

    # -- stopping --------------------------------------------------------------------------

    async def wait_idle(self) -> None:
        """Until no handler runs and nothing waits."""
        await self._idle.wait()

    def cancel(self) -> None:
        """Cancel running handlers and drop what waits (a drain that ran out of time)."""
        self._waiting.clear()
        self._waiting_bytes = 0
        for task in list(self._tasks):
            task.cancel()


DirectRoute = Callable[[Message], None]
"""What the read loop calls with each message of a subscription it routes directly."""
