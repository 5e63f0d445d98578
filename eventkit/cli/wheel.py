"""The kit as a distribution: its name, version, and a wheel of the copy that runs.

``eventkit-micro`` is not on the package index yet, so a project made by ``eventkit new``
carries the kit it was made with: a wheel in its ``vendor/`` folder, built here from the
installed package (an editable install of a checkout works too) and its metadata, and found
by ``pip install --find-links vendor``. The project's requirement pins that version, so the
same line resolves from the index once the kit is published and ``vendor/`` is removed.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from ..wire import ConfigError

__all__ = ["DISTRIBUTION", "build_wheel", "kit_version", "wheel_name"]

DISTRIBUTION = "eventkit-micro"
"""The kit's name on the package index (``import eventkit`` stays): ``eventkit`` there is
another project. docs/install.md says how the name was checked."""

_PACKAGE = Path(__file__).resolve().parents[1]
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed times: the same kit makes the same wheel


def kit_version() -> str:
    """The installed kit's version; an error that says how to install it when it is not."""
    try:
        return distribution(DISTRIBUTION).version
    except PackageNotFoundError:
        raise ConfigError(
            f"the {DISTRIBUTION} distribution is not installed here (eventkit is imported from "
            f"{_PACKAGE}): install it, e.g. `pip install -e .` in a checkout, or pass --no-vendor"
        ) from None


def wheel_name(version: str) -> str:
    return f"{DISTRIBUTION.replace('-', '_')}-{version}-py3-none-any.whl"


def build_wheel(folder: Path) -> Path:
    """Write a wheel of the running kit into ``folder``; returns its path."""
    dist = distribution(DISTRIBUTION)
    version = dist.version
    info = f"{DISTRIBUTION.replace('-', '_')}-{version}.dist-info"
    files: list[tuple[str, bytes]] = [
        (f"eventkit/{path.relative_to(_PACKAGE).as_posix()}", path.read_bytes())
        for path in sorted(_PACKAGE.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]
    metadata = dist.read_text("METADATA")
    if metadata is None:
        raise ConfigError(f"the installed {DISTRIBUTION} has no METADATA: reinstall it")
    files.append((f"{info}/METADATA", metadata.encode()))
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        files.append((f"{info}/entry_points.txt", entry_points.encode()))
    wheel = (
        "Wheel-Version: 1.0\nGenerator: eventkit new\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files.append((f"{info}/WHEEL", wheel.encode()))
    record = "".join(f"{name},{_digest(data)},{len(data)}\n" for name, data in files)
    files.append((f"{info}/RECORD", (record + f"{info}/RECORD,,\n").encode()))
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / wheel_name(version)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            entry = zipfile.ZipInfo(name, date_time=_EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return target


def _digest(data: bytes) -> str:
    raw = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
