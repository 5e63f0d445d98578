"""`eventkit new service` and `eventkit new client` make projects that install and work alone.

The projects are built as a user (or a container build) would: in a fresh virtual
environment, from the project's folder only, with no path to this checkout. The kit comes
from the wheel the generator put in ``vendor/``; the rest from the package index. The
service project is installed the way its Dockerfile says, then as its README says, and its
tests pass; the client project's models come from the JSON Schema a live service publishes,
its tests pass, mypy finds no error, and it calls the live service.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import require_server

from .util import ROOT, env_for, eventkit, namespace, run_service, wait_listed

pytestmark = pytest.mark.timeout(900)  # a fresh virtual environment is installed from the index


def _clean_env(home: Path, venv: Path | None = None) -> dict[str, str]:
    """What a new shell has: no PYTHONPATH, no EVENTKIT_* of ours, the venv first on PATH."""
    keep = {k: v for k, v in os.environ.items() if k.startswith(("PIP_", "LANG", "LC_"))}
    path = "/usr/local/bin:/usr/bin:/bin"
    if venv is not None:
        path = f"{venv / 'bin'}:{path}"
    return {**keep, "HOME": str(home), "PATH": path}


def _sh(command: str, cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    result = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def _dockerfile_install(project: Path) -> str:
    """The Dockerfile's `RUN pip install ...` line (the one that installs the project)."""
    runs = [
        line.removeprefix("RUN ").strip()
        for line in (project / "Dockerfile").read_text().splitlines()
        if line.startswith("RUN pip install")
    ]
    assert len(runs) == 1, runs
    return runs[0]


def _build_context(project: Path, into: Path) -> Path:
    """What `COPY . .` puts in the image: the project less what .dockerignore leaves out."""
    ignored = [line.strip() for line in (project / ".dockerignore").read_text().splitlines()]
    names = {p.removeprefix("**/") for p in ignored if p}
    shutil.copytree(project, into, ignore=shutil.ignore_patterns(*names))
    return into


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One fresh virtual environment for the module's projects (pip is the slow part)."""
    home = tmp_path_factory.mktemp("home")
    path = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
    return path


def test_a_generated_service_installs_from_its_own_folder_and_passes_its_tests(
    tmp_path: Path, venv: Path
) -> None:
    made = eventkit("new", "service", "order-book", "--dir", str(tmp_path), env=env_for("x"))
    assert made.returncode == 0, made.stderr
    project = tmp_path / "order-book"
    (wheel,) = (project / "vendor").glob("eventkit_micro-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert "eventkit/cli/__init__.py" in archive.namelist()
    pyproject = (project / "pyproject.toml").read_text()
    assert f'"eventkit-micro=={wheel.name.split("-")[1]}"' in pyproject

    # As the container build does: COPY . . then the Dockerfile's RUN line.
    app = _build_context(project, tmp_path / "image" / "app")
    env = _clean_env(tmp_path, venv)
    _sh(_dockerfile_install(project), app, env)
    where = _sh("cd / && python -c 'import eventkit; print(eventkit.__file__)'", app, env)
    assert str(venv) in where and str(ROOT) not in where
    assert "Usage: eventkit" in _sh("eventkit --help", app, env)
    assert "order_book.service:svc" in (project / "Dockerfile").read_text()

    # As the README says: the dev install, then the tests.
    readme = (project / "README.md").read_text()
    install = next(line for line in readme.splitlines() if line.startswith("pip install"))
    _sh(install.partition("#")[0], project, env)
    out = _sh("pytest -q -p no:cacheprovider", project, env, timeout=120)
    assert "2 passed" in out

    again = eventkit("new", "service", "order-book", "--dir", str(tmp_path), env=env_for("x"))
    assert again.returncode == 1 and "already exists" in again.stderr
    bad = eventkit("new", "service", "Bad Name", "--dir", str(tmp_path), env=env_for("x"))
    assert bad.returncode == 1 and "must start with a letter" in bad.stderr


@pytest.fixture(scope="module")
def live() -> Iterator[dict[str, str]]:
    """The example greeter, running on the machine's NATS in a namespace of its own."""
    require_server("127.0.0.1", 4222, "NATS")
    env = env_for(namespace())
    service = run_service("examples.greeter.service:svc", env)
    try:
        wait_listed({"greeter"}, env)
        yield env
    finally:
        assert service.stop() == 0, service.output


def test_a_generated_client_type_checks_and_calls_the_live_service(
    tmp_path: Path, venv: Path, live: dict[str, str]
) -> None:
    made = eventkit(
        "new", "client", "greeter-client", "--service", "greeter", "--endpoint",
        "Greeter.Hello", "--dir", str(tmp_path), env=live,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    project = tmp_path / "greeter-client"
    models = (project / "greeter_client" / "models.py").read_text()
    assert "class HelloRequest(BaseModel):" in models and "class HelloReply(BaseModel):" in models
    assert "caller_address: Annotated[str | None" in models

    env = _clean_env(tmp_path, venv)
    readme = (project / "README.md").read_text()
    install = next(line for line in readme.splitlines() if line.startswith("pip install"))
    _sh(install.partition("#")[0], project, env)
    assert "1 passed" in _sh("pytest -q -p no:cacheprovider", project, env, timeout=120)
    assert "Success: no issues found" in _sh("mypy", project, env, timeout=300)

    call_env = {**env, **{k: live[k] for k in ("EVENTKIT_BROKER", "EVENTKIT_NAMESPACE")}}
    request = shlex.quote(json.dumps({"name": "Ada"}))
    reply = json.loads(_sh(f"python -m greeter_client.client {request}", project, call_env))
    assert reply["msg"] == "Hello Ada" and reply["node"].startswith("greeter-")


def test_a_client_of_an_endpoint_without_a_request_model(
    tmp_path: Path, live: dict[str, str]
) -> None:
    made = eventkit(
        "new", "client", "count-client", "--service", "greeter", "--endpoint", "Greeter.Count",
        "--dir", str(tmp_path), "--no-vendor", env=live,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    project = tmp_path / "count-client"
    assert not (project / "vendor").exists()
    assert '"eventkit-micro>=' in (project / "pyproject.toml").read_text()
    models = (project / "count_client" / "models.py").read_text()
    assert "class CountRequest(RootModel[Any]):" in models
    assert "class CountReply(BaseModel):" in models
    # The project's own checks, with this checkout's kit on the path.
    env = {**live, "PYTHONPATH": f"{project}:{ROOT}"}
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert tests.returncode == 0 and "1 passed" in tests.stdout, tests.stdout + tests.stderr
    checked = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=project, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    called = subprocess.run(
        [sys.executable, "-m", "count_client.client"], cwd=project, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["greeted"] >= 0


def test_new_client_names_what_is_missing(tmp_path: Path, live: dict[str, str]) -> None:
    args = ["new", "client", "c", "--service", "greeter", "--dir", str(tmp_path)]
    wrong = eventkit(*args, "--endpoint", "Greeter.Nope", env=live)
    assert wrong.returncode == 1
    assert "has no endpoint 'Greeter.Nope'" in wrong.stderr
    assert "Greeter.Count, Greeter.Hello" in wrong.stderr
    nobody = eventkit(*args, env={**live, "EVENTKIT_NAMESPACE": namespace()})
    assert nobody.returncode == 1 and "no service 'greeter'" in nobody.stderr
    code = "import sys; sys.modules['datamodel_code_generator'] = None; " + (
        "from eventkit.cli import main; main()"
    )
    missing = subprocess.run(
        [sys.executable, "-c", code, *args], env=live, capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 1
    assert 'pip install "eventkit-micro[codegen]"' in missing.stderr
    assert "Traceback" not in missing.stderr
