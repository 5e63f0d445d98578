"""The embedded server: sync and async lifecycles, loopback only, clear failures."""

from __future__ import annotations

import socket

import pytest

from eventkit.brokers.nats import _embedded as embedded
from eventkit.brokers.nats._embedded import EmbeddedNats, nats_server_executable
from eventkit.wire import ConnectionLost
from tests.servers import port_open


def test_sync_start_and_stop_clean_up() -> None:
    server = EmbeddedNats().start()
    try:
        assert server.url == f"nats://127.0.0.1:{server.port}"
        assert port_open("127.0.0.1", server.port)
        workdir = server._workdir
        assert (workdir / "nats.conf").read_text().count("127.0.0.1") >= 2  # loopback only
    finally:
        server.stop()
    server.stop()  # idempotent
    assert not port_open("127.0.0.1", server.port)
    assert not workdir.exists()


def test_restart_keeps_the_port() -> None:
    with EmbeddedNats() as server:
        port = server.port
        server.restart()
        assert server.port == port
        assert port_open("127.0.0.1", port)


def test_a_taken_port_fails_with_the_servers_log() -> None:
    with EmbeddedNats() as first:
        second = EmbeddedNats(port=first.port)
        with pytest.raises(ConnectionLost, match="exited at start"):
            second.start()
        second.stop()


def test_the_executable_comes_from_the_wheel() -> None:
    assert nats_server_executable().endswith("nats-server")


def test_free_ports_come_from_below_the_ephemeral_range() -> None:
    """A port chosen before listening cannot be taken by a process binding port 0."""
    start = embedded._ephemeral_start()
    for _ in range(20):
        port = embedded.free_port()
        assert 1024 <= port < start
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
