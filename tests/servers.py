"""Helpers for tests that need a real server: reachability, and skip-or-fail under CI."""

from __future__ import annotations

import os
import random
import socket

import pytest

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


def _ephemeral_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range.

    A port the kernel hands out for ``bind(0)`` can be handed out again to the next process
    that binds port 0 (a node started before this port is listened on), so the port is
    taken from below that range, where only an explicit bind lands.
    """
    start = _ephemeral_start()
    low = max(1024, start - 12000)
    for _ in range(50):
        port = random.randrange(low, start)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
