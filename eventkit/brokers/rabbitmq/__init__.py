"""``amqp://``: the RabbitMQ adapter (aio-pika): a topic exchange, queue groups as shared
queues, durable subscriptions on durable queues with publisher confirms and dead-lettering.

Importing this package imports aio-pika; :func:`eventkit.brokers.from_url` does so only when an
``amqp://`` URL is first used.
"""

from ._broker import DEFAULT_MAX_PAYLOAD, RabbitBroker, RabbitSubscription

__all__ = ["DEFAULT_MAX_PAYLOAD", "RabbitBroker", "RabbitSubscription"]
