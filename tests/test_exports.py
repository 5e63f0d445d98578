"""The public facade: ``eventkit.__all__`` is exactly this list, sorted, and every name exists.

A name added to or dropped from the facade is an API change: it has to be made here too.
"""

from __future__ import annotations

import eventkit

PUBLIC = [
    "Auth",
    "BadRequest",
    "Broker",
    "BrokerClosed",
    "BrokerError",
    "Bucket",
    "Capabilities",
    "Change",
    "Client",
    "ConfigError",
    "ConnectionLost",
    "Context",
    "DeadLetter",
    "DeadlineExceeded",
    "DeliveryPolicy",
    "DriverMissing",
    "Endpoint",
    "Entry",
    "Event",
    "EventKitError",
    "Forbidden",
    "Identity",
    "InternalError",
    "InvalidEvent",
    "InvalidTopic",
    "Invocation",
    "Message",
    "Middleware",
    "Next",
    "NotFound",
    "PayloadTooLarge",
    "PublishError",
    "RemoteError",
    "RevisionConflict",
    "Router",
    "Service",
    "ServiceStats",
    "ServiceUnavailable",
    "Settings",
    "Store",
    "StoreError",
    "Stream",
    "StreamClosed",
    "Subscriber",
    "Subscription",
    "Unauthorized",
    "UnsupportedFeature",
    "__version__",
    "connect",
    "endpoint",
    "from_url",
    "subscribe",
]


def test_all_is_exactly_the_public_api() -> None:
    assert eventkit.__all__ == PUBLIC


def test_all_is_sorted_and_every_name_exists() -> None:
    assert eventkit.__all__ == sorted(eventkit.__all__)
    for name in eventkit.__all__:
        assert hasattr(eventkit, name), name


def test_no_public_name_left_out() -> None:
    public = {n for n in vars(eventkit) if not n.startswith("_")}
    modules = {n for n, v in vars(eventkit).items() if type(v).__name__ == "module"}
    assert public - modules - set(eventkit.__all__) == set()
