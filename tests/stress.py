"""Stress mode: run the conformance suite N times at once, so races show up.

``python -m tests.stress`` reads ``EVENTKIT_STRESS`` (default 4), starts that many
``pytest tests/conformance -q -p no:cacheprovider`` processes side by side, and reports each
one's exit code; it exits non-zero if any run failed. Extra arguments go to every pytest run
(``python -m tests.stress -x -k durable``), and ``EVENTKIT_TEST_BROKERS`` narrows the targets
as usual. Runs that share a broker server load it together; unique topics keep them apart.
``EVENTKIT_STRESS_TIMEOUT`` (seconds, default 1800) bounds the whole thing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise SystemExit(f"{name} must be at least 1, got {value}")
    return value


def main(argv: list[str]) -> int:
    runs = _int_env("EVENTKIT_STRESS", 4)
    deadline = time.monotonic() + _int_env("EVENTKIT_STRESS_TIMEOUT", 1800)
    command = [sys.executable, "-m", "pytest", "tests/conformance", "-q", "-p", "no:cacheprovider"]
    command += argv
    print(f"stress: {runs} parallel runs of: {' '.join(command[2:])}", flush=True)
    with tempfile.TemporaryDirectory(prefix="eventkit-stress-") as tmp:
        logs = [Path(tmp, f"run{i}.log") for i in range(runs)]
        procs: list[subprocess.Popen[bytes]] = []
        started = time.monotonic()
        for log in logs:
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
                )
        codes: list[int] = []
        for proc in procs:
            try:
                codes.append(proc.wait(timeout=max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                for p in procs:
                    if p.poll() is None:
                        p.kill()
                        p.wait()
                codes.append(proc.returncode if proc.returncode is not None else -9)
                print("stress: time limit reached; unfinished runs were killed", flush=True)
        codes += [p.wait() for p in procs[len(codes) :]]
        elapsed = time.monotonic() - started
        for i, (code, log) in enumerate(zip(codes, logs, strict=True)):
            text = log.read_text(errors="replace").splitlines()
            summary = text[-1] if text else "(no output)"
            print(f"run {i}: exit {code}: {summary}")
            if code != 0:
                print("\n".join(f"  | {line}" for line in text[-60:]))
    failed = sum(1 for c in codes if c != 0)
    print(f"stress: {runs - failed}/{runs} runs passed in {elapsed:.1f}s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
