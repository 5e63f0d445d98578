"""Helpers for tests that need a real server: reachability, and skip-or-fail under CI."""

from __future__ import annotations

import os
import socket

import pytest

from eventkit.brokers.nats._embedded import free_port

__all__ = ["free_port", "port_open", "require_server"]

IN_CI = bool(os.environ.get("CI"))


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_server(host: str, port: int, what: str) -> None:
    """Skip (with the reason) when nothing answers at host:port; under CI that is a failure."""
    if port_open(host, port):
        return
    reason = f"{what} does not answer at {host}:{port}"
    if IN_CI:
        pytest.fail(f"{reason} (CI is set: a missing broker is a failure, not a skip)")
    pytest.skip(reason)
