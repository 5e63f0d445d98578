"""Streaming RPC on every broker: order, credit, volume, concurrency, both directions.

Streams are written once above the Broker protocol (eventkit/rpc), so these run per target
like the rest of the suite; failures (cancel, errors, deadlines, a dying node) are in
``test_stream_failures.py``. The handlers record what they see in a ``Probe``.
"""

from __future__ import annotations

import anyio
import pytest

from eventkit import BadRequest, NotFound, StreamClosed

from .streaming import Count, Tick, streaming
from .target import Target

pytestmark = pytest.mark.anyio


async def test_items_arrive_in_order_and_the_stream_ends(target: Target) -> None:
    async with streaming(target) as (kit, probe):
        stream = kit.stream("ticker", "Ticker.Count", Count(n=1000), response=Tick)
        got = [tick.n async for tick in stream]
        assert got == list(range(1000))
        await probe.finished.wait()
        assert probe.ended_by == "end"
        assert stream.node is not None


async def test_the_handler_is_never_more_than_the_window_ahead(target: Target) -> None:
    window = 8
    async with streaming(target) as (kit, probe):
        stream = kit.stream("ticker", "Ticker.Count", Count(n=48), response=Tick, window=window)
        async for tick in stream:
            probe.taken += 1
            assert tick.n == probe.taken - 1
            await anyio.sleep(0.005)  # a slow reader: the handler waits for credit
        assert probe.produced == 48
        # Never beyond the window, and the window is used (not one item at a time).
        assert window // 2 < probe.max_lead <= window, probe.max_lead


async def test_a_stalled_reader_stops_the_handler_after_one_window(target: Target) -> None:
    async with streaming(target) as (kit, probe):
        stream = kit.stream("ticker", "Ticker.Count", Count(n=100_000), response=Tick, window=16)
        first = await anext(stream)
        assert first.n == 0
        await anyio.sleep(0.5)  # read nothing more: the handler must stop at the window
        assert probe.produced == 16
        await stream.aclose()
        with anyio.fail_after(10):
            await probe.finished.wait()


async def test_100000_items_through_one_stream(target: Target) -> None:
    async with streaming(target) as (kit, _):
        seen = 0
        total = 0
        with anyio.fail_after(120):
            async for tick in kit.stream("ticker", "Ticker.Count", Count(n=100_000), response=Tick):
                assert tick.n == seen
                seen += 1
                total += tick.n
        assert seen == 100_000
        assert total == sum(range(100_000))


async def test_100_concurrent_streams(target: Target) -> None:
    async with streaming(target) as (kit, _):
        results: dict[int, list[int]] = {}

        async def one(k: int) -> None:
            stream = kit.stream("ticker", "Ticker.Count", Count(n=50 + k), response=Tick)
            results[k] = [tick.n async for tick in stream]

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for k in range(100):
                    tg.start_soon(one, k)
        assert sorted(results) == list(range(100))
        for k, items in results.items():
            assert items == list(range(50 + k))


async def test_a_client_stream_sends_under_the_servers_credit(target: Target) -> None:
    async with streaming(target) as (kit, probe):
        async with kit.stream("ticker", "Adder.Sum", response=int) as stream:
            for number in range(200):
                await stream.send(number)
                probe.sent += 1
            await stream.close_send()
            with pytest.raises(StreamClosed):
                await stream.send(1)
            assert [reply async for reply in stream] == [sum(range(200))]
        assert probe.received == 200
        assert probe.max_behind <= 4  # Adder.Sum takes a window of 4 items


async def test_a_bidi_stream_answers_item_by_item(target: Target) -> None:
    async with streaming(target) as (kit, probe):
        async with kit.stream("ticker", "Echo.Chat", response=str) as chat:
            for word in ("one", "two", "three"):
                await chat.send(word)
                assert await anext(chat) == word.upper()
            # More than both windows: sending and reading go on side by side.
            lines = [f"line {i}" for i in range(1000)]
            replies: list[str] = []

            async def send_all() -> None:
                for line in lines:
                    await chat.send(line)
                await chat.close_send()

            async with anyio.create_task_group() as tg:
                tg.start_soon(send_all)
                replies.extend([reply async for reply in chat])
            assert replies == [line.upper() for line in lines]
        await probe.finished.wait()


async def test_a_server_stream_takes_no_items(target: Target) -> None:
    async with (
        streaming(target) as (kit, _),
        kit.stream("ticker", "Ticker.Count", Count(n=3), response=Tick) as stream,
    ):
        with pytest.raises(StreamClosed, match="streams to the caller only"):
            await stream.send(Tick(n=1))
        assert [t.n async for t in stream] == [0, 1, 2]


async def test_opening_errors_are_typed(target: Target) -> None:
    async with streaming(target) as (kit, _):
        with pytest.raises(NotFound, match=r"Ticker\.Nope"):
            await anext(kit.stream("ticker", "Ticker.Nope", Count(n=1)))
        with pytest.raises(BadRequest) as invalid:
            await anext(kit.stream("ticker", "Ticker.Count", {"n": "many"}))
        assert invalid.value.data[0]["loc"] == ["n"]
        with pytest.raises(BadRequest, match=r"open it with kit\.stream"):
            await kit.call("ticker", "Ticker.Count", Count(n=1), timeout=5)
        with pytest.raises(BadRequest, match="not a streaming endpoint"):
            await anext(kit.stream("ticker", "Plain.Hello", "ann"))
        with pytest.raises(BadRequest, match="send\\(\\) them"):
            await anext(kit.stream("ticker", "Adder.Sum", [1, 2]))
        assert await kit.call("ticker", "Plain.Hello", "ann", timeout=5) == "hello ann"
