"""Finding NATS micro services: ``$SRV.INFO`` asked, every answer gathered.

Any service written with a NATS micro framework (nats.go's ``micro``, nats-py's
``nats.micro``, nats.js, ...) answers ``$SRV.INFO`` (all services) and ``$SRV.INFO.{name}``
with its ADR-32 description: name, instance id, version, metadata and endpoints with their
subjects. :func:`find_services` sends one request with a reply inbox and gathers the answers
until ``wait`` passes, or at once when nobody listens (NATS's no-responders notice), or, for
one named service, once answers stop coming for a short quiet gap. eventkit's own services
answer too (they are listed on ``$SRV``); they are told apart by the ``eventkit-endpoint``
mark on their endpoints and returned with ``kind="eventkit"``. An answer that is not a valid
description is skipped (logged, bounded).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import anyio
import pydantic_core
from nats.nuid import NUID

from ...wire import Message
from ..base import NO_RESPONDERS, REPLY_TO, EndpointDescription, ServiceDescription
from ._service_api import EVENTKIT_ENDPOINT, INFO

if TYPE_CHECKING:
    from ._broker import NatsBroker

__all__ = ["MICRO", "find_services", "read_info"]

log = logging.getLogger("eventkit.broker.nats")

MICRO = "nats-micro"
"""The kind of a service found on ``$SRV`` that eventkit did not start."""
QUIET_GAP = 0.05
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_NUID = NUID()


async def find_services(
    broker: NatsBroker, name: str | None, wait: float
) -> list[ServiceDescription]:
    """Every service (named ``name``, or all) that answers ``$SRV.INFO`` within ``wait``."""
    if name is not None and not _NAME.fullmatch(name):
        return []  # ADR-32 allows no such service name: nothing can answer to it
    answers: list[Message] = []
    arrived = anyio.Event()
    done = anyio.Event()

    async def gather(message: Message) -> None:
        if message.headers.get(NO_RESPONDERS):
            done.set()
            return
        answers.append(message)
        arrived.set()

    inbox = f"_INBOX.{_NUID.next().decode()}"
    subscription = await broker.subscribe(inbox, gather)
    try:
        subject = "$SRV.INFO" if name is None else f"$SRV.INFO.{name}"
        await broker.publish(Message(subject, b"", {REPLY_TO: inbox}))
        with anyio.move_on_after(wait):
            async with anyio.create_task_group() as tg:
                tg.start_soon(_until, done, tg.cancel_scope)
                if name is not None:  # one service: done once its instances have answered
                    await arrived.wait()
                    while True:
                        count = len(answers)
                        await anyio.sleep(QUIET_GAP)
                        if len(answers) == count:
                            break
                    tg.cancel_scope.cancel()
    finally:
        await subscription.stop()
    found = [info for info in map(read_info, answers) if info is not None]
    return [info for info in found if name is None or info.name == name]


async def _until(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def read_info(message: Message) -> ServiceDescription | None:
    """An ``io.nats.micro.v1.info_response`` as plain values (None when it is not one)."""
    try:
        info = pydantic_core.from_json(message.body)
        if not isinstance(info, dict) or info.get("type") != INFO:
            raise ValueError(f"not an {INFO}")
        endpoints = [_endpoint(entry) for entry in info.get("endpoints") or ()]
        ours = any(EVENTKIT_ENDPOINT in endpoint.metadata for endpoint in endpoints)
        return ServiceDescription(
            name=_text(info, "name"),
            node_id=_text(info, "id"),
            version=_text(info, "version"),
            description=str(info.get("description") or ""),
            metadata=_strings(info.get("metadata")),
            endpoints=endpoints,
            kind="eventkit" if ours else MICRO,
        )
    except (ValueError, TypeError, KeyError) as exc:
        log.debug("skipping an answer to $SRV.INFO: %.200r (%s)", message.body, exc)
        return None


def _endpoint(entry: Any) -> EndpointDescription:
    if not isinstance(entry, dict):
        raise TypeError("an endpoint is not an object")
    return EndpointDescription(
        name=_text(entry, "name"),
        subject=_text(entry, "subject"),
        queue_group=str(entry.get("queue_group") or ""),
        metadata=_strings(entry.get("metadata")),
    )


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} is not a non-empty string")
    return value


def _strings(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError("metadata is not an object")
    return {str(k): str(v) for k, v in value.items()}
