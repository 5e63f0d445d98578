"""Broker URLs in messages: user info and secret query values never shown, the rest kept."""

from __future__ import annotations

import pytest

from eventkit.wire import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("amqp://guest:s3cret@127.0.0.1:5672/", "amqp://***@127.0.0.1:5672/"),
        ("nats://tok3n@h1:4222,h2:4222", "nats://***@h1:4222,h2:4222"),
        ("amqp://u:p@h/v?heartbeat=5&password=x", "amqp://***@h/v?heartbeat=5&password=***"),
        ("http://127.0.0.1:8901?seeds=a:1&token=abc", "http://127.0.0.1:8901?seeds=a:1&token=***"),
        ("memory://", "memory://"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
