"""amqp:// : the machine's RabbitMQ (``EVENTKIT_TEST_AMQP_URL``), one exchange per session.

Each target session publishes on an exchange of its own, so parallel runs never see each
other's messages, and deletes that exchange and its queues when it ends (durable queues would
otherwise pile up on a shared server). ``restart`` is ``rabbitmqctl stop_app`` then
``start_app`` (always, from a detached shell), declared only where rabbitmqctl reaches the node.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import aio_pika
import anyio

from eventkit.brokers.rabbitmq import RabbitBroker
from tests.servers import free_port, port_open, require_server

from ..target import Target

log = logging.getLogger(__name__)

AMQP_URL = os.environ.get("EVENTKIT_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
_HOST = urlsplit(AMQP_URL).hostname or "127.0.0.1"
_PORT = urlsplit(AMQP_URL).port or 5672


def require_rabbitmq() -> None:
    require_server(_HOST, _PORT, f"RabbitMQ ({AMQP_URL.split('@')[-1]})")


async def can_restart() -> str | None:
    """Why the server cannot be restarted from here, or None when it can."""
    if _HOST not in ("127.0.0.1", "localhost", "::1"):
        return f"RabbitMQ at {_HOST} is not on this machine"
    if shutil.which("rabbitmqctl") is None:
        return "rabbitmqctl is not on PATH"
    try:
        with anyio.fail_after(20):
            done = await anyio.run_process(["rabbitmqctl", "-q", "status"], check=False)
    except (OSError, TimeoutError) as exc:
        return f"rabbitmqctl status failed: {exc!r}"
    if done.returncode != 0:
        return f"rabbitmqctl cannot reach the node: {done.stderr.decode(errors='replace')[:300]}"
    return None


async def restart_rabbitmq() -> None:
    """Stop and start the RabbitMQ application; it is always started again.

    One shell in a session of its own runs both commands, so RabbitMQ comes back even when
    this test process is interrupted or killed between the two.
    """
    script = "rabbitmqctl -q stop_app; rabbitmqctl -q start_app"
    process = await anyio.open_process(
        ["sh", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    with anyio.CancelScope(shield=True):
        await process.wait()
        for _ in range(300):  # start_app returns with the listener up; this double-checks
            if port_open(_HOST, _PORT, timeout=0.2):
                break
            await anyio.sleep(0.1)
    if process.returncode != 0:
        raise RuntimeError(f"restarting RabbitMQ failed: `{script}` exited {process.returncode}")


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


def new_exchange() -> str:
    return f"eventkit-test-{uuid.uuid4().hex[:10]}"


@asynccontextmanager
async def target() -> AsyncIterator[Target]:
    require_rabbitmq()
    exchange = new_exchange()
    why_not = await can_restart()
    if why_not is not None:
        log.warning("the rabbitmq target cannot restart the server: %s", why_not)

    def new_broker() -> RabbitBroker:
        return RabbitBroker(AMQP_URL, exchange=exchange, drain_timeout=5.0, timeout=10.0)

    try:
        yield Target(
            name="rabbitmq",
            new_broker=new_broker,
            restart=restart_rabbitmq if why_not is None else None,
            unreachable=lambda: RabbitBroker(
                f"amqp://guest:guest@127.0.0.1:{free_port()}/", timeout=2.0
            ),
            remote=(AMQP_URL, {"exchange": exchange, "drain_timeout": 5.0}),
        )
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(30):
            await delete_exchange(exchange)
