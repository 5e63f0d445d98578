"""How streams end badly, on every broker: cancel, a handler's error, the deadline, a silent
side (heartbeats), and a serving process killed with SIGKILL.

Bounds are liveness bounds, not speed: a stream whose other side died must fail within
``BOUND`` (3.5 heartbeats) plus generous slack, and never hang.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from eventkit import DeadlineExceeded, InternalError, ServiceUnavailable, Stream

from .streaming import (
    BOUND,
    HEARTBEAT,
    Count,
    Gone,
    Probe,
    Tick,
    client,
    known,
    streaming,
    ticker,
)
from .target import Target

pytestmark = pytest.mark.anyio

SLACK = 5.0
"""Added to every liveness bound: a loaded CI machine is slow, but never this slow."""


async def test_cancel_closes_the_handlers_generator(target: Target) -> None:
    async with streaming(target) as (kit, probe):
        stream = kit.stream("ticker", "Ticker.Count", Count(n=10**9, pause=0.001), response=Tick)
        assert [(await anext(stream)).n for _ in range(3)] == [0, 1, 2]
        await stream.cancel()
        with anyio.fail_after(BOUND + SLACK):
            await probe.finished.wait()
        assert probe.ended_by in ("GeneratorExit", "CancelledError")
        assert [tick async for tick in stream] == []  # a cancelled stream just ends


async def test_leaving_the_loop_cancels_the_stream(target: Target) -> None:
    async with streaming(target) as (kit, probe):
        async for tick in kit.stream("ticker", "Ticker.Count", Count(n=10**9), response=Tick):
            if tick.n == 5:
                break
        with anyio.fail_after(BOUND + SLACK):
            await probe.finished.wait()
        assert probe.ended_by in ("GeneratorExit", "CancelledError")


async def test_an_error_mid_stream_arrives_typed_after_the_items_before_it(
    target: Target,
) -> None:
    async with streaming(target) as (kit, _):
        got: list[Tick] = []
        stream = kit.stream("ticker", "Ticker.Count", Count(n=10, fail_after=5), response=Tick)
        with pytest.raises(Gone) as raised:
            await drain(stream, got)
        assert [tick.n for tick in got] == [0, 1, 2, 3, 4]
        assert (raised.value.code, raised.value.detail, raised.value.id) == (
            410,
            "stopped at 5",
            "ticker",
        )
        got.clear()
        stream = kit.stream("ticker", "Ticker.Crash", Count(n=3), response=Tick)
        with pytest.raises(InternalError, match="ValueError: the handler broke"):
            await drain(stream, got)
        assert [tick.n for tick in got] == [0, 1, 2]


async def test_the_deadline_ends_the_stream_on_both_sides(target: Target) -> None:
    async with streaming(target) as (kit, probe):
        stream = kit.stream(
            "ticker", "Ticker.Count", Count(n=100, pause=0.25), response=Tick, timeout=0.6
        )
        got: list[Tick] = []
        with anyio.fail_after(0.6 + SLACK), pytest.raises(DeadlineExceeded):
            await drain(stream, got)
        assert [tick.n for tick in got][:1] == [0]
        assert len(got) < 5
        with anyio.fail_after(BOUND + SLACK):
            await probe.finished.wait()
        assert probe.ended_by == "CancelledError"
        assert probe.context_deadline is not None  # the handler saw it (ctx.deadline)


async def test_heartbeats_keep_an_idle_stream_open(target: Target) -> None:
    async with streaming(target) as (kit, _):
        idle = 1.5 * BOUND  # longer than a silent side may last: only heartbeats bridge it
        stream = kit.stream(
            "ticker", "Ticker.Count", Count(n=2, pause=idle), response=Tick, heartbeat=HEARTBEAT
        )
        assert [tick.n async for tick in stream] == [0, 1]


async def test_a_caller_that_goes_silent_gets_its_handler_cancelled(target: Target) -> None:
    async with streaming(target) as (_, probe), client(target, probe.namespace) as kit:
        await known(kit, "ticker")
        stream = kit.stream(
            "ticker", "Ticker.Count", Count(n=10**9, pause=0.01), heartbeat=HEARTBEAT
        )
        await anext(stream)
        await kit.broker.close()  # the caller's connection is gone: no cancel, no frame
        with anyio.fail_after(BOUND + SLACK):
            await probe.finished.wait()
        assert probe.ended_by in ("GeneratorExit", "CancelledError")


NODE = textwrap.dedent(
    """
    import json, os
    from collections.abc import AsyncIterator
    import anyio
    from eventkit import Service
    from eventkit.brokers import from_url

    svc = Service("ticker", namespace=os.environ["TICKER_NS"], registry_ttl=30, heartbeat=1)

    @svc.endpoint("Ticker.Forever")
    async def forever(start: int) -> AsyncIterator[int]:
        n = start
        while True:
            yield n
            n += 1
            await anyio.sleep(0.005)

    async def main() -> None:
        options = json.loads(os.environ["TICKER_OPTIONS"])
        await svc.start(broker=from_url(os.environ["TICKER_URL"], **options))
        print("ready", svc.node_id, flush=True)
        await anyio.sleep_forever()

    anyio.run(main)
    """
)


@pytest.fixture
def node_script(tmp_path: Path) -> Path:
    script = tmp_path / "ticker_node.py"
    script.write_text(NODE)
    return script


async def test_a_serving_node_that_dies_fails_the_stream_within_the_heartbeat_bound(
    target: Target, node_script: Path
) -> None:
    """SIGKILL of the serving process; on memory://, whose bus lives in one process, the
    serving node's connection is closed under it (it can say nothing more either way)."""
    ns = f"st{uuid.uuid4().hex[:10]}"
    if target.remote is None:
        assert target.name == "memory"
        probe = Probe()
        svc = ticker(ns, probe)
        await svc.start(broker=target.new_broker())
        try:
            async with client(target, ns) as kit:
                await known(kit, "ticker")
                count = Count(n=10**9, pause=0.005)
                stream = kit.stream("ticker", "Ticker.Count", count, heartbeat=HEARTBEAT)
                await anext(stream)
                await svc.broker.close()
                with anyio.fail_after(BOUND + SLACK), pytest.raises(ServiceUnavailable):
                    await drain(stream, [])
        finally:
            await svc.stop()
        return
    url, options = target.remote
    env = {**os.environ, "TICKER_NS": ns, "TICKER_URL": url, "TICKER_OPTIONS": json.dumps(options)}
    process = await anyio.open_process(
        [sys.executable, str(node_script)],
        env=env,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if os.environ.get("CI") else None,
    )
    try:
        assert process.stdout is not None
        with anyio.fail_after(30):
            line = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 1000)
        assert line.startswith(b"ready"), line
        async with client(target, ns) as kit:
            await known(kit, "ticker")
            stream = kit.stream("ticker", "Ticker.Forever", 0, response=int, heartbeat=HEARTBEAT)
            assert [await anext(stream) for _ in range(5)] == [0, 1, 2, 3, 4]
            process.kill()  # SIGKILL
            await process.wait()
            with anyio.fail_after(BOUND + SLACK), pytest.raises(ServiceUnavailable) as raised:
                await drain(stream, [])
            assert "silent" in raised.value.detail or "stopped answering" in raised.value.detail
    finally:
        if process.returncode is None:
            process.kill()
        with anyio.CancelScope(shield=True):
            await process.aclose()


async def drain(stream: Stream[Any], into: list[Any]) -> None:
    """Read ``stream`` to its end (or its error) into ``into``."""
    async for item in stream:
        into.append(item)


async def test_a_stopping_node_cuts_its_streams(target: Target) -> None:
    ns = f"st{uuid.uuid4().hex[:10]}"
    probe = Probe(ns)
    svc = ticker(ns, probe)
    await svc.start(broker=target.new_broker())
    async with client(target, ns) as kit:
        await known(kit, "ticker")
        stream = kit.stream("ticker", "Ticker.Count", Count(n=10**9, pause=0.005))
        await anext(stream)
        await svc.stop()  # does not wait for the stream: it is cut, and the caller told
        assert probe.finished.is_set()
        assert probe.ended_by in ("GeneratorExit", "CancelledError")
        with anyio.fail_after(SLACK), pytest.raises(ServiceUnavailable, match="stopped"):
            await drain(stream, [])
