"""`eventkit up examples/shop`: the whole shop on an embedded NATS, an order end to end, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.request

from tests.servers import free_port, port_open

from .util import EVENTKIT, Background, env_for, namespace, wait_listed

SHOP = {"frontend", "catalog", "cart", "checkout", "payment", "shipping", "email"}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_runs_the_shop_and_an_order_reaches_every_subscriber() -> None:
    nats_port, http_port = free_port(), free_port()
    broker = f"nats://127.0.0.1:{nats_port}"
    env = env_for(namespace(), broker=broker, SHOP_HTTP_PORT=str(http_port))
    up = Background([*EVENTKIT, "up", "examples/shop", "--embed"], env=env)
    pids: list[int] = []
    try:
        up.wait_for("started an embedded NATS server", timeout=30)
        up.wait_for(r"stack shop is up: 8 process", timeout=30)
        pids = [int(p) for p in re.findall(r"is starting \(pid (\d+)\)", up.output)]
        assert len(pids) == 8
        listed = wait_listed(SHOP, env, timeout=30)
        assert {s["name"]: len(s["nodes"]) for s in listed}["shipping"] == 2

        body = {
            "user": "ada",
            "email": "ada@example.com",
            "items": [{"product_id": "mug", "quantity": 2}],
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{http_port}/orders",
            json.dumps(body).encode(),
            {"content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
            order = json.loads(response.read())
        assert order["total_cents"] == 2400
        oid = order["order_id"]
        up.wait_for(rf"^payment +\| .*charged order {oid}: 2400 cents", timeout=15)
        up.wait_for(rf"^shipping\.[12] +\| .*shipping order {oid}", timeout=15)
        up.wait_for(rf"^email +\| .*emailed ada@example.com: order {oid}", timeout=15)
        shipped = [line for line in up.lines if f"shipping order {oid}" in line]
        assert len(shipped) == 1, "the queue group ships an order once"
    finally:
        code = up.stop(signal.SIGINT, timeout=30)
    assert code == 0, up.output
    for name in [*sorted(SHOP - {"shipping"}), "shipping.1", "shipping.2"]:
        assert re.search(rf"\| {re.escape(name)} is down \(exit status 0\)", up.output), name
    assert not [pid for pid in pids if _alive(pid)]
    assert "embedded NATS server stopped" in up.output
    assert not port_open("127.0.0.1", nats_port)
