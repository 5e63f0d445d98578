"""JetStream key-value buckets for the store (:mod:`eventkit.store`), on the broker's connection.

The store asks the broker for a bucket (the :class:`~eventkit.brokers.base.KeyValueHolder`
capability) and drives nats-py's ``KeyValue`` itself; this module only finds or makes the
bucket. A bucket is made the way ``nats kv add`` makes one (a stream ``KV_{bucket}`` over
``$KV.{bucket}.>``), on file storage, with the broker's ``replicas`` and direct gets. An
acknowledged write is as durable as the server's JetStream settings make it:
``sync_interval`` decides when the server fsyncs (see docs/store.md and the shipped
configs under brokers/nats/).
"""

from __future__ import annotations

from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BadRequestError, BucketNotFoundError
from nats.js.kv import KeyValue

from ...wire import UnsupportedFeature
from ._errors import DRIVER_ERRORS, translate

__all__ = ["open_bucket"]

_NAME_IN_USE = 10058  # a stream of that name exists (made meanwhile by another process)


async def open_bucket(
    nc: Client, bucket: str, *, history: int, replicas: int, timeout: float, where: str
) -> KeyValue:
    """The bucket ``bucket``, made if it does not exist (an existing one is used as it is)."""
    js = nc.jetstream(timeout=timeout)
    doing = f"opening the key-value bucket {bucket!r}"
    try:
        try:
            return await js.key_value(bucket)
        except BucketNotFoundError:
            pass
        config = KeyValueConfig(
            bucket=bucket,
            history=history,
            replicas=replicas,
            storage=StorageType.FILE,
            direct=True,
        )
        try:
            return await js.create_key_value(config)
        except BadRequestError as exc:
            if exc.err_code != _NAME_IN_USE:
                raise
            return await js.key_value(bucket)  # another process made it first
    except DRIVER_ERRORS as exc:
        error = translate(exc, doing, where)
        if isinstance(error, UnsupportedFeature):
            error = UnsupportedFeature(
                f"NATS at {where} has no JetStream, which the key-value store needs (start "
                "the server with `nats-server -js`, or `eventkit up`)"
            )
        raise error from exc
