"""Services eventkit did not start, as registry records.

A broker with a service discovery of its own (:class:`~eventkit.brokers.base.ServiceFinder`:
NATS, whose ``$SRV.INFO`` every NATS micro service answers) finds services written without
eventkit. :func:`outside_record` makes each into a :class:`NodeInfo` of its own ``kind``
(``"nats-micro"``), its endpoints with the subjects they take requests on, so the registry
folds them into the same view as gossiped records: one :meth:`RegistryView.apply` per answer,
kept alive by each query that finds them again and dropped when their TTL runs out. They are
never gossiped: every process asks the broker itself.
"""

from __future__ import annotations

from ..brokers.base import ServiceDescription
from ._records import EndpointInfo, NodeInfo

__all__ = ["outside_record"]


def outside_record(found: ServiceDescription, *, ttl: float) -> NodeInfo:
    """The record of a service found by a broker's discovery (``started`` is unknown: 0, so
    finding it again changes nothing but its expiry)."""
    return NodeInfo(
        id=found.node_id,
        service=found.name,
        version=found.version,
        address="",
        metadata=dict(found.metadata),
        endpoints=[
            EndpointInfo(
                name=endpoint.name, subject=endpoint.subject, metadata=dict(endpoint.metadata)
            )
            for endpoint in found.endpoints
        ],
        ttl=ttl,
        started=0.0,
        kind=found.kind,
    )
