"""Memory of a stream's sender whose receiver stopped reading: bounded by the window.

    python -m bench.stream_rss [--nats nats://127.0.0.1:4222] [--seconds 5]

A service in a process of its own streams 10 KB items from an endless generator. This
process opens the stream with a given window, reads one item and then reads nothing more
for ``--seconds``; meanwhile it samples the service process's resident memory (VmRSS). With
flow control the handler stops once the window is used up, so the sender's memory stays
where it was, whatever the time; only the window (items x size) is ever in flight. Printed
for windows of 16, 256 and 4096 items (160 KB, 2.5 MB and 40 MB of items).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
import time
import uuid
from typing import Any

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream

import eventkit
from eventkit import Settings

ITEM_BYTES = 10_000
WINDOWS = (16, 256, 4096)

NODE = textwrap.dedent(
    """
    import os
    from collections.abc import AsyncIterator
    import anyio
    from eventkit import Service

    svc = Service("flood", namespace=os.environ["FLOOD_NS"])
    produced = 0

    @svc.endpoint("Flood.Items")
    async def items(size: int) -> AsyncIterator[str]:
        global produced
        blob = "x" * size
        while True:
            produced += 1
            yield blob

    @svc.endpoint("Flood.Produced")
    async def count() -> int:
        return produced

    async def main() -> None:
        await svc.start(broker=os.environ["FLOOD_URL"])
        print("ready", flush=True)
        await anyio.sleep_forever()

    anyio.run(main)
    """
)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def measure(url: str, seconds: float = 5.0) -> list[dict[str, Any]]:
    """One row per window: the sender's RSS before, its peak while stalled, items produced."""
    ns = f"rss{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "FLOOD_NS": ns, "FLOOD_URL": url}
    proc = await anyio.open_process(
        [sys.executable, "-c", NODE], env=env, stdin=subprocess.DEVNULL, stderr=None
    )
    rows: list[dict[str, Any]] = []
    try:
        assert proc.stdout is not None
        line = await BufferedByteReceiveStream(proc.stdout).receive_until(b"\n", 1000)
        if not line.startswith(b"ready"):
            raise RuntimeError(f"the flood service did not start: {line!r}")
        settings = Settings(broker=url, namespace=ns)
        async with eventkit.Client(settings=settings) as kit:
            while not await kit.describe("flood", wait=0.2):
                await anyio.sleep(0.1)
            for window in WINDOWS:
                before = rss_mb(proc.pid)
                produced_before = await kit.call("flood", "Flood.Produced")
                stream = kit.stream("flood", "Flood.Items", ITEM_BYTES, window=window)
                await anext(stream)
                peak, samples = before, []
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    await anyio.sleep(0.25)
                    samples.append(rss_mb(proc.pid))
                    peak = max(peak, samples[-1])
                produced = await kit.call("flood", "Flood.Produced") - produced_before
                await stream.aclose()
                rows.append(
                    {
                        "window": window,
                        "bound_mb": window * ITEM_BYTES / 1e6,
                        "rss_before_mb": round(before, 1),
                        "rss_peak_mb": round(peak, 1),
                        "rss_end_mb": round(samples[-1], 1),
                        "produced": produced,
                        "stalled_s": seconds,
                    }
                )
                await anyio.sleep(0.5)
    finally:
        proc.kill()
        with anyio.CancelScope(shield=True):
            await proc.aclose()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| window (items) | items in flight at most | sender RSS before | peak while stalled "
        "| at the end | items produced |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['window']:,} | {r['bound_mb']:.2f} MB | {r['rss_before_mb']} MB "
            f"| {r['rss_peak_mb']} MB | {r['rss_end_mb']} MB | {r['produced']:,} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_rss", description=__doc__)
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    rows = anyio.run(measure, args.nats, args.seconds)
    print(f"items of {ITEM_BYTES:,} bytes; the reader took one item, then stalled")
    print(table(rows))


if __name__ == "__main__":
    main()
