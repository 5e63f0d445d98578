"""A service that checks tokens, for the auth tests: run in-process or as a process.

Every call or event its handlers get is written to the file ``CALLS`` names (one line: what
ran, and the verified caller), so a test can show that nothing refused reached a handler.
Run as ``python -m tests.auth.node``; the key comes from ``EVENTKIT_AUTH_KEY``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from eventkit import Auth, Context, Event, Service

SCOPE = "orders:write"


class Order(BaseModel):
    order_id: str


def build(calls: Path, auth: Auth | None = None, namespace: str | None = None) -> Service:
    svc = Service("guarded", auth=auth, namespace=namespace)

    def record(what: str, ctx: Context) -> None:
        with calls.open("a") as out:
            out.write(f"{what} {ctx.caller} {ctx.identity is not None}\n")

    @svc.endpoint("Orders.Place", scopes=[SCOPE])
    async def place(req: Order, ctx: Context) -> dict[str, str]:
        record(f"call:{req.order_id}", ctx)
        return {"caller": ctx.caller or "", "order": req.order_id}

    @svc.endpoint("Orders.Who")  # the service's default policy: any valid token
    async def who(ctx: Context) -> dict[str, object]:
        assert ctx.identity is not None
        return {"caller": ctx.caller, "scopes": sorted(ctx.identity.scopes)}

    @svc.subscribe("guarded.orders.placed", scopes=[SCOPE])
    async def placed(event: Event[Order], ctx: Context) -> None:
        record(f"event:{event.data.order_id}", ctx)

    return svc


if __name__ == "__main__":
    service = build(Path(os.environ["CALLS"]))

    @service.after_start
    def ready() -> None:
        print("ready", service.node_id, flush=True)

    service.run()
