"""The key-value store on NATS: eventkit's typed bucket against nats-py's own KV API.

Raw nats-py is what a careful user writes by hand: ``kv.put(key, json bytes)`` and
``kv.get(key)`` then ``json.loads`` on a bucket made with ``js.create_key_value``. eventkit
is ``kit.store(bucket, Model)``: the same JetStream calls plus the pydantic model's JSON
encode on put and validation on get. Sequential calls, one in flight: what a handler does.
Each side has its own bucket, deleted at the end.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import nats
from pydantic import BaseModel

from eventkit.brokers.nats import NatsBroker
from eventkit.store import Store

from .payload import timed_calls
from .runner import Env, Impl, Round, Scenario

LABEL = "nats-py"
KEYS = 100


class Cart(BaseModel):
    user: str
    items: list[str]
    total_cents: int


def _cart(i: int) -> Cart:
    return Cart(user=f"user-{i % KEYS}", items=["mug", "tea", f"item-{i}"], total_cents=i)


@asynccontextmanager
async def raw(env: Env, op: str) -> AsyncIterator[Round]:
    nc = await nats.connect(env.nats_url)
    js = nc.jetstream()
    bucket = f"{env.prefix}-raw-{uuid.uuid4().hex[:6]}".replace(".", "-")
    kv = await js.create_key_value(bucket=bucket, direct=True)  # as `nats kv add` makes it
    try:
        for i in range(KEYS):
            await kv.put(f"c{i}", json.dumps(_cart(i).model_dump()).encode())

        async def put(i: int) -> None:
            await kv.put(f"c{i % KEYS}", json.dumps(_cart(i).model_dump()).encode())

        async def get(i: int) -> None:
            entry = await kv.get(f"c{i % KEYS}")
            json.loads(entry.value or b"")

        call = put if op == "put" else get

        async def one(count: int) -> dict[str, float]:
            return await timed_calls(count, 1, call)

        yield one
    finally:
        await js.delete_key_value(bucket)
        await nc.close()


@asynccontextmanager
async def eventkit(env: Env, op: str) -> AsyncIterator[Round]:
    bucket = f"{env.prefix}-ek-{uuid.uuid4().hex[:6]}".replace(".", "-")
    async with NatsBroker(env.nats_url) as broker:
        store = Store(lambda: broker, lambda: None)
        carts = store(bucket, Cart)
        try:
            for i in range(KEYS):
                await carts.put(f"c{i}", _cart(i))

            async def put(i: int) -> None:
                await carts.put(f"c{i % KEYS}", _cart(i))

            async def get(i: int) -> None:
                await carts.get(f"c{i % KEYS}")

            call = put if op == "put" else get

            async def one(count: int) -> dict[str, float]:
                return await timed_calls(count, 1, call)

            yield one
        finally:
            kv: Any = await broker.key_value(bucket)
            await kv._js.delete_key_value(bucket)
            await store.close()


def scenarios() -> list[Scenario]:
    def pair(op: str) -> list[Impl]:
        return [
            Impl("raw", LABEL, lambda e: raw(e, op)),
            Impl("eventkit", "eventkit", lambda e: eventkit(e, op)),
        ]

    return [
        Scenario(
            "nats",
            "kv-put",
            "store put (JetStream KV), sequential",
            5_000,
            "ops/s",
            pair("put"),
            note="each put awaits the stream's ack",
        ),
        Scenario(
            "nats",
            "kv-get",
            "store get (JetStream KV), sequential",
            5_000,
            "ops/s",
            pair("get"),
            note="direct gets; eventkit validates the model",
        ),
    ]
