"""Tokens: a signed JWT names a subject and its scopes, and expires.

Claims: ``sub`` (the subject: a service or a user), ``scope`` (the scopes, space-separated,
as OAuth 2.0 writes them; a ``scopes`` list is read too), ``exp`` (required: a token that
never expires is refused), ``iat``, and ``iss``/``aud`` when the verifier asks for them.
PyJWT is imported when a token is made or read, so the base install never needs it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from ..wire import DriverMissing, Unauthorized, redact
from ._keys import INSTALL_HINT, Key

__all__ = ["Identity", "decode_token", "encode_token", "jwt_module"]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a verified token says the caller is: ``subject``, its ``scopes``, when it
    ``expires`` (seconds since the epoch) and every verified claim (``claims``)."""

    subject: str
    scopes: frozenset[str]
    expires: float
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def has(self, *scopes: str) -> bool:
        """Whether the token grants every one of ``scopes``."""
        return self.scopes.issuperset(scopes)


def jwt_module() -> ModuleType:
    """PyJWT, or a one-line error with the install command."""
    try:
        import jwt
    except ImportError:
        raise DriverMissing(f"auth needs the PyJWT package: {INSTALL_HINT}") from None
    return jwt


def encode_token(
    key: Key,
    *,
    subject: str,
    scopes: Iterable[str] = (),
    ttl: float,
    issuer: str | None = None,
    audience: str | None = None,
    claims: Mapping[str, Any] | None = None,
) -> str:
    """A token for ``subject`` with ``scopes``, valid for ``ttl`` seconds from now."""
    if not key.can_sign:
        raise ValueError(
            f"this {key.algorithm} key is a public key: it verifies tokens but cannot make "
            "them; use the private key (or the shared secret)"
        )
    if not subject:
        raise ValueError("a token needs a subject")
    if ttl <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl}")
    now = int(time.time())
    payload: dict[str, Any] = dict(claims or {})
    payload.update(sub=subject, iat=now, exp=now + max(1, round(ttl)))
    wanted = sorted(set(scopes))
    for scope in wanted:
        if not scope or any(c.isspace() for c in scope):
            raise ValueError(f"scope {scope!r} must be one word (no spaces)")
    if wanted:
        payload["scope"] = " ".join(wanted)
    if issuer:
        payload["iss"] = issuer
    if audience:
        payload["aud"] = audience
    token: str = jwt_module().encode(payload, key.signer, algorithm=key.algorithm)
    return token


def decode_token(
    jwt: ModuleType,
    token: str,
    key: Key,
    *,
    issuer: str | None,
    audience: str | None,
    leeway: float,
    service: str,
) -> Identity:
    """The identity of a token signed by ``key``, or :class:`Unauthorized` saying why
    (expired, bad signature, malformed, missing claim); the token itself is never quoted."""
    required = ["exp", "sub"] + (["iss"] if issuer else []) + (["aud"] if audience else [])
    try:
        claims = jwt.decode(
            token,
            key.verifier,
            algorithms=[key.algorithm],
            issuer=issuer,
            audience=audience,
            leeway=leeway,
            options={"require": required, "verify_aud": audience is not None},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired", id=service) from None
    except jwt.InvalidSignatureError:
        raise Unauthorized("the token's signature does not verify", id=service) from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized(f"the token has no {exc.claim!r} claim", id=service) from None
    except jwt.InvalidAlgorithmError:
        raise Unauthorized(
            f"the token is not signed with {key.algorithm}, the only algorithm accepted",
            id=service,
        ) from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"the token is not valid: {_reason(exc)}", id=service) from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise Unauthorized("the token's subject is not a name", id=service)
    return Identity(subject, _scopes(claims), float(claims["exp"]), claims)


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    scope = claims.get("scope")
    found = set(scope.split()) if isinstance(scope, str) else set()
    listed = claims.get("scopes")
    if isinstance(listed, list):
        found.update(s for s in listed if isinstance(s, str))
    return frozenset(found)


def _reason(exc: Exception) -> str:
    """PyJWT's reason, in one short line (redacted: a token in it is never quoted)."""
    text = " ".join(redact(str(exc)).split()) or type(exc).__name__
    return text[:120]
