"""Shell completion (``eventkit completion SHELL``, ``--install-completion``) and the one-line
error of a command whose dependency is missing. The installed ``eventkit`` script is run, as a
user's shell runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "eventkit"


def _env(home: Path) -> dict[str, str]:
    path = f"{SCRIPT.parent}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "HOME": str(home), "PATH": path, "SHELL": "/bin/bash"}


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_script_of_each_shell(shell: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(SCRIPT), "completion", shell], capture_output=True, text=True, env=_env(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert "_EVENTKIT_COMPLETE=complete_" + shell in result.stdout
    assert "eventkit" in result.stdout


def test_the_bash_script_completes_subcommands_and_options(tmp_path: Path) -> None:
    complete = '; _eventkit_completion eventkit; echo "${COMPREPLY[@]}"\n'
    probe = (
        "source <(eventkit completion bash)\n"
        + "COMP_WORDS=(eventkit ser); COMP_CWORD=1"
        + complete
        + "COMP_WORDS=(eventkit describe --for); COMP_CWORD=2"
        + complete
        + 'COMP_WORDS=(eventkit completion ""); COMP_CWORD=2'
        + complete
    )
    result = subprocess.run(
        ["bash", "-c", probe], capture_output=True, text=True, env=_env(tmp_path), timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["services", "--format", "bash zsh fish"]


def test_install_completion_installs_for_the_shell_it_runs_in(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", "-c", "eventkit --install-completion"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    installed = tmp_path / ".bash_completions" / "eventkit.sh"
    assert "_EVENTKIT_COMPLETE=complete_bash" in installed.read_text()
    assert str(installed) in (tmp_path / ".bashrc").read_text()


def test_a_missing_dependency_is_one_line_naming_what_to_install(tmp_path: Path) -> None:
    # An install made with --no-deps: typer cannot be imported (a None entry in sys.modules
    # makes `import typer` fail as a missing package does).
    code = "import sys; sys.modules['typer'] = None; from eventkit.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: the eventkit command needs the Python package 'typer', which is not installed; "
        'run: pip install "eventkit-micro[cli]"'
    ]
