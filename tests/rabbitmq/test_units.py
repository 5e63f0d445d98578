"""The pure parts of the RabbitMQ adapter: header binding, binding keys, names, settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pamqp.constants import DOMAIN_REGEX

from eventkit.brokers import from_url
from eventkit.brokers.rabbitmq import RabbitBroker
from eventkit.brokers.rabbitmq._failover import split_hosts
from eventkit.brokers.rabbitmq._headers import (
    ATTEMPT_HEADER,
    TOPIC_HEADER,
    binding_key,
    broker_dead_letter,
    from_amqp,
    queue_name_part,
    to_amqp,
)
from eventkit.brokers.rabbitmq._queues import durable_queue_arguments, retry_queue_arguments
from eventkit.wire import DEAD_LETTER_REASON, DEAD_LETTER_TOPIC, ConfigError, matches, redact

QUEUE_NAME = DOMAIN_REGEX["queue-name"]


@pytest.mark.parametrize(
    ("pattern", "key"),
    [("a.b", "a.b"), ("a.*", "a.*"), ("a.>", "a.*.#"), (">", "*.#"), ("*.b.>", "*.b.*.#")],
)
def test_binding_key(pattern: str, key: str) -> None:
    assert binding_key(pattern) == key


def _amqp_matches(key: str, topic: str) -> bool:
    """RabbitMQ's topic matching (``*`` one word, ``#`` zero or more), as a reference."""

    def go(k: list[str], t: list[str]) -> bool:
        if not k:
            return not t
        if k[0] == "#":
            return any(go(k[1:], t[i:]) for i in range(len(t) + 1))
        if not t:
            return False
        return (k[0] == "*" or k[0] == t[0]) and go(k[1:], t[1:])

    return go(key.split("."), topic.split("."))


@pytest.mark.parametrize("pattern", ["a.>", ">", "a.*.>", "a.b"])
@pytest.mark.parametrize("topic", ["a", "b", "a.b", "a.b.c", "a.x.y.z", "b.a"])
def test_binding_key_matches_like_eventkit(pattern: str, topic: str) -> None:
    assert _amqp_matches(binding_key(pattern), topic) == matches(pattern, topic)


def test_queue_name_part_is_injective_and_amqp_safe() -> None:
    patterns = ["a.*", "a.>", "a.$x", "a.b", "a.@b", "a.*.>", "a.:_-"]
    parts = [queue_name_part(p) for p in patterns]
    assert len(set(parts)) == len(patterns)
    assert all(QUEUE_NAME.fullmatch(p) for p in parts)
    assert queue_name_part("$sys.*.>") == "/sys.+.#"


def test_headers_go_to_the_cloudevents_rabbitmq_binding_and_back() -> None:
    headers = {"ce-id": "1", "ce-type": "t", "content-type": "application/json", "eventkit-x": "y"}
    table, content_type = to_amqp(headers)
    assert content_type == "application/json"
    assert table == {"ce-id": "1", "ce-type": "t", "eventkit-x": "y"}
    assert from_amqp(table, content_type) == headers


def test_from_amqp_accepts_amqp_prefixes_and_hides_internal_headers() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    table = {
        "cloudEvents_id": b"7",
        "cloudEvents:type": "t",
        "CE-Source": "/s",
        "ce-time": when,
        "x-id": "kept",
        "x-death": [{"count": 1}],
        ATTEMPT_HEADER: 3,
        "n": 5,
    }
    assert from_amqp(table, None) == {
        "ce-id": "7",
        "ce-type": "t",
        "ce-source": "/s",
        "ce-time": "2024-01-02T03:04:05Z",
        "x-id": "kept",
        "n": "5",
    }


def test_settings_are_checked_when_written() -> None:
    with pytest.raises(ConfigError, match="amqp"):
        RabbitBroker("nats://127.0.0.1:4222")
    with pytest.raises(ConfigError, match="exchange"):
        RabbitBroker(exchange="a b")
    with pytest.raises(ConfigError, match="prefetch"):
        RabbitBroker(prefetch=0)
    with pytest.raises(ConfigError, match="amqps"):
        RabbitBroker("amqp://h/", tls_ca="/ca.pem")
    with pytest.raises(ConfigError, match="tls_cert"):
        RabbitBroker("amqps://h/", tls_key="/k.pem")


def test_from_url_makes_a_rabbit_broker_with_options() -> None:
    broker = from_url("amqps://u:p@h:5671/v", exchange="shop", max_payload=10)
    assert isinstance(broker, RabbitBroker)
    assert broker.exchange == "shop"
    assert broker.capabilities.max_payload == 10


def test_redact_hides_the_password() -> None:
    assert redact("amqp://u:secret@h:5672/v") == "amqp://u:***@h:5672/v"
    assert redact("amqp://h/") == "amqp://h/"


def test_a_channel_closed_under_a_publish_is_a_connection_lost_while_the_link_is_down() -> None:
    """aiormq raises ChannelInvalidStateError, a RuntimeError, for a publish on a channel a
    restart has just closed (a lost link) and on one the server closed after a refused
    operation (the link is up): the adapter's except clause takes it and tells them apart."""
    import aiormq.exceptions

    from eventkit.brokers.rabbitmq._errors import DRIVER_ERRORS, publish_error
    from eventkit.wire import ConnectionLost, PublishError

    exc = aiormq.exceptions.ChannelInvalidStateError("<Channel: 1> closed")
    assert isinstance(exc, DRIVER_ERRORS)
    lost = publish_error(exc, "a.b", "127.0.0.1:5672", 10.0, link_up=False)
    assert isinstance(lost, ConnectionLost)
    refused = publish_error(exc, "a.b", "127.0.0.1:5672", 10.0, link_up=True)
    assert isinstance(refused, PublishError) and not isinstance(refused, ConnectionLost)


def test_queue_type_defaults_to_quorum_and_is_checked() -> None:
    assert RabbitBroker().queue_type == "quorum"
    assert RabbitBroker(queue_type="classic").queue_type == "classic"
    assert RabbitBroker("amqp://h/?queue_type=classic").queue_type == "classic"
    assert RabbitBroker("amqp://h/?queue_type=classic", queue_type="quorum").queue_type == "quorum"
    with pytest.raises(ConfigError, match="'quorum' or 'classic'"):
        RabbitBroker(queue_type="stream")
    with pytest.raises(ConfigError, match="'quorum' or 'classic'"):
        RabbitBroker("amqp://h/?queue_type=mirrored")


def test_queue_type_leaves_the_url_for_aio_pika_and_the_redacted_settings_alone() -> None:
    url = "amqp://u:secret@h:5672/v?heartbeat=30&queue_type=classic"
    broker = from_url(url)
    assert isinstance(broker, RabbitBroker)
    assert broker._urls == ["amqp://u:secret@h:5672/v?heartbeat=30"]
    assert redact(url) == "amqp://u:***@h:5672/v?heartbeat=30&queue_type=classic"
    assert redact({"url": url, "queue_type": "classic"})["queue_type"] == "classic"


def test_several_hosts_share_credentials_vhost_and_query() -> None:
    assert split_hosts("amqp://u:p@a:1,b:2 , c/v?x=1") == [
        "amqp://u:p@a:1/v?x=1",
        "amqp://u:p@b:2/v?x=1",
        "amqp://u:p@c/v?x=1",
    ]
    assert split_hosts("amqp://h/") == ["amqp://h/"]
    with pytest.raises(ConfigError, match="empty host"):
        RabbitBroker("amqp://u:secret@a:1,,b:2/")
    with pytest.raises(ConfigError) as error:
        RabbitBroker("amqp://u:secret@a:1,/")
    assert "secret" not in str(error.value)


def test_quorum_arguments_map_the_policy() -> None:
    arguments = durable_queue_arguments("quorum", "ex", "eventkit.deadletter.d", 5)
    assert arguments == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "ex",
        "x-dead-letter-routing-key": "eventkit.deadletter.d",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        "x-delivery-limit": 5,
    }
    classic = durable_queue_arguments("classic", "ex", "eventkit.deadletter.d", 5)
    assert classic == {
        "x-dead-letter-exchange": "ex",
        "x-dead-letter-routing-key": "eventkit.deadletter.d",
    }
    assert retry_queue_arguments("quorum", 50, "home")["x-queue-type"] == "quorum"
    assert "x-queue-type" not in retry_queue_arguments("classic", 50, "home")
    assert retry_queue_arguments("classic", 50, "home")["x-message-ttl"] == 50


def test_a_message_rabbitmq_dead_lettered_gets_eventkits_dead_letter_headers() -> None:
    limit = {"reason": "delivery_limit", "queue": "ex.durable.d", "routing-keys": ["a.b"]}
    expired = {"reason": "expired", "queue": "ex.durable.d.retry.50", "routing-keys": ["q"]}
    assert broker_dead_letter({"x-death": [limit, expired]}, {}) == {
        DEAD_LETTER_REASON: "RabbitMQ dead-lettered it from ex.durable.d: delivery_limit",
        DEAD_LETTER_TOPIC: "a.b",
    }
    retried = {"x-death": [limit, expired], TOPIC_HEADER: b"orig.topic"}
    assert broker_dead_letter(retried, {})[DEAD_LETTER_TOPIC] == "orig.topic"
    # a retry back from its retry queue is not a dead letter; eventkit's own keep their reason
    assert broker_dead_letter({"x-death": [expired]}, {}) == {}
    assert broker_dead_letter({"x-death": [limit]}, {DEAD_LETTER_REASON: "mine"}) == {}
    assert broker_dead_letter({"x-death": "junk"}, {}) == {}
