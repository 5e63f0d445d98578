"""Helpers for NATS tests: cleaning up the streams tests made on a shared server."""

from __future__ import annotations

from nats.aio.client import Client

from eventkit.brokers.nats_streams import list_streams, stream_name


async def delete_test_streams(url: str, *tokens: str) -> None:
    """Delete eventkit's streams for these first topic tokens (tests' own prefixes)."""
    nc = Client()
    await nc.connect(servers=[url], connect_timeout=2, allow_reconnect=False)
    try:
        wanted = {stream_name(t) for t in tokens}
        for name in await list_streams(nc):
            if name in wanted:
                await nc.request(f"$JS.API.STREAM.DELETE.{name}", b"", timeout=5)
    finally:
        await nc.close()
