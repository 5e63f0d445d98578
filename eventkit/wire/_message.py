"""Message: what every broker carries, and the header names eventkit puts on it.

A message is a topic, string headers and a body of bytes; nothing else crosses a broker.
CloudEvents attributes live in ``ce-*`` headers (binary content mode); request/reply
(:mod:`eventkit.brokers.base`), RPC and dead-letter details in ``eventkit-*`` headers.
Adapters translate header names to their transport's binding at the boundary (AMQP
application properties, for example) and back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Headers", "Message"]

Headers = dict[str, str]

UNREADABLE = "eventkit-unreadable"
"""Set by an adapter on a message whose CloudEvents attributes its binding could not read (a
``ce-*`` value that is not valid percent-encoded UTF-8): the value says why. The adapter also
removes ``ce-specversion``, so nothing reads the message as an event; the decoder rejects it
with this reason."""

# Dead-letter details, set by the broker when it moves a message to the dead-letter topic.
DEAD_LETTER_REASON = "eventkit-deadletter-reason"
DEAD_LETTER_TOPIC = "eventkit-deadletter-topic"
DEAD_LETTER_ATTEMPTS = "eventkit-deadletter-attempts"


@dataclass(slots=True)
class Message:
    """One message on a topic.

    ``headers`` keys are lower-case. ``attempt`` is set by the broker on delivery: 1 on the
    first delivery, more on a durable redelivery; publishers leave it alone.
    """

    topic: str
    body: bytes = b""
    headers: Headers = field(default_factory=dict)
    attempt: int = 1

    def dead_lettered(self, reason: str, dead_letter_topic: str) -> Message:
        """The copy of this message that goes to a dead-letter topic, with the reason."""
        headers = dict(self.headers)
        headers[DEAD_LETTER_REASON] = reason
        headers[DEAD_LETTER_TOPIC] = self.topic
        headers[DEAD_LETTER_ATTEMPTS] = str(self.attempt)
        return Message(dead_letter_topic, self.body, headers)
