"""Off, telemetry costs nothing; without the otel extra, what needs it says so.

With tracing and metrics off, nothing is wrapped: the client's ``publish`` and ``call`` are
the class's own methods and the broker is handed the subscriber's own handler, and
OpenTelemetry is never imported. Without the extra (an interpreter where ``opentelemetry``
cannot be imported), asking for traces is a clear error naming the extra, and a probe port
still serves the health probes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from eventkit import Client, Service
from eventkit.brokers.memory import MemoryBroker
from eventkit.observability import Telemetry

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


def handlers(broker: MemoryBroker) -> list[object]:
    return [sub._handler for sub in broker._subscriptions]


async def test_off_nothing_is_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EVENTKIT_TRACING", "EVENTKIT_METRICS", "EVENTKIT_METRICS_PORT"):
        monkeypatch.delenv(name, raising=False)
    svc = Service("plain")

    @svc.subscribe("plain.events")
    async def on_event(data: dict[str, int]) -> None:
        return None

    broker = MemoryBroker()
    await svc.start(broker=broker)
    try:
        assert "publish" not in vars(svc.client) and "call" not in vars(svc.client)
        codes = {getattr(h, "__code__", None) for h in handlers(broker)}
        own = svc._message_handler(svc.subscribers[0]).__code__  # type: ignore[attr-defined]
        assert own in codes
        assert svc.observing is not None and svc.observing.telemetry is None
    finally:
        await svc.stop()


async def test_on_the_handler_and_client_are_wrapped_once() -> None:
    telemetry = Telemetry(metrics=False)
    svc = Service("traced", telemetry=telemetry)

    @svc.subscribe("traced.events")
    async def on_event(data: dict[str, int]) -> None:
        return None

    broker = MemoryBroker()
    await svc.start(broker=broker)
    try:
        assert "publish" in vars(svc.client) and "call" in vars(svc.client)
        names = {getattr(h, "__name__", "") for h in handlers(broker)}
        assert "traced_delivery" in names
    finally:
        await svc.stop()
    assert "publish" in vars(Client(broker, owns_broker=False, telemetry=telemetry))


def python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` where importing opentelemetry fails, as without the otel extra."""
    blocked = "import sys; sys.modules['opentelemetry'] = None\n"
    return subprocess.run(
        [sys.executable, "-c", blocked + textwrap.dedent(code)],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_import_and_a_plain_service_never_import_opentelemetry() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, anyio, eventkit\n"
            "svc = eventkit.Service('plain')\n"
            "async def main():\n"
            "    async with svc: await svc.publish('plain.x', {'a': 1})\n"
            "anyio.run(main)\n"
            "assert not [m for m in sys.modules if m.startswith('opentelemetry')]\n",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT), "EVENTKIT_BROKER": "memory://"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_without_the_extra_tracing_is_a_clear_error() -> None:
    done = python(
        """
        import anyio, eventkit
        async def main():
            async with eventkit.Service("needs-otel"):
                pass
        try:
            anyio.run(main)
        except eventkit.DriverMissing as exc:
            print("error:", exc)
        """,
        EVENTKIT_TRACING="1",
        EVENTKIT_BROKER="memory://",
    )
    assert "pip install 'eventkit-micro[otel]'" in done.stdout, done.stderr


def test_without_the_extra_a_probe_port_serves_health_only() -> None:
    done = python(
        """
        import anyio, eventkit, urllib.request, urllib.error
        async def main():
            svc = eventkit.Service("probed")
            async with svc:
                port = svc.observing.probes.port
                def get(path):
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as r:
                            return r.status, r.read().decode()
                    except urllib.error.HTTPError as exc:
                        return exc.code, exc.read().decode()
                for path in ("/healthz", "/readyz", "/metrics"):
                    print(path, *await anyio.to_thread.run_sync(get, path))
        anyio.run(main)
        """,
        EVENTKIT_METRICS_PORT="0",
        EVENTKIT_METRICS_HOST="127.0.0.1",
        EVENTKIT_BROKER="memory://",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("/healthz 200") and lines[1].startswith("/readyz 200")
    assert lines[2].startswith("/metrics 404") and "eventkit-micro[otel]" in lines[2]
    assert "otel extra is not installed" in done.stderr
