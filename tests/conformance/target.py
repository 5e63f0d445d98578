"""What a conformance target provides: fresh brokers on one shared server, and a restart."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from eventkit.brokers import Broker


@dataclass
class Target:
    """A broker under test.

    ``new_broker()`` returns a fresh, unconnected broker; two of them talk to the same server
    (or bus). ``restart`` restarts the server in the middle of a test, where the target can.
    ``fair_queue_groups``: every member of a busy queue group gets a share of the messages;
    set it to False where the broker spreads work without promising that (the suite then
    only requires that more than one member gets work).
    ``unreachable()`` returns a broker whose server does not answer (None where there is no
    server to miss, as with memory). ``outage()`` is an async context manager during which the
    server is down, where the target controls one. ``remote`` is how another process
    joins the same bus (a URL and the broker's options, for ``eventkit.brokers.from_url``),
    or None where the bus lives in this process alone (memory).
    """

    name: str
    new_broker: Callable[[], Broker]
    restart: Callable[[], Awaitable[None]] | None = None
    fair_queue_groups: bool = True
    unreachable: Callable[[], Broker] | None = None
    outage: Callable[[], AbstractAsyncContextManager[None]] | None = None
    remote: tuple[str, dict[str, Any]] | None = None
