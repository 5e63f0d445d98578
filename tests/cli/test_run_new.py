"""`eventkit run --reload` restarts a service on a change; `eventkit new` makes working projects."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from .util import EVENTKIT, ROOT, Background, env_for, eventkit, namespace, wait_listed

SERVICE = """
from eventkit import Service

svc = Service("reloaded", version="{version}")


@svc.endpoint("Reloaded.Version")
async def version() -> str:
    return "{version}"
"""


def _versions(env: dict[str, str]) -> set[str]:
    result = eventkit("services", "--format", "json", "--wait", "0.5", env=env)
    return {s["version"] for s in json.loads(result.stdout or "[]") if s["name"] == "reloaded"}


def test_run_reload_restarts_the_service_when_its_code_changes(tmp_path: Path, nats: None) -> None:
    module = tmp_path / "reloaded_mod.py"
    module.write_text(SERVICE.format(version="1.0.0"))
    env = env_for(namespace())
    env["PYTHONPATH"] = f"{tmp_path}:{ROOT}"
    run = Background(
        [*EVENTKIT, "run", "reloaded_mod:svc", "--reload", "--watch", str(tmp_path)],
        env=env,
        cwd=tmp_path,
    )
    try:
        wait_listed({"reloaded"}, env)
        assert _versions(env) == {"1.0.0"}
        module.write_text(SERVICE.format(version="2.0.0"))
        run.wait_for("restarting reloaded_mod:svc", timeout=20)
        for _ in range(60):
            if _versions(env) == {"2.0.0"}:
                break
            time.sleep(0.2)
        assert _versions(env) == {"2.0.0"}, run.output
        reply = eventkit("call", "reloaded", "Reloaded.Version", env=env)
        assert json.loads(reply.stdout) == "2.0.0"
    finally:
        code = run.stop()
    assert code == 0, run.output
    assert run.output.count("draining and stopping") == 2, run.output


def test_run_names_what_is_wrong_with_a_target() -> None:
    env = env_for(namespace())
    missing = eventkit("run", "no_such_module:svc", env=env)
    assert missing.returncode == 1 and "no module 'no_such_module'" in missing.stderr
    wrong = eventkit("run", "examples.helloworld.service:Request", env=env)
    assert wrong.returncode == 1
    assert "not an eventkit.Service" in wrong.stderr and "svc" in wrong.stderr


def _pytest(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": str(Path(sys.executable).parent), "HOME": str(project)},
    )


def test_new_service_makes_a_project_whose_tests_pass(tmp_path: Path) -> None:
    env = env_for(namespace())
    made = eventkit("new", "service", "order-book", "--dir", str(tmp_path), env=env)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "order-book"
    for rel in (
        "order_book/service.py",
        "order_book/models.py",
        "tests/test_service.py",
        "Dockerfile",
        "compose.yaml",
        "eventkit.toml",
        "pyproject.toml",
    ):
        assert (project / rel).is_file(), rel
    result = _pytest(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
    again = eventkit("new", "service", "order-book", "--dir", str(tmp_path), env=env)
    assert again.returncode == 1 and "already exists" in again.stderr
    bad = eventkit("new", "service", "Bad Name", "--dir", str(tmp_path), env=env)
    assert bad.returncode == 1 and "must start with a letter" in bad.stderr


def test_new_client_makes_a_project_whose_tests_pass(tmp_path: Path) -> None:
    env = env_for(namespace())
    made = eventkit(
        "new",
        "client",
        "greeter-client",
        "--service",
        "greeter",
        "--endpoint",
        "Greeter.Hello",
        "--dir",
        str(tmp_path),
        env=env,
    )
    assert made.returncode == 0, made.stderr
    result = _pytest(tmp_path / "greeter-client")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
