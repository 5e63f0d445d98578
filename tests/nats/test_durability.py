"""Durability settings: servers that fsync before acking, the check of a server's settings,
and the replicas streams and buckets get."""

from __future__ import annotations

import http.server
import json
import logging
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from eventkit.brokers.nats import EmbeddedNats, NatsBroker
from eventkit.brokers.nats._embedded import free_port, nats_server_executable
from eventkit.wire import ConfigError, Message
from tests.conformance.util import Recorder, wait_until

CONFIGS = Path(__file__).parents[2] / "brokers" / "nats"
LOGGER = "eventkit.broker.nats"
UNSYNCED = "acknowledges JetStream writes before syncing them"


def _varz(monitor: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{monitor}/varz", timeout=5) as resp:
        varz: dict[str, Any] = json.loads(resp.read())
    return varz


def _sync_config(monitor: str) -> dict[str, Any]:
    config: dict[str, Any] = _varz(monitor)["jetstream"]["config"]
    return config


def test_the_embedded_server_syncs_each_write_before_its_ack() -> None:
    with EmbeddedNats() as server:
        assert _sync_config(server.monitor_urls[0]).get("sync_always") is True
    with EmbeddedNats(sync_always=False) as fast:
        assert not _sync_config(fast.monitor_urls[0]).get("sync_always")


@contextmanager
def _shipped(names: list[str]) -> Iterator[list[str]]:
    """Run the shipped configs ``names`` on free loopback ports and private stores; yields
    each node's monitoring URL. Only ports and store paths are rewritten."""
    ports = {p: free_port() for p in (4222, 4223, 4224, 6222, 6223, 6224, 8222, 8223, 8224)}
    workdir = Path(tempfile.mkdtemp(prefix="eventkit-shipped-"))
    procs: list[subprocess.Popen[bytes]] = []
    monitors = []
    try:
        for name in names:
            text = (CONFIGS / name).read_text()
            text = re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{ports[int(m[1])]}", text)
            text = re.sub(r'store_dir: "[^"]*"', f'store_dir: "{workdir / name}.store"', text)
            http = re.search(r"^http: (\S+)", text, re.M)
            assert http is not None, f"{name} has no http monitoring port"
            monitors.append(f"http://{http[1]}")
            conf = workdir / name
            conf.write_text(text)
            with (workdir / f"{name}.log").open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [nats_server_executable(), "-c", str(conf)],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        for monitor in monitors:
            _wait_healthy(monitor)
        yield monitors
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_healthy(monitor: str) -> None:
    for _ in range(400):
        try:
            with urllib.request.urlopen(f"{monitor}/healthz", timeout=1) as resp:
                if json.loads(resp.read()).get("status") == "ok":
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"the server at {monitor} did not become healthy")


def test_the_shipped_single_config_syncs_each_write() -> None:
    with _shipped(["single.conf"]) as (monitor,):
        assert _sync_config(monitor).get("sync_always") is True


def test_the_shipped_cluster_configs_sync_each_write_and_form_a_cluster() -> None:
    names = ["cluster-n1.conf", "cluster-n2.conf", "cluster-n3.conf"]
    with _shipped(names) as monitors:
        for monitor in monitors:
            assert _sync_config(monitor).get("sync_always") is True
            assert _varz(monitor)["cluster"]["name"] == "eventkit"


# -- the check at start -------------------------------------------------------------------


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and r.levelno == logging.WARNING and UNSYNCED in r.getMessage()
    ]


async def _durable_traffic(broker: NatsBroker) -> None:
    """A durable subscriber and a few stored publishes: every place the check can start."""
    p = f"d{uuid.uuid4().hex[:8]}"
    got = Recorder()
    await broker.subscribe(f"{p}.ev", got, durable=f"{p}-d")
    for i in range(5):
        await broker.publish(Message(f"{p}.ev", b"{}", {"x-id": str(i)}))
    await got.wait_ids([str(i) for i in range(5)], timeout=10)


@pytest.mark.anyio
async def test_a_server_that_acks_before_syncing_gets_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    async with EmbeddedNats(sync_always=False) as server:
        monitor = server.monitor_urls[0]
        async with NatsBroker(server.url, monitor=monitor) as broker:
            await _durable_traffic(broker)
            await _durable_traffic(broker)
            assert broker.jetstream_sync is not None
            assert broker.jetstream_sync.synced is False
            assert broker.jetstream_sync.interval == 120  # the NATS default: two minutes
        (warning,) = _warnings(caplog)
        assert "sync_interval: always" in warning and "docs/durability.md" in warning


@pytest.mark.anyio
async def test_a_publisher_alone_checks_too(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    async with EmbeddedNats(sync_always=False) as server:
        p = f"d{uuid.uuid4().hex[:8]}"
        monitor = server.monitor_urls[0]
        async with NatsBroker(server.url) as subscriber:
            await subscriber.subscribe(f"{p}.ev", Recorder(), durable=f"{p}-d")
            caplog.clear()  # the subscriber's own warning
            async with NatsBroker(server.url, monitor=monitor) as publisher:
                for i in range(3):
                    await publisher.publish(Message(f"{p}.ev", b"{}", {"x-id": str(i)}))
                await wait_until(lambda: publisher.jetstream_sync is not None, what="the check")
        assert len(_warnings(caplog)) == 1


@pytest.mark.anyio
async def test_a_server_that_syncs_each_write_gets_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    async with EmbeddedNats() as server:
        broker = NatsBroker(server.url, monitor=server.monitor_urls[0])
        async with broker:
            await _durable_traffic(broker)
            assert broker.jetstream_sync is not None and broker.jetstream_sync.synced is True
    assert _warnings(caplog) == []


@pytest.mark.anyio
async def test_another_servers_monitor_is_not_believed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    async with EmbeddedNats(sync_always=False) as server, EmbeddedNats() as other:
        broker = NatsBroker(server.url, monitor=other.monitor_urls[0])
        async with broker:
            await _durable_traffic(broker)
        report = broker.jetstream_sync
        assert report is not None and report.synced is None
        assert "another server" in report.reason
    assert _warnings(caplog) == []
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("could not tell whether NATS" in m for m in said)


@pytest.mark.anyio
async def test_of_several_monitors_the_connected_servers_is_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    async with EmbeddedNats(sync_always=False) as server, EmbeddedNats() as other:
        monitors = f"{other.monitor_urls[0]},{server.monitor_urls[0]}"
        broker = NatsBroker(f"{server.url}?monitor={monitors}")
        async with broker:
            await _durable_traffic(broker)
        assert broker.jetstream_sync is not None and broker.jetstream_sync.synced is False
    assert len(_warnings(caplog)) == 1


@pytest.mark.anyio
async def test_no_monitoring_endpoint_is_said_once_and_off_checks_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    closed = f"http://127.0.0.1:{free_port()}"
    async with EmbeddedNats(sync_always=False) as server:
        async with NatsBroker(server.url, monitor=closed) as broker:
            await _durable_traffic(broker)
            assert broker.jetstream_sync is not None and broker.jetstream_sync.synced is None
        said = [m for m in caplog.messages if "could not tell whether NATS" in m]
        assert len(said) == 1 and "no monitoring endpoint answered" in said[0]
        caplog.clear()
        async with NatsBroker(f"{server.url}?monitor=off") as quiet:
            await _durable_traffic(quiet)
            assert quiet.jetstream_sync is None
        assert not [m for m in caplog.messages if "JetStream writes" in m]


# -- replicas, prefetch, monitor: settings --------------------------------------------------


def test_replicas_prefetch_and_monitor_come_from_the_url_or_keywords() -> None:
    broker = NatsBroker("nats://h:4222?replicas=3&prefetch=100&monitor=http://h:8222")
    assert broker.settings.replicas == 3
    assert broker.settings.prefetch == 100
    assert broker.settings.monitor == "http://h:8222"
    assert NatsBroker("nats://h:4222", replicas=5).settings.replicas == 5
    assert NatsBroker("nats://h:4222").settings.replicas is None  # by the cluster's size


@pytest.mark.parametrize(
    ("url", "kw", "match"),
    [
        ("nats://h:4222?replicas=0", {}, "replicas must be between 1 and 5"),
        ("nats://h:4222?replicas=three", {}, "replicas must be a whole number"),
        ("nats://h:4222", {"replicas": 6}, "replicas must be between 1 and 5"),
        ("nats://h:4222?prefetch=0", {}, "prefetch must be at least 1"),
        ("nats://h:4222?monitor=h:8222", {}, "monitor must be the server's http"),
        ("nats://h:4222", {"monitor": "http://a:8222,b:8222"}, "monitor must be the server's"),
    ],
)
def test_bad_durability_settings_are_clear_errors(url: str, kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        NatsBroker(url, **kw)


@pytest.mark.anyio
async def test_a_single_server_gets_one_replica(nats_server: EmbeddedNats) -> None:
    p = f"d{uuid.uuid4().hex[:8]}"
    async with NatsBroker(nats_server.url) as broker:
        assert broker.replicas == 1
        sub = await broker.subscribe(f"{p}.ev", Recorder(), durable=f"{p}-d")
        nc = broker._client()
        info = json.loads((await nc.request(f"$JS.API.STREAM.INFO.eventkit-{p}", b"")).data)
        assert info["config"]["num_replicas"] == 1
        await sub.stop()
        kv = await broker.key_value(f"kv-{p}")
        assert (await kv.status()).stream_info.config.num_replicas == 1


@pytest.mark.anyio
async def test_replicas_asked_of_a_single_server_are_a_clear_error(
    nats_server: EmbeddedNats,
) -> None:
    p = f"d{uuid.uuid4().hex[:8]}"
    async with NatsBroker(nats_server.url, replicas=3) as broker:
        with pytest.raises(ConfigError, match="replicas=3 needs a NATS cluster"):
            await broker.subscribe(f"{p}.ev", Recorder(), durable=f"{p}-d")
        with pytest.raises(ConfigError, match="replicas=3 needs a NATS cluster"):
            await broker.key_value(f"kv-{p}")


@contextmanager
def _slow_monitor(real: str, delay: float) -> Iterator[str]:
    """A monitoring endpoint that answers as ``real`` does, ``delay`` seconds late."""

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(delay)
            body = json.dumps(_varz(real)).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.anyio
async def test_closing_while_a_publishers_check_runs_is_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    async with EmbeddedNats(sync_always=False) as server:
        p = f"d{uuid.uuid4().hex[:8]}"
        async with NatsBroker(server.url, monitor="off") as subscriber:
            await subscriber.subscribe(f"{p}.ev", Recorder(), durable=f"{p}-d")
            with _slow_monitor(server.monitor_urls[0], 0.5) as slow:
                publisher = NatsBroker(server.url, monitor=slow)
                async with publisher:
                    await publisher.publish(Message(f"{p}.ev", b"{}", {"x-id": "1"}))
                    # closed while the check still waits for the monitoring endpoint
    assert publisher.closed
    assert len(_warnings(caplog)) <= 1
