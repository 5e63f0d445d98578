"""Where processes meet: what a service says when others cannot reach it, or it the broker.

Processes see each other only on one broker URL and namespace; with nothing set, that is the
default broker (:data:`DEFAULT_BROKER`). A service says at start where it is (its log line
names both); on ``memory://``, which lives in one process, it warns that nothing else can
reach it; and a broker that does not answer ends ``run()`` with one message, which says when
the default was used because nothing was set.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from ..wire import ConnectionLost, DriverMissing, redact
from ._settings import DEFAULT_BROKER, Settings

__all__ = ["BROKER_UNREACHABLE", "broker_chosen", "cannot_start", "say_started", "warn_if_alone"]

BROKER_UNREACHABLE = (ConnectionLost, DriverMissing)
"""What ``run()`` turns into one message: no broker answers, or its driver is missing."""


def say_started(
    log: logging.Logger, service: str, node_id: str, url: str, settings: Settings
) -> None:
    """The start line: where the node is (broker URL without secrets, and namespace)."""
    log.info(
        "service %s started as %s on %s, namespace %s",
        service,
        node_id,
        redact(url),
        settings.namespace,
    )


def warn_if_alone(log: logging.Logger, name: str, url: str, serves: bool) -> None:
    """Warn when a service that serves endpoints runs on a broker of this process alone."""
    if serves and url.startswith("memory:"):
        log.warning(
            "%s runs on %s, which lives in this process: no other process (eventkit call, "
            "another service) can reach it; give it a shared broker (--broker / "
            "EVENTKIT_BROKER, by default the local NATS)",
            name,
            url,
        )


def broker_chosen(broker_arg: object, argv: Sequence[str] | None) -> bool:
    """Whether the broker was named anywhere: in code, the environment or a flag."""
    flagged = any(arg == "--broker" or arg.startswith("--broker=") for arg in argv or ())
    return broker_arg is not None or bool(os.environ.get("EVENTKIT_BROKER")) or flagged


def cannot_start(name: str, reason: Exception, chosen: bool) -> str:
    """The message of a service whose broker cannot be had (one line, or two)."""
    text = f"eventkit: {name} cannot start: {reason}"
    if not chosen:
        text += (
            "\neventkit: no broker was set (--broker, EVENTKIT_BROKER or Service(broker=...)), "
            f"so the default {DEFAULT_BROKER} was used; `eventkit up DIR` starts NATS there "
            "when nothing answers"
        )
    return text
