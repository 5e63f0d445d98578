"""What a conformance target provides: fresh brokers on one server, and a server to restart."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from eventkit.brokers import Broker


@dataclass
class Restartable:
    """A server a test may restart or take down: brokers on it, ``restart()``, and
    ``outage()``, an async context manager during which the server is down."""

    new_broker: Callable[[], Broker]
    restart: Callable[[], Awaitable[None]]
    outage: Callable[[], AbstractAsyncContextManager[None]]


@dataclass
class Target:
    """A broker under test.

    ``new_broker()`` returns a fresh, unconnected broker; two of them talk to the same server
    (or bus). A target whose broker talks to a server says how to get one that a test may
    restart or stop: ``restartable()`` gives a server of the test's own (the shared servers on this
    machine are never restarted), or fails (skips, outside CI) when a tool it needs is
    missing. A target with no server at all declares ``in_process``: memory's bus lives in
    the test process, and the http mesh is its nodes, each in the test process too.
    ``fair_queue_groups``: every member of a busy queue group gets a share of the messages;
    set it to False where the broker spreads work without promising that (the suite then
    only requires that more than one member gets work).
    ``unreachable()`` returns a broker whose server does not answer (None where there is no
    server to miss, as with memory). ``remote`` is how another process joins the same bus (a
    URL and the broker's options, for ``eventkit.brokers.from_url``), or None where the bus
    lives in this process alone (memory).
    """

    name: str
    new_broker: Callable[[], Broker]
    restartable: Callable[[], AbstractAsyncContextManager[Restartable]] | None = None
    in_process: bool = False
    fair_queue_groups: bool = True
    unreachable: Callable[[], Broker] | None = None
    remote: tuple[str, dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.in_process == (self.restartable is not None):
            raise ValueError(
                f"target {self.name!r}: declare either a server to restart (restartable) "
                "or that there is none (in_process=True)"
            )
