"""Why a call's attempt ended without a reply, and whether another node may be tried.

The caller fails over only when the request surely did not run (:class:`NodeGone`), or,
for an idempotent endpoint, when the node went silent (:class:`NodeLost`) or the attempt's
time ran out (:class:`Expired`, set on the reply future by the shared deadline timer).
"""

from __future__ import annotations

import asyncio

from ..wire import Message

__all__ = ["Expired", "NodeGone", "NodeLost", "expire"]


class NodeGone(Exception):
    """The request surely did not run on that node: safe to try another."""


class Expired(Exception):
    """An attempt's time ran out (set on the reply future at its deadline)."""


def expire(future: asyncio.Future[Message]) -> None:
    if not future.done():
        future.set_exception(Expired())


class NodeLost(Exception):
    """The node stopped answering (its registry TTL ran out) while the call waited: the
    request may or may not have run, so only an idempotent call moves to another node."""
