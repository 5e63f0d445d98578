"""The key-value store: typed buckets with revisions, compare-and-set, TTL and watches.

``svc.store("carts", Cart)`` (or ``kit.store(...)``) is a :class:`Bucket` of ``Cart``
values. The backend is the service's broker where it can hold one (NATS JetStream KV, the
memory bus) or a store URL (``sqlite:///path``, ``postgresql://...``); see
:mod:`._store`. Backends that need a driver load on first use.
"""

from ._bucket import Bucket, InvalidValue
from ._model import (
    Backend,
    BucketOptions,
    Change,
    Entry,
    RawBucket,
    RawChange,
    Record,
    RevisionConflict,
    StoreError,
)
from ._store import Store, open_backend

__all__ = [
    "Backend",
    "Bucket",
    "BucketOptions",
    "Change",
    "Entry",
    "InvalidValue",
    "RawBucket",
    "RawChange",
    "Record",
    "RevisionConflict",
    "Store",
    "StoreError",
    "open_backend",
]
