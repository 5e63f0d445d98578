"""greeter: two endpoints of one class, metadata, and who-called-whom from the Context.

`svc.register(Greeter())` serves every public async method as `Greeter.{Method}`. The
Context gives the callee's node id and address (``ctx.node_id``, ``ctx.address``), the
caller's (``ctx.caller``, ``ctx.caller_address``) and the metadata the caller sent, which
propagates to every call and publish made while handling the request.
"""

from __future__ import annotations

import os

from pydantic import BaseModel

from eventkit import Context, Service


class HelloRequest(BaseModel):
    name: str


class HelloReply(BaseModel):
    msg: str
    node: str
    address: str
    caller: str | None
    caller_address: str | None
    metadata: dict[str, str]


class CountReply(BaseModel):
    greeted: int
    node: str


svc = Service(
    "greeter",
    version="1.0.0",
    metadata={"team": "core", "region": os.environ.get("GREETER_REGION", "local")},
)


class Greeter:
    """Both methods become endpoints: Greeter.Hello and Greeter.Count."""

    def __init__(self) -> None:
        self.greeted = 0

    async def Hello(self, req: HelloRequest, ctx: Context) -> HelloReply:
        self.greeted += 1
        return HelloReply(
            msg=f"Hello {req.name}",
            node=ctx.node_id,
            address=ctx.address,
            caller=ctx.caller,
            caller_address=ctx.caller_address,
            metadata=ctx.metadata,
        )

    async def Count(self, ctx: Context) -> CountReply:
        return CountReply(greeted=self.greeted, node=ctx.node_id)


svc.register(Greeter())

if __name__ == "__main__":
    svc.run()
