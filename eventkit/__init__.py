"""eventkit: event-driven microservices on a broker.

CloudEvents pub/sub with pydantic-typed data, RPC over broker topics, and a registry gossiped
as events. This module only re-exports the public API; no broker driver is imported here.
"""

from .brokers import Broker, Capabilities, DeliveryPolicy, Subscription, from_url
from .rpc import Context, Invocation, Middleware, Next
from .service import (
    Client,
    Endpoint,
    Router,
    Service,
    ServiceStats,
    Settings,
    Subscriber,
    connect,
    endpoint,
    subscribe,
)
from .wire import (
    BadRequest,
    BrokerClosed,
    BrokerError,
    ConfigError,
    ConnectionLost,
    DeadLetter,
    DeadlineExceeded,
    DriverMissing,
    Event,
    EventKitError,
    Forbidden,
    InternalError,
    InvalidEvent,
    InvalidTopic,
    Message,
    NotFound,
    PayloadTooLarge,
    PublishError,
    RemoteError,
    ServiceUnavailable,
    UnsupportedFeature,
)

__version__ = "0.1.0"

__all__ = [
    "BadRequest",
    "Broker",
    "BrokerClosed",
    "BrokerError",
    "Capabilities",
    "Client",
    "ConfigError",
    "ConnectionLost",
    "Context",
    "DeadLetter",
    "DeadlineExceeded",
    "DeliveryPolicy",
    "DriverMissing",
    "Endpoint",
    "Event",
    "EventKitError",
    "Forbidden",
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
    "Router",
    "Service",
    "ServiceStats",
    "ServiceUnavailable",
    "Settings",
    "Subscriber",
    "Subscription",
    "UnsupportedFeature",
    "__version__",
    "connect",
    "endpoint",
    "from_url",
    "subscribe",
]
