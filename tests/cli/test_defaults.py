"""One default broker for the library and the command, and errors that name a mismatch.

A service started with ``svc.run()`` and nothing set, and ``eventkit call`` with nothing set,
meet on the local NATS (the machine's, at 127.0.0.1:4222). When a caller and a service cannot
see each other, the error says which broker URL and namespace the caller used (without
secrets) and what to check; ``eventkit up`` starts a broker of its own only at the default URL
or when asked, and its advice fits the kind of broker that did not answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import eventkit
from eventkit import ServiceUnavailable
from tests.servers import free_port, port_open, require_server

from .util import ROOT, Background, env_for, namespace, wait_listed
from .util import eventkit as run_eventkit

QUICK_START = """
from pydantic import BaseModel
from eventkit import Service


class HelloRequest(BaseModel):
    name: str


class HelloReply(BaseModel):
    msg: str


svc = Service("greeter", version="1.0.0")


@svc.endpoint("Greeter.Hello")
async def hello(req: HelloRequest) -> HelloReply:
    return HelloReply(msg=f"Hello {req.name}")


if __name__ == "__main__":
    svc.run()
"""


def _no_broker_env(ns: str) -> dict[str, str]:
    env = env_for(ns)
    env.pop("EVENTKIT_BROKER")
    return env


def test_the_quick_start_and_the_command_meet_with_nothing_set(tmp_path: Path) -> None:
    require_server("127.0.0.1", 4222, "NATS")
    script = tmp_path / "greeter.py"
    script.write_text(QUICK_START)
    env = _no_broker_env(namespace())
    service = Background([sys.executable, str(script)], env=env)
    try:
        service.wait_for(r"started as .* on nats://127\.0\.0\.1:4222, namespace t", timeout=30)
        wait_listed({"greeter"}, env)
        reply = run_eventkit("call", "greeter", "Greeter.Hello", '{"name": "Ada"}', env=env)
        assert reply.returncode == 0, reply.stderr
        assert json.loads(reply.stdout) == {"msg": "Hello Ada"}

        elsewhere = {**env, "EVENTKIT_NAMESPACE": namespace()}
        missed = run_eventkit("call", "greeter", "Greeter.Hello", '{"name": "Ada"}', env=elsewhere)
        assert missed.returncode == 1
        used = f"namespace '{elsewhere['EVENTKIT_NAMESPACE']}' on nats://127.0.0.1:4222"
        assert used in missed.stderr and "(the default)" in missed.stderr
        assert "EVENTKIT_NAMESPACE" in missed.stderr and "known services: none" in missed.stderr
    finally:
        assert service.stop() == 0, service.output


def test_a_command_that_finds_nothing_names_the_url_it_used_without_secrets() -> None:
    require_server("127.0.0.1", 4222, "NATS")
    env = env_for(namespace(), broker="nats://127.0.0.1:4222")
    for args in (["services", "--wait", "0.3"], ["describe", "greeter", "--wait", "0.3"]):
        result = run_eventkit(*args, env=env)
        assert result.returncode == 1
        assert f"namespace '{env['EVENTKIT_NAMESPACE']}' on nats://127.0.0.1:4222" in result.stderr
        assert "from --broker / EVENTKIT_BROKER" in result.stderr
    secret = env_for(namespace(), broker="amqp://guest:s3cret@127.0.0.1:1/")
    failed = run_eventkit("services", env=secret)
    assert failed.returncode == 1
    assert "amqp://guest:***@127.0.0.1:1/" in failed.stderr and "s3cret" not in failed.stderr
    assert "error when creating transport" not in failed.stderr  # said once, by eventkit
    assert "eventkit up" not in failed.stderr and "RabbitMQ" in failed.stderr


def test_up_does_not_start_a_broker_at_a_url_that_was_named(tmp_path: Path) -> None:
    (tmp_path / "eventkit.toml").write_text('[services]\nx = "nowhere:svc"\n')
    port = free_port()
    env = env_for(namespace(), broker=f"nats://127.0.0.1:{port}")
    result = run_eventkit("up", str(tmp_path), env=env)
    assert result.returncode == 1
    assert f"no broker answers at nats://127.0.0.1:{port} (named by --broker" in result.stderr
    assert "--embed" in result.stderr
    assert "started an embedded" not in result.stdout + result.stderr
    assert not port_open("127.0.0.1", port)

    (tmp_path / "eventkit.toml").write_text(
        f'[stack]\nbroker = "nats://127.0.0.1:{port}"\n[services]\nx = "nowhere:svc"\n'
    )
    env.pop("EVENTKIT_BROKER")
    from_file = run_eventkit("up", str(tmp_path), env=env)
    assert from_file.returncode == 1 and "[stack] broker" in from_file.stderr

    amqp = env_for(namespace(), broker="amqp://guest:s3cret@127.0.0.1:1/")
    refused = run_eventkit("up", str(tmp_path), env=amqp)
    assert refused.returncode == 1
    assert "eventkit up" not in refused.stderr and "s3cret" not in refused.stderr
    assert "start RabbitMQ at amqp://guest:***@127.0.0.1:1/" in refused.stderr


def test_a_service_whose_broker_does_not_answer_says_so_in_one_message(tmp_path: Path) -> None:
    script = tmp_path / "greeter.py"
    script.write_text(QUICK_START)
    port = free_port()
    result = subprocess.run(
        [sys.executable, str(script), "--broker", f"nats://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("eventkit: greeter cannot start: cannot reach NATS at ")


@pytest.mark.anyio
async def test_a_call_on_memory_says_memory_reaches_only_this_process() -> None:
    async with eventkit.connect(f"memory://{namespace()}") as kit:
        with pytest.raises(ServiceUnavailable) as caught:
            await kit.call("greeter", "Greeter.Hello", {}, timeout=1.0)
    assert "memory:// reaches only this process" in caught.value.detail
    assert "namespace 'eventkit'" in caught.value.detail
