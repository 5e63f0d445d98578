"""``eventkit completion bash|zsh|fish``: the shell completion script, to source or install.

Completion is typer's: the script calls ``eventkit`` back with ``_EVENTKIT_COMPLETE`` set, and
the command answers with the subcommands, options and values that fit the word being typed.
``eventkit --install-completion`` installs it for the current shell instead.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from typer.completion import get_completion_script  # type: ignore[attr-defined]

__all__ = ["PROG_NAME", "Shell", "completion"]

PROG_NAME = "eventkit"
COMPLETE_VAR = "_EVENTKIT_COMPLETE"


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def completion(shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish")]) -> None:
    """Print the completion script of a shell, e.g. `source <(eventkit completion bash)`."""
    script = get_completion_script(
        prog_name=PROG_NAME, complete_var=COMPLETE_VAR, shell=shell.value
    )
    typer.echo(script)
