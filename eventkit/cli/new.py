"""``eventkit new service NAME`` and ``eventkit new client NAME``: a project that works as made.

A service project has pydantic schemas, a Service with an endpoint and a subscriber, tests
that run on ``memory://`` (``eventkit.testing``) and pass as generated, an ``eventkit.toml``
for ``eventkit up``, a Dockerfile and a compose file. A client project has a typed caller of
a service's endpoint, and a test that runs it against a stand-in service.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from . import deploy
from .output import console, fail

__all__ = ["app"]

app = typer.Typer(help="Create a service or client project.", no_args_is_help=True)

_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")

DirOption = Annotated[Path, typer.Option("--dir", help="Where to create the project directory")]

# Placeholders: @name@ (service name), @pkg@ (Python package), @Class@ (CamelCase),
# @service@ and @Endpoint@ (what a client calls).

_PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.21"]
build-backend = "hatchling.build"

[project]
name = "@name@"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["eventkit[nats,cli]", "pydantic>=2.7"]

[project.optional-dependencies]
dev = ["pytest>=8"]

[tool.hatch.build.targets.wheel]
packages = ["@pkg@"]

[tool.pytest.ini_options]
pythonpath = ["."]
testpaths = ["tests"]
filterwarnings = ["error"]
"""

_CONFTEST = """\
import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
"""

_MODELS = '''\
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

_SERVICE = '''\
"""The @name@ service: an RPC endpoint, and a subscriber to the events it publishes.

Run it with `eventkit run @pkg@.service:svc` (broker: --broker or EVENTKIT_BROKER),
call it with `eventkit call @name@ @Class@.Hello '{"name": "Ada"}'`.
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

_SERVICE_TEST = """\
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

_STACK = """\
# `eventkit up` runs every service named here, each in its own process.
[services]
@name@ = "@pkg@.service:svc"
"""

_DOCKERFILE = """\
FROM python:3.12-slim
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir .
ENV EVENTKIT_BROKER=nats://nats:4222
CMD ["eventkit", "run", "@pkg@.@module@"]
"""

_COMPOSE = """\
services:
  nats:
    image: nats:2.10
    command: ["-js"]
    ports: ["4222:4222"]
  @name@:
    build: .
    command: ["eventkit", "run", "@pkg@.@module@"]
    environment:
      EVENTKIT_BROKER: nats://nats:4222
      EVENTKIT_LOG_LEVEL: INFO
    depends_on: [nats]
"""

_SERVICE_README = """\
# @name@

An eventkit service: `@pkg@/service.py` serves `@Class@.Hello` and subscribes to
`@name@.greeted`; `@pkg@/models.py` holds its pydantic schemas.

```sh
pip install -e ".[dev]"
pytest                                  # runs on memory://, no broker needed
eventkit up .                           # NATS (started if absent) and the service
eventkit call @name@ @Class@.Hello '{"name": "Ada"}'
eventkit run @pkg@.service:svc --reload # restart on code changes
docker compose up --build               # NATS and the service in containers
```
"""

_CLIENT = '''\
"""A caller of @service@'s @Endpoint@ endpoint.

`python -m @pkg@.client Ada` calls it once and prints the reply (broker: EVENTKIT_BROKER).
"""

from __future__ import annotations

import sys

import anyio

import eventkit
from eventkit import Client

from .models import HelloReply, HelloRequest

SERVICE = "@service@"
ENDPOINT = "@Endpoint@"


async def hello(kit: Client, name: str, *, timeout: float = 5.0) -> HelloReply:
    return await kit.call(
        SERVICE, ENDPOINT, HelloRequest(name=name), response=HelloReply, timeout=timeout
    )


async def main(name: str) -> None:
    async with eventkit.connect() as kit:
        reply = await hello(kit, name)
    print(reply.msg)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "World")
'''

_CLIENT_MODELS = '''\
"""The request and reply of @service@'s @Endpoint@ (keep them in step with the service)."""

from pydantic import BaseModel


class HelloRequest(BaseModel):
    name: str


class HelloReply(BaseModel):
    msg: str
'''

_CLIENT_TEST = """\
import pytest

import eventkit.testing
from eventkit import Service
from @pkg@.client import ENDPOINT, SERVICE, hello
from @pkg@.models import HelloReply, HelloRequest

stand_in = Service(SERVICE)


@stand_in.endpoint(ENDPOINT)
async def answer(req: HelloRequest) -> HelloReply:
    return HelloReply(msg=f"Hello {req.name}")


@pytest.mark.anyio
async def test_the_client_calls_the_service() -> None:
    async with eventkit.testing.run(stand_in) as kit:
        reply = await hello(kit, "Ada")
    assert reply.msg == "Hello Ada"
"""

_CLIENT_README = """\
# @name@

A caller of `@service@`'s `@Endpoint@` endpoint (`@pkg@/client.py`).

```sh
pip install -e ".[dev]"
pytest                                  # against a stand-in service on memory://
python -m @pkg@.client Ada              # against the real one (EVENTKIT_BROKER)
```
"""


def _names(name: str) -> dict[str, str]:
    if not _NAME.match(name):
        fail(
            f"project name {name!r} must start with a letter and hold lower-case letters, "
            "digits, - and _",
            "e.g. `eventkit new service greeter`",
        )
    pkg = name.replace("-", "_")
    camel = "".join(part.capitalize() for part in re.split(r"[-_]", name) if part)
    return {"@name@": name, "@pkg@": pkg, "@Class@": camel}


def _write(root: Path, files: dict[str, str], names: dict[str, str]) -> None:
    if root.exists():
        fail(f"{root} already exists", "choose another name or --dir, or remove it")
    for rel, template in files.items():
        for key, value in names.items():
            template = template.replace(key, value)
            rel = rel.replace(key, value)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template)
    console.print(f"created [bold]{escape(str(root))}[/]:")
    for rel in sorted(files):
        for key, value in names.items():
            rel = rel.replace(key, value)
        console.print(f"  {escape(rel)}")


@app.command("service")
def new_service(
    name: Annotated[str, typer.Argument(help="Service name, e.g. greeter")],
    directory: DirOption = Path("."),
    health: Annotated[
        bool, typer.Option("--health", help="/healthz, /readyz, /metrics and health checks")
    ] = False,
    tracing: Annotated[
        bool, typer.Option("--tracing", help="OpenTelemetry traces over OTLP (and Jaeger)")
    ] = False,
    kubernetes: Annotated[
        bool, typer.Option("--kubernetes", help="k8s/ manifests with probes (implies --health)")
    ] = False,
) -> None:
    """A service project: schemas, an endpoint, a subscriber, tests, Dockerfile, compose."""
    names = _names(name)
    names["@module@"] = "service:svc"
    root = directory / name
    _write(
        root,
        {
            "pyproject.toml": _PYPROJECT,
            "README.md": _SERVICE_README,
            "eventkit.toml": _STACK,
            "Dockerfile": _DOCKERFILE,
            "compose.yaml": _COMPOSE,
            "@pkg@/__init__.py": "",
            "@pkg@/models.py": _MODELS,
            "@pkg@/service.py": _SERVICE,
            "tests/__init__.py": "",
            "tests/conftest.py": _CONFTEST,
            "tests/test_service.py": _SERVICE_TEST,
        },
        names,
    )
    target = f"{names['@pkg@']}.{names['@module@']}"
    options = {"health": health, "tracing": tracing, "kubernetes": kubernetes}
    for rel in deploy.apply(root, name=name, target=target, **options):
        console.print(f"  {escape(rel)} (deployment)")
    console.print(f"next: cd {escape(str(root))} && pytest && eventkit up .")


@app.command("client")
def new_client(
    name: Annotated[str, typer.Argument(help="Project name, e.g. greeter-client")],
    service: Annotated[str, typer.Option(help="The service it calls")] = "greeter",
    endpoint: Annotated[str, typer.Option(help="The endpoint it calls")] = "Greeter.Hello",
    directory: DirOption = Path("."),
) -> None:
    """A client project: a typed caller of one endpoint, and its test."""
    names = _names(name)
    names.update({"@service@": service, "@Endpoint@": endpoint})
    root = directory / name
    _write(
        root,
        {
            "pyproject.toml": _PYPROJECT,
            "README.md": _CLIENT_README,
            "@pkg@/__init__.py": "",
            "@pkg@/models.py": _CLIENT_MODELS,
            "@pkg@/client.py": _CLIENT,
            "tests/__init__.py": "",
            "tests/conftest.py": _CONFTEST,
            "tests/test_client.py": _CLIENT_TEST,
        },
        names,
    )
    console.print(f"next: cd {escape(str(root))} && pytest")
