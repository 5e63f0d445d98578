"""The OpenTelemetry semantic-convention names eventkit's spans and metrics use, in one place.

Messaging spans and metrics follow the messaging conventions (development status): a
``publish {topic}`` PRODUCER span whose context is the message's creation context, and a
``process {subscription}`` CONSUMER span per delivery, parented by (and linked to) that
creation context. RPC spans follow the RPC conventions (release candidate): the span name is
``rpc.method``, fully qualified as ``{service}/{endpoint}``; the deprecated ``rpc.system``
and ``rpc.service`` are written too, for backends still on the older names.
"""

from __future__ import annotations

from urllib.parse import urlsplit

ERROR_TYPE = "error.type"

MESSAGING_SYSTEM = "messaging.system"
DESTINATION = "messaging.destination.name"
DESTINATION_TEMPLATE = "messaging.destination.template"
OPERATION_NAME = "messaging.operation.name"
OPERATION_TYPE = "messaging.operation.type"
MESSAGE_ID = "messaging.message.id"
CONSUMER_GROUP = "messaging.consumer.group.name"
SUBSCRIPTION = "messaging.destination.subscription.name"
CLIENT_ID = "messaging.client.id"
BODY_SIZE = "messaging.message.body.size"
DELIVERY_ATTEMPT = "eventkit.delivery.attempt"

RPC_SYSTEM_NAME = "rpc.system.name"
RPC_SYSTEM = "rpc.system"  # deprecated name, kept for older backends
RPC_SERVICE = "rpc.service"  # deprecated: folded into rpc.method
RPC_METHOD = "rpc.method"
RPC_METHOD_ORIGINAL = "rpc.method_original"
RPC_STATUS = "rpc.status_code"
RPC_SYSTEM_VALUE = "eventkit"
OTHER_METHOD = "_OTHER"

OK_STATUS = "200"

# Metric names (units as the conventions give them).
SENT = "messaging.client.sent.messages"
SEND_DURATION = "messaging.client.operation.duration"
CONSUMED = "messaging.client.consumed.messages"
PROCESS_DURATION = "messaging.process.duration"
IN_FLIGHT = "eventkit.messaging.in_flight"
REDELIVERIES = "eventkit.messaging.redeliveries"
DEAD_LETTERS = "eventkit.messaging.dead_letters"
SERVER_DURATION = "rpc.server.call.duration"
CLIENT_DURATION = "rpc.client.call.duration"
SERVER_IN_FLIGHT = "eventkit.rpc.server.in_flight"
CACHE_HITS = "eventkit.rpc.cache.hits"
CACHE_MISSES = "eventkit.rpc.cache.misses"
BROKER_CONNECTED = "eventkit.broker.connected"

# The conventions' advice for duration histograms, in seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

_SYSTEMS = {
    "nats": "nats",
    "tls": "nats",
    "amqp": "rabbitmq",
    "amqps": "rabbitmq",
    "http": "eventkit_http",
    "https": "eventkit_http",
    "memory": "eventkit_memory",
}


def messaging_system(url: str) -> str:
    """``messaging.system`` for a broker URL: the conventions' well-known value where there
    is one (``rabbitmq``), the server's name (``nats``), or eventkit's own brokers."""
    scheme = urlsplit(url).scheme.lower()
    return _SYSTEMS.get(scheme, scheme or "unknown")
