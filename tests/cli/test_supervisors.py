"""`eventkit up` and `eventkit run --reload` own their children: none outlives its supervisor.

Each test starts a real supervisor, learns its children's pids from what it prints, kills or
signals the supervisor, and then looks the pids up: a child still running is a failure.
SIGKILL cannot be caught, so only the children's binding to their parent's life
(``eventkit.cli.lifeline``) can stop them; SIGHUP (a closed terminal) must stop everything as
SIGTERM does; SIGINT must work even when the supervisor inherited it ignored, as a background
job of a script does.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import free_port, port_open

from .util import EVENTKIT, ROOT, Background, env_for, namespace

SERVICE = """
from eventkit import Service

svc = Service("owned")


@svc.endpoint("Owned.Ping")
async def ping() -> str:
    return "pong"
"""

STACK = """
[services]
owned = "owned_mod:svc"
twice = { target = "owned_mod:svc", replicas = 2 }
"""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_gone(pids: list[int], timeout: float = 20.0) -> list[int]:
    """The pids still alive after ``timeout`` seconds (an empty list: all gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [pid for pid in pids if alive(pid)]
        if not left:
            return []
        time.sleep(0.1)
    return [pid for pid in pids if alive(pid)]


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    (tmp_path / "owned_mod.py").write_text(SERVICE)
    (tmp_path / "eventkit.toml").write_text(STACK)
    return tmp_path


def _up(stack: Path, *, wrap: list[str] | None = None) -> tuple[Background, list[int], int]:
    """``eventkit up`` on an embedded NATS; returns it, its children's pids and the port."""
    port = free_port()
    env = env_for(namespace(), broker=f"nats://127.0.0.1:{port}")
    cmd = [*EVENTKIT, "up", str(stack), "--embed", "--grace", "10"]
    up = Background([*(wrap or []), *cmd], env=env)
    try:
        launcher = int(up.wait_for(r"embedded NATS server \(JetStream on, pid (\d+)\)").group(1))
        up.wait_for(r"stack \S+ is up: 3 process", timeout=60)
    except AssertionError:
        up.stop(signal.SIGKILL)
        raise
    services = [int(p) for p in re.findall(r"is starting \(pid (\d+)\)", up.output)]
    assert len(services) == 3, up.output
    assert all(alive(pid) for pid in [launcher, *services])
    return up, [launcher, *services], port


def test_up_killed_with_sigkill_leaves_no_child(stack: Path) -> None:
    up, children, port = _up(stack)
    up.stop(signal.SIGKILL)
    assert wait_gone(children) == [], up.output
    assert not port_open("127.0.0.1", port), "the embedded nats-server outlived up"


def test_up_stops_every_process_gracefully_on_sighup(stack: Path) -> None:
    up, children, port = _up(stack)
    code = up.stop(signal.SIGHUP, timeout=40)
    assert code == 0, up.output
    assert "SIGHUP: stopping every process" in up.output
    for label in ("owned", "twice.1", "twice.2"):
        assert re.search(rf"\| {re.escape(label)} is down \(exit status 0\)", up.output), label
    assert wait_gone(children, timeout=5) == []
    assert not port_open("127.0.0.1", port)


def test_up_honours_sigint_inherited_as_ignored(stack: Path) -> None:
    # `trap '' INT` then exec: the supervisor starts with SIGINT ignored, as a background
    # job of a script does.
    up, children, _ = _up(stack, wrap=["bash", "-c", "trap '' INT; exec \"$@\"", "bash"])
    code = up.stop(signal.SIGINT, timeout=40)
    assert code == 0, up.output
    assert "SIGINT: stopping every process" in up.output
    assert wait_gone(children, timeout=5) == []


def _reload(tmp_path: Path, *, wrap: list[str] | None = None) -> tuple[Background, int]:
    """``eventkit run --reload`` of a service on memory://; returns it and the child's pid."""
    (tmp_path / "owned_mod.py").write_text(SERVICE)
    env = env_for(namespace(), broker="memory://")
    env["PYTHONPATH"] = f"{tmp_path}:{ROOT}"
    cmd = [*EVENTKIT, "run", "owned_mod:svc", "--reload", "--watch", str(tmp_path)]
    run = Background([*(wrap or []), *cmd], env=env, cwd=tmp_path)
    try:
        child = int(run.wait_for(r"started the service \(pid (\d+)\)").group(1))
        run.wait_for(r"service owned .* started as", timeout=30)
    except AssertionError:
        run.stop(signal.SIGKILL)
        raise
    assert alive(child)
    return run, child


def test_run_reload_killed_with_sigkill_leaves_no_child(tmp_path: Path) -> None:
    run, child = _reload(tmp_path)
    run.stop(signal.SIGKILL)
    assert wait_gone([child]) == [], run.output


def test_run_reload_stops_its_service_on_sighup(tmp_path: Path) -> None:
    run, child = _reload(tmp_path)
    assert run.stop(signal.SIGHUP) == 0, run.output
    assert "draining and stopping" in run.output
    assert wait_gone([child], timeout=5) == []


def test_run_reload_honours_sigint_inherited_as_ignored(tmp_path: Path) -> None:
    run, child = _reload(tmp_path, wrap=["bash", "-c", "trap '' INT; exec \"$@\"", "bash"])
    assert run.stop(signal.SIGINT) == 0, run.output
    assert "draining and stopping" in run.output
    assert wait_gone([child], timeout=5) == []


PARENT = """
import subprocess, sys, time
from eventkit.cli.lifeline import child_env
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], env=child_env())
print(child.pid, flush=True)
time.sleep(120)
"""

CHILD = """
import signal, sys, time
from eventkit.cli import lifeline
{patch}
print("bound by", lifeline.bind_to_supervisor(), flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
time.sleep(120)
"""


@pytest.mark.parametrize(
    ("patch", "how"),
    [
        ("", "prctl"),
        ("lifeline._set_parent_death_signal = lambda signum: False", "watch"),
    ],
    ids=["prctl", "portable-fallback"],
)
def test_a_bound_child_gets_sigterm_when_its_parent_is_killed(patch: str, how: str) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD.format(patch=patch)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert parent.stdout.readline().strip() == f"bound by {how}"
        assert alive(child)
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    assert wait_gone([child], timeout=10) == []


def test_a_child_whose_parent_died_before_it_was_bound_stops_at_once() -> None:
    code = (
        "import os, sys\n"
        "from eventkit.cli import lifeline\n"
        "os.environ[lifeline.SUPERVISOR_ENV] = '1'\n"  # not our parent: as if it had died
        "lifeline.bind_to_supervisor()\n"
        "import time; time.sleep(30)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=20)
    assert result.returncode == -signal.SIGTERM
