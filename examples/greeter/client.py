"""Call greeter with metadata and print what each side knows of the other.

`python -m examples.greeter.client Ada` (broker: EVENTKIT_BROKER).
"""

from __future__ import annotations

import sys

import anyio

import eventkit

from .service import CountReply, HelloReply, HelloRequest


async def main(name: str) -> None:
    async with eventkit.connect() as kit:
        reply = await kit.call(
            "greeter",
            "Greeter.Hello",
            HelloRequest(name=name),
            response=HelloReply,
            metadata={"tenant": "acme", "request-id": "r-1"},
        )
        count = await kit.call("greeter", "Greeter.Count", response=CountReply)
        print(reply.msg)
        print(f"callee: node {reply.node} at {reply.address}")
        print(f"caller: node {reply.caller} at {reply.caller_address} (this is {kit.node_id})")
        print(f"metadata seen by the callee: {reply.metadata}")
        print(f"greetings so far on {count.node}: {count.greeted}")


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "World")
