"""The shop in one process on memory:// (the multi-process run is tests/cli/test_up.py)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import anyio.to_thread
import pytest

import eventkit.testing
from examples.shop import cart, catalog, checkout, emailer, frontend, payment, shipping
from tests.servers import free_port


def _post(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.anyio
async def test_an_order_from_the_cart_reaches_payment_shipping_and_email(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    monkeypatch.setenv("SHOP_HTTP_PORT", str(port))
    base = f"http://127.0.0.1:{port}"
    services = [m.svc for m in (catalog, cart, checkout, payment, shipping, emailer, frontend)]
    async with eventkit.testing.run(*services) as kit:
        charged = await kit.record("shop.payment.charged")
        shipped = await kit.record("shop.shipment.created")
        emailed = await kit.record("shop.email.sent")
        status, _ = await anyio.to_thread.run_sync(
            _post, f"{base}/cart/ada", {"product_id": "tshirt", "quantity": 2}
        )
        assert status == 200
        status, order = await anyio.to_thread.run_sync(
            _post, f"{base}/orders", {"user": "ada", "email": "ada@example.com"}
        )
        assert status == 201, order
        await kit.join()
        status, missing = await anyio.to_thread.run_sync(
            _post,
            f"{base}/orders",
            {"user": "bo", "email": "bo@example.com", "items": [{"product_id": "nope"}]},
        )
    assert order["total_cents"] == 5000
    oid = order["order_id"]
    assert [d["order_id"] for d in charged.data] == [oid]
    assert [d["order_id"] for d in shipped.data] == [oid]
    assert [d["to"] for d in emailed.data] == ["ada@example.com"]
    assert cart.carts.get("ada") is None
    assert status == 404 and "no product 'nope'" in missing["detail"]
