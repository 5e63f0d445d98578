"""What a service, its version and its endpoints may be called.

The rules are the NATS service API's (ADR-32), checked when a service or endpoint is
defined, on every broker: a service that runs on memory:// in its tests runs on NATS in
production, where standard tooling lists it, so a name that NATS would refuse must fail
when it is written, not on the day the broker changes.

- A service name is letters, digits, ``_`` and ``-`` (ADR-32's service name).
- A version is semantic versioning 2.0.0 (ADR-32 asks for the semver.org pattern).
- An endpoint name is such tokens joined by dots (``Greeter.Hello``): each token is a valid
  NATS subject token and ADR-32 endpoint name; the NATS service API lists ``Greeter.Hello``
  as ``Greeter-Hello`` on the subject ``{ns}.srv.{service}.Greeter.Hello``.
"""

from __future__ import annotations

import re

from ..wire import ConfigError

__all__ = ["check_endpoint_name", "check_service_name", "check_version"]

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_ENDPOINT = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
# semver.org's suggested pattern (the one ADR-32 points to and its JSON schemas use).
SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)


def check_service_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(
            f"service name {name!r} may only contain letters, digits, '_' and '-' "
            "(the NATS service API's rule, kept on every broker), like 'billing' or 'order-api'"
        )
    return name


def check_version(version: str) -> str:
    if not isinstance(version, str) or not SEMVER.fullmatch(version):
        raise ConfigError(
            f"service version {version!r} is not a semantic version (MAJOR.MINOR.PATCH, like "
            "'1.0.0' or '2.1.0-rc.1'); the NATS service API requires one"
        )
    return version


def check_endpoint_name(name: str) -> str:
    if not isinstance(name, str) or not _ENDPOINT.fullmatch(name):
        raise ConfigError(
            f"endpoint name {name!r} must be dot-separated names of letters, digits, '_' and "
            "'-', like 'Greeter.Hello' or 'orders.create'"
        )
    return name
