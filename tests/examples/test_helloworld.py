"""helloworld as its README runs it: the service and the client, real processes on NATS."""

from __future__ import annotations

import subprocess
import sys

from tests.cli.util import ROOT, env_for, namespace, run_service, wait_listed


def test_the_client_calls_the_service(nats: None) -> None:
    env = env_for(namespace())
    service = run_service("examples.helloworld.service:svc", env)
    try:
        wait_listed({"helloworld"}, env)
        client = subprocess.run(
            [sys.executable, "-m", "examples.helloworld.client", "John"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        assert service.stop() == 0, service.output
    assert client.returncode == 0, client.stderr
    assert client.stdout.strip() == "Hello John"
