"""amqp:// : the machine's RabbitMQ (``EVENTKIT_TEST_AMQP_URL``), one exchange per session.

Each target session publishes on an exchange of its own, so parallel runs never see each
other's messages, and deletes that exchange and its queues when it ends (durable queues would
otherwise pile up on a shared server). The shared node is never restarted: a test that
restarts RabbitMQ gets a private node of its own (tests.rabbitmq_node), restarted with
``stop_app``/``start_app`` and stopped at the end.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import aio_pika
import anyio

from eventkit.brokers.rabbitmq import RabbitBroker
from tests.rabbitmq_node import private_rabbitmq
from tests.servers import free_port, require_server

from ..target import Restartable, Target

log = logging.getLogger(__name__)

AMQP_URL = os.environ.get("EVENTKIT_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
_HOST = urlsplit(AMQP_URL).hostname or "127.0.0.1"
_PORT = urlsplit(AMQP_URL).port or 5672


def require_rabbitmq() -> None:
    require_server(_HOST, _PORT, f"RabbitMQ ({AMQP_URL.split('@')[-1]})")


async def delete_exchange(exchange: str) -> None:
    """Delete ``exchange`` and every queue named after it (needs rabbitmqctl to list them)."""
    names: list[str] = []
    if shutil.which("rabbitmqctl") is not None and _HOST in ("127.0.0.1", "localhost", "::1"):
        vhost = urlsplit(AMQP_URL).path[1:] or "/"
        try:
            listed = await anyio.run_process(
                ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "--no-table-headers", "name"],
                check=False,
            )
            names = [n for n in listed.stdout.decode().split() if n.startswith(f"{exchange}.")]
        except OSError as exc:
            log.warning("cannot list queues to clean up %s: %s", exchange, exc)
    conn = await aio_pika.connect(AMQP_URL, timeout=10)
    async with conn:
        channel = await conn.channel()
        for name in names:
            await channel.queue_delete(name)
        await channel.exchange_delete(exchange)
        await channel.exchange_delete(f"{exchange}.delayed")  # delayed publishes go there


def new_exchange() -> str:
    return f"eventkit-test-{uuid.uuid4().hex[:10]}"


def broker_on(url: str, exchange: str, publish_timeout: float = 10.0) -> RabbitBroker:
    return RabbitBroker(
        url,
        exchange=exchange,
        drain_timeout=5.0,
        connect_timeout=10.0,
        publish_timeout=publish_timeout,
    )


@asynccontextmanager
async def restartable() -> AsyncIterator[Restartable]:
    """A private RabbitMQ node for one test (needs rabbitmq-server: see tests.rabbitmq_node)."""
    async with private_rabbitmq() as node:
        exchange = new_exchange()
        yield Restartable(lambda: broker_on(node.url, exchange), node.restart, node.outage)


@asynccontextmanager
async def target() -> AsyncIterator[Target]:
    require_rabbitmq()
    exchange = new_exchange()
    try:
        yield Target(
            name="rabbitmq",
            # A confirm is waited for 30 s: on a loaded machine measured by coverage, 1,000
            # RPC requests at once had confirms past 10 s. A bound against hangs, no speed claim.
            new_broker=lambda: broker_on(AMQP_URL, exchange, publish_timeout=30.0),
            restartable=restartable,
            unreachable=lambda: RabbitBroker(
                f"amqp://guest:guest@127.0.0.1:{free_port()}/", timeout=2.0
            ),
            remote=(AMQP_URL, {"exchange": exchange, "drain_timeout": 5.0}),
        )
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(30):
            await delete_exchange(exchange)
