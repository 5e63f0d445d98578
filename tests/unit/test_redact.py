"""The one redaction of secrets, and the typed CloudEvents attribute checks (pure)."""

from __future__ import annotations

import pytest

from eventkit.brokers.http._config import parse_settings as http_settings
from eventkit.brokers.nats._config import parse_settings as nats_settings
from eventkit.service import Settings
from eventkit.wire import (
    ConfigError,
    InvalidEvent,
    Message,
    decode_event,
    is_rfc3339,
    is_uri,
    is_uri_reference,
    redact,
)

SEED = "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("nats://u:pw@a:4222,b:4222", "nats://u:***@a:4222,b:4222"),
        ("nats://tok@h:4222", "nats://***@h:4222"),
        (
            "amqp://guest:s3c@127.0.0.1:5672/vh?heartbeat=5",
            "amqp://guest:***@127.0.0.1:5672/vh?heartbeat=5",
        ),
        ("http://h:0?token=s3c&seeds=a:1", "http://h:0?token=***&seeds=a:1"),
        ("https://x/y?Password=zz#frag", "https://x/y?Password=***#frag"),
        ("failed: nats://u:pw@h:1 refused", "failed: nats://u:***@h:1 refused"),
        (f"seed {SEED} here", "seed *** here"),
        ("memory://", "memory://"),
        ("no url at all", "no url at all"),
    ],
)
def test_redact_text(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_redact_settings() -> None:
    shown = redact({"password": "x", "url": "amqp://a:b@c", "Api-Key": "k", "name": "n", "n": 1})
    assert shown == {
        "password": "***",
        "url": "amqp://a:***@c",
        "Api-Key": "***",
        "name": "n",
        "n": 1,
    }


def test_reprs_and_errors_hide_secrets() -> None:
    assert "pw-1" not in repr(nats_settings("nats://u:pw-1@127.0.0.1:4222"))
    assert "tok-1" not in repr(nats_settings("nats://tok-1@127.0.0.1:4222"))
    assert "s3c" not in repr(http_settings("http://127.0.0.1:0?token=s3c", {}))
    assert "pw-1" not in repr(Settings(broker="amqp://u:pw-1@h/"))
    with pytest.raises(ConfigError) as bad:
        nats_settings("nats://u:pw-1@127.0.0.1:4222/path")
    assert "pw-1" not in str(bad.value)
    with pytest.raises(ConfigError) as bad:
        Settings(broker="u:pw-1@host")  # the scheme forgotten: the password still hidden
    assert "pw-1" not in str(bad.value) and "u:***@host" in str(bad.value)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("2024-05-01T12:00:00.123Z", True),
        ("2024-02-29T23:59:60+01:00", True),
        ("2023-02-29T00:00:00Z", False),
        ("2024-05-01 12:00:00Z", False),
        ("2024-05-01T12:00:00", False),
        ("2024-13-01T12:00:00Z", False),
        ("yesterday", False),
    ],
)
def test_rfc3339(value: str, valid: bool) -> None:
    assert is_rfc3339(value) is valid


@pytest.mark.parametrize(
    ("value", "reference", "uri"),
    [
        ("/services/a/b", True, False),
        ("https://example.com/x?y#z", True, True),
        ("urn:uuid:123", True, True),
        ("1abc:foo", False, False),
        ("a b", False, False),
        ("http://[::1]:80/", True, True),
        ("%zz", False, False),
    ],
)
def test_uris(value: str, reference: bool, uri: bool) -> None:
    assert is_uri_reference(value) is reference
    assert is_uri(value) is uri


BASE = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        ({**BASE, "ce-time": "not a time"}, b"{}", "RFC 3339"),
        ({**BASE, "ce-source": "a b"}, b"{}", "URI-reference"),
        ({**BASE, "ce-dataschema": "relative/path"}, b"{}", "absolute URI"),
        ({**BASE, "ce-bad_name": "x"}, b"{}", "1-20 lower-case"),
        (
            {"content-type": "application/cloudevents+json"},
            b'{"specversion":"1.0","id":"1","source":"/s","type":"t","ext":{"a":1}}',
            "extension values",
        ),
        (
            {"content-type": "application/cloudevents+json"},
            b'{"specversion":"1.0","id":"1","source":"/s","type":"t","ext":1.5}',
            "extension values",
        ),
        (
            {"content-type": "application/cloudevents+json"},
            b'{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"2024","data":1}',
            "RFC 3339",
        ),
    ],
)
def test_invalid_attributes_are_invalid_events(
    headers: dict[str, str], body: bytes, reason: str
) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        decode_event(Message("a.b", body, headers))


def test_valid_attributes_pass() -> None:
    headers = {**BASE, "ce-time": "2024-05-01T12:00:00Z", "ce-dataschema": "urn:x", "ce-ext": "1"}
    event = decode_event(Message("a.b", b"{}", headers))
    assert event.extensions == {"ext": "1"}
    body = b'{"specversion":"1.0","id":"1","source":"urn:s","type":"t","ext":7,"flag":true}'
    event = decode_event(Message("a.b", body, {"content-type": "application/cloudevents+json"}))
    assert event.extensions == {"ext": 7, "flag": True}
