"""``eventkit new service NAME`` and ``eventkit new client NAME``: a project that works as made.

A service project has pydantic schemas, a Service with an endpoint and a subscriber, tests
that run on ``memory://`` (``eventkit.testing``) and pass as generated, an ``eventkit.toml``
for ``eventkit up``, a Dockerfile and a compose file. A client project has models generated
from the JSON Schema a live service publishes (:mod:`.codegen`), a typed caller of one of its
endpoints, and a test that runs it against a stand-in.

Both carry the kit they were made with in ``vendor/`` (:mod:`.wheel`) until it is on the
package index. A project is a :class:`Project` (files by path, and the next steps to print)
that each part adds to; the deployment options of ``new service`` (``--health``,
``--tracing``, ``--kubernetes``: :mod:`.deploy`) amend the written project.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..discovery import EndpointInfo
from ..wire import ConfigError
from . import deploy
from . import templates as t
from .codegen import endpoint_models, function_name, require_codegen
from .connection import BrokerOption, NamespaceOption, connected, run_async
from .inspect import known_or_fail
from .output import console, fail
from .wheel import DISTRIBUTION, build_wheel, kit_version

__all__ = ["Project", "app"]

app = typer.Typer(help="Create a service or client project.", no_args_is_help=True)

_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")

DirOption = Annotated[Path, typer.Option("--dir", help="Where to create the project directory")]
VendorOption = Annotated[
    bool,
    typer.Option(
        help=f"Put a wheel of this kit in vendor/ and install from it ({DISTRIBUTION} is "
        "not on the package index yet); --no-vendor requires it from the index",
    ),
]


@dataclass
class Project:
    """A project being made: its files (text or bytes) by path, filled in from ``names``."""

    root: Path
    names: dict[str, str]
    files: dict[str, str | bytes] = field(default_factory=dict)
    next_steps: list[str] = field(default_factory=list)

    def add(self, rel: str, template: str) -> None:
        self.files[self.fill(rel)] = self.fill(template)

    def fill(self, text: str) -> str:
        for key, value in self.names.items():
            text = text.replace(key, value)
        return text

    def write(self) -> None:
        if self.root.exists():
            fail(f"{self.root} already exists", "choose another name or --dir, or remove it")
        for rel, content in self.files.items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        console.print(f"created [bold]{escape(str(self.root))}[/]:")
        for rel in sorted(self.files):
            console.print(f"  {escape(rel)}")

    def say_next(self) -> None:
        for step in self.next_steps:
            console.print(f"next: {escape(step)}")


def _project(name: str, directory: Path) -> Project:
    if not _NAME.match(name):
        fail(
            f"project name {name!r} must start with a letter and hold lower-case letters, "
            "digits, - and _",
            "e.g. `eventkit new service greeter`",
        )
    pkg = name.replace("-", "_")
    camel = "".join(part.capitalize() for part in re.split(r"[-_]", name) if part)
    return Project(directory / name, {"@name@": name, "@pkg@": pkg, "@Class@": camel})


def add_kit(project: Project, vendor: bool) -> None:
    """The requirement on the kit, and its wheel in ``vendor/`` unless ``vendor`` is off."""
    try:
        version = kit_version()
    except ConfigError as exc:
        fail(str(exc))
    if not vendor:
        project.names.update({"@kit@": f"{DISTRIBUTION}>={version}", "@find_links@": ""})
        return
    project.names.update(
        {"@kit@": f"{DISTRIBUTION}=={version}", "@find_links@": "--find-links vendor "}
    )
    with tempfile.TemporaryDirectory() as folder:
        wheel = build_wheel(Path(folder))
        project.files[f"vendor/{wheel.name}"] = wheel.read_bytes()


def _install_step(project: Project) -> str:
    return project.fill(
        f"cd {project.root} && python3 -m venv .venv && .venv/bin/pip install "
        '@find_links@-e ".[dev]"'
    )


@app.command("service")
def new_service(
    name: Annotated[str, typer.Argument(help="Service name, e.g. greeter")],
    directory: DirOption = Path("."),
    vendor: VendorOption = True,
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
    project = _project(name, directory)
    project.names["@module@"] = project.fill("@pkg@.service:svc")
    add_kit(project, vendor)
    for rel, template in {
        "pyproject.toml": t.SERVICE_PYPROJECT,
        "README.md": t.SERVICE_README,
        "eventkit.toml": t.STACK,
        "Dockerfile": t.DOCKERFILE,
        ".dockerignore": t.DOCKERIGNORE,
        "compose.yaml": t.COMPOSE,
        "@pkg@/__init__.py": "",
        "@pkg@/models.py": t.MODELS,
        "@pkg@/service.py": t.SERVICE,
        "tests/__init__.py": "",
        "tests/conftest.py": t.CONFTEST,
        "tests/test_service.py": t.SERVICE_TEST,
    }.items():
        project.add(rel, template)
    project.next_steps += [_install_step(project), ".venv/bin/pytest && .venv/bin/eventkit up ."]
    project.write()
    options = {"health": health, "tracing": tracing, "kubernetes": kubernetes}
    target = project.names["@module@"]
    for rel in deploy.apply(project.root, name=name, target=target, **options):
        console.print(f"  {escape(rel)} (deployment)")
    project.say_next()


@app.command("client")
def new_client(
    name: Annotated[str, typer.Argument(help="Project name, e.g. greeter-client")],
    service: Annotated[str, typer.Option(help="The running service it calls")] = "greeter",
    endpoint: Annotated[str, typer.Option(help="The endpoint it calls")] = "Greeter.Hello",
    directory: DirOption = Path("."),
    vendor: VendorOption = True,
    broker: BrokerOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """A client of one endpoint of a running service: models generated from the JSON Schema
    the service publishes, a typed caller, and its test."""
    project = _project(name, directory)
    if project.root.exists():
        fail(f"{project.root} already exists", "choose another name or --dir, or remove it")
    try:
        require_codegen()
    except ModuleNotFoundError as exc:
        fail(str(exc))
    info = run_async(_endpoint_info, service, endpoint, broker, namespace)
    try:
        models = endpoint_models(service, info)
    except ValueError as exc:
        fail(f"cannot generate models of {service} {endpoint}: {exc}")
    project.names.update(
        {
            "@service@": service,
            "@Endpoint@": endpoint,
            "@func@": function_name(endpoint),
            "@Request@": models.request,
            "@Reply@": models.response,
        }
    )
    add_kit(project, vendor)
    for rel, template in {
        "pyproject.toml": t.CLIENT_PYPROJECT,
        "README.md": t.CLIENT_README,
        "@pkg@/__init__.py": "",
        "@pkg@/client.py": t.CLIENT,
        "tests/__init__.py": "",
        "tests/conftest.py": t.CONFTEST,
        "tests/test_client.py": t.CLIENT_TEST,
    }.items():
        project.add(rel, template)
    project.files[project.fill("@pkg@/models.py")] = models.source
    project.next_steps += [_install_step(project), ".venv/bin/pytest && .venv/bin/mypy"]
    project.write()
    project.say_next()


async def _endpoint_info(
    service: str, endpoint: str, broker: str | None, namespace: str | None
) -> EndpointInfo:
    """The endpoint's record, as the live service publishes it in the registry."""
    async with connected(broker, namespace) as kit:
        found = await known_or_fail(kit, service, 1.0, broker is not None)
    endpoints = {e.name: e for info in found for e in info.endpoints}
    if endpoint not in endpoints:
        fail(
            f"service {service!r} has no endpoint {endpoint!r}",
            f"its endpoints: {', '.join(sorted(endpoints)) or 'none'}",
        )
    return endpoints[endpoint]
