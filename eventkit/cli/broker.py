"""The embedded NATS server (or 3-node cluster) of ``eventkit up``, in a session of its own.

A terminal's Ctrl-C goes to every process of the foreground group; a nats-server there would
die at once, while the services still drain and say leave through it. So ``up`` starts the
server from a small launcher (``python -m eventkit.cli.broker PORT [NODES]``) in a new
session: only ``up`` stops it, last. The launcher also stops the server when ``up`` dies
without a word (its stdin, a pipe from ``up``, closes). Once the server is ready it prints
``ready URL MONITORS``: the client URL and the nodes' HTTP monitoring URLs.
"""

from __future__ import annotations

import subprocess
import sys
import threading

from ..wire import ConnectionLost
from .lifeline import bind_to_supervisor, child_env, honour_stop_signals

__all__ = ["EmbeddedBroker"]


class EmbeddedBroker:
    """``start()`` a nats-server with JetStream on 127.0.0.1:``port`` (``nodes=3``: a cluster
    on ``port`` and the next two ports); ``stop()`` it."""

    def __init__(self, port: int, nodes: int = 1) -> None:
        self.port = port
        self.nodes = nodes
        self.url = "nats://" + ",".join(f"127.0.0.1:{port + i}" for i in range(nodes))
        self.monitors: list[str] = []  # the nodes' HTTP monitoring URLs, once started
        self._proc: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int | None:
        """The launcher's process id, while it runs."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> str:
        proc = subprocess.Popen(
            [sys.executable, "-m", "eventkit.cli.broker", str(self.port), str(self.nodes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env=child_env(),
        )
        self._proc = proc
        assert proc.stdout is not None
        output = []
        for line in proc.stdout:
            if line.startswith("ready "):
                self.monitors = line.split()[2].split(",")
                return self.url
            output.append(line)
        proc.wait()
        self._proc = None
        raise ConnectionLost(
            f"the embedded NATS server did not start on port {self.port}: {''.join(output)[-2000:]}"
        )

    def stop(self, grace: float = 15.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _main(port: int, nodes: int = 1) -> int:
    from ..brokers.nats import EmbeddedNats, EmbeddedNatsCluster
    from ..wire import EventKitError

    done = threading.Event()
    honour_stop_signals(lambda *_: done.set())
    bind_to_supervisor()
    server: EmbeddedNats | EmbeddedNatsCluster
    try:
        if nodes > 1:
            server = EmbeddedNatsCluster(nodes, ports=[port + i for i in range(nodes)])
        else:
            server = EmbeddedNats(port=port)
    except EventKitError as exc:
        print(f"error {exc}", flush=True)
        return 1
    try:
        server.start()
    except EventKitError as exc:
        server.stop()  # the nodes that did start
        print(f"error {exc}", flush=True)
        return 1
    try:
        print(f"ready {server.url} {','.join(server.monitor_urls)}", flush=True)

        def wait_for_eof() -> None:
            sys.stdin.read()
            done.set()

        threading.Thread(target=wait_for_eof, daemon=True).start()
        done.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_main(*(int(arg) for arg in sys.argv[1:3])))
