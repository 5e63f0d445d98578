"""The files ``eventkit new`` writes, with placeholders that :mod:`.new` fills in.

Placeholders: ``@name@`` (project name), ``@pkg@`` (Python package), ``@Class@`` (CamelCase),
``@kit@`` (the requirement on the kit, e.g. ``eventkit-micro==0.1.0``), ``@find_links@``
(pip's ``--find-links vendor `` while the kit travels in ``vendor/``, else empty),
``@module@`` (what ``eventkit run`` runs); in a client, ``@service@``, ``@Endpoint@``,
``@func@``, ``@Request@`` and ``@Reply@``.
"""

from __future__ import annotations

__all__ = [
    "CLIENT",
    "CLIENT_PYPROJECT",
    "CLIENT_README",
    "CLIENT_TEST",
    "COMPOSE",
    "CONFTEST",
    "DOCKERFILE",
    "DOCKERIGNORE",
    "MODELS",
    "SERVICE",
    "SERVICE_PYPROJECT",
    "SERVICE_README",
    "SERVICE_TEST",
    "STACK",
]

SERVICE_PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.21"]
build-backend = "hatchling.build"

[project]
name = "@name@"
version = "0.1.0"
requires-python = ">=3.11"
# The kit (import eventkit). Until it is on the package index, pip finds it in vendor/:
# pip install --find-links vendor ... (see README.md).
dependencies = ["@kit@", "pydantic>=2.7"]

[project.optional-dependencies]
dev = ["pytest>=8"]

[tool.hatch.build.targets.wheel]
packages = ["@pkg@"]

[tool.pytest.ini_options]
pythonpath = ["."]
testpaths = ["tests"]
filterwarnings = ["error"]
"""

CLIENT_PYPROJECT = SERVICE_PYPROJECT.replace(
    'dev = ["pytest>=8"]', 'dev = ["pytest>=8", "polyfactory>=2.15", "mypy>=1.10"]'
).replace(
    "[tool.pytest.ini_options]",
    '[tool.mypy]\nstrict = true\npackages = ["@pkg@"]\nplugins = ["pydantic.mypy"]\n\n'
    "[tool.pytest.ini_options]",
)

CONFTEST = """\
import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
"""

MODELS = '''\
"""The messages of @name@: pydantic models, so requests and events are validated."""

from pydantic import BaseModel, Field


class HelloRequest(BaseModel):
    name: str = Field(min_length=1, description="Who to greet")


class HelloReply(BaseModel):
    msg: str


class Greeted(BaseModel):
    """The event published on @name@.greeted after every greeting."""

    name: str
    by: str
'''

SERVICE = '''\
"""The @name@ service: an RPC endpoint, and a subscriber to the events it publishes.

Run it with `eventkit run @pkg@.service:svc` (broker: --broker or EVENTKIT_BROKER, by
default the local NATS), call it with `eventkit call @name@ @Class@.Hello '{"name": "Ada"}'`.
"""

from __future__ import annotations

import logging

from eventkit import Context, Event, Service

from .models import Greeted, HelloReply, HelloRequest

log = logging.getLogger(__name__)

svc = Service("@name@", version="0.1.0", metadata={"project": "@name@"})

greeted: list[str] = []
"""Names seen by the subscriber (what the tests look at)."""


@svc.endpoint("@Class@.Hello")
async def hello(req: HelloRequest, ctx: Context) -> HelloReply:
    await ctx.publish("@name@.greeted", Greeted(name=req.name, by=ctx.node_id))
    return HelloReply(msg=f"Hello {req.name}")


@svc.subscribe("@name@.greeted", queue="@name@")
async def on_greeted(event: Event[Greeted]) -> None:
    greeted.append(event.data.name)
    log.info("greeted %s (event %s)", event.data.name, event.id)


if __name__ == "__main__":
    svc.run()
'''

SERVICE_TEST = """\
import pytest

import eventkit
import eventkit.testing
from @pkg@.models import HelloReply, HelloRequest
from @pkg@.service import greeted, svc


@pytest.mark.anyio
async def test_hello_replies_and_publishes_an_event() -> None:
    async with eventkit.testing.run(svc) as kit:
        reply = await kit.call(
            "@name@", "@Class@.Hello", HelloRequest(name="Ada"), response=HelloReply
        )
        await kit.join()
    assert reply.msg == "Hello Ada"
    assert "Ada" in greeted


@pytest.mark.anyio
async def test_a_request_that_does_not_validate_is_a_bad_request() -> None:
    async with eventkit.testing.run(svc) as kit:
        with pytest.raises(eventkit.BadRequest):
            await kit.call("@name@", "@Class@.Hello", {"name": ""})
"""

STACK = """\
# `eventkit up` runs every service named here, each in its own process.
[services]
@name@ = "@pkg@.service:svc"
"""

DOCKERFILE = """\
FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY . .
RUN pip install @find_links@.
ENV EVENTKIT_BROKER=nats://nats:4222
CMD ["eventkit", "run", "@module@"]
"""

DOCKERIGNORE = """\
.venv
.git
**/__pycache__
.pytest_cache
.mypy_cache
"""

COMPOSE = """\
services:
  nats:
    image: nats:2.10
    command: ["-js"]
    ports: ["4222:4222"]
  @name@:
    build: .
    command: ["eventkit", "run", "@module@"]
    environment:
      EVENTKIT_BROKER: nats://nats:4222
      EVENTKIT_LOG_LEVEL: INFO
    depends_on: [nats]
"""

SERVICE_README = """\
# @name@

An eventkit service: `@pkg@/service.py` serves `@Class@.Hello` and subscribes to
`@name@.greeted`; `@pkg@/models.py` holds its pydantic schemas.

```sh
python3 -m venv .venv && . .venv/bin/activate
pip install @find_links@-e ".[dev]"          # the kit (eventkit-micro) and pytest
pytest                                  # runs on memory://, no broker needed
eventkit up .                           # the local NATS (started if absent) and the service
eventkit call @name@ @Class@.Hello '{"name": "Ada"}'
eventkit run @pkg@.service:svc --reload # restart on code changes
docker compose up --build               # NATS and the service in containers
```

The kit it was made with travels in `vendor/` (`pip install --find-links vendor`), since
`eventkit-micro` is not on the package index yet. Once it is, remove `vendor/` and the
`--find-links vendor` of these commands and of the Dockerfile: the requirement in
`pyproject.toml` is the same.
"""

CLIENT = '''\
"""A caller of @service@'s @Endpoint@ endpoint, typed by the models generated from its schema.

`python -m @pkg@.client '<request as JSON>'` calls it once and prints the reply as JSON
(broker: EVENTKIT_BROKER, by default the local NATS).
"""

from __future__ import annotations

import sys

import anyio

import eventkit
from eventkit import Client

from .models import @Reply@, @Request@

SERVICE = "@service@"
ENDPOINT = "@Endpoint@"


async def @func@(kit: Client, request: @Request@, *, timeout: float = 5.0) -> @Reply@:
    """Call @Endpoint@ on @service@; only the fields set on ``request`` are sent."""
    body = request.model_dump(mode="json", exclude_unset=True)
    return await kit.call(SERVICE, ENDPOINT, body, response=@Reply@, timeout=timeout)


async def main(request_json: str) -> None:
    request = @Request@.model_validate_json(request_json)
    async with eventkit.connect() as kit:
        reply = await @func@(kit, request)
    print(reply.model_dump_json())


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "{}")
'''

CLIENT_TEST = """\
from typing import Any

import pytest
from polyfactory.factories.pydantic_factory import ModelFactory

import eventkit.testing
from eventkit import Service
from @pkg@.client import ENDPOINT, SERVICE, @func@
from @pkg@.models import @Reply@, @Request@

# A stand-in for @service@ on memory://: it takes the request as the generated model says
# and answers with a reply built from the generated reply model.
stand_in = Service(SERVICE)
seen: list[Any] = []


@stand_in.endpoint(ENDPOINT)
async def answer(req: @Request@) -> @Reply@:
    seen.append(req)
    return ModelFactory.create_factory(@Reply@).build()


@pytest.mark.anyio
async def test_the_client_sends_the_request_and_reads_the_reply() -> None:
    request = ModelFactory.create_factory(@Request@).build()
    async with eventkit.testing.run(stand_in) as kit:
        reply = await @func@(kit, request)
    assert isinstance(reply, @Reply@)
    assert seen == [request]
"""

CLIENT_README = """\
# @name@

A caller of `@service@`'s `@Endpoint@` endpoint (`@pkg@/client.py`). Its models
(`@pkg@/models.py`) were generated from the JSON Schema the service publishes; run
`eventkit new client` again to follow a change of the service.

```sh
python3 -m venv .venv && . .venv/bin/activate
pip install @find_links@-e ".[dev]"          # the kit (eventkit-micro), pytest, mypy
pytest                                  # against a stand-in service on memory://
mypy                                    # the client type-checks against the models
python -m @pkg@.client '{...}'          # against the real one (EVENTKIT_BROKER)
```
"""
