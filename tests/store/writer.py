"""A writer process for the restart test: puts ``k0, k1, ...`` until killed, and prints
``index revision`` once each put is acknowledged.

    python -m tests.store.writer BROKER_URL STORE_URL BUCKET     (a URL may be '-')
"""

from __future__ import annotations

import sys

import anyio

from eventkit.brokers import from_url
from eventkit.store import Store


async def main(broker_url: str, store_url: str | None, bucket: str) -> None:
    async with from_url(broker_url) as broker:
        store = Store(lambda: broker, lambda: store_url)
        values = store(bucket, int)
        index = 0
        while True:
            revision = await values.put(f"k{index}", index)
            print(index, revision, flush=True)
            index += 1


if __name__ == "__main__":
    broker_arg, store_arg, bucket_arg = sys.argv[1:4]
    anyio.run(main, broker_arg, None if store_arg == "-" else store_arg, bucket_arg)
