"""The RPC protocol over broker topics: header names and topics, in one place.

Each node subscribes to its own topic ``{ns}.rpc.{service}.{node_id}`` (where callers that
chose it through the selector send), and to ``{ns}.rpc.{service}`` in queue group
``{service}`` (for callers with no view of the registry). A request carries, in headers, the
endpoint, the reply topic (which ends with the call's correlation id), the deadline, the
caller and the propagated metadata; its body is the request's JSON. The reply's body is the
response's JSON, or on failure the error ``{id, code, detail, status}`` with its code in the
``eventkit-status`` header (and a one-line ``eventkit-error``). On a broker with a service
discovery of its own (NATS), each endpoint is also served on a subject of its own,
``{ns}.srv.{service}.{endpoint}`` (queue group ``{service}``), where a plain request (the
request's JSON, a reply topic, no eventkit headers) from any client reaches it. The caller,
the server and the tools import these names from here; the reply topic, the deadline and the
reply's status are the broker's own request headers (:mod:`eventkit.brokers.base`), so an
adapter knows a request without knowing RPC.
"""

from __future__ import annotations

import pydantic_core

from ..brokers.base import NO_RESPONDERS, REPLY_BY, REPLY_ERROR, REPLY_STATUS, REPLY_TO
from ..discovery import ADDRESS, NodeInfo
from ..wire import Message, NotFound, RemoteError

__all__ = [
    "ADDRESS",
    "CALLER",
    "CALLER_ADDRESS",
    "DEADLINE",
    "ENDPOINT",
    "ERROR",
    "METADATA_PREFIX",
    "NODE",
    "NO_RESPONDERS",
    "OK",
    "REPLY_TO",
    "STATUS",
    "endpoint_topic",
    "error_reply",
    "node_topic",
    "reply_topic",
    "request_topic",
    "service_topic",
]

ENDPOINT = "eventkit-endpoint"
"""The endpoint a request is for, like ``Greeter.Hello``."""
DEADLINE = REPLY_BY
"""When the caller stops waiting: seconds since the epoch (the broker's reply-by header)."""
CALLER = "eventkit-caller"
"""Node id of the publisher or caller."""
CALLER_ADDRESS = "eventkit-caller-address"
"""Where the caller runs (host name and process id)."""
METADATA_PREFIX = "eventkit-md-"
"""Propagated metadata: ``eventkit-md-{key}``, carried onward by calls and publishes."""
STATUS = REPLY_STATUS
"""On a reply: the error's code; absent on a success (no status means 200)."""
ERROR = REPLY_ERROR
"""On an error reply: its detail in one line, at most 512 characters."""
NODE = "eventkit-node"
"""On an error reply: the node that answered."""
OK = "200"


def service_topic(namespace: str, service: str) -> str:
    """Where any node of ``service`` takes requests (queue group ``service``)."""
    return f"{namespace}.rpc.{service}"


def endpoint_topic(namespace: str, service: str, endpoint: str) -> str:
    """Where any node of ``service`` takes plain requests for one endpoint (queue group
    ``service``); served where the broker lists services natively (see :class:`RpcServer`)."""
    return f"{namespace}.srv.{service}.{endpoint}"


def node_topic(namespace: str, service: str, node_id: str) -> str:
    """Where one node takes the requests meant for it."""
    return f"{namespace}.rpc.{service}.{node_id}"


def request_topic(namespace: str, node: NodeInfo, endpoint: str) -> str:
    """Where a request for ``endpoint`` goes: the node's own topic, or, for a service
    eventkit did not start (a NATS micro service), the subject its discovery gave the
    endpoint. Raises :class:`NotFound` when such a service has no such endpoint."""
    if node.kind == "eventkit":
        return node_topic(namespace, node.service, node.id)
    for info in node.endpoints:
        if info.name == endpoint and info.subject:
            return info.subject
    known = ", ".join(sorted(e.name for e in node.endpoints)) or "none"
    raise NotFound(
        f"service {node.service!r} ({node.kind}) has no endpoint {endpoint!r}; it has: {known}",
        id=node.service,
    )


def reply_topic(namespace: str, node_id: str) -> str:
    """The caller's inbox prefix; each call appends its correlation id as the last token."""
    return f"{namespace}.reply.{node_id}"


def error_reply(reply_to: str, error: RemoteError, node_id: str) -> Message:
    """The reply that carries ``error`` to the caller."""
    body = pydantic_core.to_json(error.to_wire())
    return Message(
        reply_to, body, {STATUS: str(error.code), ERROR: _one_line(error), NODE: node_id}
    )


_ERROR_LIMIT = 512


def _one_line(error: RemoteError) -> str:
    """The error's detail as a header value: one line, at most 512 characters."""
    text = " ".join(error.detail.split())
    return text if len(text) <= _ERROR_LIMIT else text[: _ERROR_LIMIT - 3] + "..."
