"""services, describe, health, call, publish and watch: each a real process on the machine's NATS.

Two real services (helloworld, and two replicas of greeter) run for the whole module in a
namespace of its own, so parallel runs never see each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial

import anyio.to_thread
import nats
import pytest
import yaml
from nats.aio.msg import Msg

from tests.conformance.util import wait_until
from tests.servers import free_port, require_server

from .util import (
    EVENTKIT,
    NATS,
    Background,
    env_for,
    eventkit,
    namespace,
    run_service,
    wait_listed,
)


@pytest.fixture(scope="module")
def env() -> Iterator[dict[str, str]]:
    require_server("127.0.0.1", 4222, "NATS")
    env = env_for(namespace())
    services = [
        run_service("examples.helloworld.service:svc", env),
        run_service("examples.greeter.service:svc", env),
        run_service("examples.greeter.service:svc", env),
    ]
    try:
        found = wait_listed({"helloworld", "greeter"}, env)
        for _ in range(20):
            if {s["name"]: len(s["nodes"]) for s in found}.get("greeter") == 2:
                break
            found = wait_listed({"helloworld", "greeter"}, env)
        yield env
    finally:
        for service in services:
            assert service.stop() == 0, service.output


def test_services_prints_a_table_and_json(env: dict[str, str]) -> None:
    table = eventkit("services", env=env)
    assert table.returncode == 0, table.stderr
    assert "helloworld" in table.stdout and "Helloworld.Call" in table.stdout
    listed = json.loads(eventkit("services", "--format", "json", env=env).stdout)
    by_name = {s["name"]: s for s in listed}
    assert by_name["greeter"]["version"] == "1.0.0"
    assert len(by_name["greeter"]["nodes"]) == 2


def test_describe_shows_metadata_endpoints_schemas_and_nodes(env: dict[str, str]) -> None:
    text = eventkit("describe", "greeter", env=env)
    assert text.returncode == 0, text.stderr
    for expected in (
        "greeter version 1.0.0",
        "team=core",
        "endpoint Greeter.Count",
        "  request any JSON",
        "endpoint Greeter.Hello",
        "  request HelloRequest {\n      name string\n  }",
        "      caller_address string | null\n",
        "      metadata map[string]string\n",
        f"  address  {env['EVENTKIT_NAMESPACE']}.rpc.greeter.greeter-",
        " on nats://127.0.0.1:4222 (its RPC topic)",
        " (host/pid)",
    ):
        assert expected in text.stdout, expected
    assert text.stdout.count("\nnode greeter-") == 2
    (info,) = json.loads(eventkit("describe", "greeter", "--format", "json", env=env).stdout)
    hello = {e["name"]: e for e in info["endpoints"]}["Greeter.Hello"]
    assert hello["request"]["required"] == ["name"]
    assert "caller_address" in hello["response"]["properties"]
    assert info["metadata"] == {"team": "core", "region": "local"}
    assert len(info["nodes"]) == 2
    (as_yaml,) = yaml.safe_load(eventkit("describe", "greeter", "-f", "yaml", env=env).stdout)
    assert as_yaml["name"] == "greeter"


def test_describe_of_an_unknown_service_lists_the_known_ones(env: dict[str, str]) -> None:
    result = eventkit("describe", "nope", "--wait", "0.5", env=env)
    assert result.returncode == 1
    assert "no service 'nope'" in result.stderr
    assert "known services: greeter, helloworld" in result.stderr


def test_health_reports_every_node_with_its_latency(env: dict[str, str]) -> None:
    result = eventkit("health", "greeter", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    nodes = json.loads(result.stdout)
    assert len(nodes) == 2
    for node in nodes:
        assert node["ok"] is True
        assert node["registry_ms"] > 0 and node["rpc_ms"] > 0
    text = eventkit("health", "helloworld", env=env)
    assert text.returncode == 0 and " ok" in text.stdout


def test_call_takes_json_from_the_argument_or_stdin(env: dict[str, str]) -> None:
    result = eventkit("call", "helloworld", "Helloworld.Call", '{"name": "John"}', env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"msg": "Hello John"}
    piped = eventkit(
        "call", "greeter", "Greeter.Hello", "-m", "tenant=acme", input='{"name": "Ada"}', env=env
    )
    reply = json.loads(piped.stdout)
    assert reply["msg"] == "Hello Ada"
    assert reply["metadata"] == {"tenant": "acme"}
    assert reply["caller"].startswith("cli-")


def test_call_errors_print_code_and_detail_on_stderr(env: dict[str, str]) -> None:
    bad = eventkit("call", "helloworld", "Helloworld.Call", '{"nom": 1}', env=env)
    assert bad.returncode == 1 and bad.stdout == ""
    assert "error 400" in bad.stderr and "not valid" in bad.stderr
    missing = eventkit("call", "helloworld", "Helloworld.Nope", "{}", env=env)
    assert missing.returncode == 1 and "error 404" in missing.stderr
    assert "Helloworld.Call" in missing.stderr
    unknown = eventkit("call", "nope", "X.Y", "{}", env=env)
    assert unknown.returncode == 1 and "error 503" in unknown.stderr
    assert "greeter" in unknown.stderr and "helloworld" in unknown.stderr
    not_json = eventkit("call", "helloworld", "Helloworld.Call", "{name", env=env)
    assert not_json.returncode == 1 and "not JSON" in not_json.stderr


def test_watch_tails_what_publish_sends(env: dict[str, str]) -> None:
    topic = f"demo.{env['EVENTKIT_NAMESPACE']}"
    watch = Background(
        [*EVENTKIT, "watch", f"{topic}.>", "--format", "json", "--count", "2"], env=env
    )
    text = Background([*EVENTKIT, "watch", f"{topic}.>", "--count", "1"], env=env)
    try:
        watch.wait_for("watching", timeout=20)
        text.wait_for("watching", timeout=20)
        first = eventkit("publish", f"{topic}.a", '{"n": 1}', "--type", "demo.created", env=env)
        assert first.returncode == 0, first.stderr
        second = eventkit("publish", f"{topic}.b", input='"two"', env=env)
        assert second.returncode == 0, second.stderr
        assert watch.proc.wait(timeout=20) == 0
        assert text.proc.wait(timeout=20) == 0
    finally:
        watch.stop()
        text.stop()
    events = [json.loads(line) for line in watch.lines if line.startswith("{")]
    assert [e["data"] for e in events] == [{"n": 1}, "two"]
    assert events[0]["type"] == "demo.created" and events[0]["topic"] == f"{topic}.a"
    assert events[0]["id"] == first.stdout.strip()
    assert events[1]["type"] == f"{topic}.b"
    assert any(
        f"{topic}.a" in line and "demo.created" in line and '{"n":1}' in line for line in text.lines
    )


@pytest.mark.anyio
async def test_publish_content_mode_flags(env: dict[str, str]) -> None:
    topic = f"demo.{env['EVENTKIT_NAMESPACE']}.modes"
    binary_env = {**env, "EVENTKIT_BROKER": f"{NATS}?content_mode=binary"}
    runs = [
        (env, []),
        (env, ["--binary"]),
        (env, ["--structured"]),
        (binary_env, []),
        (binary_env, ["--structured"]),
    ]
    seen: list[Msg] = []

    async def on_msg(msg: Msg) -> None:
        seen.append(msg)

    nc = await nats.connect(NATS)
    try:
        await nc.subscribe(topic, cb=on_msg)
        await nc.flush()
        ids = []
        for run_env, flags in runs:
            run = partial(eventkit, "publish", topic, '{"n": 1}', *flags, env=run_env)
            result = await anyio.to_thread.run_sync(run)
            assert result.returncode == 0, result.stderr
            ids.append(result.stdout.strip())
        await wait_until(lambda: len(seen) >= len(runs), what=f"{len(runs)} events")
    finally:
        await nc.close()
    modes = []
    for msg, event_id in zip(seen, ids, strict=True):
        if msg.headers and "ce-id" in msg.headers:
            assert msg.headers["ce-id"] == event_id
            assert json.loads(msg.data) == {"n": 1}
            modes.append("binary")
        else:
            assert msg.headers == {"content-type": "application/cloudevents+json"}
            event = json.loads(msg.data)
            assert event["id"] == event_id and event["data"] == {"n": 1}
            modes.append("structured")
    assert modes == ["structured", "binary", "structured", "binary", "structured"]


def test_a_broker_that_does_not_answer_says_how_to_start_one() -> None:
    env = env_for(namespace(), broker=f"nats://127.0.0.1:{free_port()}")
    for args in (["services"], ["call", "a", "B.c", "{}"], ["watch", "x"]):
        result = eventkit(*args, env=env)
        assert result.returncode == 1
        assert "no broker answers at nats://127.0.0.1:" in result.stderr
        assert "eventkit up" in result.stderr
