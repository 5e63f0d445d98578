"""``eventkit health --url``: the readiness a node's probe port reports, as a process sees it.

The command runs as a real process (a container's health check runs it so) against a real
service in this process, whose event loop keeps serving the probes meanwhile.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from eventkit import Service
from eventkit.brokers.memory import MemoryBroker
from tests.servers import free_port

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


async def health(url: str, *args: str) -> Any:
    return await anyio.run_process(
        [sys.executable, "-m", "eventkit.cli", "health", "--url", url, *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


async def test_ready_exits_0_and_starting_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTKIT_METRICS_PORT", "0")
    monkeypatch.setenv("EVENTKIT_METRICS_HOST", "127.0.0.1")
    svc = Service("checked")
    starting: dict[str, Any] = {}

    def url() -> str:
        assert svc.observing is not None and svc.observing.probes is not None
        return f"http://127.0.0.1:{svc.observing.probes.port}"

    @svc.before_start
    async def probe_while_starting() -> None:
        starting["result"] = await health(url())

    await svc.start(broker=MemoryBroker())
    try:
        ready = await health(url(), "--format", "json")
    finally:
        await svc.stop()
    assert ready.returncode == 0, ready.stderr
    report = json.loads(ready.stdout)
    assert report["ready"] is True and report["live"] is True and report["node"] == svc.node_id
    assert starting["result"].returncode == 1
    assert "not ready" in starting["result"].stdout.decode()
    assert "registered=False" in starting["result"].stdout.decode()


async def test_nothing_listening_is_a_clear_failure() -> None:
    done = await health(f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 1
    assert "no probe answers" in done.stderr.decode()
    assert "EVENTKIT_METRICS_PORT" in done.stderr.decode()
