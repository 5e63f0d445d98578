"""The queues behind a durable subscription: their type, their arguments, and adopting a queue
that already exists with other ones.

Durable subscriptions declare quorum queues by default: a quorum queue is replicated on a
majority of a cluster's nodes and fsyncs a message before confirming it, so an acknowledged
publish survives a broker crash, an OS crash and the loss of a minority of nodes. Classic
queues (``queue_type="classic"``) are lighter on a single node but promise neither.

A durable name's queues were classic before eventkit declared quorum ones, and RabbitMQ
refuses to redeclare a queue with other arguments (``PRECONDITION_FAILED``, which also closes
the channel). :func:`probe` declares on a throwaway channel, so a refusal costs nothing but
that channel, and tells a classic queue (the refusal names ``x-queue-type``, or the queue
accepts the classic arguments eventkit gave it before: RabbitMQ names the first argument
that differs, not always the type) from a quorum one with another delivery limit; the
subscription then adopts the queue as it is with a passive declare on its own, still open,
channel.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

import aiormq.exceptions as amqp_errors
from aio_pika.abc import AbstractRobustConnection

from ...wire import ConfigError

__all__ = [
    "ADOPTED",
    "QUEUE_TYPES",
    "QueueType",
    "dead_letter_queue_arguments",
    "delivery_limit",
    "durable_queue_arguments",
    "probe",
    "queue_type_of",
    "retry_queue_arguments",
    "warn_adopted",
]

log = logging.getLogger("eventkit.broker.rabbitmq")

QueueType = Literal["quorum", "classic"]
QUEUE_TYPES: tuple[QueueType, ...] = ("quorum", "classic")

QUEUE_TYPE_ARG = "x-queue-type"
DELIVERY_LIMIT_ARG = "x-delivery-limit"
ADOPTED = (QUEUE_TYPE_ARG, DELIVERY_LIMIT_ARG)
"""Arguments in which an existing queue may differ from what eventkit asks, and is used as it
is: its type (a classic queue from before quorum queues) and its delivery limit (declared
under another ``max_attempts``)."""

_INEQUIVALENT = re.compile(r"inequivalent arg '([^']+)'")


def queue_type_of(value: object) -> QueueType:
    """``value`` as a queue type, or a :class:`ConfigError` saying what is allowed."""
    for allowed in QUEUE_TYPES:
        if value == allowed:
            return allowed
    raise ConfigError(f"queue_type must be 'quorum' or 'classic', got {value!r}")


def delivery_limit(max_attempts: int) -> int:
    """The quorum queue's ``x-delivery-limit`` for a policy's ``max_attempts``.

    eventkit counts attempts and dead-letters by itself, because its dead letter carries the
    reason, topic and attempts in headers, and a retry waits out the backoff in a retry queue
    (a quorum queue cannot delay a requeue). Each retry is a new copy, so RabbitMQ's count
    covers only deliveries of one copy that were never settled: a handler that crashed its
    process, a lost connection, a stop. RabbitMQ delivers a copy ``limit + 1`` times before it
    dead-letters it, so ``max_attempts`` lets eventkit's last attempt always run and write
    its reasoned dead letter first: the broker's limit is only a safety net against a message
    that kills every consumer it reaches.
    """
    return max_attempts


def durable_queue_arguments(
    queue_type: QueueType, exchange: str, dead_topic: str, max_attempts: int
) -> dict[str, Any]:
    """The durable queue's arguments: dead letters go to the durable name's dead-letter topic."""
    arguments: dict[str, Any] = {
        "x-dead-letter-exchange": exchange,
        "x-dead-letter-routing-key": dead_topic,
    }
    if queue_type == "quorum":
        arguments |= _quorum_arguments()
        arguments[DELIVERY_LIMIT_ARG] = delivery_limit(max_attempts)
    return arguments


def retry_queue_arguments(queue_type: QueueType, ms: int, home: str) -> dict[str, Any]:
    """A retry queue's arguments: its messages go back to ``home`` after ``ms``."""
    arguments: dict[str, Any] = {
        "x-message-ttl": ms,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": home,
    }
    if queue_type == "quorum":
        arguments |= _quorum_arguments()
    return arguments


def dead_letter_queue_arguments(queue_type: QueueType) -> dict[str, Any]:
    """The dead-letter queue's arguments."""
    return {QUEUE_TYPE_ARG: "quorum"} if queue_type == "quorum" else {}


def _quorum_arguments() -> dict[str, Any]:
    # at-least-once dead-lettering keeps a message in its queue until the dead-letter target
    # has confirmed it (the default drops it if a node fails in between); RabbitMQ requires
    # reject-publish overflow for it.
    return {
        QUEUE_TYPE_ARG: "quorum",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


async def probe(
    connection: AbstractRobustConnection,
    name: str,
    arguments: dict[str, Any],
    classic: dict[str, Any],
) -> str | None:
    """Declare the durable queue ``name`` with ``arguments`` on a channel of its own.

    Returns None when the queue now exists as asked, or the argument (one of :data:`ADOPTED`)
    in which an existing queue differs: ``x-queue-type`` for a classic queue with the
    ``classic`` arguments. Any other refusal is raised.
    """
    try:
        await _declare(connection, name, arguments)
    except amqp_errors.ChannelPreconditionFailed as exc:
        found = _INEQUIVALENT.search(str(exc))
        differs = found.group(1) if found is not None else None
        if differs in ADOPTED:
            return differs
        try:
            await _declare(connection, name, classic)
        except amqp_errors.ChannelPreconditionFailed:
            raise exc from None
        return QUEUE_TYPE_ARG
    return None


async def _declare(
    connection: AbstractRobustConnection, name: str, arguments: dict[str, Any]
) -> None:
    """Declare a durable queue on a throwaway channel (a refusal closes only that one)."""
    transport = connection.transport
    if transport is None:
        raise ConnectionError("the connection to RabbitMQ is being restored")
    channel = await transport.connection.channel()
    try:
        await channel.queue_declare(name, durable=True, arguments=arguments)
    finally:
        if not channel.is_closed:
            await channel.close()


def warn_adopted(durable: str, adopted: dict[str, str]) -> None:
    """One warning for a durable name whose existing queues eventkit uses as they are."""
    names = ", ".join(sorted(adopted))
    if DELIVERY_LIMIT_ARG in adopted.values() and QUEUE_TYPE_ARG not in adopted.values():
        log.warning(
            "durable %r keeps the delivery limit its quorum queue %s was declared with (another "
            "max_attempts); eventkit's own max_attempts applies as set. To change the queue's: "
            "drain it, delete it and subscribe again (docs/rabbitmq.md#durability)",
            durable,
            names,
        )
        return
    log.warning(
        "durable %r uses the existing classic queue(s) %s instead of quorum queues, which "
        "survive node loss and fsync before confirming; to move: drain, delete and subscribe "
        "again, or pass queue_type='classic' to keep classic queues "
        "(docs/rabbitmq.md#migrating-durable-queues-to-quorum)",
        durable,
        names,
    )
