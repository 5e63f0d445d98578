"""`eventkit run --reload` restarts a service on a change; `eventkit run` names a bad target."""

from __future__ import annotations

import json
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
