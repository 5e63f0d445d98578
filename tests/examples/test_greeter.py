"""greeter: two handlers of one class, metadata, and both sides' node and address in the Context."""

from __future__ import annotations

import subprocess
import sys

import pytest

import eventkit.testing
from eventkit.discovery import ADDRESS
from examples.greeter.service import CountReply, HelloReply, HelloRequest, svc
from tests.cli.util import ROOT, env_for, namespace, run_service, wait_listed


@pytest.mark.anyio
async def test_the_context_names_caller_and_callee_and_carries_metadata() -> None:
    async with eventkit.testing.run(svc) as kit:
        before = await kit.call("greeter", "Greeter.Count", response=CountReply)
        reply = await kit.call(
            "greeter",
            "Greeter.Hello",
            HelloRequest(name="Ada"),
            response=HelloReply,
            metadata={"tenant": "acme"},
        )
        after = await kit.call("greeter", "Greeter.Count", response=CountReply)
        (info,) = await kit.describe("greeter")
    assert reply.msg == "Hello Ada"
    assert reply.node == svc.node_id and reply.address == ADDRESS
    assert reply.caller == kit.node_id and reply.caller_address == ADDRESS
    assert reply.metadata == {"tenant": "acme"}
    assert after.greeted == before.greeted + 1
    assert info.metadata["team"] == "core"
    assert {e.name for e in info.endpoints} == {"Greeter.Hello", "Greeter.Count"}


def test_the_client_prints_both_sides_across_processes(nats: None) -> None:
    env = env_for(namespace())
    service = run_service("examples.greeter.service:svc", env)
    try:
        wait_listed({"greeter"}, env)
        client = subprocess.run(
            [sys.executable, "-m", "examples.greeter.client", "Ada"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        assert service.stop() == 0, service.output
    assert client.returncode == 0, client.stderr
    lines = client.stdout.splitlines()
    assert lines[0] == "Hello Ada"
    callee_pid = str(service.proc.pid)
    assert lines[1].startswith("callee: node greeter-") and lines[1].endswith(f"/{callee_pid}")
    assert lines[2].startswith("caller: node client-")
    assert "'tenant': 'acme'" in lines[3]
