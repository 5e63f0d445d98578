"""The service: a named node with its subscribers and endpoints, its client and its settings.

:class:`Service` owns the lifecycle (connect, subscribe, serve, join the registry; drain and
leave on a stop) and wires the parts below it together with plain values. :class:`Client`
publishes and calls. Handlers are read once, at definition (:mod:`._handlers`), into
:class:`Subscriber` and :class:`Endpoint` values that a :class:`Router` collects.
"""

from ._client import Client, EndpointClient, ServiceClient, connect, new_node_id
from ._handlers import HandlerSignature, inspect_handler
from ._router import Endpoint, Router, Subscriber, endpoint, subscribe
from ._service import Service, ServiceStats
from ._settings import DEFAULT_BROKER, Settings

__all__ = [
    "DEFAULT_BROKER",
    "Client",
    "Endpoint",
    "EndpointClient",
    "HandlerSignature",
    "Router",
    "Service",
    "ServiceClient",
    "ServiceStats",
    "Settings",
    "Subscriber",
    "connect",
    "endpoint",
    "inspect_handler",
    "new_node_id",
    "subscribe",
]
