"""JSON Schema of eventkit's own wire messages, generated from the pydantic models.

``python -m eventkit.schemas`` writes them into ``schemas/`` (checked in, so that peers in
other languages can read the registry and RPC errors); ``--check`` exits 1 when the files
differ from the models, and ``tests/unit/test_schemas.py`` fails in the same case.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .discovery import NodeInfo, RegistryQuery

__all__ = ["RemoteErrorModel", "generate", "main", "write"]


class RemoteErrorModel(BaseModel):
    """An RPC error on the wire, as eventkit.errors.RemoteError.to_wire() sends it."""

    model_config = ConfigDict(
        title="RemoteError",
        extra="ignore",
        json_schema_extra={"$id": "urn:eventkit:schema:rpc-error"},
    )

    id: str = Field(description="The service (or, for local failures, the caller) that failed")
    code: int = Field(description="Status code as in HTTP: 400, 404, 408, 500, 503, ...")
    detail: str = Field(description="What went wrong, for humans")
    status: str = Field(description="The status text, like 'Not Found'")
    data: Any = Field(default=None, description="Details, e.g. validation errors (optional)")


MODELS: dict[str, type[BaseModel]] = {
    "registry-node.json": NodeInfo,
    "registry-query.json": RegistryQuery,
    "rpc-error.json": RemoteErrorModel,
}
"""File name in ``schemas/`` -> the model whose JSON Schema it holds."""


def generate() -> dict[str, str]:
    """File name -> file text of every schema."""
    return {
        name: json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"
        for name, model in MODELS.items()
    }


def write(folder: Path) -> list[str]:
    """Write every schema into ``folder``; the names of the files that changed."""
    folder.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in generate().items():
        path = folder / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(name)
    return changed


def stale(folder: Path) -> list[str]:
    """The schema files in ``folder`` that are missing or differ from the models."""
    return [
        name
        for name, text in generate().items()
        if not (folder / name).exists() or (folder / name).read_text() != text
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eventkit.schemas", description="Write eventkit's wire schemas."
    )
    parser.add_argument("--out", type=Path, default=Path("schemas"), help="folder (./schemas)")
    parser.add_argument(
        "--check", action="store_true", help="only check; exit 1 when a file is not current"
    )
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale(args.out)
        for name in outdated:
            print(f"{args.out / name} is not current: run python -m eventkit.schemas")
        return 1 if outdated else 0
    for name in write(args.out):
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
