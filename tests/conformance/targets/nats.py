"""nats:// : the machine's NATS server with JetStream at 127.0.0.1:4222 (no restart).

Skipped where nothing answers (a failure under CI). Streams the suite's durables made under
its ``t.*`` topics are deleted at the end, so runs do not pile up state on a shared server.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eventkit.brokers.nats import NatsBroker
from tests.nats.util import delete_test_streams
from tests.servers import require_server

from ..target import Target

URL = os.environ.get("EVENTKIT_TEST_NATS_URL", "nats://127.0.0.1:4222")


@asynccontextmanager
async def target() -> AsyncIterator[Target]:
    require_server("127.0.0.1", 4222, "NATS (nats-server -js)")
    try:
        yield Target(name="nats", new_broker=lambda: NatsBroker(URL, drain_timeout=5.0))
    finally:
        await delete_test_streams(URL, "t")
