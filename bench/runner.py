"""Runs scenarios interleaved, and reports medians, min-max and ratios to the raw client.

A scenario (say "NATS publish + deliver") has one implementation per library. Each one opens
its connections once (an async context manager yielding a *round*: ``count -> figures``), is
warmed up with a short round, and then the rounds run interleaved, A B C, B C A, C A B ...,
so that the machine's drift over the run falls on every implementation alike. Only the timed
part of a round counts: connecting and subscribing happen before, in ``open``.
"""

from __future__ import annotations

import json
import statistics
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

Figures = dict[str, float]
Round = Callable[[int], Awaitable[Figures]]


@dataclass(frozen=True)
class Env:
    """What every implementation may need: servers, and a prefix unique to this run."""

    nats_url: str
    amqp_url: str
    prefix: str


Opener = Callable[[Env], AbstractAsyncContextManager[Round]]


@dataclass(frozen=True)
class Impl:
    kind: str  # "raw", "eventkit" or "faststream": the ratio column divides by "raw"
    label: str  # what the table shows, e.g. "nats-py"
    open: Opener


@dataclass
class Scenario:
    broker: str  # nats, rabbitmq, http, memory
    name: str  # pubsub, fanout, queue, durable, rpc-seq, rpc-conc
    title: str
    count: int
    unit: str  # "msg/s" or "calls/s"
    impls: list[Impl]
    note: str = ""

    def scaled(self, quick: bool) -> int:
        return max(self.count // 10, 200) if quick else self.count


@dataclass
class Row:
    broker: str
    scenario: str
    title: str
    impl: str
    label: str
    loop: str
    count: int
    unit: str
    note: str
    runs: list[Figures] = field(default_factory=list)
    error: str = ""

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.runs)

    def spread(self, key: str) -> tuple[float, float]:
        values = [r[key] for r in self.runs]
        return min(values), max(values)

    def to_json(self, raw: Row | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "broker": self.broker,
            "scenario": self.scenario,
            "impl": self.impl,
            "label": self.label,
            "loop": self.loop,
            "count": self.count,
            "unit": self.unit,
            "note": self.note,
            "runs": self.runs,
        }
        if self.error:
            out["error"] = self.error
        if self.runs:
            keys = list(self.runs[0])
            out["median"] = {k: self.median(k) for k in keys}
            out["min"] = {k: self.spread(k)[0] for k in keys}
            out["max"] = {k: self.spread(k)[1] for k in keys}
            if raw is not None and raw.runs:
                out["ratio_to_raw"] = self.median("rate") / raw.median("rate")
        return out


async def run_scenario(sc: Scenario, env: Env, repeat: int, quick: bool, loop: str) -> list[Row]:
    count = sc.scaled(quick)
    rows = {
        impl.label: Row(
            sc.broker, sc.name, sc.title, impl.kind, impl.label, loop, count, sc.unit, sc.note
        )
        for impl in sc.impls
    }
    rounds: dict[str, Round] = {}
    async with AsyncExitStack() as stack:
        for impl in sc.impls:
            try:
                rounds[impl.label] = await stack.enter_async_context(impl.open(env))
                await rounds[impl.label](max(count // 20, 64))  # warm up: connections, caches
            except Exception as exc:
                _fail(rows[impl.label], rounds, exc)
        for r in range(repeat):
            names = list(rounds)
            for name in names[r % len(names) :] + names[: r % len(names)] if names else []:
                if name not in rounds:
                    continue
                try:
                    rows[name].runs.append(await rounds[name](count))
                except Exception as exc:
                    _fail(rows[name], rounds, exc)
    return list(rows.values())


def _fail(row: Row, rounds: dict[str, Round], exc: BaseException) -> None:
    row.error = f"{type(exc).__name__}: {exc}"[:200]
    rounds.pop(row.label, None)
    print(f"  ! {row.broker} {row.scenario} {row.label}: {row.error}", flush=True)
    traceback.print_exception(exc, limit=-3)


def _raw_of(row: Row, rows: Sequence[Row]) -> Row | None:
    for other in rows:
        if (
            other.impl == "raw"
            and other.broker == row.broker
            and other.scenario == row.scenario
            and other.loop == row.loop
        ):
            return other
    return None


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def table(rows: Sequence[Row], loops: Sequence[str]) -> str:
    """A Markdown table (readable in a terminal, pasted as is into docs/performance.md)."""
    with_loop = len(loops) > 1
    head = ["broker", "scenario", "implementation"]
    head += ["loop"] if with_loop else []
    head += ["count", "median", "min-max", "x raw", "p50 ms", "p99 ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows:
        cells = [row.broker, row.title, row.label]
        cells += [row.loop] if with_loop else []
        cells.append(f"{row.count:,}")
        if not row.runs:
            cells += [f"failed: {row.error}" if row.error else "-", "", "", "", ""]
        else:
            lo, hi = row.spread("rate")
            raw = _raw_of(row, rows)
            ratio = f"{row.median('rate') / raw.median('rate'):.2f}" if raw and raw.runs else "n/a"
            cells += [
                f"{_num(row.median('rate'))} {row.unit}",
                f"{_num(lo)}-{_num(hi)}",
                ratio,
                f"{row.median('p50_ms'):.3f}" if "p50_ms" in row.runs[0] else "",
                f"{row.median('p99_ms'):.3f}" if "p99_ms" in row.runs[0] else "",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json(path: str, rows: Sequence[Row], meta: dict[str, Any]) -> None:
    data = {
        "meta": meta,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "results": [row.to_json(_raw_of(row, rows)) for row in rows],
    }
    with open(path, "w") as out:
        json.dump(data, out, indent=2)
        out.write("\n")
