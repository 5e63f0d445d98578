"""The wire: what crosses a broker, and the one way it is read and written.

A :class:`Message` (topic, string headers, body bytes) is all a broker carries. Events are
CloudEvents 1.0 (:class:`Event`), written by :func:`to_message` in binary or structured mode
and read back by a :class:`Decoder`, the single decode path that subscribers, the RPC server,
the registry and the test helpers share. Topic names, the error tree every layer raises, the
one redaction of secrets (:func:`redact`) and the one way to log a value off the wire
(:func:`loggable`, :class:`LogLimiter`) live here too, at the bottom of the library: this
package imports nothing else of eventkit.
"""

from ._attributes import is_rfc3339, is_uri, is_uri_reference
from ._codec import DataCodec, EnvelopeReader
from ._decode import (
    Decoder,
    build_event,
    decode_attributes,
    decode_event,
    event_from_headers,
    event_id_of,
    is_json,
    is_structured,
)
from ._encode import check_extensions, encode_data, to_message
from ._errors import (
    BadRequest,
    BrokerClosed,
    BrokerError,
    ConfigError,
    ConnectionLost,
    DeadLetter,
    DeadlineExceeded,
    DriverMissing,
    EventKitError,
    Forbidden,
    InternalError,
    InvalidEvent,
    InvalidTopic,
    NotFound,
    PayloadTooLarge,
    PublishError,
    RemoteError,
    ServiceUnavailable,
    StreamClosed,
    Unauthorized,
    UnsupportedFeature,
)
from ._event import (
    CONTENT_TYPE,
    JSON,
    OCTETS,
    SPECVERSION,
    STRUCTURED,
    Event,
    EventIds,
    dataschema_of,
    now_iso,
)
from ._foreign import PlainDecoder
from ._header_values import decode_header_value, encode_header_value, needs_encoding
from ._logs import LogLimiter, loggable
from ._message import (
    DEAD_LETTER_ATTEMPTS,
    DEAD_LETTER_REASON,
    DEAD_LETTER_TOPIC,
    UNREADABLE,
    Headers,
    Message,
)
from ._recognise import as_structured, envelope_in_body, is_cloudevent, is_structured_type
from ._redact import SECRET, redact
from ._topics import (
    dead_letter_topic,
    is_pattern,
    matches,
    validate_name,
    validate_pattern,
    validate_topic,
)

__all__ = [
    "CONTENT_TYPE",
    "DEAD_LETTER_ATTEMPTS",
    "DEAD_LETTER_REASON",
    "DEAD_LETTER_TOPIC",
    "JSON",
    "OCTETS",
    "SECRET",
    "SPECVERSION",
    "STRUCTURED",
    "UNREADABLE",
    "BadRequest",
    "BrokerClosed",
    "BrokerError",
    "ConfigError",
    "ConnectionLost",
    "DataCodec",
    "DeadLetter",
    "DeadlineExceeded",
    "Decoder",
    "DriverMissing",
    "EnvelopeReader",
    "Event",
    "EventIds",
    "EventKitError",
    "Forbidden",
    "Headers",
    "InternalError",
    "InvalidEvent",
    "InvalidTopic",
    "LogLimiter",
    "Message",
    "NotFound",
    "PayloadTooLarge",
    "PlainDecoder",
    "PublishError",
    "RemoteError",
    "ServiceUnavailable",
    "StreamClosed",
    "Unauthorized",
    "UnsupportedFeature",
    "as_structured",
    "build_event",
    "check_extensions",
    "dataschema_of",
    "dead_letter_topic",
    "decode_attributes",
    "decode_event",
    "decode_header_value",
    "encode_data",
    "encode_header_value",
    "envelope_in_body",
    "event_from_headers",
    "event_id_of",
    "is_cloudevent",
    "is_json",
    "is_pattern",
    "is_rfc3339",
    "is_structured",
    "is_structured_type",
    "is_uri",
    "is_uri_reference",
    "loggable",
    "matches",
    "needs_encoding",
    "now_iso",
    "redact",
    "to_message",
    "validate_name",
    "validate_pattern",
    "validate_topic",
]
