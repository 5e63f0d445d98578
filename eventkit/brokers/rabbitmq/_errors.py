"""aio-pika and aiormq exceptions as eventkit's, in one place.

Every public operation of the RabbitMQ adapter (connect, publish, subscribe, and the confirmed
republish of retries and dead letters) passes what the driver raises through these functions,
so users only ever see eventkit's exception tree; each message says what was being done and
what to check. ``where`` is the broker's URL with its password hidden.
"""

from __future__ import annotations

import ssl

import aiormq.exceptions as amqp_errors

from ...wire import (
    BrokerError,
    ConfigError,
    ConnectionLost,
    EventKitError,
    PayloadTooLarge,
    PublishError,
)

__all__ = ["CONNECTION_ERRORS", "DRIVER_ERRORS", "START_HINT", "connect_error", "publish_error"]
__all__ += ["translate"]

CONNECTION_ERRORS = (
    amqp_errors.AMQPConnectionError,
    amqp_errors.ChannelInvalidStateError,
    ConnectionError,
    OSError,
)
# A channel the server closed (e.g. a refused publish) is ChannelInvalidStateError, a
# RuntimeError, until the robust channel reopens.
DRIVER_ERRORS = (
    amqp_errors.AMQPError,
    amqp_errors.ChannelInvalidStateError,
    ConnectionError,
    OSError,
    TimeoutError,
)
"""Everything the driver (or the socket under it) raises that eventkit translates."""

START_HINT = (
    "start RabbitMQ (`docker compose up -d rabbitmq`, or `rabbitmq-server` / "
    "`systemctl start rabbitmq-server` on this machine) or point the URL at a running one"
)


def connect_error(exc: Exception, where: str) -> EventKitError:
    """Why connecting to RabbitMQ at ``where`` failed."""
    if isinstance(exc, EventKitError):
        return exc
    if isinstance(exc, amqp_errors.AuthenticationError | amqp_errors.ProbableAuthenticationError):
        return ConnectionLost(
            f"RabbitMQ at {where} refused the login ({exc}): check the user, "
            "password and vhost in the URL"
        )
    if isinstance(exc, amqp_errors.ConnectionNotAllowed):
        return ConnectionLost(f"RabbitMQ at {where} does not let this user into the vhost ({exc})")
    if isinstance(exc, amqp_errors.ProtocolSyntaxError):
        return ConnectionLost(
            f"RabbitMQ at {where} closed the connection while opening it: check that "
            f"the vhost in the URL exists and the user may use it ({exc})"
        )
    if isinstance(exc, ssl.SSLError):
        return ConnectionLost(f"TLS with RabbitMQ at {where} failed: {exc}")
    return ConnectionLost(
        f"cannot reach RabbitMQ at {where} ({type(exc).__name__}: {exc}): " + START_HINT
    )


def publish_error(
    exc: Exception, key: str, where: str, timeout: float, *, link_up: bool = True
) -> EventKitError:
    """Why the message on routing key ``key`` was not (surely) stored.

    ``link_up``: whether the connection was up. A closed channel under a live connection was
    closed by the server after a refused operation (a PublishError); under a connection that
    is down it is the outage itself (a ConnectionLost, which callers retry after reconnect).
    """
    if isinstance(exc, EventKitError):
        return exc
    if isinstance(exc, amqp_errors.DeliveryError):
        return PublishError(
            f"RabbitMQ refused the message on {key!r} (negative confirm): it was not stored"
        )
    if isinstance(exc, TimeoutError):
        return PublishError(
            f"RabbitMQ did not confirm the message on {key!r} within {timeout}s "
            "(it may be blocked by a memory or disk alarm); it may or may not be stored"
        )
    if isinstance(exc, amqp_errors.ChannelPreconditionFailed) and "size" in str(exc):
        return PayloadTooLarge(f"RabbitMQ refused the message on {key!r} as too large ({exc})")
    if isinstance(exc, amqp_errors.ChannelAccessRefused):
        return PublishError(
            f"RabbitMQ refused the message on {key!r}: this user may not publish that routing "
            f"key (topic permissions): {exc}"
        )
    if isinstance(exc, amqp_errors.ChannelInvalidStateError) and not link_up:
        return ConnectionLost(
            f"the connection to RabbitMQ at {where} is down; the message on {key!r} was not "
            "sent: try again once it is back"
        )
    if isinstance(exc, amqp_errors.ChannelInvalidStateError):
        return PublishError(
            f"the channel to RabbitMQ at {where} was closed by the server (after a refused "
            f"operation) and is reopening; the message on {key!r} was not sent: try again"
        )
    if isinstance(exc, amqp_errors.ChannelPreconditionFailed | amqp_errors.ChannelClosed):
        return PublishError(f"RabbitMQ refused the message on {key!r}: {exc}")
    if isinstance(exc, CONNECTION_ERRORS):
        return ConnectionLost(
            f"the connection to RabbitMQ at {where} broke before the message on "
            f"{key!r} was confirmed; it may or may not have been stored ({exc})"
        )
    return PublishError(f"publishing on {key!r} to RabbitMQ at {where} failed: {exc!r}")


def translate(exc: Exception, doing: str, where: str, timeout: float) -> Exception:
    """A driver exception as eventkit's, saying what was being done (others unchanged)."""
    if isinstance(exc, EventKitError):
        return exc
    if isinstance(exc, TimeoutError):
        return ConnectionLost(f"RabbitMQ at {where} did not answer within {timeout}s while {doing}")
    if _not_open(exc):
        return ConnectionLost(
            f"RabbitMQ at {where} is not connected now ({exc}) while {doing}; the connection "
            "is being restored: " + START_HINT
        )
    if isinstance(exc, amqp_errors.ChannelPreconditionFailed):
        return ConfigError(
            f"RabbitMQ refused {doing}: {exc}. A queue or exchange of that name exists with "
            "other settings; delete it (rabbitmqctl delete_queue NAME) or pick another name"
        )
    if isinstance(exc, amqp_errors.ChannelAccessRefused):
        return BrokerError(f"RabbitMQ denied access while {doing}: {exc}")
    if isinstance(exc, CONNECTION_ERRORS):
        return ConnectionLost(f"lost RabbitMQ at {where} while {doing} ({exc}): " + START_HINT)
    if isinstance(exc, amqp_errors.AMQPError):
        return BrokerError(f"RabbitMQ failed while {doing}: {exc}")
    return exc


def _not_open(exc: Exception) -> bool:
    """aio-pika's RuntimeError for a connection or channel that is down (closed, or a robust
    connection not yet reopened): a lost link, not a bug."""
    text = str(exc).lower()
    return (
        type(exc) is RuntimeError
        and ("connection" in text or "channel" in text)
        and ("not opened" in text or "closed" in text)
    )
