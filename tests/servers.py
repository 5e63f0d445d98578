"""Helpers for tests that need a real server or tool: reachability, and skip-or-fail.

Run locally, a test whose server or tool is missing is skipped with the reason. Under ``CI``
nothing a test needs may be missing quietly: the same test fails, naming what is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
from typing import NoReturn

import pytest

from eventkit.brokers.nats._embedded import free_port

__all__ = ["IN_CI", "free_port", "port_open", "require_server", "require_tool", "skip_or_fail"]

IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test with ``reason``; under CI, fail it instead."""
    if IN_CI:
        pytest.fail(f"{reason} (CI is set: what a test needs is a failure when missing)")
    pytest.skip(reason)


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_server(host: str, port: int, what: str) -> None:
    """Skip (with the reason) when nothing answers at host:port; under CI that is a failure."""
    if not port_open(host, port):
        skip_or_fail(f"{what} does not answer at {host}:{port}")


def require_tool(command: str, why: str) -> str:
    """The path of ``command`` on PATH; skip-or-fail when it is not installed."""
    path = shutil.which(command)
    if path is None:
        skip_or_fail(f"the {command} command is not installed ({why})")
    return path
