"""Client: publish CloudEvents (and, with the RPC layer, make calls) over one broker.

``eventkit.connect(url)`` gives a client for scripts and other processes; every Service has
one for its own publishes. The publish path is one encode of the data and one broker publish.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from .brokers import Broker, from_url
from .context import propagated_headers
from .events import EventIds, check_extensions, now_iso, to_message
from .settings import Settings

__all__ = ["Client", "connect"]


def new_node_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:12]}"


class Client:
    """Publishes (and calls) over a broker; ``async with`` connects and closes it.

    ``broker`` is a URL or a Broker instance; by default ``EVENTKIT_BROKER`` or ``memory://``.
    ``source`` is the CloudEvents source of what this client publishes.
    """

    def __init__(
        self,
        broker: Broker | str | None = None,
        *,
        settings: Settings | None = None,
        node_id: str | None = None,
        source: str | None = None,
        owns_broker: bool = True,
        **broker_options: Any,
    ) -> None:
        if settings is None:
            settings = Settings.load()
            if isinstance(broker, str):  # a URL named in code is the caller's explicit choice
                settings = settings.with_(broker=broker)
        self.settings = settings
        self.node_id = node_id or settings.node_id or new_node_id("client")
        self.namespace = settings.namespace
        self.source = source or f"/clients/{self.node_id}"
        if broker is None or isinstance(broker, str):
            broker_options.setdefault("drain_timeout", settings.drain_timeout)
            self.broker: Broker = from_url(settings.broker, **broker_options)
        else:
            self.broker = broker
        self._owns_broker = owns_broker
        self._ids = EventIds()
        self._connected = False

    async def connect(self) -> None:
        if self._owns_broker:
            await self.broker.connect()
        self._connected = True

    async def close(self) -> None:
        self._connected = False
        if self._owns_broker:
            await self.broker.close()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def publish(
        self,
        topic: str,
        data: Any = None,
        *,
        type: str | None = None,
        subject: str | None = None,
        extensions: Mapping[str, Any] | None = None,
        dataschema: str | None = None,
        metadata: Mapping[str, str] | None = None,
        structured: bool = False,
        id: str | None = None,
    ) -> str:
        """Publish ``data`` (a pydantic model, a JSON value or bytes) as a CloudEvent.

        ``type`` defaults to the topic. Binary content mode unless ``structured``.
        Metadata of the message being handled, if any, propagates. Returns the event id.
        """
        if extensions:
            check_extensions(extensions)
        event_id = id or self._ids()
        message = to_message(
            topic,
            data,
            id=event_id,
            source=self.source,
            type=type or topic,
            time=now_iso(),
            subject=subject,
            dataschema=dataschema,
            extensions=extensions,
            headers=propagated_headers(dict(metadata) if metadata else None),
            structured=structured,
        )
        await self.broker.publish(message)
        return event_id


def connect(broker: str | None = None, **options: Any) -> Client:
    """A client for ``broker`` (a URL; ``EVENTKIT_BROKER`` or ``memory://`` by default).

    Use it as ``async with eventkit.connect("nats://127.0.0.1:4222") as kit: ...``.
    """
    return Client(broker, **options)
