"""What a running Service hands to the layers below it, as plain values.

The RPC server gets :class:`~eventkit.rpc.Procedure`\\ s, the registry the node's record, a
broker with a service discovery of its own (NATS) a :class:`ServiceDescription`. Each is
built once at start from the service's endpoints and subscribers, so the layers below never
see a Service, and a heartbeat repeats the same record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from pydantic import TypeAdapter

from ..auth import Guard
from ..brokers.base import EndpointDescription, ServiceDescription
from ..discovery import EndpointInfo, NodeInfo, SubscriptionInfo, node_record
from ..rpc import CACHE_HINT, Context, Procedure, RpcServer, StreamProcedure, endpoint_topic
from ._router import Endpoint, Subscriber

__all__ = ["endpoint_info", "node_info", "procedure", "service_description"]


def procedure(endpoint: Endpoint, guard: Guard | None = None) -> Procedure | StreamProcedure:
    """``endpoint`` as the RPC server runs it: decoding decided here, once; ``guard``
    checks each request's token before it is decoded."""
    signature = endpoint.signature
    func, arrange = signature.caller(), signature.arrange
    kind = endpoint.kind
    if kind is not None:
        return StreamProcedure(
            name=endpoint.name,
            kind=kind,
            codec=signature.codec,
            open=_stream_opener(func, arrange, replies_once=kind == "client"),
            wants_context=signature.context_param is not None,
            metadata=dict(endpoint.metadata),
            window=endpoint.window,
            guard=guard,
        )

    async def call(request: Any, ctx: Context | None) -> Any:
        return await func(*arrange(request, ctx))

    return Procedure(
        name=endpoint.name,
        codec=signature.codec,
        call=call,
        wants_context=signature.context_param is not None,
        metadata=dict(endpoint.metadata),
        guard=guard,
    )


def _stream_opener(func: Any, arrange: Any, *, replies_once: bool) -> Any:
    """``open(request, ctx)``: the handler's items (a client stream's one reply, as one)."""
    if not replies_once:

        def items(request: Any, ctx: Context | None) -> AsyncIterator[Any]:
            generator: AsyncIterator[Any] = func(*arrange(request, ctx))
            return generator

        return items

    async def reply(request: Any, ctx: Context | None) -> AsyncIterator[Any]:
        yield await func(*arrange(request, ctx))

    return reply


def endpoint_info(endpoint: Endpoint) -> EndpointInfo:
    """The registry's entry for ``endpoint``: its name and request/response JSON Schemas;
    in its metadata ``idempotent``, the ``cache`` hint callers honour, and the ``scopes`` a
    token needs (names only: no key or token is ever in a record)."""
    signature = endpoint.signature
    request = signature.codec.json_schema() if signature.codec is not None else {}
    metadata = dict(endpoint.metadata)
    if endpoint.idempotent:
        metadata["idempotent"] = "true"
    if endpoint.cache:
        metadata[CACHE_HINT] = repr(float(endpoint.cache))
    if endpoint.scopes:
        metadata["scopes"] = " ".join(endpoint.scopes)
    return EndpointInfo(
        name=endpoint.name,
        request=request,
        response=_schema_of(signature.returns),
        metadata=metadata,
        stream=endpoint.kind,
    )


def node_info(
    *,
    node_id: str,
    service: str,
    version: str,
    metadata: dict[str, str],
    endpoints: Sequence[Endpoint],
    subscribers: Sequence[Subscriber],
    ttl: float,
) -> NodeInfo:
    """The record a node announces: endpoints with their JSON Schemas, subscriptions, TTL."""
    return node_record(
        node_id=node_id,
        service=service,
        version=version,
        metadata=metadata,
        endpoints=[endpoint_info(endpoint) for endpoint in endpoints],
        subscriptions=[
            SubscriptionInfo(topic=sub.topic, queue=sub.queue, durable=sub.durable)
            for sub in subscribers
        ],
        ttl=ttl,
    )


def service_description(
    *,
    namespace: str,
    service: str,
    node_id: str,
    version: str,
    description: str,
    metadata: dict[str, str],
    endpoints: Sequence[Endpoint],
    rpc: RpcServer,
) -> ServiceDescription:
    """The service as a broker's own discovery lists it: each endpoint on its own topic in
    the service's queue group (the RPC server serves them: ``endpoint_topics=True``), its
    counters from the RPC server; a streaming endpoint says how it streams in the metadata
    key ``eventkit-stream`` (a plain request to its topic is answered 400: streams are
    opened with ``kit.stream``)."""
    return ServiceDescription(
        name=service,
        node_id=node_id,
        version=version,
        description=description,
        metadata=dict(metadata),
        endpoints=[
            EndpointDescription(
                name=endpoint.name,
                subject=endpoint_topic(namespace, service, endpoint.name),
                queue_group=service,
                metadata=_listed_metadata(endpoint),
            )
            for endpoint in endpoints
        ],
        stats=rpc.endpoint_stats,
    )


def _listed_metadata(endpoint: Endpoint) -> dict[str, str]:
    metadata = dict(endpoint.metadata)
    if endpoint.kind is not None:
        metadata["eventkit-stream"] = endpoint.kind
    return metadata


def _schema_of(tp: Any) -> dict[str, Any]:
    if tp is Any or tp is None or tp is type(None):
        return {}
    try:
        return TypeAdapter(tp).json_schema()
    except Exception:  # a type pydantic cannot describe still works; it just has no schema
        return {}
