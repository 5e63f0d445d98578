"""The smallest eventkit service: one endpoint.

eventkit run examples.helloworld.service:svc
eventkit call helloworld Helloworld.Call '{"name": "John"}'
"""

from __future__ import annotations

from pydantic import BaseModel

from eventkit import Service


class Request(BaseModel):
    name: str


class Response(BaseModel):
    msg: str


svc = Service("helloworld", version="1.0.0")


@svc.endpoint("Helloworld.Call")
async def call(req: Request) -> Response:
    return Response(msg=f"Hello {req.name}")


if __name__ == "__main__":
    svc.run()
