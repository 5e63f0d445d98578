"""Keys: what signs a token and what verifies it, from text, a file or a new pair.

A key is either a shared secret (HS256: every service that verifies can also mint, so it
suits one team's services and development) or a PEM key: a private key signs and its public
key verifies (EdDSA with Ed25519, RS256 with RSA, ES256 with P-256), so services that only
verify hold nothing that can mint. The algorithm follows from the key; a verifier accepts
that one algorithm only (never ``none``, never a public key used as an HMAC secret).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..wire import ConfigError, DriverMissing

__all__ = ["ALGORITHMS", "MIN_SECRET_BYTES", "Key", "generate_key", "load_key", "read_key_file"]

ALGORITHMS = ("HS256", "EdDSA", "RS256", "ES256")
"""What a key can be: a shared secret (HS256) or a PEM key of the other three."""
MIN_SECRET_BYTES = 32
"""The shortest HS256 secret accepted (RFC 7518: at least the hash's size)."""

INSTALL_HINT = "pip install 'eventkit-micro[auth]'"
_PEM = "-----BEGIN"


@dataclass(frozen=True)
class Key:
    """A loaded key: ``algorithm``, what verifies (``verifier``) and, when this side holds
    the secret or the private key, what signs (``signer``; None for a public key)."""

    algorithm: str
    verifier: Any = field(repr=False)
    signer: Any = field(default=None, repr=False)

    @property
    def can_sign(self) -> bool:
        return self.signer is not None


def load_key(text: str | bytes, *, what: str = "the auth key") -> Key:
    """A key from its text: a PEM private or public key, or else a shared secret (HS256)."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    stripped = data.strip()
    if stripped.startswith(_PEM.encode()):
        return _pem_key(stripped, what)
    if len(stripped) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"{what} is a shared secret of {len(stripped)} bytes: HS256 needs at least "
            f"{MIN_SECRET_BYTES}; make one with `eventkit auth keygen`"
        )
    return Key("HS256", stripped, stripped)


def read_key_file(path: str | Path) -> Key:
    """The key in the file at ``path`` (the error names the path, never the key)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the auth key file {str(path)!r}: {exc.strerror}") from None
    return load_key(data, what=f"the auth key in {str(path)!r}")


def _pem_key(data: bytes, what: str) -> Key:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    except ImportError:
        raise DriverMissing(
            f"{what} is a PEM key; public-key tokens (EdDSA, RS256, ES256) need the "
            f"cryptography package: {INSTALL_HINT}"
        ) from None
    private: Any = None
    try:
        if b"PRIVATE KEY" in data:
            private = serialization.load_pem_private_key(data, password=None)
            public: Any = private.public_key()
        else:
            public = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{what} is not a PEM key that can be read: {exc}") from None
    if isinstance(public, ed25519.Ed25519PublicKey):
        algorithm = "EdDSA"
    elif isinstance(public, rsa.RSAPublicKey):
        if public.key_size < 2048:
            raise ConfigError(f"{what} is an RSA key of {public.key_size} bits: use 2048 or more")
        algorithm = "RS256"
    elif isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1":
        algorithm = "ES256"
    else:
        raise ConfigError(
            f"{what} is a {type(public).__name__}: use an Ed25519 (EdDSA), RSA (RS256) or "
            "P-256 (ES256) key, or a shared secret (HS256)"
        )
    return Key(algorithm, public, private)


def generate_key(algorithm: str = "HS256") -> tuple[str, str | None]:
    """A new key: ``(secret, None)`` for HS256, ``(private PEM, public PEM)`` for EdDSA."""
    if algorithm == "HS256":
        return secrets.token_urlsafe(48), None
    if algorithm != "EdDSA":
        raise ConfigError(f"keygen makes HS256 or EdDSA keys, not {algorithm!r}")
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise DriverMissing(f"EdDSA keys need the cryptography package: {INSTALL_HINT}") from None
    private = ed25519.Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem
