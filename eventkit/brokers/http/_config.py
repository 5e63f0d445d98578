"""``http://`` broker URLs and options, validated when the broker is made (a pure step).

URL forms::

    http://127.0.0.1:8901                          serve on this address (port 0: any free port)
    http://127.0.0.1:0?seeds=127.0.0.1:8902,127.0.0.1:8903   learn the mesh from seeds
    http://0.0.0.0:8901?advertise=10.0.0.5:8901    bind every interface, tell peers this address
    http://127.0.0.1:0?token=s3cret                every request carries this shared token
    http://127.0.0.1:0?sink=shop.orders.>=http://127.0.0.1:9000/hook    a static sink
    http://127.0.0.1:0?outbox=/var/lib/app/outbox.db                    durable outbox on disk

Constructor keywords take precedence over the query. No host means 127.0.0.1: a node only
listens beyond loopback when told to.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ...wire import ConfigError, redact, validate_pattern

__all__ = ["HttpSettings", "parse_settings"]

MiB = 1024 * 1024

_FLOATS = (
    "drain_timeout",
    "gossip_interval",
    "dead_after",
    "connect_timeout",
    "publish_timeout",
    "delivery_timeout",
)
_ALIASES = {"request_timeout": "publish_timeout"}  # former names, still accepted
_STRINGS = ("token", "outbox", "advertise", "tls_cert", "tls_key", "tls_ca")


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """Everything an HTTP node needs, field by field.

    ``host``/``port``: where the node's server listens. ``advertise``: ``host:port`` peers use
    to reach it (default: the bound address; the real port when ``port`` is 0). ``seeds``:
    ``host:port`` of nodes to join through. ``token``: shared secret every request must carry
    (``Authorization: Bearer``). ``sinks``: (topic pattern, URL) pairs: outside CloudEvents
    consumers that receive matching events. ``outbox``: sqlite file for durable messages
    (``:memory:`` keeps them only while the broker object lives). ``max_payload``: largest
    body in bytes. ``gossip_interval``: seconds between gossip rounds (also the heartbeat).
    ``dead_after``: a node not heard from for this long is dropped. ``connect_timeout``: how
    long ``connect()`` waits to learn the mesh from the seeds. ``publish_timeout`` (formerly
    ``request_timeout``, still accepted): bound of one plain delivery, sink POST or gossip
    request. ``delivery_timeout``: bound of one durable delivery (the subscriber's handler
    runs inside it). ``drain_timeout``: what ``stop()`` and ``close()`` give running handlers.
    """

    host: str = "127.0.0.1"
    port: int = 0
    scheme: str = "http"
    advertise: str | None = None
    seeds: tuple[str, ...] = ()
    token: str | None = None
    sinks: tuple[tuple[str, str], ...] = ()
    outbox: str = ":memory:"
    max_payload: int = MiB
    drain_timeout: float = 10.0
    gossip_interval: float = 1.0
    dead_after: float = 5.0
    connect_timeout: float = 5.0
    publish_timeout: float = 5.0
    delivery_timeout: float = 60.0
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None

    def __repr__(self) -> str:
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        fields["sinks"] = tuple((p, redact(url)) for p, url in self.sinks)
        shown = ", ".join(f"{k}={v!r}" for k, v in redact(fields).items())
        return f"HttpSettings({shown})"

    @property
    def display(self) -> str:
        """The node's URL without secrets, for logs and errors."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def advertised(self, bound_port: int) -> str:
        if self.advertise:
            return self.advertise
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostbyname(socket.gethostname())
        return f"{host}:{bound_port}"


def parse_settings(url: str, options: Mapping[str, Any]) -> HttpSettings:
    """Settings from a URL and keyword options; raises ConfigError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"HttpBroker takes http:// or https:// URLs, got {redact(url)!r}")
    try:
        port = parts.port or 0
    except ValueError as exc:
        raise ConfigError(f"bad port in {redact(url)!r}: {exc}") from exc
    values: dict[str, Any] = {"host": parts.hostname or "127.0.0.1", "port": port}
    values["scheme"] = parts.scheme
    sinks: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "seeds":
            values["seeds"] = value
        elif key == "sink":
            pattern, sep, target = value.partition("=")
            if not sep:
                raise ConfigError(f"sink={redact(value)!r}: write sink=PATTERN=URL")
            sinks.append((pattern, target))
        elif key == "max_payload" or key in _FLOATS or key in _STRINGS or key in _ALIASES:
            values[key] = value
        else:
            raise ConfigError(f"unknown option {key!r} in the http:// broker URL")
    if sinks:
        values["sinks"] = sinks
    values.update(options)
    return _build(values)


def _build(values: dict[str, Any]) -> HttpSettings:
    for old, new in _ALIASES.items():
        if old in values:
            value = values.pop(old)
            values.setdefault(new, value)
    known = set(HttpSettings.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown http:// broker option(s): {', '.join(unknown)}")
    for key in _FLOATS:
        if key in values:
            values[key] = _number(key, values[key], float)
            allowed = values[key] >= 0 if key == "drain_timeout" else values[key] > 0
            if not allowed:
                raise ConfigError(f"{key} must be a positive number of seconds")
    if "max_payload" in values:
        values["max_payload"] = _number("max_payload", values["max_payload"], int)
        if values["max_payload"] < 1:
            raise ConfigError("max_payload must be at least 1 byte")
    seeds = values.get("seeds", ())
    if isinstance(seeds, str):
        seeds = [s for s in seeds.split(",") if s.strip()]
    values["seeds"] = tuple(_addr("seed", s) for s in seeds)
    if values.get("advertise"):
        values["advertise"] = _addr("advertise", values["advertise"])
    values["sinks"] = _sinks(values.get("sinks", ()))
    settings = HttpSettings(**values)
    if settings.dead_after < 2 * settings.gossip_interval:
        raise ConfigError(
            f"dead_after ({settings.dead_after}s) must be at least twice gossip_interval "
            f"({settings.gossip_interval}s), or live nodes would be dropped"
        )
    if settings.scheme == "https" and not (settings.tls_cert and settings.tls_key):
        raise ConfigError("https:// nodes serve TLS: give tls_cert= and tls_key= (PEM files)")
    return settings


def _number(key: str, value: Any, kind: type[float] | type[int]) -> Any:
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key} must be a number, got {value!r}") from exc


def _addr(what: str, value: Any) -> str:
    text = str(value).strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{what} {value!r} must be host:port, e.g. 127.0.0.1:8901")
    return f"{host}:{int(port)}"


def _sinks(raw: Any) -> tuple[tuple[str, str], ...]:
    out = []
    pairs: Iterable[Any] = raw.items() if isinstance(raw, Mapping) else raw
    for pair in pairs:
        try:
            pattern, target = pair
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"a sink is (topic pattern, URL), got {pair!r}") from exc
        validate_pattern(str(pattern))
        scheme = urlsplit(str(target)).scheme
        if scheme not in ("http", "https"):
            raise ConfigError(f"sink URL {redact(str(target))!r} must be http:// or https://")
        out.append((str(pattern), str(target)))
    return tuple(out)
