"""Auth: a service's key, its default policy, and the checks made before a handler runs.

One :class:`Auth` per service (or per process). :meth:`Auth.guard` is called once per
endpoint or subscription at start and returns the check run on each request or event: it
takes the token from the message's header and returns the verified :class:`Identity` (or
None on an open handler called without a token), or raises :class:`Unauthorized` (401: no
token, expired, bad signature) or :class:`Forbidden` (403: a scope is missing). A token seen
before is not verified again: its identity is kept (bounded, keyed by the token) until the
token expires, so the hot path is one dictionary lookup and one clock read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from ..wire import ConfigError, Forbidden, Unauthorized
from ._keys import Key, load_key, read_key_file
from ._tokens import Identity, decode_token, encode_token, jwt_module

__all__ = ["POLICIES", "Auth", "Guard", "Policy"]

Policy = Literal["authenticated", "open"]
POLICIES: tuple[Policy, ...] = ("authenticated", "open")

Guard = Callable[[str | None], Identity | None]
"""The check of one endpoint or subscription: the token (None: none was sent) in, the
verified identity out (None: open, and no token), or Unauthorized / Forbidden raised."""


class Auth:
    """Verifies (and, with the secret or private key, mints) a service's tokens.

    ``key``: an HS256 shared secret (32 bytes or more) or a PEM key (Ed25519 for EdDSA, RSA
    for RS256, P-256 for ES256; a public key only verifies), or ``key_file``: a file holding
    one (``EVENTKIT_AUTH_KEY`` / ``EVENTKIT_AUTH_KEY_FILE``). ``default``: what a handler
    that names no scopes asks: ``"authenticated"`` (a valid token; the default) or
    ``"open"`` (anyone; a token sent is still verified, and a bad one refused). ``issuer``
    and ``audience``: claims a token must carry when set. ``leeway``: seconds of clock skew
    allowed on expiry. ``cache_size``: verified tokens remembered until they expire.
    Raises :class:`DriverMissing` without PyJWT (the ``auth`` extra).
    """

    def __init__(
        self,
        key: str | bytes | Key | None = None,
        *,
        key_file: str | Path | None = None,
        default: Policy = "authenticated",
        issuer: str | None = None,
        audience: str | None = None,
        leeway: float = 0.0,
        cache_size: int = 4096,
    ) -> None:
        if (key is None) == (key_file is None):
            raise ConfigError("Auth needs a key or a key_file (one of them)")
        if default not in POLICIES:
            raise ConfigError(f"auth default {default!r} must be one of {', '.join(POLICIES)}")
        if cache_size < 1:
            raise ConfigError(f"cache_size must be at least 1, got {cache_size}")
        self._jwt = jwt_module()  # fails here, with the install command, not on a request
        if isinstance(key, Key):
            self.key = key
        elif key is not None:
            self.key = load_key(key)
        else:
            assert key_file is not None
            self.key = read_key_file(key_file)
        self.default: Policy = default
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.cache_size = cache_size
        self._verified: dict[str, Identity] = {}

    @classmethod
    def from_settings(cls, key: str | None, key_file: str | None, default: str) -> Auth | None:
        """The Auth that settings describe (``EVENTKIT_AUTH_KEY`` or ``_KEY_FILE``), or None."""
        if not key and not key_file:
            return None
        if key and key_file:
            raise ConfigError("set EVENTKIT_AUTH_KEY or EVENTKIT_AUTH_KEY_FILE, not both")
        if default not in POLICIES:
            raise ConfigError(
                f"EVENTKIT_AUTH_DEFAULT={default!r} must be one of {', '.join(POLICIES)}"
            )
        policy: Policy = "open" if default == "open" else "authenticated"
        return cls(key or None, key_file=key_file or None, default=policy)

    def __repr__(self) -> str:
        return f"Auth(algorithm={self.key.algorithm!r}, default={self.default!r})"

    @property
    def algorithm(self) -> str:
        return self.key.algorithm

    def mint(
        self,
        subject: str,
        scopes: Iterable[str] = (),
        *,
        ttl: float = 3600.0,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A token for ``subject`` with ``scopes``, valid ``ttl`` seconds (needs the secret
        or the private key)."""
        try:
            return encode_token(
                self.key,
                subject=subject,
                scopes=scopes,
                ttl=ttl,
                issuer=self.issuer,
                audience=self.audience,
                claims=claims,
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def verify(self, token: str, *, service: str = "") -> Identity:
        """The identity of ``token``, or :class:`Unauthorized`; a token verified before is
        taken from the cache until it expires."""
        identity = self._verified.get(token)
        if identity is not None:
            if identity.expires + self.leeway > time.time():
                return identity
            del self._verified[token]
            raise Unauthorized("the token has expired", id=service)
        identity = decode_token(
            self._jwt,
            token,
            self.key,
            issuer=self.issuer,
            audience=self.audience,
            leeway=self.leeway,
            service=service,
        )
        verified = self._verified
        if len(verified) >= self.cache_size:
            self._evict(time.time())
        verified[token] = identity
        return identity

    def _evict(self, now: float) -> None:
        """Make room: expired tokens go first, else the oldest one."""
        verified = self._verified
        expired = [t for t, i in verified.items() if i.expires + self.leeway <= now]
        for token in expired:
            del verified[token]
        if len(verified) >= self.cache_size:
            del verified[next(iter(verified))]

    def guard(self, scopes: Iterable[str] | None, *, service: str, name: str) -> Guard:
        """The check of the handler ``name``: ``scopes`` it requires (None: the default
        policy; empty: any valid token)."""
        verify = self.verify
        if scopes is None and self.default == "open":

            def open_guard(token: str | None) -> Identity | None:
                return None if token is None else verify(token, service=service)

            return open_guard
        need = frozenset(scopes or ())
        hint = "send one (kit = eventkit.connect(token=...), EVENTKIT_TOKEN, eventkit call --token)"

        def guarded(token: str | None) -> Identity:
            if not token:
                raise Unauthorized(f"{name} needs a token and none was sent: {hint}", id=service)
            identity = verify(token, service=service)
            if need and not need <= identity.scopes:
                missing = ", ".join(sorted(need - identity.scopes))
                raise Forbidden(
                    f"{name} needs the scope(s) {missing}, which the token of "
                    f"{identity.subject!r} does not grant",
                    id=service,
                )
            return identity

        return guarded
