"""The layout shows the architecture (docs/architecture.md), and this keeps it so.

Every module of the library is read with ``ast`` (nothing is imported): its eventkit imports,
at any depth, must be allowed for its layer; the top-level imports must form no cycle; no
module may pass 500 lines; and a package is entered through its ``__init__``, never through a
sibling package's private module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "eventkit"
MAX_LINES = 500

ADAPTERS = ("eventkit.brokers.memory", "eventkit.brokers.nats", "eventkit.brokers.rabbitmq")
ADAPTERS += ("eventkit.brokers.http",)

# layer -> the layers it may import (besides itself); order matters: most specific first.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("eventkit._tasks", ()),
    ("eventkit.wire", ()),
    *(
        (adapter, ("eventkit.brokers.base", "eventkit.wire", "eventkit._tasks"))
        for adapter in ADAPTERS
    ),
    ("eventkit.brokers", ("eventkit.wire", "eventkit._tasks")),
    ("eventkit.discovery", ("eventkit.brokers", "eventkit.wire", "eventkit._tasks")),
    ("eventkit.store", ("eventkit.brokers.base", "eventkit.wire")),
    ("eventkit.auth", ("eventkit.wire",)),
    ("eventkit.observability", ("eventkit.brokers.base", "eventkit.wire", "eventkit._tasks")),
    (
        "eventkit.rpc",
        (
            "eventkit.auth",
            "eventkit.discovery",
            "eventkit.brokers",
            "eventkit.wire",
            "eventkit._tasks",
        ),
    ),
    (
        "eventkit.service",
        (
            "eventkit.observability",
            "eventkit.auth",
            "eventkit.rpc",
            "eventkit.discovery",
            "eventkit.store",
            "eventkit.brokers",
            "eventkit.wire",
            "eventkit._tasks",
        ),
    ),
    ("eventkit.testing", ("eventkit.service", "eventkit.brokers", "eventkit.wire")),
    ("eventkit.schemas", ("eventkit.discovery", "eventkit.wire")),
    ("eventkit.cli", ("eventkit",)),
    (
        "eventkit",
        (
            "eventkit.service",
            "eventkit.auth",
            "eventkit.rpc",
            "eventkit.store",
            "eventkit.brokers",
            "eventkit.wire",
        ),
    ),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def imports(name: str, *, top_level_only: bool) -> Iterator[tuple[str, int]]:
    """(imported eventkit module, line) for each import in module ``name``."""
    tree = ast.parse(MODULES[name].read_text())
    package = name if is_package(name) else name.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("eventkit"):
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if not target.startswith("eventkit"):
                continue
            for alias in node.names:  # ``from . import x`` may name a submodule
                sub = f"{target}.{alias.name}"
                yield (sub if sub in MODULES else target), node.lineno


def layer_of(name: str) -> tuple[str, tuple[str, ...]]:
    for layer, allowed in LAYERS:
        if name == layer or name.startswith(layer + "."):
            return layer, allowed
    raise AssertionError(f"{name} is in no layer: add it to docs/architecture.md and LAYERS")


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_every_import_is_allowed_for_its_layer() -> None:
    wrong = []
    for name in MODULES:
        layer, allowed = layer_of(name)
        for target, line in imports(name, top_level_only=False):
            if within(target, layer) or any(within(target, a) for a in allowed):
                # An adapter is its own layer: it may not reach another adapter through
                # the brokers package, nor may the broker package import an adapter.
                if layer == "eventkit.brokers" and any(within(target, a) for a in ADAPTERS):
                    wrong.append(f"{name}:{line} imports the adapter {target}")
                continue
            wrong.append(f"{name}:{line} imports {target}, not allowed for {layer}")
    assert wrong == []


def test_packages_are_entered_through_their_init() -> None:
    wrong = []
    for name in MODULES:
        own_package = name if is_package(name) else name.rpartition(".")[0]
        for target, line in imports(name, top_level_only=False):
            private = [p for p in target.split(".") if p.startswith("_") and p != "__init__"]
            if not private:
                continue
            owner = target.split("." + private[0])[0]  # the package the private part is in
            if not within(own_package, owner):
                wrong.append(f"{name}:{line} reaches into {target}")
    assert wrong == []


def test_no_import_cycle() -> None:
    graph = {name: {t for t, _ in imports(name, top_level_only=True)} for name in MODULES}
    # Importing a package runs its __init__, which imports its modules; a module importing its
    # own package's __init__ (``from . import x``) is not an edge back to it.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph or (is_package(nxt) and within(node, nxt)):
                continue
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_small(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by idea"


def test_implementation_modules_are_private() -> None:
    public = {
        "eventkit",
        "eventkit.testing",
        "eventkit.schemas",
        "eventkit.wire",
        "eventkit.brokers",
        "eventkit.brokers.base",
        "eventkit.brokers.memory",
        "eventkit.brokers.nats",
        "eventkit.brokers.rabbitmq",
        "eventkit.brokers.http",
        "eventkit.discovery",
        "eventkit.observability",
        "eventkit.auth",
        "eventkit.rpc",
        "eventkit.service",
        "eventkit.store",
    }
    exposed = [
        name
        for name in MODULES
        if name not in public
        and not within(name, "eventkit.cli")
        and not any(part.startswith("_") for part in name.split(".")[1:])
    ]
    assert exposed == []
