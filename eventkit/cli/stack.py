"""The stack file of ``eventkit up DIR``: ``DIR/eventkit.toml`` names the services to run.

::

    [stack]
    name = "shop"                          # shown in logs (default: the directory's name)
    broker = "nats://127.0.0.1:4222"       # optional; --broker and EVENTKIT_BROKER win
    pythonpath = ["."]                     # optional, relative to DIR (default: see below)
    env = { SHOP_HTTP_PORT = "8080" }      # optional, for every service

    [services]
    catalog = "examples.shop.catalog:svc"  # name = "MODULE:ATTR"
    cart = { target = "examples.shop.cart:svc", replicas = 2, env = { LOG = "1" } }

Modules are imported from ``pythonpath``; by default that is the directory above DIR's
package (DIR and its parents while they hold an ``__init__.py``), so a stack inside a package
names its modules by their full dotted name, and a plain directory names them directly.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..wire import ConfigError

__all__ = ["STACK_FILE", "ServiceSpec", "Stack", "load_stack"]

STACK_FILE = "eventkit.toml"
_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$")
_STACK_KEYS = {"name", "broker", "pythonpath", "env"}
_SERVICE_KEYS = {"target", "replicas", "env"}


@dataclass(frozen=True)
class ServiceSpec:
    """One service of a stack: run ``replicas`` processes of ``target`` with ``env``."""

    name: str
    target: str
    replicas: int = 1
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Stack:
    name: str
    directory: Path
    services: list[ServiceSpec]
    broker: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    pythonpath: list[Path] = field(default_factory=list)


def package_root(directory: Path) -> Path:
    """The first of ``directory`` and its parents that is not a package (no ``__init__.py``)."""
    root = directory.resolve()
    while (root / "__init__.py").exists() and root.parent != root:
        root = root.parent
    return root


def load_stack(directory: Path) -> Stack:
    """Read and check ``directory/eventkit.toml``; a mistake names the key and what to write."""
    path = directory / STACK_FILE
    if not path.is_file():
        raise ConfigError(
            f"no {STACK_FILE} in {directory}: write one that names the services, e.g.\n"
            '[services]\nhello = "mypackage.hello:svc"'
        )
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    unknown = set(data) - {"stack", "services"}
    if unknown:
        raise ConfigError(f"{path}: unknown table(s) {sorted(unknown)}; use [stack] and [services]")
    head = data.get("stack", {})
    _check_keys(path, "[stack]", head, _STACK_KEYS)
    raw_services = data.get("services", {})
    if not isinstance(raw_services, dict) or not raw_services:
        raise ConfigError(f'{path}: [services] is empty; add e.g. hello = "mypackage.hello:svc"')
    services = [_service(path, name, value) for name, value in raw_services.items()]
    broker = head.get("broker")
    if broker is not None and (not isinstance(broker, str) or "://" not in broker):
        raise ConfigError(f"{path}: [stack] broker must be a URL like nats://127.0.0.1:4222")
    raw_paths = head.get("pythonpath")
    if raw_paths is None:
        pythonpath = [package_root(directory)]
    elif isinstance(raw_paths, list) and all(isinstance(p, str) for p in raw_paths):
        pythonpath = [(directory / p).resolve() for p in raw_paths]
    else:
        raise ConfigError(f"{path}: [stack] pythonpath must be a list of directories")
    return Stack(
        name=str(head.get("name") or directory.resolve().name),
        directory=directory.resolve(),
        services=services,
        broker=broker,
        env=_env(path, "[stack] env", head.get("env", {})),
        pythonpath=pythonpath,
    )


def _check_keys(path: Path, where: str, table: Any, allowed: set[str]) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {where} must be a table")
    unknown = set(table) - allowed
    if unknown:
        raise ConfigError(
            f"{path}: {where} has unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
        )


def _service(path: Path, name: str, value: Any) -> ServiceSpec:
    if not _NAME.match(name):
        raise ConfigError(f"{path}: service name {name!r} may only hold letters, digits, _ and -")
    if isinstance(value, str):
        value = {"target": value}
    where = f"[services] {name}"
    _check_keys(path, where, value, _SERVICE_KEYS)
    target = value.get("target")
    if not isinstance(target, str) or not _TARGET.match(target):
        raise ConfigError(f'{path}: {where} needs target = "MODULE:ATTR", got {target!r}')
    replicas = value.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1:
        raise ConfigError(f"{path}: {where} replicas must be a whole number >= 1")
    return ServiceSpec(name, target, replicas, _env(path, f"{where} env", value.get("env", {})))


def _env(path: Path, where: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {where} must be a table of NAME = value")
    env: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, bool):
            env[key] = "1" if item else "0"
        elif isinstance(item, str | int | float):
            env[key] = str(item)
        else:
            raise ConfigError(f"{path}: {where} {key} must be a string or a number")
    return env
