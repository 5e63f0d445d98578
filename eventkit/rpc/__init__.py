"""RPC over broker topics: the protocol, the caller, the server, deadlines and middleware.

A request is a message to a node's topic with its endpoint, reply topic, deadline and caller
in headers (:mod:`._protocol` names them all). :class:`Caller` picks a node through the
registry view and the selector, sends, and matches the reply; :class:`RpcServer` runs the
endpoints it is given as plain :class:`Procedure` values, and the streaming endpoints as
:class:`StreamProcedure` values (a caller holds a :class:`Stream`: items numbered, credit
granted by the receiver, heartbeats on idle streams). A caller sends its token with each
request, a server checks it through each procedure's guard (:mod:`eventkit.auth`), and a
caller may keep successful replies in its :class:`ReplyCache`. This package uses the registry
(:mod:`eventkit.discovery`), auth, the wire and the Broker protocol; nothing above it.
"""

from ._cache import CACHE_HINT, DEFAULT_CACHE_SIZE, ReplyCache
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
    STREAM_COUNT,
    STREAM_CREDIT,
    STREAM_FRAME,
    STREAM_HEARTBEAT,
    STREAM_ID,
    STREAM_KIND,
    STREAM_SEQ,
    STREAM_WINDOW,
    TOKEN,
    Frame,
    endpoint_topic,
    error_reply,
    node_topic,
    read_error,
    reply_topic,
    request_topic,
    service_topic,
    stream_topic,
)
from ._server import Procedure, RequestObserver, RpcServer
from ._stream import Stream
from ._stream_protocol import DEFAULT_HEARTBEAT, DEFAULT_WINDOW, StreamKind
from ._stream_state import StreamProcedure
from ._unseen import where_services_meet

__all__ = [
    "ADDRESS",
    "CACHE_HINT",
    "CALLER",
    "CALLER_ADDRESS",
    "DEADLINE",
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_HEARTBEAT",
    "DEFAULT_TIMEOUT",
    "DEFAULT_WINDOW",
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
    "Caller",
    "Context",
    "Frame",
    "Invocation",
    "Middleware",
    "Next",
    "Procedure",
    "Publisher",
    "ReplyCache",
    "RequestObserver",
    "RpcServer",
    "Stream",
    "StreamKind",
    "StreamProcedure",
    "compose",
    "current_message",
    "endpoint_topic",
    "error_reply",
    "inherited_deadline",
    "metadata_of",
    "node_topic",
    "propagated_headers",
    "read_error",
    "reply_topic",
    "request_topic",
    "service_topic",
    "stream_topic",
    "where_services_meet",
]
