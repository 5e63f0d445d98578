"""What a caller says when it sees no node of a service: where it looked, and what to check.

Callers and services meet on one broker URL and namespace. A call that finds no node names
both (the URL without its secrets) and the services it does see, so a caller pointed at
another broker or namespace than the service learns it from the error, not from a guess.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..wire import redact

__all__ = ["no_node_detail", "where_services_meet"]


def no_node_detail(
    service: str, version: str | None, namespace: str, url: str, known: Sequence[str]
) -> str:
    what = f"{service} (version {version})" if version else service
    return (
        f"no node of service {what} is known in namespace {namespace!r} on "
        f"{redact(url)}; known services: {', '.join(known) if known else 'none'}. "
        f"{where_services_meet(url)}"
    )


def where_services_meet(url: str) -> str:
    """What to check when a caller cannot see a service: they meet on one broker and namespace."""
    if url.startswith("memory:"):
        return (
            "memory:// reaches only this process: start the service in it, or give both "
            "processes the same shared broker (EVENTKIT_BROKER)"
        )
    return (
        "A caller sees only the services on the same broker URL and namespace: check the "
        "service's --broker / EVENTKIT_BROKER and EVENTKIT_NAMESPACE (it logs both as it starts)"
    )
