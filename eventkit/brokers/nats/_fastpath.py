"""nats-py's client with a faster header path and a direct delivery route.

A binary-mode CloudEvent carries half a dozen headers. nats-py encodes them with a regex and
several copies per header, and parses each header name character by character; profiling
shows those two steps as the largest costs of a binary-mode event (and of an RPC request).
This subclass keeps nats-py's behaviour (same validation, same result) and does the same work
in fewer steps: header names are validated once and remembered, the block is built in one
join, lines are parsed with plain splits, and a publish without headers is one call, not two.

Messages of core subscriptions that eventkit routes directly (:meth:`route_directly`) go from
the read loop to their :class:`~eventkit.brokers.nats._dispatch.Dispatcher` as an eventkit
Message, skipping nats-py's per-subscription queue and task (see that module).
If nats-py changes the methods overridden here, the plain client is used.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from nats.aio.client import Client
from nats.errors import BadHeaderError, BadSubjectError
from nats.protocol import command as prot_command

from ._compat import fast_client_supported
from ._dispatch import DirectRoute, message_from_wire
from ._headers import STRUCTURED_ONLY

__all__ = ["FastHeaderClient", "make_client"]

_KEY = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NEWLINES = str.maketrans({"\r": " ", "\n": " "})
_ASCII_WS = " \t\n\r\x0b\x0c"  # what bytes.strip() removes
_STRUCTURED_BLOCK = "".join(
    ["NATS/1.0\r\n", *(f"{k}: {v}\r\n" for k, v in STRUCTURED_ONLY.items()), "\r\n"]
).encode()


class FastHeaderClient(Client):
    """A nats-py client whose header encoding and parsing take fewer steps."""

    _known_keys: ClassVar[set[str]] = set()  # valid header names seen (bounded)

    def __init__(self) -> None:
        super().__init__()
        self._direct: dict[int, DirectRoute] = {}

    def route_directly(self, sid: int, route: DirectRoute | None) -> None:
        """Hand the messages of subscription ``sid`` to ``route`` from the read loop (None:
        back to nats-py's own delivery)."""
        if route is None:
            self._direct.pop(sid, None)
        else:
            self._direct[sid] = route

    async def _process_msg(
        self,
        sid: int,
        subject: bytes,
        reply: bytes,
        data: bytes,
        headers: bytes | None,
    ) -> None:
        route = self._direct.get(sid)
        if route is None:
            await super()._process_msg(sid, subject, reply, data, headers)  # type: ignore[arg-type]
            return
        stats = self.stats
        stats["in_msgs"] += 1
        stats["in_bytes"] += len(data)
        if not headers:
            parsed = None
        elif headers == _STRUCTURED_BLOCK:  # a structured event's mark alone: nothing to parse
            parsed = dict(STRUCTURED_ONLY)
        elif headers[8:9] == b" ":  # an inline status ("NATS/1.0 503"): nats-py's own parse
            parsed = await self._process_headers(headers)
        else:  # "NATS/1.0\r\n" then the header lines
            parsed = self._parse_header_lines(headers[10:])
        route(message_from_wire(subject, reply, data, parsed))

    async def _send_publish(
        self,
        subject: str,
        reply: str,
        payload: bytes,
        payload_size: int,
        headers: dict[str, str] | None,
    ) -> None:
        if not headers:  # an RPC reply, a plain message: the PUB itself, in this call
            if not subject:
                raise BadSubjectError
            self.stats["out_msgs"] += 1
            self.stats["out_bytes"] += payload_size
            await self._send_command(prot_command.pub_cmd(subject, reply, payload))
            if self._flush_queue is not None and self._flush_queue.empty():
                await self._flush_pending()
            return
        if headers is STRUCTURED_ONLY:  # a structured event: its header block, made once
            await self._send_hpub(subject, reply, _STRUCTURED_BLOCK, payload, payload_size)
            return
        known = self._known_keys
        lines = ["NATS/1.0\r\n"]
        for k, v in headers.items():
            if k not in known:
                key = k.strip()
                if not key:
                    continue
                if not _KEY.fullmatch(key):
                    raise BadHeaderError(key)
                if key == k and len(known) < 4096:
                    known.add(k)
                k = key
            v = v.strip()
            if "\r" in v or "\n" in v:
                v = v.translate(_NEWLINES)
            lines.append(f"{k}: {v}\r\n")
        lines.append("\r\n")
        await self._send_hpub(subject, reply, "".join(lines).encode(), payload, payload_size)

    async def _send_hpub(
        self, subject: str, reply: str, hdr: bytes, payload: bytes, payload_size: int
    ) -> None:
        self.stats["out_msgs"] += 1
        self.stats["out_bytes"] += payload_size
        await self._send_command(prot_command.hpub_cmd(subject, reply, hdr, payload))
        if self._flush_queue is not None and self._flush_queue.empty():
            await self._flush_pending()

    @staticmethod
    def _parse_header_lines(raw: bytes) -> dict[str, str]:
        out: dict[str, str] = {}
        # One decode for the block: invalid UTF-8 cannot span a CRLF, so this equals
        # decoding value by value; non-ASCII names are skipped as nats-py does.
        for line in raw.decode("utf-8", "replace").split("\r\n"):
            name, sep, value = line.partition(":")
            if not sep:
                continue
            key = name.strip(_ASCII_WS)
            if not key.isascii() or " " in key or "\t" in key:
                continue
            if not key.isprintable() and any(c.isspace() for c in key):
                continue  # a name with white space in it is not a header name
            out[key] = value.strip(_ASCII_WS)
        return out


_FAST = fast_client_supported()


def make_client() -> Any:
    """The faster client where nats-py allows it, else nats-py's own."""
    return FastHeaderClient() if _FAST else Client()
