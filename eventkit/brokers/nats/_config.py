"""``nats://`` URLs and a few settings, turned into nats-py connect arguments.

A pure step, tested without a server: the broker takes a URL and a small set of options (not
nats-py's fifty keywords), and everything nats-py offers beyond them goes through ``options``.

URL forms::

    nats://127.0.0.1:4222
    nats://a:4222,b:4222,c:4222            several servers (a cluster): failover and reconnect
    nats://user:password@host:4222         user and password (applied to every server)
    nats://token@host:4222                 a token
    tls://host:4222                        TLS required (the system CAs, or tls_ca)
    nats://host:4222?creds=/path/app.creds&tls_ca=/path/ca.pem   file settings in the query
    nats://host:4222?content_mode=binary   events with ce-* headers instead of structured
    nats://a:4222,b:4222,c:4222?replicas=3 stream and bucket replicas (default: by cluster size)
    nats://host:4222?monitor=http://host:8222   where to read the server's sync settings
    nats://host:4222?prefetch=256          durable messages held per subscriber
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from ...wire import ConfigError, redact

__all__ = ["NatsSettings", "parse_settings"]

_QUERY_KEYS = (
    "creds",
    "nkey",
    "tls_ca",
    "tls_cert",
    "tls_key",
    "name",
    "content_mode",
    "replicas",
    "monitor",
    "prefetch",
)
_INT_KEYS = ("replicas", "prefetch", "max_reconnect_buffer")
_CONTENT_MODES = ("structured", "binary")
_OWN_CALLBACKS = ("error_cb", "disconnected_cb", "reconnected_cb", "closed_cb", "servers")


@dataclass(frozen=True, slots=True)
class NatsSettings:
    """Everything the broker needs to connect, validated when the broker is made.

    ``servers``: server URLs with credentials applied. ``display``: the URL with secrets
    hidden, for messages and logs. ``max_reconnect_buffer``: bytes of publishes kept while
    reconnecting. ``publish_timeout``: how long a publish may wait for the server (JetStream
    ack, or a connection that is down) before it fails. ``replicas``: copies of each stream
    and key-value bucket eventkit makes (None: 3 when the connected cluster has 3 or more
    servers, else 1). ``monitor``: the server's HTTP monitoring URL, where the broker reads
    whether JetStream syncs writes before acking them (comma-separated for a cluster's nodes;
    None: port 8222 on the connected host; ``"off"``: no check). ``prefetch``: durable
    messages a subscriber holds at once, running and waiting (None: twice ``max_in_flight``,
    at least 32).
    """

    servers: list[str]
    display: str
    tls: bool = False
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds: str | None = None
    nkey: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    name: str | None = None
    connect_timeout: float = 2.0
    drain_timeout: float = 10.0
    publish_timeout: float = 10.0
    max_reconnect_buffer: int = 8 * 1024 * 1024
    replicas: int | None = None
    monitor: str | None = None
    prefetch: int | None = None
    content_mode: str = "structured"
    """How events are published: ``structured`` (the NATS binding's form: the JSON event
    format as the payload, no headers) or ``binary`` (attributes in ``ce-*`` headers)."""
    options: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        shown = ", ".join(f"{k}={v!r}" for k, v in redact(fields).items())
        return f"NatsSettings({shown})"

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``nats.aio.client.Client.connect`` (without callbacks)."""
        kwargs: dict[str, Any] = {
            "servers": self.servers,
            "connect_timeout": self.connect_timeout,
            "pending_size": self.max_reconnect_buffer,
            "allow_reconnect": True,
            # The first connect tries each server twice, then fails with a clear error;
            # the broker switches to reconnecting forever once connected.
            "max_reconnect_attempts": 1,
            "reconnect_time_wait": 0.5,
            "skip_subject_validation": True,  # eventkit validates topics itself, once
            "drain_timeout": max(1, int(self.drain_timeout)),
        }
        if self.name:
            kwargs["name"] = self.name
        if self.user is not None:
            kwargs["user"] = self.user
        if self.password is not None:
            kwargs["password"] = self.password
        if self.token is not None:
            kwargs["token"] = self.token
        if self.creds:
            kwargs["user_credentials"] = self.creds
        if self.nkey:
            kwargs["nkeys_seed"] = self.nkey
        context = self.ssl_context()
        if context is not None:
            kwargs["tls"] = context
        kwargs.update(self.options)
        return kwargs

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context from the CA and client certificate paths (None: nats-py's default)."""
        if not (self.tls_ca or self.tls_cert):
            return None
        try:
            context = ssl.create_default_context(cafile=self.tls_ca)
            if self.tls_cert:
                context.load_cert_chain(self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"NATS TLS files could not be loaded: {exc}") from exc
        return context


def parse_settings(url: str, **kw: Any) -> NatsSettings:
    """Parse ``url`` and keyword settings; a bad URL or option is a :class:`ConfigError`."""
    if not isinstance(url, str):
        raise ConfigError(f"NATS URL must be a string, got {redact(url)!r}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("nats", "tls"):
        raise ConfigError(f"NatsBroker takes nats:// or tls:// URLs, got {redact(url)!r}")
    if parts.path not in ("", "/") or parts.fragment:
        raise ConfigError(
            f"NATS URL {redact(url)!r} has a path or fragment; use nats://host:4222[,host2:4222]"
        )
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    hosts = [h.strip() for h in hostlist.split(",")]
    if not hostlist or any(not h for h in hosts):
        raise ConfigError(f"NATS URL {redact(url)!r} names no server: use nats://host:4222")
    for host in hosts:
        _check_host(url, host)

    settings: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _QUERY_KEYS:
            raise ConfigError(
                f"unknown NATS URL parameter {key!r}; known: {', '.join(_QUERY_KEYS)}"
            )
        settings[key] = value
    user = password = token = None
    if userinfo:
        name, sep, secret = userinfo.partition(":")
        if sep:
            user, password = unquote(name), unquote(secret)
        else:
            token = unquote(name)

    options = kw.pop("options", None) or {}
    if not isinstance(options, Mapping):
        raise ConfigError("options= must be a mapping of nats-py connect() arguments")
    clash = sorted(set(options) & set(_OWN_CALLBACKS))
    if clash:
        raise ConfigError(f"options= may not set {', '.join(clash)}: the broker owns them")
    known = {f for f in NatsSettings.__dataclass_fields__ if f not in ("servers", "display")}
    unknown = sorted(set(kw) - known)
    if unknown:
        raise ConfigError(
            f"unknown NatsBroker option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            "; pass other nats-py connect() arguments in options={...}"
        )
    merged: dict[str, Any] = {"user": user, "password": password, "token": token, **settings}
    merged.update({k: v for k, v in kw.items() if v is not None})
    for key in _INT_KEYS:
        if isinstance(merged.get(key), str):
            try:
                merged[key] = int(merged[key])
            except ValueError:
                raise ConfigError(f"{key} must be a whole number, got {merged[key]!r}") from None
    for key in ("connect_timeout", "drain_timeout", "publish_timeout"):
        if key in merged and not float(merged[key]) > 0:
            raise ConfigError(f"{key} must be a positive number of seconds, got {merged[key]!r}")
    if int(merged.get("max_reconnect_buffer", 1)) < 0:
        raise ConfigError("max_reconnect_buffer must be >= 0 bytes (0: publishes fail at once)")
    if merged.get("replicas") is not None and merged["replicas"] not in (1, 2, 3, 4, 5):
        raise ConfigError(
            f"replicas must be between 1 and 5 (JetStream stream replicas), "
            f"got {merged['replicas']!r}"
        )
    if merged.get("prefetch") is not None and not (
        isinstance(merged["prefetch"], int) and merged["prefetch"] >= 1
    ):
        raise ConfigError(
            f"prefetch must be at least 1 (durable messages held), got {merged['prefetch']!r}"
        )
    monitor = merged.get("monitor")
    if monitor not in (None, "off") and not all(
        urlsplit(m).scheme in ("http", "https") and urlsplit(m).hostname
        for m in str(monitor).split(",")
    ):
        raise ConfigError(
            "monitor must be the server's http(s) monitoring URL (several: comma-separated) "
            f"or 'off', got {redact(monitor)!r}"
        )

    if merged.get("content_mode", "structured") not in _CONTENT_MODES:
        raise ConfigError(
            f"content_mode must be one of {', '.join(_CONTENT_MODES)}, "
            f"got {merged['content_mode']!r}"
        )

    auth = ""
    if merged["user"] is not None:
        auth = f"{quote(merged['user'], safe='')}:{quote(merged['password'] or '', safe='')}@"
    elif merged["token"] is not None:
        auth = f"{quote(merged['token'], safe='')}@"
    servers = [f"{scheme}://{auth}{h}" for h in hosts]
    display = f"{scheme}://{','.join(hosts)}"
    # Credentials travel in the server URLs (nats-py reads them there for every server).
    merged.pop("user")
    merged.pop("password")
    merged.pop("token")
    for key in ("creds", "nkey", "tls_ca", "tls_cert", "tls_key"):
        if merged.get(key) and not os.path.isfile(merged[key]):
            raise ConfigError(f"NATS {key} file {merged[key]!r} does not exist")
    settings_ = NatsSettings(
        servers=servers, display=display, tls=scheme == "tls", options=dict(options), **merged
    )
    settings_.ssl_context()  # fail now, not at connect, on unreadable TLS files
    return settings_


def _check_host(url: str, host: str) -> None:
    name, sep, port = host.rpartition(":")
    if sep and not name.endswith("]") and ":" in name:
        name, port = host, ""  # bare IPv6 without a port
    if not sep:
        name, port = host, ""
    if not name:
        raise ConfigError(f"NATS URL {redact(url)!r}: server {host!r} has no host name")
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        raise ConfigError(f"NATS URL {redact(url)!r}: port {port!r} is not a number 1-65535")
