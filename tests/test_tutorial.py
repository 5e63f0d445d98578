"""docs/tutorial.md, run as a reader runs it: every command of the page, as written, in order.

The page is read, not copied: each ```bash block is run in a shell that keeps its working
directory and environment from block to block (as one terminal does), a block marked
``terminal=NAME`` runs in the background as another terminal, a file block (```python
greeter.py) is written where the reader would save it, and the page's invisible
``<!-- test: ... -->`` comments say what to expect, what to wait for, and where the reader
presses Ctrl-C. The reader starts with nothing but Python and a clone named ``eventkit``
(here a link to this checkout) and installs the kit from it into a fresh virtual environment.

Two things differ from a reader's machine, and only in the environment, never in a command:
the machine's NATS at 127.0.0.1:4222 is shared, so ``EVENTKIT_BROKER`` points at a NATS of
this test's own; and the shop's HTTP port is a free one (``SHOP_HTTP_PORT``), to which the
page's ``localhost:8080`` is rewritten.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from eventkit.brokers.nats import EmbeddedNats
from tests.cli.util import ROOT, Background
from tests.servers import free_port

TUTORIAL = ROOT / "docs" / "tutorial.md"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.M | re.S)
DIRECTIVE = re.compile(r"^<!-- test: (.*?) -->$", re.M)


@dataclass
class Step:
    kind: str  # "run", "file", "terminal", "wait", "ctrl-c"
    text: str = ""
    options: dict[str, str] = field(default_factory=dict)


def steps(page: str) -> list[Step]:
    """The page's blocks and directives, in the order they appear."""
    found: list[tuple[int, Step]] = []
    for match in DIRECTIVE.finditer(page):
        options = dict(part.split("=", 1) for part in shlex.split(match.group(1)))
        found.append((match.start(), Step("directive", options=options)))
    for match in BLOCK.finditer(page):
        language, rest, body = match.group(1), match.group(2).strip(), match.group(3)
        if language == "bash":
            found.append((match.start(), Step("run", body)))
        elif rest:
            found.append((match.start(), Step("file", body, {"path": rest})))
    found.sort(key=lambda item: item[0])
    out: list[Step] = []
    pending: dict[str, str] = {}
    for _, step in found:
        if step.kind == "directive":
            if "ctrl-c" in step.options:
                out.append(Step("ctrl-c", options=step.options))
            elif "in" in step.options:
                out.append(Step("wait", options=step.options))
            else:
                pending = step.options
            continue
        if step.kind == "run" and pending:
            step.options = pending
            if "terminal" in pending:
                step.kind = "terminal"
        pending = {}
        out.append(step)
    return out


class Reader:
    """The reader's first terminal (state kept between blocks) and the other terminals."""

    def __init__(self, home: Path, env: dict[str, str], substitutions: dict[str, str]) -> None:
        self.cwd = home
        self.env = env
        self.substitutions = substitutions
        self.state = home / ".tutorial-state"
        self.terminals: dict[str, Background] = {}

    def command(self, text: str) -> str:
        for old, new in self.substitutions.items():
            text = text.replace(old, new)
        return text

    def run(self, block: str, expect: str | None) -> None:
        script = (
            f"set -eo pipefail\n{self.command(block)}\n"
            f'pwd > "{self.state}.cwd"; env -0 > "{self.state}.env"\n'
        )
        timeout = 900 if "pip install" in block else 120
        try:
            result = subprocess.run(
                ["bash", "-c", script], cwd=self.cwd, env=self.env, capture_output=True,
                text=True, timeout=timeout, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            output = f"{exc.output}{self.terminals_output()}"
            raise AssertionError(f"{block} did not finish:\n{output}") from None
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{block}\n{output}{self.terminals_output()}"
        if expect is not None:
            assert re.search(expect, output), f"{block}: no {expect!r} in\n{output}"
        self.cwd = Path(Path(f"{self.state}.cwd").read_text().strip())
        pairs = Path(f"{self.state}.env").read_text().split("\0")
        self.env = dict(pair.split("=", 1) for pair in pairs if "=" in pair)

    def start(self, name: str, block: str, wait: str) -> None:
        old = self.terminals.get(name)
        assert old is None or old.proc.poll() is not None, f"terminal {name} still runs"
        command = self.command(block).strip()
        self.terminals[name] = Background(
            ["bash", "-c", f"exec {command}"], env=self.env, cwd=self.cwd
        )
        self.wait(name, wait)

    def wait(self, name: str, pattern: str, timeout: float = 90) -> None:
        self.terminals[name].wait_for(pattern, timeout=timeout)

    def ctrl_c(self, name: str) -> None:
        terminal = self.terminals[name]
        code = terminal.stop(signal.SIGINT, timeout=60)
        assert code in (0, 130), f"terminal {name} exited with {code}:\n{terminal.output}"

    def terminals_output(self) -> str:
        return "".join(f"\n--- {n}:\n{t.output}" for n, t in self.terminals.items())

    def close(self) -> None:
        for terminal in self.terminals.values():
            if terminal.proc.poll() is None:
                terminal.stop(signal.SIGINT, timeout=60)


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[str]:
    server = EmbeddedNats(port=free_port(), store_dir=tmp_path / "jetstream").start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.mark.timeout(1200)
def test_the_tutorial_runs_as_written(tmp_path: Path, nats: str) -> None:
    page = TUTORIAL.read_text()
    (tmp_path / "eventkit").symlink_to(ROOT)
    http_port = str(free_port())
    env = {k: v for k, v in os.environ.items() if k.startswith(("PIP_", "LANG", "LC_"))}
    env.update(
        HOME=str(tmp_path),
        PATH="/usr/local/bin:/usr/bin:/bin",
        EVENTKIT_BROKER=nats,
        SHOP_HTTP_PORT=http_port,
    )
    reader = Reader(tmp_path, env, {"localhost:8080": f"localhost:{http_port}"})
    done: list[str] = []
    try:
        for step in steps(page):
            if step.kind == "file":
                (reader.cwd / step.options["path"]).write_text(step.text)
            elif step.kind == "run":
                reader.run(step.text, step.options.get("expect"))
            elif step.kind == "terminal":
                reader.start(step.options["terminal"], step.text, step.options["wait"])
            elif step.kind == "wait":
                reader.wait(step.options["in"], step.options["wait"])
            elif step.kind == "ctrl-c":
                reader.ctrl_c(step.options["ctrl-c"])
            done.append(step.kind)
    finally:
        reader.close()
    assert done.count("run") >= 10 and done.count("terminal") == 6 and done.count("file") == 4
    assert done.count("ctrl-c") == 6
