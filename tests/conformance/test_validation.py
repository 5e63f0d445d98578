"""Bad input is a clear error on every broker, at the call that wrote it."""

from __future__ import annotations

import pytest

from eventkit.brokers import Broker, from_url
from eventkit.wire import ConfigError, InvalidTopic, Message

from .util import Recorder, settle

pytestmark = pytest.mark.anyio

BAD_PATTERNS = ["", "a..b", ".a", "a.", "a.>.b", ">.a", "a.b c", "a.b*", "a.>x", "a/b"]
BAD_TOPICS = [*BAD_PATTERNS, "a.*", "a.>", "*", ">", "a.*.b"]


@pytest.mark.parametrize("pattern", BAD_PATTERNS)
async def test_subscribe_rejects_bad_patterns(broker: Broker, pattern: str) -> None:
    with pytest.raises(InvalidTopic):
        await broker.subscribe(pattern, Recorder())


@pytest.mark.parametrize("topic_name", BAD_TOPICS)
async def test_publish_rejects_bad_topics(broker: Broker, topic_name: str) -> None:
    with pytest.raises(InvalidTopic):
        await broker.publish(Message(topic_name, b"x"))


@pytest.mark.parametrize("bad", ["a.b", "*", ">", "", "a b"])
async def test_bad_queue_and_durable_names(broker: Broker, topic: str, bad: str) -> None:
    with pytest.raises(InvalidTopic):
        await broker.subscribe(f"{topic}.x", Recorder(), queue=bad)
    with pytest.raises(InvalidTopic):
        await broker.subscribe(f"{topic}.x", Recorder(), durable=bad)


async def test_a_rejected_call_loses_nothing(broker: Broker, topic: str) -> None:
    """After bad input the broker carries on: the next good message arrives."""
    got = Recorder()
    await broker.subscribe(f"{topic}.ok", got)
    await settle(broker, broker)
    with pytest.raises(InvalidTopic):
        await broker.publish(Message(f"{topic}..ok", b"x"))
    with pytest.raises(InvalidTopic):
        await broker.subscribe(f"{topic}.>.ok", got)
    await broker.publish(Message(f"{topic}.ok", b"x", {"x-id": "1"}))
    await got.wait_ids(["1"])
    assert got.ids() == ["1"]


def test_unknown_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown broker URL scheme"):
        from_url("carrier-pigeon://127.0.0.1:1")
    with pytest.raises(ConfigError):
        from_url("no-scheme-here")
