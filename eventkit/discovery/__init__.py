"""Discovery: the registry gossiped as events, and the selector that picks a node.

:mod:`._records` are the wire records (made from plain values), :class:`RegistryView` the pure
fold of them into ``service -> nodes``, :class:`Registry` the I/O at its edge (subscribe,
announce, heartbeat, query, expire), and :class:`Selector` a pure choice among nodes. This
package knows the wire and the Broker protocol, nothing above: a service joins it by handing
over its record as plain values.
"""

from ._records import (
    ADDRESS,
    ANNOUNCE,
    LEAVE,
    QUERY,
    EndpointInfo,
    NodeInfo,
    RegistryChange,
    RegistryQuery,
    ServiceInfo,
    SubscriptionInfo,
    node_record,
    registry_topic,
)
from ._registry import Registry
from ._selector import STRATEGIES, Selector, Strategy
from ._view import RegistryView

__all__ = [
    "ADDRESS",
    "ANNOUNCE",
    "LEAVE",
    "QUERY",
    "STRATEGIES",
    "EndpointInfo",
    "NodeInfo",
    "Registry",
    "RegistryChange",
    "RegistryQuery",
    "RegistryView",
    "Selector",
    "ServiceInfo",
    "Strategy",
    "SubscriptionInfo",
    "node_record",
    "registry_topic",
]
