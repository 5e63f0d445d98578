"""RPC over broker topics: the protocol, the caller, the server, deadlines and middleware.

A request is a message to a node's topic with its endpoint, reply topic, deadline and caller
in headers (:mod:`._protocol` names them all). :class:`Caller` picks a node through the
registry view and the selector, sends, and matches the reply; :class:`RpcServer` runs the
endpoints it is given as plain :class:`Procedure` values. This package uses the registry
(:mod:`eventkit.discovery`), the wire and the Broker protocol; nothing above it.
"""

from ._caller import DEFAULT_TIMEOUT, Caller
from ._context import (
    Context,
    Publisher,
    current_message,
    inherited_deadline,
    metadata_of,
    propagated_headers,
)
from ._middleware import Invocation, Middleware, Next, compose
from ._protocol import (
    ADDRESS,
    CALLER,
    CALLER_ADDRESS,
    DEADLINE,
    ENDPOINT,
    ERROR,
    METADATA_PREFIX,
    NO_RESPONDERS,
    NODE,
    OK,
    REPLY_TO,
    STATUS,
    endpoint_topic,
    error_reply,
    node_topic,
    reply_topic,
    request_topic,
    service_topic,
)
from ._server import Procedure, RequestObserver, RpcServer

__all__ = [
    "ADDRESS",
    "CALLER",
    "CALLER_ADDRESS",
    "DEADLINE",
    "DEFAULT_TIMEOUT",
    "ENDPOINT",
    "ERROR",
    "METADATA_PREFIX",
    "NODE",
    "NO_RESPONDERS",
    "OK",
    "REPLY_TO",
    "STATUS",
    "Caller",
    "Context",
    "Invocation",
    "Middleware",
    "Next",
    "Procedure",
    "Publisher",
    "RequestObserver",
    "RpcServer",
    "compose",
    "current_message",
    "endpoint_topic",
    "error_reply",
    "inherited_deadline",
    "metadata_of",
    "node_topic",
    "propagated_headers",
    "reply_topic",
    "request_topic",
    "service_topic",
]
