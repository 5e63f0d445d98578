"""nats-py exceptions as eventkit's, in one place.

Every public operation of the NATS adapter (connect, publish, subscribe, and the JetStream
calls behind them) passes what nats-py raises through these functions, so users only ever see
eventkit's exception tree, with a message that says what was being done and what to check.
``where`` is the broker's URL with its credentials hidden.
"""

from __future__ import annotations

from nats.errors import (
    ConnectionClosedError,
    MaxPayloadError,
    NoRespondersError,
    OutboundBufferLimitError,
)
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout

from ...wire import (
    BrokerError,
    ConnectionLost,
    EventKitError,
    PayloadTooLarge,
    PublishError,
    UnsupportedFeature,
)

__all__ = ["DRIVER_ERRORS", "HOW_TO_START", "connect_error", "translate"]

DRIVER_ERRORS = (NatsError, OSError, TimeoutError)
"""Everything nats-py (or the socket under it) raises that eventkit translates."""

HOW_TO_START = (
    "start one with `eventkit up` (an embedded NATS), `nats-server -js`, or "
    "`docker compose up -d nats`"
)


def connect_error(exc: Exception, where: str, reason: object, answered: bool) -> EventKitError:
    """Why connecting to NATS at ``where`` failed; ``reason`` is the connection's own last
    error where it has one, ``answered`` whether the server spoke before hanging up."""
    if isinstance(exc, EventKitError):
        return exc
    if "authorization" in str(reason).lower():
        return ConnectionLost(
            f"NATS at {where} refused the credentials ({reason}); check the "
            "user/password, token, creds or nkey settings"
        )
    if answered:  # it answered, then hung up: the handshake was refused
        return ConnectionLost(
            f"NATS at {where} answered but closed the connection while connecting "
            f"({type(reason).__name__}: {reason}); check the credentials (user/password, "
            "token, creds, nkey) and the TLS settings"
        )
    return ConnectionLost(
        f"cannot reach NATS at {where} ({type(reason).__name__}: {reason}); " + HOW_TO_START
    )


def translate(exc: Exception, doing: str, where: str) -> EventKitError:
    """What nats-py raised while ``doing`` (e.g. "publishing to 'a.b'"), as eventkit's."""
    if isinstance(exc, EventKitError):
        return exc
    if isinstance(exc, OutboundBufferLimitError):
        return ConnectionLost(
            f"NATS at {where} is unreachable and the reconnect buffer is full while {doing}: "
            "nothing was sent (raise max_reconnect_buffer, or wait for the server)"
        )
    if isinstance(exc, MaxPayloadError):
        return PayloadTooLarge(f"NATS max_payload exceeded while {doing}: nothing was sent")
    if isinstance(exc, ConnectionClosedError):
        return ConnectionLost(f"the connection to NATS at {where} is closed ({doing})")
    if isinstance(exc, NoRespondersError):
        return UnsupportedFeature(
            f"nothing on the NATS server at {where} answered while {doing}: JetStream, which "
            "durable= needs, may be off (start the server with `nats-server -js`, or "
            "`eventkit up`)"
        )
    if isinstance(exc, NatsTimeout | TimeoutError):
        return ConnectionLost(f"NATS at {where} did not answer in time while {doing}")
    if isinstance(exc, OSError):
        return ConnectionLost(f"lost NATS at {where} while {doing} ({exc}); " + HOW_TO_START)
    if isinstance(exc, NatsError):
        if doing.startswith("publishing"):
            return PublishError(f"NATS failed while {doing}: {exc}")
        return BrokerError(f"NATS failed while {doing}: {exc}")
    return BrokerError(f"NATS failed while {doing}: {type(exc).__name__}: {exc}")
