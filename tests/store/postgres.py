"""PostgreSQL for the store tests: the shared server, and a private one the tests may restart.

The shared server (``EVENTKIT_TEST_POSTGRES_URL``, by default the one at 127.0.0.1:5432,
database ``test``) runs the conformance suite; it is never restarted. The restart test
starts a server of its own with ``initdb``/``pg_ctl`` in a temporary directory on a free
loopback port (as the ``postgres`` user when the tests run as root, which PostgreSQL refuses).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.servers import IN_CI, free_port

SHARED_URL = os.environ.get(
    "EVENTKIT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def pg_bin(name: str) -> str | None:
    """A PostgreSQL server binary (``initdb``, ``pg_ctl``), from PATH or the Debian layout."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@dataclass
class PrivatePostgres:
    """A PostgreSQL server in a temporary directory; ``restart(crash=True)`` is an immediate
    shutdown (no checkpoint: what a crash leaves), then a start that recovers from the WAL."""

    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def available(cls) -> str | None:
        """Why a private server cannot run here (None: it can)."""
        for name in ("initdb", "pg_ctl"):
            if pg_bin(name) is None:
                return f"{name} is not installed (apt-get install postgresql)"
        return None

    @classmethod
    def create(cls) -> PrivatePostgres:
        directory = Path(tempfile.mkdtemp(prefix="eventkit-pg-"))
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        server = cls(directory, free_port())
        server._run(
            pg_bin("initdb") or "initdb",
            "-D",
            str(directory / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        )
        server.start()
        return server

    def _run(self, *argv: str) -> None:
        done = subprocess.run(
            _as_server_user(list(argv)), capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:2])} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self._run(
            pg_bin("pg_ctl") or "pg_ctl",
            "-D",
            str(self.directory / "data"),
            "-l",
            str(self.directory / "log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self, *, crash: bool = False) -> None:
        mode = "immediate" if crash else "fast"
        self._run(
            pg_bin("pg_ctl") or "pg_ctl",
            "-D",
            str(self.directory / "data"),
            "-m",
            mode,
            "-w",
            "stop",
        )

    def restart(self) -> None:
        self.stop(crash=True)
        self.start()

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


__all__ = ["IN_CI", "SHARED_URL", "PrivatePostgres", "pg_bin"]
