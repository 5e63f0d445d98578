"""Messages that are not CloudEvents, for subscribers that take them (``accept="any"``).

A producer that knows nothing of CloudEvents (plain nats-py, aio-pika, FastStream, a shell
script) sends a body and perhaps a content type. A subscriber that opts in receives that body
as the data of an :class:`Event` whose attributes come from the transport: ``type`` is the
topic, ``id`` a fresh unique id, ``source`` the broker's (no credentials), ``datacontenttype``
the message's content type (JSON when the body parsed as JSON and none was given). A message
that is a CloudEvent (``ce-*`` headers, a CloudEvents content type, or an event's attributes
in a JSON body whatever the content type says) is read as one, by the same :class:`Decoder`,
so such a subscriber takes both kinds.

The body is read as the handler's type: JSON when the content type says JSON (or says
nothing and the body is JSON), text for ``str``, the bytes as they came for ``bytes``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ._decode import Decoder, is_json
from ._errors import InvalidEvent
from ._event import CONTENT_TYPE, JSON, SPECVERSION, Event, EventIds
from ._message import Message
from ._recognise import is_cloudevent

__all__ = ["PlainDecoder"]


class PlainDecoder:
    """A :class:`Decoder` that also takes messages that are not CloudEvents (see the module).

    ``source``: the CloudEvents source of synthesised events (the broker, without
    credentials). Raises :class:`InvalidEvent` when the body does not fit the handler's type,
    or when a message that claims to be a CloudEvent is not a valid one.
    """

    __slots__ = ("_ids", "decoder", "source")

    def __init__(self, decoder: Decoder, *, source: str) -> None:
        self.decoder = decoder
        self.source = source
        self._ids = EventIds()

    def __call__(self, message: Message) -> Any:
        if is_cloudevent(message):
            return self.decoder(message)
        codec = self.decoder.codec
        content_type = message.headers.get(CONTENT_TYPE)
        try:
            if content_type is not None:
                data = codec.from_body(message.body, is_json(content_type))
            else:
                data, content_type = self._guess(message.body)
        except ValidationError as exc:
            raise InvalidEvent(
                f"message on {message.topic!r} does not match {_type_name(codec.type)}: "
                f"{exc.error_count()} error(s): {_where(exc)}"
            ) from exc
        except ValueError as exc:
            raise InvalidEvent(f"message on {message.topic!r} is not valid JSON: {exc}") from exc
        if not self.decoder.event:
            return data
        return Event(
            id=self._ids(),
            source=self.source,
            type=message.topic,
            specversion=SPECVERSION,
            datacontenttype=content_type,
            data=data,
        )

    def _guess(self, body: bytes) -> tuple[Any, str | None]:
        """No content type: JSON if the body is JSON, else the bytes (or text) as they are."""
        codec = self.decoder.codec
        if body:
            try:
                return codec.from_body(body, True), JSON
            except ValidationError as exc:
                if any(error["type"] != "json_invalid" for error in exc.errors()):
                    raise  # JSON that does not fit the type: say so
            except ValueError:
                pass  # not JSON (read without a type)
        return codec.from_body(body, False), None


def _where(exc: ValidationError) -> str:
    """Where the body failed and why, without the values (they may be anyone's data)."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}"
        for e in exc.errors(include_url=False, include_input=False)[:5]
    )


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or repr(tp)
