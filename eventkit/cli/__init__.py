"""The ``eventkit`` command (``python -m eventkit.cli``); see docs/cli.md.

The command's dependencies (typer, rich, watchfiles, PyYAML, nats-py) are in the base install.
Where one is missing all the same (an install made with ``--no-deps``, a package removed by
hand), :func:`main` says which in one line, with the command that brings it back, instead of
a traceback.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

__all__ = ["app", "main"]

_COMMAND_NEEDS = {"typer", "click", "rich", "shellingham", "watchfiles", "yaml", "nats"}


def main() -> None:
    """Entry point of the ``eventkit`` script."""
    try:
        from .app import app
        from .completion import PROG_NAME
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in _COMMAND_NEEDS:
            raise
        sys.stderr.write(
            f"error: the eventkit command needs the Python package {missing!r}, which is not "
            'installed; run: pip install "eventkit-micro[cli]"\n'
        )
        raise SystemExit(1) from None
    # A broker that does not answer is reported once, by eventkit's own error with its hint;
    # the AMQP driver would also log the raw connect failure, which says less and says it twice.
    logging.getLogger("aiormq.connection").setLevel(logging.CRITICAL)
    app(prog_name=PROG_NAME)


def __getattr__(name: str) -> Any:
    if name == "app":
        from .app import app

        return app
    raise AttributeError(name)
