"""What the eventkit command prints: JSON, YAML, tables, progress, and errors that say what to do.

Results go to stdout (so they pipe), everything else (progress, hints, errors) to stderr.
Progress spinners and colours appear only on a terminal; in a pipe the output stays plain.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

__all__ = [
    "Format",
    "console",
    "err",
    "fail",
    "note",
    "print_json",
    "print_yaml",
    "progress",
]

console = Console(highlight=False, soft_wrap=True)
"""stdout: results."""
err = Console(stderr=True, highlight=False, soft_wrap=True)
"""stderr: progress, notes, errors."""


class Format(StrEnum):
    """How a command prints its result."""

    text = "text"
    json = "json"
    yaml = "yaml"


def fail(message: str, hint: str | None = None, *, code: int = 1) -> NoReturn:
    """Print ``error: message`` (and what to do about it) on stderr and exit with ``code``."""
    err.print(f"[bold red]error:[/] {escape(message)}")
    if hint:
        err.print(f"[yellow]hint:[/] {escape(hint)}")
    raise typer.Exit(code)


def note(message: str) -> None:
    """A line for the human on stderr (never mixed into piped results)."""
    err.print(f"[dim]{escape(message)}[/]")


def print_json(value: Any, *, indent: int | None = 2) -> None:
    """``value`` as JSON on stdout; one compact line when ``indent`` is None."""
    separators = (",", ":") if indent is None else None
    text = json.dumps(value, indent=indent, separators=separators, default=str)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def print_yaml(value: Any) -> None:
    import yaml

    sys.stdout.write(yaml.safe_dump(value, sort_keys=False, allow_unicode=True))
    sys.stdout.flush()


@contextmanager
def progress(message: str) -> Iterator[None]:
    """A spinner with ``message`` while a long wait runs (on a terminal only)."""
    if not err.is_terminal:
        yield
        return
    with err.status(escape(message)):
        yield
