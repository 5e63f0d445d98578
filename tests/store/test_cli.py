"""``eventkit store get|put|delete|ls|watch`` against a running NATS (JetStream KV), and
against a SQLite store where the broker holds none, as a user runs it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventkit.brokers.nats import EmbeddedNats
from tests.cli.util import EVENTKIT, Background, env_for, eventkit, namespace
from tests.servers import free_port


@pytest.fixture(scope="module")
def nats_url() -> Iterator[str]:
    with EmbeddedNats() as server:
        yield server.url


def test_put_get_ls_delete_and_watch_on_nats(nats_url: str) -> None:
    env = env_for(namespace(), broker=nats_url)
    watcher = Background([*EVENTKIT, "store", "watch", "carts", "u.", "--count", "3"], env=env)
    try:
        watcher.wait_for("watching carts/u.")
        put = eventkit("store", "put", "carts", "u.ada", '{"items": ["mug"]}', env=env)
        assert put.returncode == 0, put.stderr
        revision = int(put.stdout)
        assert eventkit("store", "put", "carts", "other", "1", env=env).returncode == 0
        stale = eventkit(
            "store", "put", "carts", "u.ada", "{}", "--revision", str(revision + 5), env=env
        )
        assert stale.returncode == 1 and "another writer changed it" in stale.stderr
        assert (
            eventkit(
                "store",
                "put",
                "carts",
                "u.ada",
                '{"items": []}',
                "--revision",
                str(revision),
                env=env,
            ).returncode
            == 0
        )
        got = eventkit("store", "get", "carts", "u.ada", "--format", "json", env=env)
        assert json.loads(got.stdout)["value"] == {"items": []}
        listed = eventkit("store", "ls", "carts", env=env)
        assert listed.stdout.split() == ["other", "u.ada"]
        assert eventkit("store", "delete", "carts", "u.ada", env=env).returncode == 0
        absent = eventkit("store", "get", "carts", "u.ada", env=env)
        assert absent.returncode == 1 and "absent" in absent.stderr
        assert watcher.stop(timeout=30) == 0
        changes = [line.split(" ", 3) for line in watcher.lines if line[:1].isdigit()]
        assert [c[1:3] for c in changes] == [
            ["put", "u.ada"],
            ["put", "u.ada"],
            ["delete", "u.ada"],
        ]
        assert changes[0][0] == str(revision)
    finally:
        watcher.stop()


def test_sqlite_store_where_the_broker_holds_none(tmp_path: Path) -> None:
    broker = f"http://127.0.0.1:{free_port()}"
    env = env_for(namespace(), broker=broker)
    refused = eventkit("store", "ls", "carts", env=env)
    assert refused.returncode == 1 and "EVENTKIT_STORE" in refused.stderr
    store = f"sqlite:///{tmp_path}/s.db"
    assert (
        eventkit(
            "store", "put", "carts", "k", "--raw", "text", "--store", store, env=env
        ).returncode
        == 0
    )
    got = eventkit("store", "get", "carts", "k", env={**env, "EVENTKIT_STORE": store})
    assert got.stdout.strip() == "text"
    bad = eventkit("store", "put", "carts", "k", "not json", "--store", store, env=env)
    assert bad.returncode == 1 and "--raw" in bad.stderr
