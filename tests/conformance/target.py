"""What a conformance target provides: fresh brokers on one shared server, and a restart."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from eventkit.brokers import Broker


@dataclass
class Target:
    """A broker under test.

    ``new_broker()`` returns a fresh, unconnected broker; two of them talk to the same server
    (or bus). ``restart`` restarts the server in the middle of a test, where the target can.
    """

    name: str
    new_broker: Callable[[], Broker]
    restart: Callable[[], Awaitable[None]] | None = None
