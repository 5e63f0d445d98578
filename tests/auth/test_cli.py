"""``eventkit auth keygen``, ``eventkit auth token`` and ``eventkit call --token``, as a user
runs them: real processes on the shared NATS; no key or token ever shows in what they say."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from eventkit import Auth
from eventkit.cli.auth import parse_duration
from tests.auth.node import SCOPE
from tests.cli.util import NATS, Background, env_for, eventkit, namespace
from tests.servers import require_server


def test_durations() -> None:
    assert [parse_duration(t) for t in ("90", "90s", "15m", "1h", "2d")] == [
        90,
        90,
        900,
        3600,
        172800,
    ]
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


def test_keygen_and_token_make_a_token_the_key_verifies(tmp_path: Path) -> None:
    env = env_for(namespace())
    env.pop("EVENTKIT_AUTH_KEY", None)
    env.pop("EVENTKIT_AUTH_KEY_FILE", None)
    key = tmp_path / "key"
    made = eventkit("auth", "keygen", "--out", str(key), env=env)
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    secret = key.read_text().strip()
    assert secret not in made.stdout + made.stderr
    minted = eventkit(
        "auth", "token", "--subject", "ada", "--scope", "a", "--scope", "b",
        "--ttl", "10m", "--key-file", str(key), env=env,
    )  # fmt: skip
    assert minted.returncode == 0, minted.stderr
    identity = Auth(key_file=key).verify(minted.stdout.strip())
    assert identity.subject == "ada" and identity.scopes == {"a", "b"}
    assert 590 < identity.expires - identity.claims["iat"] <= 600
    pair = tmp_path / "ed"
    assert eventkit("auth", "keygen", "-a", "EdDSA", "-o", str(pair), env=env).returncode == 0
    signed = eventkit("auth", "token", "-s", "svc", "--key-file", str(pair), env=env)
    public = Auth(key_file=tmp_path / "ed.pub")
    assert public.algorithm == "EdDSA"
    assert public.verify(signed.stdout.strip()).subject == "svc"
    missing = eventkit("auth", "token", "--subject", "x", env=env)
    assert missing.returncode == 1 and "--key-file" in missing.stderr


def test_call_with_and_without_a_token(tmp_path: Path) -> None:
    require_server("127.0.0.1", 4222, "NATS")
    key = "eventkit-cli-test-shared-secret-of-48-bytes-and-more"
    ns = namespace()
    calls = tmp_path / "calls.txt"
    calls.touch()
    env = env_for(ns, NATS, EVENTKIT_AUTH_KEY=key, CALLS=str(calls))
    node = Background([sys.executable, "-m", "tests.auth.node"], env=env)
    try:
        node.wait_for("^ready")
        caller = {k: v for k, v in env_for(ns, NATS).items() if not k.startswith("EVENTKIT_A")}
        caller.pop("EVENTKIT_TOKEN", None)
        request = json.dumps({"order_id": "o-9"})
        refused = eventkit("call", "guarded", "Orders.Place", request, env=caller)
        assert refused.returncode == 1
        assert "error 401" in refused.stderr and "--token" in refused.stderr
        assert calls.read_text() == ""
        token = Auth(key).mint("cli-user", [SCOPE], ttl=60)
        flagged = eventkit("call", "guarded", "Orders.Place", request, "--token", token, env=caller)
        assert flagged.returncode == 0, flagged.stderr
        assert json.loads(flagged.stdout) == {"caller": "cli-user", "order": "o-9"}
        by_env = eventkit("call", "guarded", "Orders.Who", env={**caller, "EVENTKIT_TOKEN": token})
        assert json.loads(by_env.stdout)["caller"] == "cli-user"
        assert all(token not in r.stderr for r in (refused, flagged, by_env))
    finally:
        node.stop()
    assert token not in node.output and key not in node.output
    assert os.path.getsize(calls) > 0
