"""Brokers, loaded lazily by URL scheme.

``import eventkit`` imports no driver: the scheme of a URL picks the adapter module on first
use. Third-party brokers plug in through the ``eventkit.brokers`` entry-point group, whose
names are URL schemes and whose values are ``module:Class`` taking ``(url, **options)``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urlsplit

from ..wire import ConfigError, DriverMissing, redact
from .base import BaseBroker, Broker, Capabilities, DeliveryPolicy, MessageHandler, Subscription

__all__ = [
    "BaseBroker",
    "Broker",
    "Capabilities",
    "DeliveryPolicy",
    "MessageHandler",
    "Subscription",
    "from_url",
]

# scheme -> (module, class, pip extra)
_BUILTIN: dict[str, tuple[str, str, str | None]] = {
    "memory": ("eventkit.brokers.memory", "MemoryBroker", None),
    "nats": ("eventkit.brokers.nats", "NatsBroker", "nats"),
    "tls": ("eventkit.brokers.nats", "NatsBroker", "nats"),
    "amqp": ("eventkit.brokers.rabbitmq", "RabbitBroker", "rabbitmq"),
    "amqps": ("eventkit.brokers.rabbitmq", "RabbitBroker", "rabbitmq"),
    "http": ("eventkit.brokers.http", "HttpBroker", "http"),
    "https": ("eventkit.brokers.http", "HttpBroker", "http"),
}


def from_url(url: str, **options: Any) -> Broker:
    """Make the broker for ``url`` (not yet connected); ``options`` go to its constructor."""
    if not isinstance(url, str) or "://" not in url:
        shown = redact("x://" + url)[4:] if isinstance(url, str) else url  # user:pw@h too
        raise ConfigError(
            f"broker URL {shown!r} has no scheme: use memory://, nats://host:4222, "
            "amqp://user:pass@host:5672/vhost or http://host:port"
        )
    scheme = urlsplit(url).scheme.lower()
    if scheme in _BUILTIN:
        module_name, class_name, extra = _BUILTIN[scheme]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if extra is None or (exc.name or "").startswith("eventkit"):
                raise
            raise DriverMissing(
                f"the {scheme}:// broker needs a driver that is not installed ({exc.name}); "
                f'run: pip install "eventkit-micro[{extra}]"'
            ) from exc
        cls = getattr(module, class_name)
    else:
        found = [ep for ep in entry_points(group="eventkit.brokers") if ep.name == scheme]
        if not found:
            known = ", ".join(
                sorted({*_BUILTIN, *(ep.name for ep in entry_points(group="eventkit.brokers"))})
            )
            raise ConfigError(
                f"unknown broker URL scheme {scheme!r} in {redact(url)!r}; known: {known}"
            )
        cls = found[0].load()
    broker: Broker = cls(url, **options)
    return broker
