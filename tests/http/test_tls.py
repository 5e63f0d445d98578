"""https:// nodes: TLS between peers, with a CA that the test makes (openssl CLI)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from eventkit.brokers.http import HttpBroker
from tests.conformance.util import Recorder, numbered, settle
from tests.servers import require_tool

pytestmark = pytest.mark.anyio


def _self_signed(tmp: Path) -> tuple[str, str]:
    require_tool("openssl", "to make the test's certificates")
    cert, key = tmp / "node.pem", tmp / "node.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


async def test_https_nodes_deliver_over_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    tls = {"tls_cert": cert, "tls_key": key, "tls_ca": cert, "token": "s3cret"}
    async with HttpBroker("https://127.0.0.1:0", **tls) as first:
        url = f"https://127.0.0.1:0?seeds={first.address}"
        async with HttpBroker(url, **tls) as second:
            got = Recorder()
            await first.subscribe("tls.orders", got)
            await settle(second, first)
            for message in numbered("tls.orders", 10):
                await second.publish(message)
            await got.wait_ids(str(i) for i in range(10))
            assert second.node_id in {p.id for p in first.membership.peers()}
