"""The conformance suite's fixtures: every test runs once per broker target.

Targets are the modules in ``targets/``; ``EVENTKIT_TEST_BROKERS=memory,nats`` narrows the
run. Each test gets ``broker`` (connected) and ``target`` (to make more brokers on the same
server), and ``topic`` (a unique prefix, so runs and tests never see each other's messages).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import uuid
from collections.abc import AsyncIterator

import pytest

from eventkit.brokers import Broker

from . import targets as targets_pkg
from .target import Target

_ALL = sorted(m.name for m in pkgutil.iter_modules(targets_pkg.__path__))
_WANTED = [n for n in os.environ.get("EVENTKIT_TEST_BROKERS", "").split(",") if n]
TARGET_NAMES = [n for n in _ALL if not _WANTED or n in _WANTED]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out, rather than skip, a test marked ``not_on("memory", ...)`` for those targets:
    a target with no server has nothing to restart or stop, which is not a missing tool."""
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("not_on")
        callspec = getattr(item, "callspec", None)
        target = callspec.params.get("target") if callspec is not None else None
        (dropped if marker is not None and target in marker.args else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session", params=TARGET_NAMES)
async def target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    module = importlib.import_module(f"{targets_pkg.__name__}.{request.param}")
    async with module.target() as t:
        yield t


@pytest.fixture
async def broker(target: Target) -> AsyncIterator[Broker]:
    async with target.new_broker() as b:
        yield b


@pytest.fixture
def topic() -> str:
    """A unique topic prefix for one test, e.g. ``t.3f9a12c4``."""
    return f"t.{uuid.uuid4().hex[:8]}"
