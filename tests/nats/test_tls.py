"""TLS to NATS with a client certificate (mutual TLS), against an embedded server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from eventkit import ConnectionLost
from eventkit.brokers.nats import NatsBroker
from eventkit.brokers.nats._embedded import EmbeddedNats
from eventkit.wire import Message
from tests.conformance.util import Recorder, settle
from tests.servers import require_tool

pytestmark = pytest.mark.anyio


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _signed(tmp: Path, ca: Path, ca_key: Path, name: str, extension: str) -> tuple[Path, Path]:
    key, csr, cert, ext = (tmp / f"{name}.{s}" for s in ("key", "csr", "pem", "ext"))
    ext.write_text(extension + "\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
             "-subj", f"/CN={name}")  # fmt: skip
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-out", str(cert), "-days", "1", "-extfile", str(ext))  # fmt: skip
    return cert, key


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    require_tool("openssl", "to make the test's certificates")
    ca, ca_key = tmp_path / "ca.pem", tmp_path / "ca.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout",
             str(ca_key), "-out", str(ca), "-subj", "/CN=eventkit-test-ca")  # fmt: skip
    server, server_key = _signed(
        tmp_path, ca, ca_key, "server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"
    )
    client, client_key = _signed(tmp_path, ca, ca_key, "client", "extendedKeyUsage=clientAuth")
    return {"ca": ca, "server": server, "server_key": server_key, "client": client,
            "client_key": client_key}  # fmt: skip


async def test_mutual_tls_with_a_client_certificate(pki: dict[str, Path]) -> None:
    config = (
        f'tls {{\n  cert_file: "{pki["server"]}"\n  key_file: "{pki["server_key"]}"\n'
        f'  ca_file: "{pki["ca"]}"\n  verify: true\n}}\n'
    )
    async with EmbeddedNats(extra_config=config) as server:
        url = server.url.replace("nats://", "tls://")
        tls = {"tls_ca": str(pki["ca"]), "tls_cert": str(pki["client"]),
               "tls_key": str(pki["client_key"])}  # fmt: skip
        async with NatsBroker(url, **tls) as broker:
            got = Recorder()
            await broker.subscribe("tls.x", got)
            await settle(broker, broker)
            await broker.publish(Message("tls.x", b"secret", {"x-id": "1"}))
            await got.wait_ids(["1"])
            assert got.messages[0].body == b"secret"
        without_cert = NatsBroker(url, tls_ca=str(pki["ca"]), connect_timeout=1.0)
        with pytest.raises(ConnectionLost):
            await without_cert.connect()
