"""The ``eventkit`` command (``python -m eventkit.cli``); see docs/cli.md."""

from .app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``eventkit`` script."""
    app()
