"""``eventkit auth``: tokens and keys for development (docs/security.md).

``auth token`` mints a token with a service's key (the shared secret or the private key,
from ``--key-file``, ``EVENTKIT_AUTH_KEY_FILE`` or ``EVENTKIT_AUTH_KEY``) and prints it, so
that ``export EVENTKIT_TOKEN=$(eventkit auth token --subject me --scope orders:write)`` gives
the shell an identity. ``auth keygen`` makes a key: an HS256 secret, or an EdDSA pair whose
public half is all a verifying service needs. Neither ever prints a key it read.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import typer

from ..auth import Auth, generate_key
from ..wire import ConfigError
from .output import fail, note

__all__ = ["app", "keygen", "parse_duration", "token"]

app = typer.Typer(help="Tokens and keys for development: mint a token, make a key.")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``15m``, ``1h`` or ``7d``."""
    match = _DURATION.match(text.lower())
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration: use e.g. 90s, 15m, 1h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


@app.command("token")
def token(
    subject: Annotated[str, typer.Option("--subject", "-s", help="Who the token names")],
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="A scope it grants (repeat for more)")
    ] = None,
    ttl: Annotated[str, typer.Option(help="How long it is valid: 90s, 15m, 1h, 7d")] = "1h",
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            envvar="EVENTKIT_AUTH_KEY_FILE",
            help="The secret or private key [default: EVENTKIT_AUTH_KEY]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Mint a token for development and print it (for EVENTKIT_TOKEN or --token)."""
    try:
        seconds = parse_duration(ttl)
    except ValueError as exc:
        fail(str(exc))
    key = os.environ.get("EVENTKIT_AUTH_KEY") or None
    if key_file is None and key is None:
        fail(
            "no key to sign with",
            "give --key-file (or EVENTKIT_AUTH_KEY_FILE / EVENTKIT_AUTH_KEY): the service's "
            "shared secret or private key; `eventkit auth keygen` makes one",
        )
    try:
        auth = Auth(key_file=key_file) if key_file is not None else Auth(key)
        minted = auth.mint(subject, scope or [], ttl=seconds)
    except ConfigError as exc:
        fail(str(exc))
    print(minted)


@app.command("keygen")
def keygen(
    algorithm: Annotated[
        str, typer.Option("--algorithm", "-a", help="HS256 (a shared secret) or EdDSA (a pair)")
    ] = "HS256",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write the key here (mode 600; an EdDSA pair's public half to OUT.pub); "
            "an HS256 secret is printed without it",
        ),
    ] = None,
) -> None:
    """Make a key: services verify tokens with it (EVENTKIT_AUTH_KEY_FILE)."""
    try:
        secret, public = generate_key(algorithm)
    except ConfigError as exc:
        fail(str(exc))
    if out is None:
        if public is not None:
            fail("an EdDSA pair needs --out FILE: the private key is written there, 0600")
        print(secret)
        return
    _write_private(out, secret + ("" if secret.endswith("\n") else "\n"))
    if public is None:
        note(f"wrote the HS256 secret to {out} (mode 600)")
        return
    pub = out.with_name(out.name + ".pub")
    pub.write_text(public)
    note(f"wrote the private key to {out} (mode 600) and the public key to {pub}")


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only (never a key left world-readable)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}")
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)
