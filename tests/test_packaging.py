"""Packaging: what the library imports is what a plain ``pip install eventkit`` brings.

The CloudEvents SDK is the reference the tests check eventkit's wire format against; the
library itself never imports it, so it belongs to the dev extra, not to every install.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imported_top_level_names() -> dict[str, list[str]]:
    """Top-level module name -> the library files that import it."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "eventkit").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], []).append(str(path.relative_to(ROOT)))
    return found


def _requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_library_never_imports_the_cloudevents_sdk() -> None:
    imports = _imported_top_level_names()
    assert "anyio" in imports and "pydantic" in imports  # the walk sees the library's imports
    assert "cloudevents" not in imports, imports.get("cloudevents")


def test_cloudevents_is_a_dev_dependency_only() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "cloudevents" not in _requirement_names(project["dependencies"])
    extras = project["optional-dependencies"]
    assert "cloudevents" in _requirement_names(extras["dev"])
    users = {name for name in extras if name not in ("dev", "bench")}
    assert not any("cloudevents" in _requirement_names(extras[name]) for name in users)
