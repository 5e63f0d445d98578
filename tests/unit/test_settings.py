"""Settings: precedence (flags > environment > code > defaults) and clear errors."""

from __future__ import annotations

import pytest

from eventkit import ConfigError, Settings


def test_defaults() -> None:
    s = Settings.load(environ={})
    assert s.broker == "nats://127.0.0.1:4222" and s.namespace == "eventkit"
    assert s.drain_timeout == 10.0


def test_the_library_and_the_command_share_one_default_broker() -> None:
    from eventkit.cli.connection import DEFAULT_BROKER as COMMAND_DEFAULT
    from eventkit.service import DEFAULT_BROKER

    assert Settings().broker == DEFAULT_BROKER == COMMAND_DEFAULT == "nats://127.0.0.1:4222"


def test_precedence() -> None:
    env = {"EVENTKIT_BROKER": "nats://127.0.0.1:4222", "EVENTKIT_DRAIN_TIMEOUT": "3"}
    s = Settings.load({"broker": "memory://", "namespace": "ns"}, environ=env)
    assert s.broker == "nats://127.0.0.1:4222" and s.drain_timeout == 3.0 and s.namespace == "ns"
    s = Settings.load({"broker": "memory://"}, environ=env, argv=["--broker", "memory://x"])
    assert s.broker == "memory://x"


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"EVENTKIT_BROKER": "localhost:4222"}, "not a URL"),
        ({"EVENTKIT_DRAIN_TIMEOUT": "soon"}, "EVENTKIT_DRAIN_TIMEOUT"),
        ({"EVENTKIT_DRAIN_TIMEOUT": "-1"}, "positive"),
        ({"EVENTKIT_NAMESPACE": "a.b"}, "namespace"),
        ({"EVENTKIT_HEARTBEAT": "60"}, "shorter than registry_ttl"),
        ({"EVENTKIT_UVLOOP": "maybe"}, "EVENTKIT_UVLOOP"),
        ({"EVENTKIT_LOG_LEVEL": "loud"}, "log_level"),
    ],
)
def test_bad_settings_say_what_to_change(env: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Settings.load(environ=env)
