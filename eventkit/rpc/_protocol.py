"""The RPC protocol over broker topics: header names and topics, in one place.

Each node subscribes to its own topic ``{ns}.rpc.{service}.{node_id}`` (where callers that
chose it through the selector send), and to ``{ns}.rpc.{service}`` in queue group
``{service}`` (for callers with no view of the registry). A request carries, in headers, the
endpoint, the reply topic (which ends with the call's correlation id), the deadline, the
caller, its token (when it has one) and the propagated metadata; its body is the request's
JSON. The reply's body is the response's JSON, or on failure the error
``{id, code, detail, status}`` with its code in the ``eventkit-status`` header (and a
one-line ``eventkit-error``). On a broker with a service discovery of its own (NATS), each
endpoint is also served on a subject of its own, ``{ns}.srv.{service}.{endpoint}`` (queue
group ``{service}``), where a plain request (the request's JSON, a reply topic, no eventkit
headers) from any client reaches it. The caller,
the server and the tools import these names from here; the reply topic, the deadline and the
reply's status are the broker's own request headers (:mod:`eventkit.brokers.base`), so an
adapter knows a request without knowing RPC. A streaming endpoint is opened with such a
request (marked by ``eventkit-stream-window``) and then speaks in frames
(``eventkit-stream-frame``): to the caller on its reply topic, to the server on the node's
stream topic ``{ns}.rpc.{service}.{node_id}.stream`` (docs/rpc.md, "Streams").
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
    "STREAM_COUNT",
    "STREAM_CREDIT",
    "STREAM_FRAME",
    "STREAM_HEARTBEAT",
    "STREAM_ID",
    "STREAM_KIND",
    "STREAM_SEQ",
    "STREAM_WINDOW",
    "TOKEN",
    "Frame",
    "endpoint_topic",
    "error_reply",
    "node_topic",
    "read_error",
    "reply_topic",
    "request_topic",
    "service_topic",
    "stream_topic",
]

ENDPOINT = "eventkit-endpoint"
"""The endpoint a request is for, like ``Greeter.Hello``."""
DEADLINE = REPLY_BY
"""When the caller stops waiting: seconds since the epoch (the broker's reply-by header)."""
CALLER = "eventkit-caller"
"""Node id of the publisher or caller."""
CALLER_ADDRESS = "eventkit-caller-address"
"""Where the caller runs (host name and process id)."""
TOKEN = "eventkit-token"
"""The sender's token (a signed JWT, docs/security.md), on every call, stream open and event
of a client that has one. A secret: never logged, never propagated onward (a service calls
with its own), never in a registry record."""
METADATA_PREFIX = "eventkit-md-"
"""Propagated metadata: ``eventkit-md-{key}``, carried onward by calls and publishes."""
STATUS = REPLY_STATUS
"""On a reply: the error's code; absent on a success (no status means 200)."""
ERROR = REPLY_ERROR
"""On an error reply: its detail in one line, at most 512 characters."""
NODE = "eventkit-node"
"""On an error reply: the node that answered."""
OK = "200"

# -- streams ---------------------------------------------------------------------------------

STREAM_WINDOW = "eventkit-stream-window"
"""On a stream's opening request: the caller's receive window (items it takes before it must
grant more credit); its presence makes the request an open. On the accept of an endpoint that
takes items: the server's window for them."""
STREAM_HEARTBEAT = "eventkit-stream-heartbeat"
"""On the open (asked) and the accept (granted): seconds between frames on an idle stream;
a side that hears nothing for 3 of them takes the other for dead."""
STREAM_KIND = "eventkit-stream-kind"
"""On the accept: ``server`` (items to the caller), ``client`` (items to the server, one reply)
or ``bidi`` (both)."""
STREAM_FRAME = "eventkit-stream-frame"
"""The kind of a frame after the open: one of :class:`Frame`."""
STREAM_ID = "eventkit-stream-id"
"""On frames to the server: the stream they belong to (the caller's reply topic)."""
STREAM_SEQ = "eventkit-stream-seq"
"""On ``items``: the sequence number (from 1) of the first item in the body; on ``end``,
``error`` and ``heartbeat``: the number of the last item the sender sent."""
STREAM_COUNT = "eventkit-stream-count"
"""On ``items``: how many items the body's JSON array holds."""
STREAM_CREDIT = "eventkit-stream-credit"
"""On any frame from a side that takes items: the highest item number the other side may
send (cumulative, so a lost or late grant is made good by the next one)."""


class Frame:
    """The frame kinds (values of ``eventkit-stream-frame``)."""

    ACCEPT = "accept"
    """server -> caller: the stream runs (credit for the caller's items, if it takes any)."""
    ITEMS = "items"
    """either way: a JSON array of items, numbered from ``eventkit-stream-seq``."""
    CREDIT = "credit"
    """either way: more credit (``eventkit-stream-credit``)."""
    END = "end"
    """server -> caller: the stream ended well; caller -> server: no more items (half-close)."""
    ERROR = "error"
    """server -> caller: the stream failed; ``eventkit-status`` and the error body, as a reply."""
    CANCEL = "cancel"
    """caller -> server: the caller gave up; the handler is cancelled."""
    HEARTBEAT = "heartbeat"
    """either way: nothing else was sent for a while; carries the last item number and credit."""


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


def stream_topic(namespace: str, service: str, node_id: str) -> str:
    """Where one node takes the frames of the streams it serves (credit, items, end, cancel)."""
    return f"{namespace}.rpc.{service}.{node_id}.stream"


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


def read_error(reply: Message) -> RemoteError:
    """The typed error a reply with a status other than 200 carries (also one this kit did
    not write, a NATS micro service's: the error header says what failed)."""
    status = reply.headers.get(STATUS, "500")
    try:
        wire = pydantic_core.from_json(reply.body)
    except ValueError:
        wire = None
    if not isinstance(wire, dict) or "detail" not in wire:
        text = reply.body.decode(errors="replace")
        wire = {"code": status, "detail": reply.headers.get(ERROR) or text}
    if not str(wire.get("code", "")).isdigit():
        wire["code"] = 500  # a reply this kit did not write: still a typed error
    return RemoteError.from_wire(wire)
