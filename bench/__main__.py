"""eventkit's benchmark suite: ``python -m bench``.

Every scenario runs for each implementation (the raw client, eventkit, FastStream where it
has the scenario), interleaved within the run, ``--repeat`` times (at least 5 by default), and
prints a Markdown table of medians with min-max and the ratio of each to the raw client.

    python -m bench                         # everything, asyncio event loop (~8 min)
    python -m bench --quick                 # a tenth of the counts, 3 rounds (~1-2 min)
    python -m bench --broker nats --only rpc-seq --only rpc-conc
    python -m bench --broker memory --broker nats --only rpc-auth   # auth on / off
    python -m bench --loop both --json bench.json
    python -m bench --broker nats --only stream   # one stream's items/s, and the sender's
                                                  # memory when its reader stalls

Servers: NATS at 127.0.0.1:4222 (an embedded nats-server when none answers) and RabbitMQ at
127.0.0.1:5672; a broker whose server does not answer is skipped with a note. Everything the
suite creates on a server (subjects, streams, consumers, queues, exchanges) carries a prefix
unique to the run and is deleted at the end of its scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlsplit

from . import (
    scenarios_auth,
    scenarios_http,
    scenarios_memory,
    scenarios_nats,
    scenarios_rabbitmq,
    scenarios_store,
    stream_rss,
)
from .payload import SIZE
from .runner import Env, Row, Scenario, run_scenario, table, write_json

BROKERS = ("nats", "rabbitmq", "http", "memory")
SCENARIOS = (
    "pubsub",
    "fanout",
    "queue",
    "durable",
    "stream",
    "rpc-seq",
    "rpc-conc",
    "rpc-auth",
    "kv-put",
    "kv-get",
)
LIBRARIES = ("eventkit-micro", "nats-py", "aio-pika", "aiormq", "aiohttp", "pydantic", "faststream")


def _faststream() -> tuple[Any | None, str]:
    try:
        from . import faststream_impl
    except ImportError as exc:
        return None, (
            f"FastStream rows skipped: it is not importable ({exc.name}); "
            'install it with pip install -e ".[bench]" (in the checkout)'
        )
    return faststream_impl, ""


def all_scenarios(faststream: Any | None) -> list[Scenario]:
    return [
        *scenarios_nats.scenarios(faststream),
        *scenarios_store.scenarios(),
        *scenarios_rabbitmq.scenarios(faststream),
        *scenarios_http.scenarios(),
        *scenarios_memory.scenarios(),
        *scenarios_auth.scenarios(),
    ]


def _reachable(url: str) -> bool:
    parts = urlsplit(url.split(",")[0])
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 0.5):
            return True
    except OSError:
        return False


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    libs: dict[str, str] = {}
    for name in (*LIBRARIES, "uvloop"):
        try:
            libs[name] = version(name)
        except PackageNotFoundError:
            libs[name] = "not installed"
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": libs,
    }


async def server_versions(env: Env, brokers: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    if "nats" in brokers:
        import nats

        nc = await nats.connect(env.nats_url)
        out["nats-server"] = nc.connected_server_version.__str__()
        await nc.close()
    if "rabbitmq" in brokers:
        import aio_pika

        conn = await aio_pika.connect(env.amqp_url)
        props = conn.transport.connection.server_properties  # type: ignore[union-attr]
        out["rabbitmq"] = str(props.get("version", "?"))
        await conn.close()
    return out


async def run_all(
    scenarios: list[Scenario], env: Env, args: argparse.Namespace, loop: str
) -> list[Row]:
    rows: list[Row] = []
    for sc in scenarios:
        started = time.perf_counter()
        print(f"[{loop}] {sc.broker} {sc.name} ({sc.scaled(args.quick):,})...", end="", flush=True)
        rows += await run_scenario(sc, env, args.repeat, args.quick, loop)
        print(f" {time.perf_counter() - started:.1f}s", flush=True)
    return rows


def _run(loop: str, main: Callable[[], Coroutine[Any, Any, list[Row]]]) -> list[Row]:
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main())
    return asyncio.run(main())


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the counts, 3 rounds")
    parser.add_argument("--repeat", type=int, default=None, help="rounds (default 5; quick 3)")
    parser.add_argument("--broker", action="append", choices=BROKERS, default=[])
    parser.add_argument("--only", action="append", choices=SCENARIOS, default=[])
    parser.add_argument(
        "--impl", action="append", default=[], help="raw, eventkit, eventkit+otel, faststream"
    )
    parser.add_argument("--loop", choices=("asyncio", "uvloop", "both"), default="asyncio")
    parser.add_argument("--uvloop", action="store_true", help="same as --loop uvloop")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON here")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    args = parser.parse_args(argv)
    if args.uvloop:
        args.loop = "uvloop"
    if args.repeat is None:
        args.repeat = 3 if args.quick else 5
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    faststream, fs_note = _faststream()
    notes = [fs_note] if fs_note else []
    scenarios = all_scenarios(faststream)
    wanted = set(args.broker or BROKERS)
    embedded = None
    if "nats" in wanted and not _reachable(args.nats):
        from eventkit.brokers.nats._embedded import EmbeddedNats

        embedded = EmbeddedNats().start()
        notes.append(f"no NATS at {args.nats}: an embedded nats-server at {embedded.url}")
        args.nats = embedded.url
    if "rabbitmq" in wanted and not _reachable(args.amqp):
        wanted.discard("rabbitmq")
        notes.append(f"RabbitMQ rows skipped: nothing answers at {args.amqp}")
    scenarios = [
        s for s in scenarios if s.broker in wanted and (not args.only or s.name in args.only)
    ]
    if args.impl:
        for s in scenarios:
            s.impls = [i for i in s.impls if i.kind in args.impl]
    env = Env(args.nats, args.amqp, f"bench{uuid.uuid4().hex[:6]}")
    loops = ["asyncio", "uvloop"] if args.loop == "both" else [args.loop]
    meta = machine()
    meta["command"] = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    meta["payload_bytes"] = SIZE
    meta["repeat"] = args.repeat
    meta["notes"] = notes
    for note in notes:
        print(f"note: {note}")
    rows: list[Row] = []
    started = time.perf_counter()
    try:
        for loop in loops:

            async def go(loop: str = loop) -> list[Row]:
                meta["servers"] = await server_versions(env, wanted & {"nats", "rabbitmq"})
                return await run_all(scenarios, env, args, loop)

            rows += _run(loop, go)
        if any(sc.broker == "nats" and sc.name == "stream" for sc in scenarios):
            stalled = 3.0 if args.quick else 5.0
            meta["stream_rss"] = asyncio.run(stream_rss.measure(args.nats, stalled))
    finally:
        if embedded is not None:
            embedded.stop()
    rows.sort(key=lambda r: (BROKERS.index(r.broker), SCENARIOS.index(r.scenario), r.loop))
    meta["seconds"] = round(time.perf_counter() - started, 1)
    print()
    print(_header(meta, args))
    print()
    print(table(rows, loops))
    for sc in scenarios:
        if sc.note:
            print(f"- {sc.broker} {sc.name}: {sc.note}")
    if "stream_rss" in meta:
        print(f"\nA stream's sender when its reader stalls ({stream_rss.ITEM_BYTES:,}-byte items):")
        print(stream_rss.table(meta["stream_rss"]))
    if args.json:
        write_json(args.json, rows, meta)
        print(f"\nwrote {args.json}")


def _header(meta: dict[str, Any], args: argparse.Namespace) -> str:
    libs = ", ".join(f"{k} {v}" for k, v in meta["libraries"].items())
    servers = ", ".join(f"{k} {v}" for k, v in meta.get("servers", {}).items())
    return (
        f"{meta['cores']} cores, {meta['cpu']}, Python {meta['python']}; {libs}; {servers}\n"
        f"payload {meta['payload_bytes']} B JSON; medians of {args.repeat} interleaved rounds; "
        f"rates are deliveries (or calls) per second; x raw = median / raw client's median; "
        f"took {meta['seconds']} s"
    )


if __name__ == "__main__":
    main()
