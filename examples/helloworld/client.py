"""Call helloworld once: `python -m examples.helloworld.client John` (EVENTKIT_BROKER)."""

from __future__ import annotations

import sys

import anyio

import eventkit

from .service import Request, Response


async def main(name: str) -> None:
    async with eventkit.connect() as kit:
        reply = await kit.call(
            "helloworld", "Helloworld.Call", Request(name=name), response=Response, timeout=5
        )
    print(reply.msg)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "World")
