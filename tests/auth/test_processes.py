"""Auth across processes on every broker: refused callers never reach a handler.

The service (tests/auth/node.py) runs in this process on memory://, and as a process of its
own on NATS, RabbitMQ and HTTP. Each test sends calls and events without a token, with an
expired one, with a wrong signature and without the scope; the handler records every call,
and records none of them. A good token passes, and the handler sees its subject as
``ctx.caller``. The service's log never shows a token.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import jwt
import pytest

from eventkit import Auth, Client, Forbidden, Settings, Unauthorized
from tests.auth.node import SCOPE, build
from tests.servers import free_port, require_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

KEY = "eventkit-test-shared-secret-of-48-bytes-or-more!!"
OTHER_KEY = "a-different-secret-that-the-service-does-not-trust"
ROOT = Path(__file__).resolve().parents[2]

BROKERS = {
    "memory": ("memory://", 0, ""),
    "nats": ("nats://127.0.0.1:4222", 4222, "NATS"),
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672/", 5672, "RabbitMQ"),
    "http": ("http://127.0.0.1:{port}", 0, "HTTP"),
}


@pytest.fixture(params=sorted(BROKERS))
def broker_url(request: pytest.FixtureRequest) -> str:
    url, port, what = BROKERS[request.param]
    if url.startswith("http"):
        return url.format(port=free_port())
    if port:
        require_server("127.0.0.1", port, what)
    return url


def expired_token() -> str:
    now = int(time.time())
    claims = {"sub": "late", "scope": SCOPE, "iat": now - 120, "exp": now - 60}
    return jwt.encode(claims, KEY, algorithm="HS256")


def start_node(env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    """The node as a process of its own; its log goes to ``log``."""
    with log.open("w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.auth.node"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )


@asynccontextmanager
async def guarded(broker_url: str, tmp_path: Path) -> AsyncIterator[tuple[Client, Path]]:
    """The guarded service (in-process on memory://, else a process) and a tokenless client."""
    calls = tmp_path / "calls.txt"
    calls.touch()
    ns = f"eka{uuid.uuid4().hex[:8]}"
    settings = Settings(broker=broker_url, namespace=ns, registry_ttl=2.0, heartbeat=0.5)
    if broker_url == "memory://":
        svc = build(calls, Auth(KEY), namespace=ns)
        await svc.start(broker="memory://")
        try:
            async with Client(svc.broker, settings=settings, owns_broker=False) as kit:
                yield kit, calls
        finally:
            await svc.stop()
        return
    node_url = broker_url
    if broker_url.startswith("http://"):
        seed = broker_url.removeprefix("http://")
        node_url = f"http://127.0.0.1:0?seeds={seed}&dead_after=2"
    log = tmp_path / "node.log"
    env = {
        **os.environ,
        "EVENTKIT_BROKER": node_url,
        "EVENTKIT_NAMESPACE": ns,
        "EVENTKIT_REGISTRY_TTL": "2",
        "EVENTKIT_HEARTBEAT": "0.5",
        "EVENTKIT_AUTH_KEY": KEY,
        "CALLS": str(calls),
    }
    proc = start_node(env, log)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line[:1] == ["ready"], f"node did not start: {line} {log.read_text()}"
        async with Client(settings=settings) as kit:
            registry = await kit.get_registry()
            with anyio.fail_after(15):
                while not registry.view.nodes("guarded"):
                    await registry.query("guarded", wait=0.2)
            yield kit, calls
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def bad_tokens(auth: Auth) -> dict[str, tuple[str | None, type[Exception]]]:
    return {
        "none": (None, Unauthorized),
        "expired": (expired_token(), Unauthorized),
        "wrong signature": (Auth(OTHER_KEY).mint("mallory", [SCOPE], ttl=60), Unauthorized),
        "garbage": ("not.a.token", Unauthorized),
        "missing scope": (auth.mint("reader", ["orders:read"], ttl=60), Forbidden),
    }


async def call_with(kit: Client, token: str | None, order: str) -> object:
    async with Client(kit.broker, settings=kit.settings, owns_broker=False, token=token) as caller:
        return await caller.call("guarded", "Orders.Place", {"order_id": order}, timeout=5)


async def test_calls_without_a_good_token_never_reach_the_handler(
    broker_url: str, tmp_path: Path
) -> None:
    auth = Auth(KEY)
    async with guarded(broker_url, tmp_path) as (kit, calls):
        for why, (token, error) in bad_tokens(auth).items():
            with pytest.raises(error) as raised:
                await call_with(kit, token, f"bad-{why}")
            assert raised.value.id == "guarded", why
            if token:
                assert token not in str(raised.value)
        assert calls.read_text() == ""  # nothing refused was run, nor decoded
        good = auth.mint("alice", [SCOPE], ttl=60)
        reply = await call_with(kit, good, "o-1")
        assert reply == {"caller": "alice", "order": "o-1"}
        assert calls.read_text() == "call:o-1 alice True\n"
        async with Client(kit.broker, settings=kit.settings, owns_broker=False, token=good) as c:
            who = await c.call("guarded", "Orders.Who", timeout=5)
        assert who == {"caller": "alice", "scopes": [SCOPE]}
    log = tmp_path / "node.log"
    if log.exists():
        text = log.read_text()
        assert good not in text
        assert all(t not in text for t, _ in bad_tokens(auth).values() if t)


async def test_events_without_a_good_token_are_not_handled(broker_url: str, tmp_path: Path) -> None:
    auth = Auth(KEY)
    good = auth.mint("alice", [SCOPE], ttl=60)
    async with guarded(broker_url, tmp_path) as (kit, calls):
        senders = {
            why: Client(kit.broker, settings=kit.settings, owns_broker=False, token=token)
            for why, (token, _) in bad_tokens(auth).items()
        }
        good_sender = Client(kit.broker, settings=kit.settings, owns_broker=False, token=good)
        deadline = anyio.current_time() + 20
        round_ = 0
        # Refused events first, then a good one, until the good one is seen (on HTTP a
        # subscription reaches a publisher by gossip, so the first rounds may find no one).
        while "event:" not in calls.read_text():
            assert anyio.current_time() < deadline, "the good event never arrived"
            round_ += 1
            for why, sender in senders.items():
                await sender.publish("guarded.orders.placed", {"order_id": f"bad-{why}"})
            await good_sender.publish("guarded.orders.placed", {"order_id": f"good-{round_}"})
            with anyio.move_on_after(1.0):
                while "event:" not in calls.read_text():
                    await anyio.sleep(0.05)
        await anyio.sleep(0.5)  # time for a refused event that would arrive late
        lines = calls.read_text().splitlines()
        assert lines, "no event was handled"
        assert all(
            line.startswith("event:good-") and line.endswith(" alice True") for line in lines
        ), lines
