"""A real service process stopped by SIGTERM/SIGINT while a handler is in flight."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import anyio
    from eventkit import Service

    svc = Service("sigtest", drain_timeout=5)
    stopping: list[anyio.Event] = []

    @svc.subscribe("jobs.run")
    async def job(n: int) -> None:
        print("started", n, flush=True)
        await stopping[0].wait()  # in flight until the stop has begun
        print("finished", n, flush=True)

    @svc.after_start
    async def kick() -> None:
        stopping.append(anyio.Event())
        await svc.publish("jobs.run", 7)

    @svc.before_stop
    def begin() -> None:  # runs before the drain
        stopping[0].set()

    @svc.after_stop
    def bye() -> None:
        print("stopped", flush=True)

    svc.run()
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_drains_in_flight_handler_then_exits(tmp_path: Path, signum: int) -> None:
    script = tmp_path / "svc.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), "--broker", "memory://"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "started 7", line
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.splitlines() == ["finished 7", "stopped"], out + err


def test_bad_setting_exits_2_with_a_message(tmp_path: Path) -> None:
    script = tmp_path / "svc.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), "--broker", "nowhere"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert proc.returncode == 2
    assert "is not a URL" in proc.stderr and "EVENTKIT_BROKER" in proc.stderr
