"""Running the real ``eventkit`` command in subprocesses, and waiting on what it prints."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EVENTKIT = [sys.executable, "-m", "eventkit.cli"]
NATS = "nats://127.0.0.1:4222"


def namespace() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def env_for(ns: str, broker: str = NATS, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(EVENTKIT_BROKER=broker, EVENTKIT_NAMESPACE=ns, PYTHONPATH=str(ROOT))
    env.pop("EVENTKIT_NODE_ID", None)
    env.update(extra)
    return env


def eventkit(
    *args: str,
    env: dict[str, str],
    input: str | None = None,
    timeout: float = 30,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EVENTKIT, *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


class Background:
    """A process whose output (stdout and stderr merged) is collected line by line."""

    def __init__(self, cmd: list[str], *, env: dict[str, str], cwd: Path = ROOT) -> None:
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The first line matching ``pattern``; fails with the output so far after ``timeout``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if m := regex.search(line):
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no line matches {pattern!r}; output:\n{self.output}")
                self._changed.wait(min(left, 0.5))

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"did not stop within {timeout}s; output:\n{self.output}"
            ) from None
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code


def run_service(target: str, env: dict[str, str]) -> Background:
    return Background([*EVENTKIT, "run", target], env=env)


def wait_listed(names: set[str], env: dict[str, str], timeout: float = 30.0) -> list[Any]:
    """``eventkit services --format json`` until every name in ``names`` is listed."""
    deadline = time.monotonic() + timeout
    last = ""
    for _ in range(100):
        result = eventkit("services", "--format", "json", "--wait", "0.5", env=env)
        last = result.stdout + result.stderr
        if result.returncode == 0:
            found = json.loads(result.stdout)
            if names <= {s["name"] for s in found}:
                return list(found)
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    raise AssertionError(f"services {sorted(names)} not all listed within {timeout}s: {last}")
