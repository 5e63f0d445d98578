"""No secret reaches an output: services and every CLI command run with credentials in the
broker URL (NATS user/password and token on a nats-server that requires them, an AMQP user
made for the test, an HTTP mesh token), and the secret appears in no line they print, no log
line (at DEBUG), no registry record, and no error, failed connects included."""

from __future__ import annotations

import json
import logging
import signal
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import pytest

import eventkit
from eventkit.brokers.nats import EmbeddedNats
from eventkit.discovery import registry_topic
from eventkit.wire import Message, redact
from tests.cli.util import ROOT, Background, env_for, run_service, wait_listed
from tests.cli.util import eventkit as run_cli
from tests.servers import free_port

from .conftest import AmqpUser, nats_with

pytestmark = pytest.mark.anyio

SERVICE = "examples.helloworld.service:svc"


@contextmanager
def nats_user() -> Iterator[tuple[str, str, str]]:
    secret = f"nats-SECRET-{uuid.uuid4().hex[:8]}"
    with nats_with(f'authorization {{ users = [ {{user: ek, password: "{secret}"}} ] }}\n') as s:
        yield s.url.replace("nats://", f"nats://ek:{secret}@"), secret, "nats://ek:WRONG-pw@"


@contextmanager
def nats_token() -> Iterator[tuple[str, str, str]]:
    secret = f"natsTOKENsecret{uuid.uuid4().hex[:8]}"
    with nats_with(f'authorization {{ token: "{secret}" }}\n') as s:
        yield s.url.replace("nats://", f"nats://{secret}@"), secret, "nats://WRONGtoken@"


def _outputs_of_every_command(url: str, wrong: str) -> list[str]:
    """Run a service and every command against ``url``; return everything they printed."""
    ns = f"t{uuid.uuid4().hex[:12]}"
    env = env_for(ns, url, EVENTKIT_LOG_LEVEL="DEBUG")
    printed: list[str] = []
    service = run_service(SERVICE, env)
    try:
        service.wait_for(r"service helloworld .* started", timeout=60)
        listed = wait_listed({"helloworld"}, env)
        printed.append(json.dumps(listed))  # the registry records, as the CLI shows them
        for args in (
            ["services"],
            ["services", "--format", "json"],
            ["describe", "helloworld"],
            ["describe", "helloworld", "--format", "json"],
            ["health", "helloworld"],
            ["call", "helloworld", "Helloworld.Call", '{"name": "Ada"}'],
            ["call", "helloworld", "Nope.Nope", "{}"],
            ["publish", "sec.topic", '{"a": 1}', "--type", "sec.t"],
        ):
            result = run_cli(*args, env=env, timeout=60)
            printed.append(result.stdout + result.stderr)
        assert "Hello Ada" in printed[-3], printed[-3]
        if url.startswith("nats"):  # the key-value store: JetStream on the same server
            for args in (
                ["store", "put", "secbucket", "k1", '{"v": 1}'],
                ["store", "get", "secbucket", "k1"],
                ["store", "ls", "secbucket"],
                ["store", "delete", "secbucket", "k1"],
            ):
                result = run_cli(*args, env=env, timeout=60)
                assert result.returncode == 0, result.stdout + result.stderr
                printed.append(result.stdout + result.stderr)
        watch = Background(
            [*_cli(), "watch", "sec.>"], env=env_for(ns, url, EVENTKIT_LOG_LEVEL="DEBUG")
        )
        try:
            watch.wait_for(r"watching sec\.>", timeout=60)
            run_cli("publish", "sec.topic", '{"b": 2}', env=env, timeout=60)
            watch.wait_for(r"sec\.topic", timeout=30)
        finally:
            watch.stop(signal.SIGINT)
            printed.append(watch.output)
        # Failing connects: nothing listening there, and (for a server) the wrong secret.
        dead = f"{url.split('@')[0]}@127.0.0.1:{_closed_port()}"
        if url.startswith("http"):
            dead = url.replace("seeds=", f"seeds=127.0.0.1:{_closed_port()},")
        for broken in (dead, _with_wrong_secret(url, wrong)):
            result = run_cli("services", "--wait", "0.5", env=env_for(ns, broken), timeout=60)
            printed.append(result.stdout + result.stderr)
    finally:
        service.stop(signal.SIGINT)
        printed.append(service.output)
    return printed


def _cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "eventkit.cli"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _with_wrong_secret(url: str, wrong: str) -> str:
    if url.startswith("http"):
        return url.split("&token=")[0] + "&token=WRONG-http-secret"
    return wrong + url.split("@", 1)[1]


def _assert_hidden(outputs: list[str], *secrets: str) -> None:
    text = "\n".join(outputs)
    assert "started" in text  # the service's own log is in there
    for secret in secrets:
        assert secret not in text, f"{secret!r} printed:\n" + "\n".join(
            line for line in text.splitlines() if secret in line
        )
    assert "***" in text  # the URL is shown, with its secret written as ***


def test_nats_user_and_password_never_printed() -> None:
    with nats_user() as (url, secret, wrong):
        _assert_hidden(_outputs_of_every_command(url, wrong), secret, "WRONG-pw")


def test_nats_token_never_printed() -> None:
    with nats_token() as (url, secret, wrong):
        _assert_hidden(_outputs_of_every_command(url, wrong), secret, "WRONGtoken")


def test_amqp_password_never_printed(amqp_user: AmqpUser) -> None:
    outputs = _outputs_of_every_command(amqp_user.url, f"amqp://{amqp_user.name}:WRONG-amqp@")
    _assert_hidden(outputs, amqp_user.password, "WRONG-amqp")


def test_http_token_never_printed() -> None:
    secret = f"http-SECRET-{uuid.uuid4().hex[:8]}"
    port = free_port()
    ns = f"t{uuid.uuid4().hex[:12]}"
    # The service serves on a known port; each command joins the mesh through it.
    service_url = f"http://127.0.0.1:{port}?token={secret}"
    env = env_for(ns, service_url, EVENTKIT_LOG_LEVEL="DEBUG")
    service = run_service(SERVICE, env)
    try:
        service.wait_for(r"service helloworld .* started", timeout=60)
        cli_url = f"http://127.0.0.1:0?seeds=127.0.0.1:{port}&token={secret}"
        printed = _outputs_of_every_command_http(cli_url, ns)
    finally:
        service.stop(signal.SIGINT)
    _assert_hidden([*printed, service.output], secret, "WRONG-http-secret")


def _outputs_of_every_command_http(url: str, ns: str) -> list[str]:
    env = env_for(ns, url, EVENTKIT_LOG_LEVEL="DEBUG")
    printed = [json.dumps(wait_listed({"helloworld"}, env))]
    for args in (
        ["services"],
        ["describe", "helloworld"],
        ["health", "helloworld"],
        ["call", "helloworld", "Helloworld.Call", '{"name": "Ada"}'],
        ["publish", "sec.topic", '{"a": 1}'],
    ):
        result = run_cli(*args, env=env, timeout=60)
        printed.append(result.stdout + result.stderr)
    assert "Hello Ada" in printed[-2], printed[-2]
    wrong = url.replace("&token=", "&token=WRONG-http-secret&x=")
    result = run_cli("services", "--wait", "0.5", env=env_for(ns, wrong.split("&x=")[0]))
    printed.append(result.stdout + result.stderr)
    return printed


def test_up_never_prints_the_secret() -> None:
    with nats_user() as (url, secret, _):
        ns = f"t{uuid.uuid4().hex[:12]}"
        stack = Background(
            [*_cli(), "up", str(ROOT / "examples" / "helloworld"), "--broker", url],
            env=env_for(ns, url),
        )
        try:
            stack.wait_for(r"stack .* is up", timeout=90)
        finally:
            stack.stop(signal.SIGINT, timeout=60)
        assert "***" in stack.output
        assert secret not in stack.output, stack.output


async def test_in_process_reprs_logs_and_records_hide_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The same in one process: reprs of the client, broker and settings, every log record
    at DEBUG, and the registry records a service sends on the wire."""
    secret = f"nats-SECRET-{uuid.uuid4().hex[:8]}"
    config = f'authorization {{ users = [ {{user: ek, password: "{secret}"}} ] }}\n'
    async with EmbeddedNats(extra_config=config) as server:
        url = server.url.replace("nats://", f"nats://ek:{secret}@")
        records: list[Message] = []
        svc = eventkit.Service("sec", metadata={"team": "core"})

        @svc.endpoint("Sec.Echo")
        async def echo(req: dict[str, str]) -> dict[str, str]:
            return req

        with caplog.at_level(logging.DEBUG):
            async with eventkit.connect(url) as kit:

                async def keep(message: Message) -> None:
                    records.append(message)

                await kit.broker.subscribe(registry_topic("eventkit"), keep)
                await svc.start(broker=url)
                try:
                    assert await kit.call("sec", "Sec.Echo", {"a": "b"}) == {"a": "b"}
                    shown = [repr(kit.broker), repr(kit.settings), repr(svc.settings)]
                    shown.append(repr(svc.broker))
                    with anyio.fail_after(10):
                        while not records:
                            await anyio.sleep(0.05)
                finally:
                    await svc.stop()
    text = "\n".join([*shown, caplog.text, *(m.body.decode() for m in records)])
    text += "".join(str(m.headers) for m in records)
    assert secret not in text
    assert redact(url) in text or "ek:***@" in text
