"""``nats://``: the NATS adapter (nats-py), with JetStream for ``durable=``.

Importing this package imports nats-py; :func:`eventkit.brokers.from_url` does so only when a
``nats://`` URL is first used. Besides the broker: the embedded ``nats-server`` for local
stacks and tests (:class:`EmbeddedNats`, :class:`EmbeddedNatsCluster`), the NATS service API
that lists eventkit services to NATS tooling, and :class:`SyncReport` (what
``NatsBroker.jetstream_sync`` found of the server's JetStream sync setting).
"""

from ._broker import NatsBroker, NatsSubscription
from ._config import NatsSettings
from ._durability import SyncReport
from ._embedded import EmbeddedNats, EmbeddedNatsCluster, nats_server_executable

__all__ = [
    "EmbeddedNats",
    "EmbeddedNatsCluster",
    "NatsBroker",
    "NatsSettings",
    "NatsSubscription",
    "SyncReport",
    "nats_server_executable",
]
