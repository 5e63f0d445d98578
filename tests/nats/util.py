"""Helpers for NATS tests: brokers that remember their durables, and cleaning up after them.

Test runs share the machine's server (and may run in parallel), so a run deletes only the
durable consumers it made, and a stream only once no consumer of any run is left on it.
"""

from __future__ import annotations

import json
from typing import Any

from nats.aio.client import Client

from eventkit.brokers import DeliveryPolicy, MessageHandler
from eventkit.brokers.nats import NatsBroker
from eventkit.brokers.nats._core import NatsSubscription
from eventkit.brokers.nats._jetstream import DurableSubscription


class TrackingNatsBroker(NatsBroker):
    """A NatsBroker that records the (stream, durable) pairs it subscribed."""

    def __init__(self, url: str, made: set[tuple[str, str]], **options: Any) -> None:
        super().__init__(url, **options)
        self._made = made

    async def subscribe(
        self,
        topic: str,
        handler: MessageHandler,
        *,
        queue: str | None = None,
        durable: str | None = None,
        policy: DeliveryPolicy | None = None,
    ) -> NatsSubscription | DurableSubscription:
        sub = await super().subscribe(topic, handler, queue=queue, durable=durable, policy=policy)
        if isinstance(sub, DurableSubscription) and durable is not None:
            self._made.add((sub._stream, durable))
        return sub


async def delete_durables(url: str, made: set[tuple[str, str]]) -> None:
    """Delete these consumers, then each of their streams that no consumer uses any more."""
    if not made:
        return
    nc = Client()
    await nc.connect(servers=[url], connect_timeout=2, allow_reconnect=False)
    try:
        for stream, durable in sorted(made):
            await nc.request(f"$JS.API.CONSUMER.DELETE.{stream}.{durable}", b"", timeout=5)
        for stream in sorted({s for s, _ in made}):
            if stream == "eventkit-eventkit":
                continue  # dead letters: shared, and bounded by the stream's limits
            reply = await nc.request(f"$JS.API.STREAM.INFO.{stream}", b"", timeout=5)
            info = json.loads(reply.data)
            if info.get("state", {}).get("consumer_count", 1) == 0:
                await nc.request(f"$JS.API.STREAM.DELETE.{stream}", b"", timeout=5)
    finally:
        await nc.close()
