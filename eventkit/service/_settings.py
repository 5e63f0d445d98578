"""Settings: from arguments, ``EVENTKIT_*`` environment variables and command-line flags.

Precedence, highest first: command-line flags (``--broker``), the environment, the arguments
given in code, the defaults. Deployments (docker compose, ``eventkit up``) configure a service
through the environment without touching its code. Every value is checked when the settings
are made, and a bad one names the variable and what is allowed.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from ..wire import ConfigError, redact

__all__ = ["DEFAULT_BROKER", "Settings"]

DEFAULT_BROKER = "nats://127.0.0.1:4222"
"""The one default of the library and the command: the local NATS server, which
``eventkit up`` starts (embedded, JetStream on) when nothing answers there. Every process
that is given no broker meets every other one there, so a service started with
``svc.run()`` is seen by ``eventkit call`` and by ``eventkit.connect()`` in another process.
``memory://`` is the broker of one process: tests (``eventkit.testing``) name it."""

_NAMESPACE = re.compile(r"^[A-Za-z0-9_\-]+$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_LOG_FORMATS = ("text", "json")
_AUTH_DEFAULTS = ("authenticated", "open")


@dataclass(frozen=True)
class Settings:
    """Everything a service or client can be configured with.

    broker: the broker URL (``EVENTKIT_BROKER``); :data:`DEFAULT_BROKER` (the local NATS) by
        default.
    namespace: first token of the kit's own topics (RPC, registry) (``EVENTKIT_NAMESPACE``).
    node_id: this process's id; random by default (``EVENTKIT_NODE_ID``).
    drain_timeout: seconds in-flight handlers get to finish on stop (``EVENTKIT_DRAIN_TIMEOUT``).
    registry_ttl: seconds after which a silent node is dropped (``EVENTKIT_REGISTRY_TTL``).
    heartbeat: seconds between a node's announcements (``EVENTKIT_HEARTBEAT``).
    log_level: logging level for ``run()`` (``EVENTKIT_LOG_LEVEL``).
    log_format: ``text`` or ``json`` (one object per line, with trace and span ids, service
        and node) for ``run()`` (``EVENTKIT_LOG_FORMAT``).
    uvloop: run on uvloop when installed (``EVENTKIT_UVLOOP=1``).
    store: the key-value store's URL where the broker holds none (``EVENTKIT_STORE``).
    tracing: OpenTelemetry spans around publishes, deliveries, calls and requests, and the
        trace context carried in every message (``EVENTKIT_TRACING=1``; the ``otel`` extra).
    metrics: OpenTelemetry metrics of subscriptions, endpoints, calls and the broker link
        (``EVENTKIT_METRICS=1``; the ``otel`` extra); on whenever ``metrics_port`` is set.
    metrics_port: serve ``/healthz``, ``/readyz`` and ``/metrics`` (Prometheus) on this port
        (``EVENTKIT_METRICS_PORT``; 0 picks a free one); unset: no probe server.
    metrics_host: the address that port listens on (``EVENTKIT_METRICS_HOST``; all by
        default, as an orchestrator's probes come from outside the container).
    token: the token this process sends with its calls and events (``EVENTKIT_TOKEN``; a
        secret, shown as ``***``); see docs/security.md.
    auth_key: the key a service verifies tokens with: an HS256 secret or a PEM key
        (``EVENTKIT_AUTH_KEY``; a secret); ``auth_key_file``: a file holding it
        (``EVENTKIT_AUTH_KEY_FILE``). Either turns auth on (the ``auth`` extra).
    auth_default: what a handler that names no scopes asks, ``authenticated`` or ``open``
        (``EVENTKIT_AUTH_DEFAULT``).
    """

    broker: str = DEFAULT_BROKER
    namespace: str = "eventkit"
    node_id: str | None = None
    drain_timeout: float = 10.0
    registry_ttl: float = 30.0
    heartbeat: float = 10.0
    log_level: str = "INFO"
    log_format: str = "text"
    uvloop: bool = False
    store: str | None = None
    tracing: bool = False
    metrics: bool = False
    metrics_port: int | None = None
    metrics_host: str = "0.0.0.0"
    token: str | None = None
    auth_key: str | None = None
    auth_key_file: str | None = None
    auth_default: str = "authenticated"

    def __post_init__(self) -> None:
        if "://" not in self.broker:
            shown = redact("x://" + self.broker)[4:]  # user:password@host is still a secret
            raise ConfigError(
                f"broker {shown!r} is not a URL: set EVENTKIT_BROKER or --broker "
                "to e.g. memory://, nats://127.0.0.1:4222, amqp://guest:guest@127.0.0.1:5672/ or "
                "http://127.0.0.1:8901"
            )
        if not _NAMESPACE.match(self.namespace):
            raise ConfigError(
                f"namespace {self.namespace!r} must be one token of letters, digits, _ and -"
            )
        if self.node_id is not None and not _NAMESPACE.match(self.node_id):
            raise ConfigError(f"node_id {self.node_id!r} must be letters, digits, _ and - only")
        for name in ("drain_timeout", "registry_ttl", "heartbeat"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be a positive number of seconds")
        if self.heartbeat >= self.registry_ttl:
            raise ConfigError(
                f"heartbeat ({self.heartbeat}s) must be shorter than registry_ttl "
                f"({self.registry_ttl}s), or live nodes would expire between heartbeats"
            )
        if self.log_level.upper() not in _LOG_LEVELS:
            raise ConfigError(f"log_level {self.log_level!r} must be one of {_LOG_LEVELS}")
        if self.log_format not in _LOG_FORMATS:
            raise ConfigError(
                f"log_format {self.log_format!r} must be one of {_LOG_FORMATS} "
                "(EVENTKIT_LOG_FORMAT)"
            )
        if self.auth_default not in _AUTH_DEFAULTS:
            raise ConfigError(
                f"auth_default {self.auth_default!r} must be one of {_AUTH_DEFAULTS} "
                "(EVENTKIT_AUTH_DEFAULT)"
            )
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError(
                f"metrics_port {self.metrics_port} must be a TCP port, 0-65535 "
                "(EVENTKIT_METRICS_PORT)"
            )

    @property
    def observed(self) -> bool:
        """Whether traces or metrics are on (and so the ``otel`` extra is needed)."""
        return self.tracing or self.metrics or self.metrics_port is not None

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in redact(self.__dict__).items())
        return f"Settings({shown})"

    @classmethod
    def load(
        cls,
        args: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        argv: Sequence[str] | None = None,
    ) -> Settings:
        """Settings from ``args`` (code), overridden by the environment, then by ``argv``."""
        values: dict[str, Any] = {k: v for k, v in (args or {}).items() if v is not None}
        env = os.environ if environ is None else environ
        for f in fields(cls):
            raw = env.get(f"EVENTKIT_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, raw, f.type)
        if argv is not None:
            values.update(_parse_argv(argv))
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(str(exc)) from exc

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _parse(name: str, raw: str, kind: Any) -> Any:
    kind = str(kind)
    try:
        if "float" in kind:
            return float(raw)
        if "int" in kind:
            return int(raw)
        if "bool" in kind:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
    except ValueError:
        raise ConfigError(
            f"EVENTKIT_{name.upper()}={raw!r} is not a valid {kind.split()[0]}"
        ) from None
    return raw


def _parse_argv(argv: Sequence[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(add_help=True, allow_abbrev=False)
    parser.add_argument("--broker", help="broker URL, e.g. nats://127.0.0.1:4222")
    parser.add_argument("--namespace")
    parser.add_argument("--node-id", dest="node_id")
    parser.add_argument("--drain-timeout", dest="drain_timeout", type=float)
    parser.add_argument("--log-level", dest="log_level")
    parser.add_argument("--store", help="store URL, e.g. sqlite:///store.db")
    parser.add_argument("--log-format", dest="log_format", choices=_LOG_FORMATS)
    parser.add_argument("--metrics-port", dest="metrics_port", type=int)
    parsed, _unknown = parser.parse_known_args(list(argv))
    return {k: v for k, v in vars(parsed).items() if v is not None}
