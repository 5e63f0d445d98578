"""A mesh node in a process of its own, for the multi-process tests.

``python -m tests.http.node NAME PORT SEEDS``: serves on 127.0.0.1:PORT, answers every
message on ``mesh.ping`` with one on ``mesh.echo`` that names it, and leaves on SIGTERM.
"""

from __future__ import annotations

import signal
import sys

import anyio

from eventkit.brokers.http import HttpBroker
from eventkit.wire import Message


async def main(name: str, port: int, seeds: str) -> None:
    url = f"http://127.0.0.1:{port}?seeds={seeds}"
    async with HttpBroker(url, gossip_interval=0.2, dead_after=1.5, drain_timeout=1.0) as node:

        async def on_ping(message: Message) -> None:
            echo = {"x-id": message.headers.get("x-id", ""), "x-node": name}
            await node.publish(Message("mesh.echo", name.encode(), echo))

        await node.subscribe("mesh.ping", on_ping)
        print(f"ready {node.address}", flush=True)
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                break


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], int(sys.argv[2]), sys.argv[3])
