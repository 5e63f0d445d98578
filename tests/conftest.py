"""Shared fixtures: the anyio backend (asyncio: nats-py and aio-pika need it)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"
