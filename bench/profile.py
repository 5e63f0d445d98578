"""Where one implementation's time goes in one scenario: ``python -m bench.profile``.

    python -m bench.profile nats pubsub eventkit [--count 50000] [--flat 30 | --html out.html]

Opens the implementation as the suite does, warms it up, then runs one round under
pyinstrument (``pip install pyinstrument``) and prints the call tree, the functions with the
most time of their own (``--flat``), or writes HTML. Publisher, server side and subscriber
share this process, so the profile shows all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from pathlib import Path

from pyinstrument import Profiler

from . import scenarios_http, scenarios_memory, scenarios_nats, scenarios_rabbitmq
from .__main__ import _faststream
from .runner import Env, Scenario


def _find(broker: str, scenario: str) -> Scenario:
    fs, _ = _faststream()
    every = [
        *scenarios_nats.scenarios(fs),
        *scenarios_rabbitmq.scenarios(fs),
        *scenarios_http.scenarios(),
        *scenarios_memory.scenarios(),
    ]
    for sc in every:
        if sc.broker == broker and sc.name == scenario:
            return sc
    raise SystemExit(f"no scenario {broker} {scenario}")


async def profile(args: argparse.Namespace) -> Profiler:
    sc = _find(args.broker, args.scenario)
    impl = next((i for i in sc.impls if i.kind == args.impl), None)
    if impl is None:
        raise SystemExit(f"{args.broker} {args.scenario} has no {args.impl} implementation")
    env = Env(args.nats, args.amqp, f"bench{uuid.uuid4().hex[:6]}")
    count = args.count or sc.count
    async with impl.open(env) as one:
        await one(max(count // 20, 64))
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        figures = await one(count)
        profiler.stop()
    print(f"{args.broker} {args.scenario} {impl.label}: {figures}")
    return profiler


def report(profiler: Profiler, args: argparse.Namespace) -> None:
    if args.html:
        Path(args.html).write_text(profiler.output_html())
    elif args.flat:
        text = profiler.output_text(time="percent_of_total", flat=True)
        print("\n".join(text.splitlines()[: args.flat + 8]))
    else:
        print(profiler.output_text(time="percent_of_total", show_all=False))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("broker", choices=("nats", "rabbitmq", "http", "memory"))
    parser.add_argument("scenario")
    parser.add_argument("impl", nargs="?", default="eventkit")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--html")
    parser.add_argument("--flat", type=int, default=0, help="the N functions with most self time")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    args = parser.parse_args()
    report(asyncio.run(profile(args)), args)


if __name__ == "__main__":
    main()
